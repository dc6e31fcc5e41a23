package service

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/hookstream/hookstream/service/eventlog"
)

// hubBuffer is how many events a live subscriber may have queued before
// the hub detaches it (it then reads the log at its own pace).
const hubBuffer = 4096

// hub is the one tail of the log per process that feeds every live
// Subscribe stream. Each event is read and decoded once, however many
// streams there are. It reads the shared log, not local ingest, so a
// stream on this replica sees events ingested on any replica. Streams that
// start in the past catch up on their own consumer and then join; streams
// that fall behind are detached and catch up again, so the hub never waits
// for anyone.
type hub struct {
	log    *eventlog.Log
	logger *slog.Logger

	mu   sync.Mutex
	head uint64 // last log position fanned out
	subs map[*hubSub]struct{}
}

// hubEvent is an event as the hub hands it out: decoded once, and encoded
// once as the delivery every stream sends.
type hubEvent struct {
	eventlog.Stored
	frame *encodedDelivery
}

// hubSub is one stream's feed from the hub.
type hubSub struct {
	ch       chan hubEvent
	detached chan struct{} // closed when the hub drops the feed
}

func newHub(log *eventlog.Log, logger *slog.Logger) *hub {
	return &hub{log: log, logger: logger, subs: map[*hubSub]struct{}{}}
}

// run tails the log until ctx ends, resuming after the last event it fanned
// out whenever the log fails, or when a watchdog finds the tail stuck
// behind the log (a consumer on a cluster node that died can go quiet
// before the client notices).
func (h *hub) run(ctx context.Context) {
	for ctx.Err() == nil {
		h.mu.Lock()
		head := h.head
		h.mu.Unlock()
		start := eventlog.Start{AfterSeq: head}
		if head == 0 {
			last, err := h.log.LastSeq(ctx)
			if err != nil {
				h.pause(ctx, err)
				continue
			}
			h.mu.Lock()
			h.head = last
			h.mu.Unlock()
			start = eventlog.Start{AfterSeq: last}
			if last == 0 {
				start = eventlog.Start{}
			}
		}
		tailCtx, cancel := context.WithCancel(ctx)
		stuck := make(chan struct{})
		go h.watch(tailCtx, cancel, stuck)
		err := h.log.Tail(tailCtx, start, nil, nil, h.fanOut)
		cancel()
		if ctx.Err() != nil {
			break
		}
		select {
		case <-stuck:
			h.logger.Warn("event hub was behind the log without progress; restarting its reader")
			continue
		default:
		}
		if err == nil {
			err = errors.New("tail ended")
		}
		h.pause(ctx, err)
	}
	h.detachAll()
}

// hubWatch is how often the hub compares its position with the log's.
const hubWatch = 2 * time.Second

// watch cancels the tail (closing stuck first) when the log has moved past
// the hub's position and the hub has not moved for a whole interval.
func (h *hub) watch(ctx context.Context, cancel context.CancelFunc, stuck chan struct{}) {
	t := time.NewTicker(hubWatch)
	defer t.Stop()
	h.mu.Lock()
	prev := h.head
	h.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		head := h.head
		h.mu.Unlock()
		if head == prev {
			if last, err := h.log.LastSeq(ctx); err == nil && last > head {
				close(stuck)
				cancel()
				return
			}
		}
		prev = head
	}
}

func (h *hub) pause(ctx context.Context, err error) {
	h.logger.Warn("event hub lost the log; live subscribers fall back to their own reads", "err", err)
	h.detachAll()
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}

func (h *hub) fanOut(st eventlog.Stored) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st.Seq <= h.head {
		return nil
	}
	h.head = st.Seq
	if len(h.subs) == 0 {
		return nil
	}
	ev := hubEvent{Stored: st, frame: encodeDelivery(st.Raw, eventlog.Cursor(st.Seq))}
	for s := range h.subs {
		select {
		case s.ch <- ev:
		default:
			h.detach(s)
		}
	}
	return nil
}

// join registers a feed; every event after the returned position reaches
// it (until it is detached).
func (h *hub) join() (*hubSub, uint64) {
	s := &hubSub{ch: make(chan hubEvent, hubBuffer), detached: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[s] = struct{}{}
	return s, h.head
}

// leave unregisters a feed.
func (h *hub) leave(s *hubSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.detach(s)
}

func (h *hub) detach(s *hubSub) {
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.detached)
	}
}

func (h *hub) detachAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		h.detach(s)
	}
}
