package delivery

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hookstream/hookstream/service/eventlog"
)

// testHub stands in for the service's hub: the test says when an event
// was passed on.
type testHub struct {
	mu   sync.Mutex
	head uint64
	next chan struct{}
}

func (h *testHub) Next() (<-chan struct{}, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.next, h.head
}

func (h *testHub) passOn(head uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.head = head
	close(h.next)
	h.next = make(chan struct{})
}

// The tail takes an offered event that follows the last one it holds,
// without reading the log; one that does not follow is left to a read,
// which brings the log's own events and skips those already offered.
func TestTailTakesOfferedEvents(t *testing.T) {
	log, _ := openTestLog(t)
	appendEvents(t, log, "before", 5)
	appendEvents(t, log, "after", 3) // 6, 7 and 8 are in the log...
	hub := &testHub{head: 5, next: make(chan struct{})}
	tl := newTail(log, hub.Next, newShared(), slog.New(slog.DiscardHandler))
	// ...but the tail begins after 5, as if it had started before them.
	tl.start = 5
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); tl.runFrom(ctx, func() bool { return true }) }()
	defer func() { cancel(); <-done }()
	eventually(t, "the tail to take offers", tl.on.Load)

	// 6 follows 5: taken as offered (these bytes are not the log's).
	tl.offer(eventlog.Stored{Seq: 6, Raw: []byte("offered 6")})
	if evs, _, ok := tl.after(tl.logID, 5, 10); !ok || len(evs) != 1 || string(evs[0].st.Raw) != "offered 6" {
		t.Fatalf("after offering 6: %d events (ok %v), want the offered one", len(evs), ok)
	}
	// 8 does not follow 6: not taken.
	tl.offer(eventlog.Stored{Seq: 8, Raw: []byte("offered 8")})
	evs, _, _ := tl.after(tl.logID, 6, 10)
	for _, ev := range evs {
		if string(ev.st.Raw) == "offered 8" {
			t.Fatal("the tail took 8 after 6")
		}
	}
	// The hub passed 8 on: the tail reads 7 and 8 from the log.
	hub.passOn(8)
	eventually(t, "the tail to read 7 and 8", func() bool {
		evs, _, _ := tl.after(tl.logID, 6, 10)
		return len(evs) == 2
	})
	evs, _, _ = tl.after(tl.logID, 5, 10)
	if len(evs) != 3 || evs[0].st.Seq != 6 || string(evs[0].st.Raw) != "offered 6" || evs[1].st.Seq != 7 || evs[2].st.Seq != 8 || string(evs[2].st.Raw) == "offered 8" {
		t.Fatalf("the tail holds %d events, want offered 6, then 7 and 8 from the log", len(evs))
	}
	// Offered again after the read (the hub is ahead of no one): skipped.
	tl.offer(eventlog.Stored{Seq: 8, Raw: []byte("offered 8")})
	if evs, _, _ := tl.after(tl.logID, 7, 10); len(evs) != 1 || string(evs[0].st.Raw) == "offered 8" {
		t.Fatalf("an offer of an event the tail holds changed it")
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A hub whose reader is behind the log, but still passing events on, does
// not hold the tail back: events stored after the tail began are read
// from the log within about a second, not when the hub reaches them.
func TestTailReadsAheadOfALaggingHub(t *testing.T) {
	log, _ := openTestLog(t)
	appendEvents(t, log, "old", 12)
	hub := &testHub{head: 0, next: make(chan struct{})}
	tl := newTail(log, hub.Next, newShared(), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); tl.run(ctx, func() bool { return true }) }()
	defer func() { cancel(); <-done }()
	eventually(t, "the tail to start", tl.on.Load)
	appendEvents(t, log, "new", 3) // 13, 14 and 15
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the hub catching up, an event every 100ms, still at 10 when 3 s are up
		for i := uint64(1); ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				hub.passOn(min(i, 10))
			}
		}
	}()
	time.Sleep(3 * time.Second)
	if evs, _, _ := tl.after(tl.logID, 12, 10); len(evs) != 3 {
		t.Fatalf("3 s after 13 to 15 were stored, the tail holds %d of them", len(evs))
	}
}

