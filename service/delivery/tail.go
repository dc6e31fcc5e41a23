package delivery

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookstream/hookstream/service/eventlog"
)

// tail is one reader of the newest events for every worker on this
// replica: workers that are caught up take their events from it instead
// of each reading the log, so ten endpoints cost one log read per event,
// not ten. A worker that is behind the tail reads the log on its own.
//
// With a tap (Options.Tap) the tail reads nothing while it keeps up: the
// service's hub hands it each event as it passes it on (offer), from the
// process's one reader of the log. The tail reads the log itself when an
// offered event does not follow the last one it holds (a gap, or events
// that came before it began), and once a second, in case the hub stops.
type tail struct {
	log    *eventlog.Log
	next   func() (<-chan struct{}, uint64)
	shared *shared
	logger *slog.Logger
	on     atomic.Bool // an endpoint runs here: offers are taken

	mu sync.Mutex
	// logID is the incarnation of the log the positions belong to: when
	// the stream is replaced, the tail starts over with the new one.
	logID string
	start uint64 // the tail holds every event after this position
	// evs are the events held, oldest first. Dropping the oldest only
	// moves evs forward in its array (workers may hold parts of it, from
	// after, which must not change under them); the dropped entries
	// before it (dead of them, deadBytes of events) are let go when evs
	// moves to a new array, as soon as they are as many or as large as
	// what is held. So each event is copied a bounded number of times,
	// not once per event appended after it.
	evs       []*sharedEvent
	bytes     int
	dead      int
	deadBytes int
	more      chan struct{} // closed when events are appended
}

// Bounds of what the tail keeps.
const (
	tailEvents = 4096
	tailBytes  = 16 << 20
)

func newTail(log *eventlog.Log, next func() (<-chan struct{}, uint64), shared *shared, logger *slog.Logger) *tail {
	return &tail{log: log, next: next, shared: shared, logger: logger, more: make(chan struct{}), logID: log.Incarnation()}
}

// followLocked starts the tail over when the log's stream was replaced
// since it last looked: what it holds has positions of the old stream.
func (t *tail) followLocked() {
	if cur := t.log.Incarnation(); cur != t.logID {
		t.logger.Warn("delivery: the event stream was replaced; the shared tail starts over", "was", t.logID, "now", cur)
		t.logID, t.start = cur, 0
		t.resetLocked()
		close(t.more)
		t.more = make(chan struct{})
	}
}

// offer takes st, an event the hub passes on, when it follows the last
// event the tail holds; otherwise run reads the log from there.
func (t *tail) offer(st eventlog.Stored) {
	if !t.on.Load() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.followLocked()
	if st.Seq == t.lastLocked()+1 {
		t.appendLocked([]eventlog.Stored{st})
	}
}

// lastLocked is the position of the newest event the tail holds.
func (t *tail) lastLocked() uint64 {
	if len(t.evs) > 0 {
		return t.evs[len(t.evs)-1].st.Seq
	}
	return t.start
}

