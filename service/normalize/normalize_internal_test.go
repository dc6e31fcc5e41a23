package normalize

import (
	"slices"
	"strings"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// builtField names Event fields by number; this pins the numbers to the
// names its comment gives.
func TestBuiltFieldNames(t *testing.T) {
	var got []protoreflect.Name
	fields := eventDesc.Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); builtField(fd) {
			got = append(got, fd.Name())
		}
	}
	want := []protoreflect.Name{"id", "vendor", "received_at", "actor", "supersedes"}
	if !slices.Equal(got, want) {
		t.Errorf("builtField fields = %v, want %v", got, want)
	}
}

// Leaving builtField's fields out must not change how an event is
// rejected for anything else, vendor payload included: each broken event
// gets the rejection it got when every rule but those of the JSON value
// types was checked.
func TestValidateEventSkipsOnlyBuiltFields(t *testing.T) {
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	// What ValidateEvent did before it skipped builtField's fields.
	jsonOnly := protovalidate.WithFilter(protovalidate.FilterFunc(
		func(_ protoreflect.Message, d protoreflect.Descriptor) bool {
			fd, ok := d.(protoreflect.FieldDescriptor)
			if !ok || fd.Message() == nil {
				return true
			}
			switch fd.Message().FullName() {
			case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
				return false
			}
			return true
		}))
	valid := func() *hookstreamv1.Event {
		now := timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		return &hookstreamv1.Event{
			Id: EventID("src", hookstreamv1.Vendor_VENDOR_CLOSER, "x"), Source: "src",
			Vendor: hookstreamv1.Vendor_VENDOR_CLOSER, Type: "conversation.closed", VendorType: "ThreadClosedEvent",
			OccurredAt: now, ReceivedAt: now, Subject: &hookstreamv1.Subject{Kind: "conversation", Id: "c1"},
			Actor:   &hookstreamv1.Actor{Kind: hookstreamv1.ActorKind_ACTOR_KIND_AGENT},
			Changes: []*hookstreamv1.Change{{Field: "stage", NewValue: structpb.NewStringValue("won")}},
			Payload: &hookstreamv1.Event_Closer{Closer: &hookstreamv1.CloserConversation{
				EventType: "ThreadClosedEvent", Timestamp: 1, Customer: &hookstreamv1.CloserCustomer{Id: "c1"},
			}},
		}
	}
	for name, breakIt := range map[string]func(ev *hookstreamv1.Event){
		"valid":                func(*hookstreamv1.Event) {},
		"source":               func(ev *hookstreamv1.Event) { ev.Source = "Bad Source" },
		"type too long":        func(ev *hookstreamv1.Event) { ev.Type = "a." + strings.Repeat("b", 200) },
		"vendor_type empty":    func(ev *hookstreamv1.Event) { ev.VendorType = "" },
		"occurred_at missing":  func(ev *hookstreamv1.Event) { ev.OccurredAt = nil },
		"subject kind empty":   func(ev *hookstreamv1.Event) { ev.Subject.Kind = "" },
		"subject id too long":  func(ev *hookstreamv1.Event) { ev.Subject.Id = strings.Repeat("1", 300) },
		"change field empty":   func(ev *hookstreamv1.Event) { ev.Changes[0].Field = "" },
		"payload event_type":   func(ev *hookstreamv1.Event) { ev.GetCloser().EventType = "1 bad" },
		"payload customer":     func(ev *hookstreamv1.Event) { ev.GetCloser().Customer = nil },
		"payload customer id":  func(ev *hookstreamv1.Event) { ev.GetCloser().Customer.Id = "" },
		"payload and envelope": func(ev *hookstreamv1.Event) { ev.VendorType = ""; ev.GetCloser().Customer = nil },
		"no payload":           func(ev *hookstreamv1.Event) { ev.Payload = nil },
		"vendor_type too long": func(ev *hookstreamv1.Event) { ev.VendorType = strings.Repeat("x", 129) },
	} {
		ev := valid()
		breakIt(ev)
		got := ValidateEvent(v, ev)
		// The reference: the same violation-to-rejection mapping, on the
		// full rules.
		var want *Rejection
		if err := v.Validate(ev, jsonOnly); err != nil {
			want = ValidateEvent(rejectingValidator{err}, ev)
		}
		switch {
		case (got == nil) != (want == nil):
			t.Errorf("%s: got %v, want %v", name, got, want)
		case got != nil && *got != *want:
			t.Errorf("%s: got %+v, want %+v", name, *got, *want)
		case name != "valid" && got == nil:
			t.Errorf("%s: not rejected", name)
		}
	}
}

// rejectingValidator returns a fixed error, to run ValidateEvent's mapping
// on a violation found elsewhere.
type rejectingValidator struct{ err error }

func (r rejectingValidator) Validate(proto.Message, ...protovalidate.ValidationOption) error {
	return r.err
}

