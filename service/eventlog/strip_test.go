package eventlog

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// fullEvent is an event with most fields set, raw included when raw is.
func fullEvent(raw bool) *hookstreamv1.Event {
	ev := event(7)
	ev.VendorType = "lead:moved"
	ev.OccurredAt = timestamppb.Now()
	ev.ReceivedAt = timestamppb.Now()
	ev.Subject = &hookstreamv1.Subject{Kind: "lead", Id: "42", Name: "Acme"}
	ev.Actor = &hookstreamv1.Actor{Kind: hookstreamv1.ActorKind_ACTOR_KIND_USER, Id: "u1"}
	ev.Changes = []*hookstreamv1.Change{{Field: "stage", OldValue: structpb.NewStringValue("a"), NewValue: structpb.NewNullValue()}}
	ev.TenantId = "t"
	ev.DeliveryAttempt = 2
	ev.Payload = &hookstreamv1.Event_Clinchpad{Clinchpad: &hookstreamv1.ClinchPadWebhook{}}
	if raw {
		ev.Raw = &hookstreamv1.RawRequest{ContentType: "application/json", BodyText: `{"lead":{"_id":"42"}}` + strings.Repeat(" ", 300)}
	}
	return ev
}

// withoutRaw is a copy of ev with Raw cleared.
func withoutRaw(ev *hookstreamv1.Event) *hookstreamv1.Event {
	cp := proto.Clone(ev).(*hookstreamv1.Event)
	cp.Raw = nil
	return cp
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkStripped(t *testing.T, got []byte, want *hookstreamv1.Event) {
	t.Helper()
	var ev hookstreamv1.Event
	if err := proto.Unmarshal(got, &ev); err != nil {
		t.Fatalf("unmarshal stripped: %v", err)
	}
	if diff := cmp.Diff(withoutRaw(want), &ev, protocmp.Transform()); diff != "" {
		t.Errorf("stripped event differs (-want +got):\n%s", diff)
	}
}

// marshalEvent writes raw last, after the payload oneof (which
// proto.Marshal writes after every other field), and decodes to the same
// event; the event itself is left as it was.
func TestMarshalEventPutsRawLast(t *testing.T) {
	for _, ev := range []*hookstreamv1.Event{fullEvent(true), fullEvent(false), {Raw: &hookstreamv1.RawRequest{}}} {
		before := proto.Clone(ev)
		b, err := marshalEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(ev, before) {
			t.Fatalf("marshalEvent changed the event")
		}
		var got hookstreamv1.Event
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ev, &got, protocmp.Transform()); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		var lastNum protowire.Number
		for i := 0; i < len(b); {
			num, typ, n := protowire.ConsumeTag(b[i:])
			i += n + protowire.ConsumeFieldValue(num, typ, b[i+n:])
			lastNum = num
		}
		if ev.GetRaw() != nil && lastNum != rawField {
			t.Errorf("last field is %d, want raw (%d)", lastNum, rawField)
		}
	}
}

