package delivery

import (
	"fmt"
	"runtime"
	"testing"
	"weak"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/eventlog"
)

// The shared cache holds at most decodedKeep events decoded; the others
// keep what a delivery needs, and decode again when asked.
func TestSharedKeepsFewDecoded(t *testing.T) {
	c := newShared()
	stored := func(i int) eventlog.Stored {
		raw, err := proto.Marshal(&hookstreamv1.Event{Id: fmt.Sprintf("%032x", i), Vendor: hookstreamv1.Vendor_VENDOR_CLOSER,
			Subject: &hookstreamv1.Subject{Kind: "conversation", Id: fmt.Sprint(i)}, ReceivedAt: timestamppb.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return eventlog.Stored{Seq: uint64(i), Raw: raw}
	}
	var ses []*sharedEvent
	for i := 1; i <= decodedKeep+10; i++ {
		se := c.get("log", stored(i))
		if _, err := se.event(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := se.body(hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_EVENT_JSON); err != nil {
			t.Fatal(err)
		}
		ses = append(ses, se)
	}
	held := 0
	for _, se := range ses {
		if se.ev.Load() != nil {
			held++
		}
	}
	if held != decodedKeep {
		t.Errorf("%d events hold their decoded form, want %d", held, decodedKeep)
	}
	first := ses[0]
	if first.ev.Load() != nil {
		t.Fatal("the first event decoded still holds its decoded form")
	}
	in, err := first.about()
	if err != nil || in.id != fmt.Sprintf("%032x", 1) || in.vendor != hookstreamv1.Vendor_VENDOR_CLOSER || in.key != orderingKey(&hookstreamv1.Event{Subject: &hookstreamv1.Subject{Kind: "conversation", Id: "1"}}) || in.recv.IsZero() {
		t.Errorf("about an event no longer decoded: %+v, %v", in, err)
	}
	if first.ev.Load() != nil {
		t.Error("about decoded the event again")
	}
	if body, _, err := first.body(hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_EVENT_JSON); err != nil || len(body) == 0 {
		t.Errorf("the encoded body after the decoded form went: %q, %v", body, err)
	}
	ev, err := first.event()
	if err != nil || ev.GetId() != in.id {
		t.Errorf("decoded again: %v, %v", ev, err)
	}
}

// An event the cache has dropped is not kept alive by the decoded ring.
func TestSharedDropsEvictedEvents(t *testing.T) {
	c := newShared()
	raw, err := proto.Marshal(&hookstreamv1.Event{Id: fmt.Sprintf("%032x", 1)})
	if err != nil {
		t.Fatal(err)
	}
	first := c.get("log", eventlog.Stored{Seq: 1, Raw: raw})
	if _, err := first.event(); err != nil {
		t.Fatal(err)
	}
	w := weak.Make(first)
	first = nil
	// Four more of a quarter of the byte bound each: the first goes.
	for i := 2; i <= 5; i++ {
		c.get("log", eventlog.Stored{Seq: uint64(i), Raw: make([]byte, sharedBytes/4)})
	}
	runtime.GC()
	if w.Value() != nil {
		t.Error("an event dropped from the cache is still reachable")
	}
}
