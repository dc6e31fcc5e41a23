package service

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/eventlog"
)

// A hub event has one frame without its raw request for every stream,
// built from the stored bytes cut short, and one with it, built once on
// first use; an event without a raw request has one frame for both.
func TestHubFrames(t *testing.T) {
	plainEv := &hookstreamv1.Event{Id: "0123456789abcdef0123456789abcdef", Source: "s", Type: "lead.moved"}
	rawEv := proto.Clone(plainEv).(*hookstreamv1.Event)
	rawEv.Raw = &hookstreamv1.RawRequest{ContentType: "application/json", BodyText: `{"a":1}`}
	plainBytes, _ := proto.Marshal(plainEv)
	rawBytes, _ := proto.Marshal(rawEv) // raw is the only field after the plain ones here

	decode := func(t *testing.T, f *encodedDelivery) *hookstreamv1.Event {
		t.Helper()
		var m hookstreamv1.SubscribeResponse
		if err := proto.Unmarshal(f.wire(), &m); err != nil {
			t.Fatal(err)
		}
		if m.GetDelivery().GetCursor() != "7" {
			t.Errorf("cursor %q, want 7", m.GetDelivery().GetCursor())
		}
		return m.GetDelivery().GetEvent()
	}

	f := newHubFrames(eventlog.Stored{Seq: 7, Raw: rawBytes})
	if f.raw != nil {
		t.Fatal("the frame with raw was built before anyone asked for it")
	}
	plain := f.forStream(false)
	if !bytes.Equal(plain.frame.event, plainBytes) || &plain.frame.event[0] != &rawBytes[0] {
		t.Errorf("plain frame is not the stored bytes cut short")
	}
	if ev := decode(t, plain.frame); ev.GetRaw() != nil || ev.GetId() != plainEv.GetId() {
		t.Errorf("plain frame event: %v", ev)
	}
	withRaw, again := f.forStream(true), f.forStream(true)
	if withRaw.frame != again.frame || withRaw.charge != again.charge {
		t.Errorf("the frame with raw is built more than once")
	}
	if withRaw.charge == plain.charge || withRaw.frame.size() <= plain.frame.size() {
		t.Errorf("frames with and without raw share a charge, or sizes are off (%d, %d)", withRaw.frame.size(), plain.frame.size())
	}
	if ev := decode(t, withRaw.frame); ev.GetRaw().GetBodyText() != `{"a":1}` {
		t.Errorf("raw frame event: %v", ev)
	}

	g := newHubFrames(eventlog.Stored{Seq: 7, Raw: plainBytes})
	if a, b := g.forStream(false), g.forStream(true); a.frame != b.frame || a.charge != b.charge {
		t.Errorf("an event without raw got two frames")
	}
}
