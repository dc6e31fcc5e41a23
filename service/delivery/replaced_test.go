package delivery

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/natstest"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/normalize"
)

// TestStreamReplacedDeliversTheNewStream: when the event stream is deleted
// and created again (an operator's reset, another replica recreating it),
// its positions start over. An endpoint then delivers every event stored
// in the new stream from its first, although the new positions are below
// its cursor, and never sends an event of the old stream cached at a
// position the new one reuses. A dead letter of the old stream redriven
// afterwards names a position that now holds another event: it is
// dead-lettered again as gone, and that other event is not sent for it.
func TestStreamReplacedDeliversTheNewStream(t *testing.T) {
	log, store := openTestLog(t)
	refused := normalize.EventID("old", hookstreamv1.Vendor_VENDOR_CLOSER, "1") // at position 2
	var mu sync.Mutex
	got := map[string]int{} // 2xx answers by webhook-id
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("webhook-id")
		if id == refused {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		got[id]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	ids := func(tag string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, normalize.EventID(tag, hookstreamv1.Vendor_VENDOR_CLOSER, strconv.Itoa(i)))
		}
		return out
	}
	waitAll := func(want []string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			missing := 0
			for _, id := range want {
				if got[id] == 0 {
					missing++
				}
			}
			mu.Unlock()
			if missing == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d events not delivered in 30 s", missing, len(want))
			}
		}
	}

	var e *Engine
	deadLetters := func() []string {
		t.Helper()
		dls, _, err := e.DeadLetters(context.Background(), "ep_replaced", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, dl := range dls {
			out = append(out, dl.GetId()+" "+dl.GetEventId())
		}
		return out
	}
	waitDead := func(what string, cond func([]string) bool) []string {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if d := deadLetters(); cond(d) {
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("waited 30 s for %s; dead letters %v", what, deadLetters())
			}
		}
	}

	appendEvents(t, log, "old", 6)
	e = startLoopbackEngine(t, log, store, func(*Options) {})
	createFromStart(t, e, store, "ep_replaced", srv.URL+"/hook")
	var old []string
	for _, id := range ids("old", 6) {
		if id != refused {
			old = append(old, id)
		}
	}
	waitAll(old)
	first := waitDead("the refused event's dead letter", func(d []string) bool { return len(d) == 1 })

	ctx := context.Background()
	natstest.ReplaceStream(t, log.JetStream(), "HOOKSTREAM_EVENTS")
	// Until the log has noticed, appends may be refused (503); then the
	// new stream's positions start at 1, below the endpoint's cursor (6).
	ev := benchEvent(t)
	fresh := ids("new", 3)
	for i, id := range fresh {
		ev.Id, ev.ReceivedAt = id, timestamppb.Now()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			app, err := log.Append(ctx, ev)
			if err == nil {
				if app.Seq != uint64(i+1) {
					t.Fatalf("new event %d stored at %d, want %d", i, app.Seq, i+1)
				}
				break
			}
			if !errors.Is(err, eventlog.ErrUnavailable) || time.Now().After(deadline) {
				t.Fatalf("append to the new stream: %v", err)
			}
		}
	}
	waitAll(fresh)
	if n, _, err := e.Redrive(ctx, "ep_replaced", "", time.Time{}, time.Time{}, 0, 100); err != nil || n != 1 {
		t.Fatalf("redrive = %d, %v", n, err)
	}
	again := waitDead("the redriven dead letter to come back", func(d []string) bool { return len(d) == 1 && d[0] != first[0] })
	if want := " " + refused; len(again[0]) < len(want) || again[0][len(again[0])-len(want):] != want {
		t.Errorf("dead letter after the redrive %q, want one for %s", again[0], refused)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range fresh {
		if got[id] != 1 {
			t.Errorf("new event %s delivered %d times, want once (a redriven old position must not send it)", id, got[id])
		}
	}
	for _, id := range old {
		if got[id] != 1 {
			t.Errorf("old event %s delivered %d times, want once (the new stream does not hold it)", id, got[id])
		}
	}
	if len(got) != len(old)+len(fresh) {
		t.Errorf("receiver saw %d distinct ids, want %d: %v", len(got), len(old)+len(fresh), got)
	}
}