// A tail that has not yet noticed the stream's replacement never lends a
// worker that has its old position: asked by a worker of the new
// incarnation, it starts over first (start 0), so the worker's cursor
// cannot jump past the new stream's first events.
func TestTailFollowsTheLogIntoANewIncarnation(t *testing.T) {
	log, _ := openTestLog(t)
	tl := newTail(log, (&testHub{next: make(chan struct{})}).Next, newShared(), slog.New(slog.DiscardHandler))
	tl.logID, tl.start = "HOOKSTREAM_EVENTS@an-older-stream", 5000
	cur := log.Incarnation()
	if cur == "" || cur == tl.logID {
		t.Fatalf("incarnation %q", cur)
	}
	if got := tl.startPos(cur); got != 0 {
		t.Fatalf("startPos for the new incarnation = %d, want 0 (the old stream's 5000 must not carry over)", got)
	}
	if got := tl.startPos("HOOKSTREAM_EVENTS@an-older-stream"); got != 0 {
		t.Fatalf("startPos for the old incarnation = %d, want 0", got)
	}
	if evs, _, ok := tl.after(cur, 0, 10); !ok || len(evs) != 0 {
		t.Fatalf("after(new, 0) = %d events, ok %v; want the tail to cover the new stream from 0", len(evs), ok)
	}
	if _, _, ok := tl.after("HOOKSTREAM_EVENTS@an-older-stream", 5000, 10); ok {
		t.Fatal("the tail lent events to a reader of the old incarnation")
	}
}

// A full tail drops its oldest event for each one it takes, keeping its
// bounds, without changing what a worker already took from it, and
// without copying everything it holds on every event (it once made a new
// array of 4,095 entries per event: 50 KB of garbage each).
func TestTailDropsOldestCheaply(t *testing.T) {
	log, _ := openTestLog(t)
	tl := newTail(log, (&testHub{next: make(chan struct{})}).Next, newShared(), slog.New(slog.DiscardHandler))
	raw := make([]byte, 100)
	offer := func(seq uint64) {
		tl.mu.Lock()
		defer tl.mu.Unlock()
		tl.appendLocked([]eventlog.Stored{{Seq: seq, Raw: raw}})
	}
	seq := uint64(0)
	for ; seq < tailEvents; seq++ {
		offer(seq + 1)
	}
	held, _, ok := tl.after(tl.logID, 0, tailEvents)
	if !ok || len(held) != tailEvents || held[0].st.Seq != 1 {
		t.Fatalf("after %d events the tail holds %d (ok %v)", tailEvents, len(held), ok)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const more = 3 * tailEvents
	for ; seq < tailEvents+more; seq++ {
		offer(seq + 1)
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / more; per > 1024 {
		t.Errorf("a full tail allocates %d bytes per event taken, want under 1 KiB", per)
	}
	for i, ev := range held {
		if ev.st.Seq != uint64(i+1) {
			t.Fatalf("what a worker took changed: entry %d is event %d", i, ev.st.Seq)
		}
	}
	tl.mu.Lock()
	n, start, dead := len(tl.evs), tl.start, tl.dead
	tl.mu.Unlock()
	if n != tailEvents || start != more || tl.evs[0].st.Seq != more+1 {
		t.Fatalf("the tail holds %d events after %d, want %d after %d", n, start, tailEvents, more)
	}
	if dead > n {
		t.Errorf("%d dropped events are kept alive behind %d held ones", dead, n)
	}
	if evs, _, ok := tl.after(tl.logID, start, 1); !ok || len(evs) != 1 || evs[0].st.Seq != start+1 {
		t.Fatalf("after the start: %v, %v", evs, ok)
	}
	if _, _, ok := tl.after(tl.logID, start-1, 1); ok {
		t.Fatal("the tail claims a dropped event")
	}
}