// run reads the log's new events until ctx ends.
// busy says whether any endpoint runs on this replica; without one, the
// tail reads nothing.
func (t *tail) run(ctx context.Context, busy func() bool) {
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		head, err := t.log.LastSeq(rctx)
		cancel()
		if err == nil {
			t.mu.Lock()
			t.followLocked()
			t.start = head
			t.mu.Unlock()
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	t.runFrom(ctx, busy)
}

// runFrom is run once the tail's start is known.
func (t *tail) runFrom(ctx context.Context, busy func() bool) {
	defer t.on.Store(false)
	// lastRead is when the log was last read; ahead says that read found
	// events the hub had not passed on yet (its reader is behind the
	// log): then every wake reads, as offers will not bring them.
	lastRead, ahead := time.Now(), false
	for {
		ch, head := t.next()
		on := busy()
		t.on.Store(on)
		if !on {
			// No endpoint on this replica: keep up with the head without
			// reading anything.
			t.mu.Lock()
			t.followLocked()
			if len(t.evs) > 0 || head > t.start {
				t.start = max(t.start, head)
				t.resetLocked()
			}
			t.mu.Unlock()
			if t.wait(ctx, ch, time.Now().Add(time.Second)); ctx.Err() != nil {
				return
			}
			continue
		}
		t.mu.Lock()
		t.followLocked()
		after, logID := t.lastLocked(), t.logID
		t.mu.Unlock()
		if head <= after && !ahead && time.Since(lastRead) < time.Second {
			// Offers brought everything the hub has passed on.
			if t.wait(ctx, ch, lastRead.Add(time.Second)); ctx.Err() != nil {
				return
			}
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		b, err := t.log.ReadBatch(rctx, eventlog.Start{AfterSeq: after}, "", 1000, 4<<20)
		cancel()
		lastRead = time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			t.logger.Warn("delivery: cannot read the log's newest events; retrying", "err", err)
			b = eventlog.Batch{}
		}
		ahead = len(b.Events) > 0 && b.Events[len(b.Events)-1].Seq > head
		if len(b.Events) > 0 {
			t.append(logID, b.Events)
			if b.Pending > 0 {
				continue
			}
		}
		if t.wait(ctx, ch, lastRead.Add(time.Second)); ctx.Err() != nil {
			return
		}
	}
}

// wait waits for the hub's next event, or until the deadline.
func (t *tail) wait(ctx context.Context, next <-chan struct{}, deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-next:
	case <-timer.C:
	}
}

// append adds events read from the log; those the tail already holds
// (offered while the read was on its way) are skipped.
// Events read from an incarnation the tail no longer follows are dropped.
func (t *tail) append(log string, sts []eventlog.Stored) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if log != t.logID {
		return
	}
	last := t.lastLocked()
	for len(sts) > 0 && sts[0].Seq <= last {
		sts = sts[1:]
	}
	if len(sts) > 0 {
		t.appendLocked(sts)
	}
}

func (t *tail) appendLocked(sts []eventlog.Stored) {
	for _, st := range sts {
		if len(t.evs) == cap(t.evs) {
			t.moveLocked(len(t.evs) + len(sts))
		}
		t.evs = append(t.evs, t.shared.get(t.logID, st))
		t.bytes += len(st.Raw)
	}
	drop := 0
	for len(t.evs)-drop > tailEvents || (t.bytes > tailBytes && len(t.evs)-drop > 1) {
		n := len(t.evs[drop].st.Raw)
		t.bytes -= n
		t.deadBytes += n
		drop++
	}
	if drop > 0 {
		t.start = t.evs[drop-1].st.Seq
		t.evs = t.evs[drop:]
		t.dead += drop
		if t.dead >= len(t.evs) || t.deadBytes > t.bytes {
			t.moveLocked(len(t.evs))
		}
	}
	close(t.more)
	t.more = make(chan struct{})
}

// moveLocked moves the events held to a new array with room for twice n,
// letting the dropped ones go.
func (t *tail) moveLocked(n int) {
	evs := make([]*sharedEvent, len(t.evs), max(2*n, 16))
	copy(evs, t.evs)
	t.evs, t.dead, t.deadBytes = evs, 0, 0
}

// resetLocked lets every event held go.
func (t *tail) resetLocked() {
	t.evs, t.bytes, t.dead, t.deadBytes = nil, 0, 0, 0
}

// startPos is the position after which the tail holds every event of
// incarnation log of the log; 0 when the tail follows another.
func (t *tail) startPos(log string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.followLocked()
	if log != t.logID {
		return 0
	}
	return t.start
}

// after returns up to n events after position cursor of incarnation log
// of the log, and ok when the tail covers cursor (holds every event after
// it, in that incarnation); wait is closed when more events come.
func (t *tail) after(log string, cursor uint64, n int) (evs []*sharedEvent, wait <-chan struct{}, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if log != t.logID || cursor < t.start {
		return nil, nil, false
	}
	i := len(t.evs)
	for lo, hi := 0, len(t.evs); lo < hi; {
		mid := (lo + hi) / 2
		if t.evs[mid].st.Seq > cursor {
			i, hi = mid, mid
		} else {
			lo = mid + 1
		}
	}
	end := min(len(t.evs), i+n)
	return t.evs[i:end:end], t.more, true
}