// validated skips fields only where protovalidate would find nothing to
// check: every field of a message an Event can hold that it skips, apart
// from builtField's, holds a message in which no rule can apply (no
// buf.validate option on it, its oneofs or its fields, nor in the messages
// those hold), and has no rules of its own.
func TestRulelessMessages(t *testing.T) {
	seen, skipped := map[protoreflect.FullName]bool{}, map[protoreflect.FullName]bool{}
	var visit func(md protoreflect.MessageDescriptor)
	visit = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		fields := md.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			if fd.Message() == nil {
				continue
			}
			if !validated(fd) && !builtField(fd) {
				skipped[fd.Message().FullName()] = true
				if proto.HasExtension(fd.Options(), validate.E_Field) {
					t.Errorf("%s is skipped but has rules", fd.FullName())
				}
				if where := rulesIn(fd.Message(), map[protoreflect.FullName]bool{}); where != "" {
					t.Errorf("%s is skipped but %s has rules", fd.FullName(), where)
				}
				continue
			}
			visit(fd.Message())
		}
	}
	visit(eventDesc)
	for _, name := range []protoreflect.FullName{"hookstream.v1.Contact", "hookstream.v1.Merge", "hookstream.v1.RawRequest"} {
		if !skipped[name] {
			t.Errorf("no field holding %s is skipped", name)
		}
	}
}

// rulesIn names the first message, oneof or field under md that carries a
// buf.validate option, or returns "".
func rulesIn(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) protoreflect.FullName {
	if seen[md.FullName()] {
		return ""
	}
	seen[md.FullName()] = true
	if proto.HasExtension(md.Options(), validate.E_Message) {
		return md.FullName()
	}
	oneofs := md.Oneofs()
	for i := range oneofs.Len() {
		if od := oneofs.Get(i); proto.HasExtension(od.Options(), validate.E_Oneof) {
			return od.FullName()
		}
	}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if proto.HasExtension(fd.Options(), validate.E_Field) {
			return fd.FullName()
		}
		if fd.Message() != nil {
			if where := rulesIn(fd.Message(), seen); where != "" {
				return where
			}
		}
	}
	return ""
}

func TestReplaceLoneSurrogates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`{"a": "x\ud800y"}`, `{"a": "x\ufffdy"}`},
		{`{"a": "\udc00"}`, `{"a": "\ufffd"}`},
		{`{"a": "\uD800 and \uDFFF"}`, `{"a": "\ufffd and \ufffd"}`},
		{`{"a": "\ud800\u0041"}`, `{"a": "\ufffd\u0041"}`},
		{`{"a": "\ud83d\ud83d\ude00"}`, `{"a": "\ufffd\ud83d\ude00"}`},
		{`"\ud800`, `"\ufffd`},
		{`{"a": "\u1\ud800"}`, `{"a": "\u1\ufffd"}`},
		{`{"a": "x\ud800\ud800\udc00"}`, `{"a": "x\ufffd\ud800\udc00"}`},
		// Left alone: pairs, other escapes, an escaped backslash before
		// "ud800" text, and broken escapes (fastjson's parse judges those).
		{`{"a": "\ud83d\ude00 \uD83D\uDE00"}`, ``},
		{`{"a": "\\ud800", "b": "\\\ud83d\ude00"}`, ``},
		{`{"a": "\u00e9\n\/\"\\"}`, ``},
		{`{"a": "\uZZZZ \u12"}`, ``},
		{`{"a": "no escapes"}`, ``},
	} {
		want := tc.want
		if want == "" {
			want = tc.in
		}
		in := []byte(tc.in)
		got := replaceLoneSurrogates(in)
		if string(got) != want {
			t.Errorf("replaceLoneSurrogates(%s) = %s, want %s", tc.in, got, want)
		}
		if tc.want == "" && &got[0] != &in[0] {
			t.Errorf("replaceLoneSurrogates(%s) copied a body it did not change", tc.in)
		}
		if tc.want != "" && string(in) != tc.in {
			t.Errorf("replaceLoneSurrogates(%s) changed its argument", tc.in)
		}
	}
}

// Int64 takes a whole number however JSON writes it, and says why it
// refuses one that is not.
func TestReaderInt64(t *testing.T) {
	for in, want := range map[string]struct {
		n   int64
		err string
	}{
		`{"a": 2}`: {2, ""}, `{"a": "2"}`: {2, ""}, `{"a": 2.0}`: {2, ""}, `{"a": 1e3}`: {1000, ""}, `{"a": -4.00}`: {-4, ""},
		`{"a": 2.5}`: {0, "must be a whole number"}, `{"a": "x"}`: {0, "fits in 64 bits"}, `{"a": 1e300}`: {0, "fits in 64 bits"},
		`{"a": 9223372036854775807}`: {9223372036854775807, ""},
	} {
		var pool fastjson.ParserPool
		root, p, err := Parse(&pool, []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		r := getReader([]byte(in))
		n := r.Int64(root, "a")
		rej := r.Err()
		switch {
		case want.err == "" && (rej != nil || n != want.n):
			t.Errorf("%s: %d, %v; want %d", in, n, rej, want.n)
		case want.err != "" && (rej == nil || !strings.Contains(rej.Message, want.err)):
			t.Errorf("%s: %d, %v; want a rejection saying %q", in, n, rej, want.err)
		}
		putReader(r)
		pool.Put(p)
	}
}
