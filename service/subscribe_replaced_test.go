package service

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/natstest"
	"github.com/hookstream/hookstream/service/eventlog"
)

// appendToNewStream stores n events in a stream just replaced; until the
// log has noticed the replacement, appends may be refused as unavailable.
func (e *subscribeEnv) appendToNewStream(t *testing.T, n int, typ string) []stored {
	t.Helper()
	var out []stored
	for i := range n {
		e.next++
		ev := &hookstreamv1.Event{Id: fmt.Sprintf("%032x", e.next), Source: "crm", Vendor: hookstreamv1.Vendor_VENDOR_CLINCHPAD, Type: typ}
		for deadline := time.Now().Add(waitTimeout); ; time.Sleep(20 * time.Millisecond) {
			app, err := e.log.Append(context.Background(), ev)
			if err == nil {
				if app.Seq != uint64(i+1) {
					t.Fatalf("new event %d stored at %d, want %d", i, app.Seq, i+1)
				}
				out = append(out, stored{id: ev.GetId(), cursor: eventlog.Cursor(app.Seq), typ: typ})
				break
			}
			if !errors.Is(err, eventlog.ErrUnavailable) || time.Now().After(deadline) {
				t.Fatalf("append to the new stream: %v", err)
			}
		}
	}
	return out
}

// TestSubscriptionFollowsAReplacedStream: when the event stream is deleted
// and created again under open streams, its positions start over below
// what each stream has passed. A live stream, and one still catching up
// on its own reads, then deliver the new stream's events from its first,
// instead of skipping every one at or below their old position.
func TestSubscriptionFollowsAReplacedStream(t *testing.T) {
	t.Parallel()
	e := newSubscribeEnv(t, Options{Heartbeat: 100 * time.Millisecond, StallTimeout: time.Minute}, nil)
	old := e.mustAppend(t, 6, "lead.created", 0)
	live := receive(t, e.subscribe(t.Context(), t, &hookstreamv1.SubscribeRequest{Start: fromBeginning}))
	sameEvents(t, "before the replacement (live)", deliveries(t, live, len(old)), old)
	e.states.waitState(t, "1", stateLive)
	// The second stream's filter matches nothing of the old stream, so it
	// passes all six positions without a delivery.
	filtered := receive(t, e.subscribe(t.Context(), t, &hookstreamv1.SubscribeRequest{Start: fromBeginning, Filter: `event.type == "deal.added"`}))
	e.states.waitState(t, "2", stateLive)

	natstest.ReplaceStream(t, e.log.JetStream(), "HOOKSTREAM_EVENTS")
	fresh := e.appendToNewStream(t, 3, "deal.added")
	sameEvents(t, "after the replacement (live)", deliveries(t, live, len(fresh)), fresh)
	sameEvents(t, "after the replacement (filtered)", deliveries(t, filtered, len(fresh)), fresh)
	more := e.mustAppend(t, 2, "deal.added", 0)
	sameEvents(t, "later (live)", deliveries(t, live, len(more)), more)
	sameEvents(t, "later (filtered)", deliveries(t, filtered, len(more)), more)
	nothingMore(t, live)
	t.Logf("states: live %v, filtered %v", e.states.history("1"), e.states.history("2"))
}
