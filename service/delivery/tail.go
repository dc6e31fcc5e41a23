package delivery

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hookstream/hookstream/service/eventlog"
)

// tail is one reader of the newest events for every worker on this
// replica: workers that are caught up take their events from it instead
// of each reading the log, so ten endpoints cost one log read per event,
// not ten. A worker that is behind the tail reads the log on its own.
type tail struct {
	log    *eventlog.Log
	next   func() (<-chan struct{}, uint64)
	logger *slog.Logger

	mu    sync.Mutex
	start uint64 // the tail holds every event after this position
	evs   []*sharedEvent
	bytes int
	more  chan struct{} // closed when events are appended
}

// Bounds of what the tail keeps.
const (
	tailEvents = 4096
	tailBytes  = 16 << 20
)

func newTail(log *eventlog.Log, next func() (<-chan struct{}, uint64), logger *slog.Logger) *tail {
	return &tail{log: log, next: next, logger: logger, more: make(chan struct{})}
}

// run reads the log's new events until ctx ends.
// busy says whether any endpoint runs on this replica; without one, the
// tail reads nothing.
func (t *tail) run(ctx context.Context, shared *shared, busy func() bool) {
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		head, err := t.log.LastSeq(rctx)
		cancel()
		if err == nil {
			t.mu.Lock()
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
	for {
		ch, head := t.next()
		if !busy() {
			// No endpoint on this replica: keep up with the head without
			// reading anything.
			t.mu.Lock()
			if len(t.evs) > 0 || head > t.start {
				t.start, t.evs, t.bytes = max(t.start, head), nil, 0
			}
			t.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-ch:
			case <-time.After(time.Second):
			}
			continue
		}
		t.mu.Lock()
		after := t.start
		if len(t.evs) > 0 {
			after = t.evs[len(t.evs)-1].st.Seq
		}
		t.mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		b, err := t.log.ReadBatch(rctx, eventlog.Start{AfterSeq: after}, "", 1000, 4<<20)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			t.logger.Warn("delivery: cannot read the log's newest events; retrying", "err", err)
			b = eventlog.Batch{}
		}
		if len(b.Events) > 0 {
			t.append(b.Events, shared)
			if b.Pending > 0 {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-time.After(time.Second):
		}
	}
}

func (t *tail) append(sts []eventlog.Stored, shared *shared) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, st := range sts {
		t.evs = append(t.evs, shared.get(st))
		t.bytes += len(st.Raw)
	}
	drop := 0
	for len(t.evs)-drop > tailEvents || (t.bytes > tailBytes && len(t.evs)-drop > 1) {
		t.bytes -= len(t.evs[drop].st.Raw)
		drop++
	}
	if drop > 0 {
		t.start = t.evs[drop-1].st.Seq
		t.evs = append(t.evs[:0:0], t.evs[drop:]...)
	}
	close(t.more)
	t.more = make(chan struct{})
}

// startPos is the position after which the tail holds every event.
func (t *tail) startPos() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.start
}

// after returns up to n events after position cursor, and ok when the
// tail covers cursor (holds every event after it); wait is closed when
// more events come.
func (t *tail) after(cursor uint64, n int) (evs []*sharedEvent, wait <-chan struct{}, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cursor < t.start {
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
