package service

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/hookstream/hookstream/service/eventlog"
)

// hub feeds every live Subscribe stream from the process's one reader of
// the whole log (the log's dedup indexer, which passes each event on once
// it is indexed). Each event is read and decoded once, however many
// streams there are. It follows the shared log, not local ingest, so a
// stream on this replica sees events ingested on any replica. Streams that
// start in the past catch up on their own reads and then join; streams
// that fall behind are detached and catch up again, so the hub never waits
// for anyone.
//
// A stream's queue is bounded in bytes (limit), not in events, and costs
// nothing while empty. Queues hold the same shared events, so all of them
// together hold at most about one queue's worth of distinct events.
type hub struct {
	log    *eventlog.Log
	logger *slog.Logger
	limit  int

	mu   sync.Mutex
	head uint64 // last log position fanned out
	subs map[*hubSub]struct{}
	// next, when someone waits for the next event (Next), is closed when
	// it comes.
	next chan struct{}
	// tap, when set (Tap), is given every event passed on, in log order.
	tap func(eventlog.Stored)
}

// Tap makes fn see every event the hub passes on from now, in log order,
// before those waiting in Next are woken. fn runs under the hub's lock:
// it must be quick and must not call the hub.
func (h *hub) Tap(fn func(eventlog.Stored)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tap = fn
}

// Next returns a channel closed when the hub passes on an event after
// the current head (or loses the log), and that head. Outbound delivery
// waits on it instead of polling the log.
func (h *hub) Next() (<-chan struct{}, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.next == nil {
		h.next = make(chan struct{})
	}
	return h.next, h.head
}

// wake releases whoever waits in Next; h.mu is held.
func (h *hub) wake() {
	if h.next != nil {
		close(h.next)
		h.next = nil
	}
}

// hubEvent is an event as the hub hands it out to one stream: decoded
// once, and encoded once as the delivery every stream of its kind sends
// (with or without the raw request). Streams that hold the same frame
// beyond their queue share one charge on the buffer budget.
type hubEvent struct {
	eventlog.Stored
	frame  *encodedDelivery
	charge *sharedCharge
}

// hubFrames are an event's deliveries: the one without the raw request
// (Event.raw), built for every event, and the one with it, built on first
// use by a stream that asked for it (include_raw). Both share the stored
// bytes: the plain one is a shorter slice of them (raw is stored last).
type hubFrames struct {
	st          eventlog.Stored
	plain       *encodedDelivery
	plainCharge *sharedCharge

	rawOnce   sync.Once
	raw       *encodedDelivery
	rawCharge *sharedCharge
}

func newHubFrames(st eventlog.Stored) *hubFrames {
	return &hubFrames{st: st, plain: encodeDelivery(eventlog.StripRaw(st.Raw), eventlog.Cursor(st.Seq)), plainCharge: &sharedCharge{}}
}

// forStream is the event as a stream gets it: with its raw request when
// withRaw, else without.
func (f *hubFrames) forStream(withRaw bool) hubEvent {
	if !withRaw {
		return hubEvent{Stored: f.st, frame: f.plain, charge: f.plainCharge}
	}
	f.rawOnce.Do(func() {
		if len(f.plain.event) == len(f.st.Raw) { // no raw request: the same frame
			f.raw, f.rawCharge = f.plain, f.plainCharge
			return
		}
		f.raw, f.rawCharge = encodeDelivery(f.st.Raw, f.plain.cursor), &sharedCharge{}
	})
	return hubEvent{Stored: f.st, frame: f.raw, charge: f.rawCharge}
}

// hubSub is one stream's feed from the hub: a queue bounded in bytes.
type hubSub struct {
	limit    int
	withRaw  bool          // the stream asked for raw requests (include_raw)
	ready    chan struct{} // a value means the queue may hold events
	detached chan struct{} // closed when the hub drops the feed

	mu    sync.Mutex
	q     []hubEvent
	bytes int
}

// push queues ev unless the queue already holds limit bytes (one event
// always fits an empty queue); false means the stream is too far behind.
func (s *hubSub) push(ev hubEvent) bool {
	n := ev.frame.size()
	s.mu.Lock()
	if s.bytes > 0 && s.bytes+n > s.limit {
		s.mu.Unlock()
		return false
	}
	s.q = append(s.q, ev)
	s.bytes += n
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return true
}

// peek returns the oldest queued event without taking it.
func (s *hubSub) peek() (hubEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.q) == 0 {
		return hubEvent{}, false
	}
	return s.q[0], true
}

// pop takes the oldest queued event.
func (s *hubSub) pop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.q) == 0 {
		return
	}
	s.bytes -= s.q[0].frame.size()
	s.q[0] = hubEvent{}
	s.q = s.q[1:]
	if len(s.q) == 0 {
		s.q = nil // an idle stream keeps no array
	}
}

// queued is the number of events waiting.
func (s *hubSub) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.q)
}

func newHub(log *eventlog.Log, logger *slog.Logger, limit int) *hub {
	return &hub{log: log, logger: logger, limit: limit, subs: map[*hubSub]struct{}{}}
}

// start makes the hub the log's follower: from now on it receives every
// event the process's reader of the log passes on.
func (h *hub) start() error {
	head, err := h.log.Follow(h)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.head = max(h.head, head)
	h.mu.Unlock()
	return nil
}

// stop detaches the hub from the log and every feed from the hub.
func (h *hub) stop() {
	h.log.Unfollow(h)
	h.dropAll(false)
}

// Event implements eventlog.Follower.
func (h *hub) Event(st eventlog.Stored) { h.fanOut(st) }

// Lost implements eventlog.Follower: live streams fall back to their own
// reads until the reader is back.
func (h *hub) Lost(err error) {
	h.logger.Warn("event hub lost the log; live subscribers fall back to their own reads", "err", err)
	h.dropAll(errors.Is(err, eventlog.ErrReplaced))
}

func (h *hub) fanOut(st eventlog.Stored) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st.Seq <= h.head {
		return
	}
	h.head = st.Seq
	if h.tap != nil {
		h.tap(st)
	}
	h.wake()
	if len(h.subs) == 0 {
		return
	}
	frames := newHubFrames(st)
	for s := range h.subs {
		if !s.push(frames.forStream(s.withRaw)) {
			h.detach(s)
		}
	}
}

// join registers a feed, whose events carry their raw request when
// withRaw; every event after the returned position reaches it (until it
// is detached).
func (h *hub) join(withRaw bool) (*hubSub, uint64) {
	s := &hubSub{limit: h.limit, withRaw: withRaw, ready: make(chan struct{}, 1), detached: make(chan struct{})}
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

// dropAll detaches every feed; with restart the log's positions start
// over, and so does the hub's.
func (h *hub) dropAll(restart bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		h.detach(s)
	}
	if restart {
		h.head = 0
	}
	h.wake()
}