// StripRaw drops Event.raw from a stored encoding: nothing to do (the same
// slice, no allocation) without it, a shorter slice of the same bytes when
// it is last (as the Go marshaller writes it), and a copy when it is not.
func TestStripRaw(t *testing.T) {
	t.Run("no raw", func(t *testing.T) {
		for _, ev := range []*hookstreamv1.Event{fullEvent(false), event(1), {}} {
			b := mustMarshal(t, ev)
			got := StripRaw(b)
			if len(got) != len(b) || (len(b) > 0 && &got[0] != &b[0]) {
				t.Fatalf("without raw: got a different slice")
			}
			checkStripped(t, got, ev)
			if n := testing.AllocsPerRun(100, func() { StripRaw(b) }); n != 0 {
				t.Errorf("allocations without raw: %v", n)
			}
		}
	})
	t.Run("raw last", func(t *testing.T) {
		for _, ev := range []*hookstreamv1.Event{fullEvent(true), {Raw: &hookstreamv1.RawRequest{}}, {Raw: &hookstreamv1.RawRequest{Body: []byte{0xff, 0}}}} {
			b, err := marshalEvent(ev)
			if err != nil {
				t.Fatal(err)
			}
			got := StripRaw(b)
			if len(got) > 0 && &got[0] != &b[0] {
				t.Errorf("raw last: got a copy, want a slice of the stored bytes")
			}
			if want := mustMarshal(t, withoutRaw(ev)); !bytes.Equal(got, want) {
				t.Errorf("raw last: got %x, want %x", got, want)
			}
			checkStripped(t, got, ev)
			// Appending to the result must not write over the stored bytes.
			if cap(got) != len(got) {
				t.Errorf("raw last: result has room beyond its length (%d > %d)", cap(got), len(got))
			}
			if n := testing.AllocsPerRun(100, func() { StripRaw(b) }); n != 0 {
				t.Errorf("allocations with raw last: %v", n)
			}
		}
	})
	t.Run("raw elsewhere", func(t *testing.T) {
		ev := fullEvent(true)
		rest := mustMarshal(t, withoutRaw(ev))
		rawOnly := mustMarshal(t, &hookstreamv1.Event{Raw: ev.GetRaw()})
		cases := map[string][]byte{
			// proto.Marshal writes raw before the payload oneof.
			"marshal": mustMarshal(t, ev),
			"first":   append(append([]byte(nil), rawOnly...), rest...),
			"middle":  append(append(append([]byte(nil), rest[:2+len(ev.GetId())]...), rawOnly...), rest[2+len(ev.GetId()):]...),
			"twice":   append(append(append([]byte(nil), rawOnly...), rest...), rawOnly...),
		}
		for name, b := range cases {
			orig := bytes.Clone(b)
			got := StripRaw(b)
			if !bytes.Equal(got, rest) {
				t.Errorf("%s: got %x, want %x", name, got, rest)
			}
			if !bytes.Equal(b, orig) {
				t.Errorf("%s: the input was changed", name)
			}
			checkStripped(t, got, ev)
		}
	})
	t.Run("unknown and malformed", func(t *testing.T) {
		// An unknown field after raw stays.
		b, _ := marshalEvent(fullEvent(true))
		b = protowire.AppendTag(b, 99, protowire.VarintType)
		b = protowire.AppendVarint(b, 5)
		got := StripRaw(b)
		if !bytes.HasSuffix(got, []byte{0x98, 0x06, 5}) || bytes.Contains(got, []byte(`"lead"`)) {
			t.Errorf("unknown field: got %x", got)
		}
		// Bytes that are not protobuf come back as they are.
		for _, bad := range [][]byte{{0xff}, {0x0a, 0x10, 1}, mustMarshal(t, fullEvent(true))[:40]} {
			if got := StripRaw(bad); !bytes.Equal(got, bad) {
				t.Errorf("malformed %x: got %x", bad, got)
			}
		}
	})
}

func BenchmarkStripRaw(b *testing.B) {
	for _, tc := range []struct {
		name string
		data func() []byte
	}{
		{"absent", func() []byte { return mustMarshal(b, fullEvent(false)) }},
		{"last", func() []byte { data, _ := marshalEvent(fullEvent(true)); return data }},
		{"before-payload", func() []byte { return mustMarshal(b, fullEvent(true)) }},
		{"first", func() []byte {
			ev := fullEvent(true)
			return append(mustMarshal(b, &hookstreamv1.Event{Raw: ev.GetRaw()}), mustMarshal(b, withoutRaw(ev))...)
		}},
	} {
		data := tc.data()
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				StripRaw(data)
			}
		})
	}
	// For scale: what decoding the event costs.
	data := mustMarshal(b, fullEvent(true))
	b.Run("decode-for-comparison", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var ev hookstreamv1.Event
			if err := proto.Unmarshal(data, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestRawRequestAlone(t *testing.T) {
	t.Parallel()
	ev := fullEvent(true)
	stored, err := marshalEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"stored": stored, "proto.Marshal": mustMarshal(t, ev)} {
		got, err := Stored{Seq: 1, Raw: b}.RawRequest()
		if err != nil || !proto.Equal(got, ev.GetRaw()) {
			t.Errorf("%s: got %v, %v; want %v", name, got, err, ev.GetRaw())
		}
	}
	got, err := Stored{Seq: 2, Raw: mustMarshal(t, fullEvent(false))}.RawRequest()
	if err != nil || got != nil {
		t.Errorf("an event without raw: %v, %v", got, err)
	}
	if _, err := (Stored{Seq: 3, Raw: []byte{0xff, 0xff}}).RawRequest(); err == nil {
		t.Error("garbage parsed")
	}
}
