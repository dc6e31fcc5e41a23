package service

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/budget"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/filter"
)

const (
	defaultPageSize = 50
	// maxScan bounds how many stored events one ListEvents page examines;
	// with a selective filter the page may come back short, with a token.
	maxScan = 10_000
	// listFilterBudget bounds the CEL cost one ListEvents request may
	// spend, on top of each evaluation's own limit: a simple comparison
	// costs a few units, so ordinary filters never come near it, while a
	// filter built to be slow stops after about a second of work.
	listFilterBudget = 5_000_000
	// listTimeout bounds one ListEvents request whatever its deadline.
	listTimeout = 30 * time.Second
)

// Events implements hookstreamv1.EventServiceServer.
type Events struct {
	hookstreamv1.UnimplementedEventServiceServer
	log       *eventlog.Log
	logger    *slog.Logger
	metrics   *Metrics
	filters   *filter.Compiler
	heartbeat time.Duration
	stall     time.Duration
	now       func() time.Time
	stopping  <-chan struct{}
	streams   atomic.Uint64 // numbers subscribers in logs and metrics
	hub       *hub
	// limits caps open streams; buffers is the process-wide budget for
	// what streams hold beyond their hub queue; streamBuffer is the size of
	// a stream's hub queue and of its catch-up reads, in bytes.
	limits       *streamLimits
	buffers      *budget.Budget
	streamBuffer int
}

func (s *Events) compile(expr string) (*filter.Filter, []string, error) {
	f, err := s.filters.Compile(expr)
	if err != nil {
		return nil, nil, errInvalid(ReasonInvalidFilter, err.Error())
	}
	p := f.Pushdown
	if p == (filter.Pushdown{}) {
		return f, nil, nil
	}
	vendor := ""
	if p.Vendor != hookstreamv1.Vendor_VENDOR_UNSPECIFIED {
		vendor = eventlog.VendorToken(p.Vendor)
	}
	return f, []string{eventlog.FilterSubject(p.Source, vendor, p.Entity, p.Action)}, nil
}

// joinBelow is how close (in matching events still to read) a catching-up
// stream must be before it joins the hub; it also joins only when those
// events fit its hub queue (see Subscribe).
const joinBelow = 1024

// grpcMsgPrefix is the length prefix gRPC writes before every message.
const grpcMsgPrefix = 5

// outMsg is a message for a stream's sender, with its size on the wire and
// its charge on the buffer budget.
type outMsg struct {
	m    any // *encodedDelivery or *hookstreamv1.SubscribeResponse
	size int64
	hold hold
}

// catchEvent is an event a stream read from the log on its own, charged to
// the buffer budget; end says the read found nothing more for now.
type catchEvent struct {
	st   eventlog.Stored
	hold hold
	end  bool
}

// Subscribe implements the RPC.
//
// A stream is live (fed by the process's hub) or catching up (reading the
// log on its own, from its start position or after a detach). Both paths
// track the last log position the stream has passed, and every event at or
// below it is skipped, so switching between them loses nothing and
// repeats nothing. What a stream may hold is bounded in bytes (see
// streams.go), and a stream is stalled only when no byte of what it sent
// has reached its client for the stall timeout (see progress.go).
func (s *Events) Subscribe(req *hookstreamv1.SubscribeRequest, stream grpc.ServerStreamingServer[hookstreamv1.SubscribeResponse]) error {
	releaseSlot, err := s.limits.admit(apiToken(stream.Context()))
	if err != nil {
		s.metrics.streamsRefused.Inc()
		return err
	}
	// A return before the sender starts gives the place back here; once it
	// has started, the sender gives it back when the stream is over on the
	// wire (settle, below).
	settled := false
	defer func() {
		if !settled {
			releaseSlot()
		}
	}()
	f, subjects, err := s.compile(req.GetFilter())
	if err != nil {
		return err
	}
	var start eventlog.Start
	switch st := req.GetStart().(type) {
	case *hookstreamv1.SubscribeRequest_Position:
		start.New = st.Position != hookstreamv1.StartPosition_START_POSITION_BEGINNING
	case *hookstreamv1.SubscribeRequest_AfterCursor:
		seq, err := eventlog.ParseCursor(st.AfterCursor)
		if err != nil {
			return errInvalid(ReasonInvalidCursor, err.Error())
		}
		if err := s.withinLog(stream.Context(), seq); err != nil {
			return err
		}
		start.AfterSeq = seq
	case *hookstreamv1.SubscribeRequest_StartTime:
		start.Time = st.StartTime.AsTime()
	default:
		start.New = true
	}

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	id := strconv.FormatUint(s.streams.Add(1), 10)
	logger := s.logger.With("subscriber", id)
	s.metrics.subscribers.Inc()
	lag := s.metrics.lag.WithLabelValues(id)
	defer func() {
		s.metrics.subscribers.Dec()
		s.metrics.lag.DeleteLabelValues(id)
	}()

	// The sender goroutine owns stream.Send; this goroutine feeds it one
	// message at a time and notices a client that stopped reading.
	progress := trackStream(stream.Context())
	fl := &flight{b: s.buffers}
	out := make(chan outMsg)
	sendErr := make(chan error, 1)
	var sending atomic.Int64 // unix nanos when the pending Send began, 0 when idle
	var lastCursor atomic.Value
	// wantMore says whether the stream is ready for a catch-up read of n
	// bytes: its sender is idle and what it sent has (nearly) left, so a
	// client that does not read holds one read's worth at most. wake is
	// poked whenever that may have changed.
	wake := make(chan struct{}, 1)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	wantMore := func(n int64) bool {
		return sending.Load() == 0 && (progress == nil || fl.unwritten(progress.Written()) < n)
	}
	settled = true
	go func() {
		defer func() {
			// Whatever gRPC still holds of this stream is given back once
			// the stream is over on the wire: its bytes (and trailers)
			// written, or the stream reset, or the connection gone.
			settle := func() { fl.clear(); releaseSlot() }
			if progress != nil {
				progress.afterEnd(settle)
			} else {
				settle()
			}
		}()
		for {
			select {
			case m := <-out:
				fl.add(m.size, m.hold)
				sending.Store(time.Now().UnixNano())
				err := stream.SendMsg(m.m)
				sending.Store(0)
				poke()
				if err != nil {
					fl.unsent()
					sendErr <- err
					return
				}
				if progress != nil {
					fl.written(progress.Written())
				} else {
					fl.allButLast()
				}
				if d, ok := m.m.(*encodedDelivery); ok {
					lastCursor.Store(d.cursor)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	logger.InfoContext(ctx, "subscriber connected", "filter", f.String(), "subjects", strings.Join(subjects, ","))
	defer logger.InfoContext(ctx, "subscriber disconnected")

	var (
		last        uint64 // log position passed
		feed        *hubSub
		joinedAt    uint64 // hub position when feed joined
		live        bool
		catchup     chan catchEvent
		tailErr     chan error
		stopTail    = func() {}
		idle        bool // the catch-up read found nothing more
		pending     *outMsg
		lastSubject = ">"
		subject     string
		waitBudget  <-chan struct{} // set while the next hub event waits for the budget
	)
	if len(subjects) == 1 {
		lastSubject, subject = subjects[0], subjects[0]
	}
	defer func() {
		stopTail()
		if feed != nil {
			s.hub.leave(feed)
		}
		if pending != nil {
			pending.hold.release(s.buffers)
		}
	}()
	goLive := func() {
		stopTail()
		stopTail, catchup, tailErr = func() {}, nil, nil
		last = max(last, joinedAt)
		live = true
	}
	startCatchup := func(from eventlog.Start) {
		// Stopping does not wait: the reader gives back what it holds on
		// its way out (after the read in progress, if any).
		tctx, tcancel := context.WithCancel(ctx)
		ch, errc := make(chan catchEvent), make(chan error, 1)
		catchup, tailErr, stopTail = ch, errc, tcancel
		go func() { errc <- s.catchUp(tctx, from, subject, ch, wantMore, wake) }()
		live, idle = false, false
	}
	// deliver passes one event (holding h) and makes it pending unless the
	// filter drops it.
	deliver := func(st eventlog.Stored, frame *encodedDelivery, h hold) error {
		if st.Seq <= last {
			h.release(s.buffers)
			return nil
		}
		last = st.Seq
		if !f.Empty() {
			ev, err := st.Decoded()
			if err != nil {
				h.release(s.buffers)
				logger.ErrorContext(ctx, "undecodable event in the log", "seq", st.Seq, "err", err)
				return errInternal()
			}
			ok, err := f.MatchWithin(ctx, ev, nil)
			if err != nil {
				h.release(s.buffers)
				return errInvalid(ReasonInvalidFilter, err.Error())
			}
			if !ok {
				h.release(s.buffers)
				return nil
			}
		}
		if frame == nil {
			frame = encodeDelivery(st.Raw, eventlog.Cursor(st.Seq))
		}
		pending = &outMsg{m: frame, size: int64(grpcMsgPrefix + frame.size()), hold: h}
		return nil
	}
	// fromHub takes queued hub events until one is pending, the queue is
	// empty, or the buffer budget has no room for the next one.
	fromHub := func(sub *hubSub) error {
		for pending == nil && waitBudget == nil {
			ev, ok := sub.peek()
			if !ok {
				return nil
			}
			n := int64(ev.frame.size())
			if !ev.charge.tryHold(s.buffers, n) {
				waitBudget = s.buffers.Freed()
				if ev.charge.tryHold(s.buffers, n) { // freed in between
					waitBudget = nil
				} else {
					return nil
				}
			}
			sub.pop()
			lag.Set(float64(sub.queued()))
			if err := deliver(ev.Stored, ev.frame, hold{n: n, shared: ev.charge}); err != nil {
				return err
			}
		}
		return nil
	}

	if start.New {
		feed, joinedAt = s.hub.join()
		goLive()
	} else {
		startCatchup(start)
	}
	// Headers now, so a client knows the stream is established (and, from
	// "now", positioned) before the first event or heartbeat.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}

	heartbeat := time.NewTicker(s.heartbeat)
	defer heartbeat.Stop()
	watchdog := time.NewTicker(min(s.stall/4, 500*time.Millisecond))
	defer watchdog.Stop()
	stall := stallWatch{progress: progress, fl: fl, sending: &sending, timeout: s.stall, movedAt: time.Now()}
	for {
		if live && feed != nil {
			if err := fromHub(feed); err != nil {
				return err
			}
		}
		// While a message waits for the sender, nothing more is taken; the
		// hub detaches a feed that fills up, and the stream catches up on
		// its own later.
		in, ready, outCh := catchup, (chan struct{})(nil), chan<- outMsg(nil)
		var detached chan struct{}
		if feed != nil {
			detached = feed.detached
			if live && waitBudget == nil {
				ready = feed.ready
			}
		}
		var next outMsg
		if pending != nil {
			in, ready, outCh, next = nil, nil, out, *pending
		}
		select {
		case outCh <- next:
			pending = nil
			heartbeat.Reset(s.heartbeat)
		case <-ready:
		case <-waitBudget:
			waitBudget = nil
		case ce := <-in:
			if ce.end {
				idle = true
				if feed == nil {
					feed, joinedAt = s.hub.join()
				}
				continue
			}
			idle = false
			st := ce.st
			lag.Set(float64(st.Pending))
			if err := deliver(st, nil, ce.hold); err != nil {
				return err
			}
			// Join the hub once what is left fits its queue.
			if feed == nil && st.Pending < joinBelow && st.Pending*uint64(len(st.Raw)+1) <= uint64(s.streamBuffer) {
				feed, joinedAt = s.hub.join()
			}
			if feed != nil && st.Seq >= joinedAt {
				goLive()
			}
		case <-detached:
			// Too slow for the hub (or the hub lost the log): keep what was
			// queued, then read the log from where this stream is.
			s.hub.leave(feed)
			sub := feed
			feed, waitBudget = nil, nil
			if live {
				if err := fromHub(sub); err != nil {
					return err
				}
				// Whatever is still queued is read again from the log: last
				// only covers what was processed.
				logger.DebugContext(ctx, "subscriber left the hub; catching up on its own", "after", last)
				startCatchup(eventlog.Start{AfterSeq: last})
			}
		case <-heartbeat.C:
			// Silence means nothing on its way either: a client still
			// receiving a large event needs no heartbeat.
			if pending == nil && sending.Load() == 0 && (progress == nil || !fl.outstanding(progress.Written())) {
				hb := &hookstreamv1.SubscribeResponse{Message: &hookstreamv1.SubscribeResponse_Heartbeat{
					Heartbeat: &hookstreamv1.Heartbeat{Time: timestamppb.New(s.now())},
				}}
				pending = &outMsg{m: hb, size: int64(grpcMsgPrefix + proto.Size(hb))}
			}
		case <-watchdog.C:
			poke()
			if stall.stalled() {
				cursor, _ := lastCursor.Load().(string)
				logger.WarnContext(ctx, "dropping stalled subscriber", "stalled_for", s.stall, "last_cursor", cursor)
				return errStalled(s.stall, cursor)
			}
			// A catching-up stream whose filter matches nothing new never
			// reaches the hub's position by reading; ask the log instead.
			if !live && idle && feed != nil && pending == nil {
				if m, err := s.log.LastSeqFor(ctx, lastSubject); err == nil && m <= last {
					goLive()
				}
			}
		case err := <-sendErr:
			return err
		case err := <-tailErr:
			if ctx.Err() != nil {
				return nil
			}
			logger.ErrorContext(ctx, "subscription lost the log", "err", err)
			return errLogUnreadable()
		case <-ctx.Done():
			return nil
		case <-s.stopping:
			return errShuttingDown()
		}
	}
}

// withinLog refuses a position past the log's end.
func (s *Events) withinLog(ctx context.Context, seq uint64) error {
	last, err := s.log.LastSeq(ctx)
	if err != nil {
		s.logger.ErrorContext(ctx, "reading the log's end failed", "err", err)
		return errLogUnreadable()
	}
	if seq > last {
		return errPastEnd(seq, last)
	}
	return nil
}

// stallWatch notices a client that has accepted no byte of what was sent
// to it for the stall timeout. With byte counts from the wire, a client
// that keeps accepting bytes, however slowly, is never stalled; without
// them, a Send blocked for the stall timeout is.
type stallWatch struct {
	progress *streamProgress
	fl       *flight
	sending  *atomic.Int64 // unix nanos when the pending Send began, 0 when idle
	timeout  time.Duration

	written int64     // bytes written when last looked at
	movedAt time.Time // when written last moved, or nothing was due
}

func (w *stallWatch) stalled() bool {
	if w.progress == nil {
		began := w.sending.Load()
		return began != 0 && time.Since(time.Unix(0, began)) > w.timeout
	}
	written := w.progress.Written()
	w.fl.written(written)
	if written != w.written || !w.fl.outstanding(written) {
		w.written, w.movedAt = written, time.Now()
		return false
	}
	return time.Since(w.movedAt) > w.timeout
}

// catchUp reads the log from start for one stream and passes each event to
// out, charged to the buffer budget, until ctx ends (nil) or the log
// fails. It reads only when the stream is ready for more (wantMore, looked
// at again when wake is poked), one read at a time, charged before it is
// made; reads start small and double up to the stream's buffer size, so a
// stream whose client does not read holds one small read at most. When a
// read finds nothing it says so (end) and looks again a little later.
func (s *Events) catchUp(ctx context.Context, from eventlog.Start, subject string, out chan<- catchEvent,
	wantMore func(n int64) bool, wake <-chan struct{}) error {
	const minWait, maxWait = 50 * time.Millisecond, time.Second
	wait := minWait
	size := min(64<<10, s.streamBuffer)
	for {
		for !wantMore(int64(size)) {
			select {
			case <-wake:
			case <-ctx.Done():
				return nil
			}
		}
		// Catch-up reads leave a quarter of the budget to live streams, so
		// streams that read old events and then stop cannot hold up
		// those that follow the log.
		want := int64(size)
		if err := s.buffers.AcquireWithin(ctx, want, s.buffers.Limit()/4*3); err != nil {
			return nil
		}
		b, err := s.log.ReadBatch(ctx, from, subject, 0, size)
		if err != nil {
			s.buffers.Release(want)
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		// Hold what was read: a read may pass its cap by its last event.
		if got := int64(b.Bytes); got > want {
			s.buffers.Force(got - want)
		} else {
			s.buffers.Release(want - got)
		}
		for i, st := range b.Events {
			select {
			case out <- catchEvent{st: st, hold: hold{n: int64(len(st.Raw))}}:
			case <-ctx.Done():
				for _, rest := range b.Events[i:] {
					s.buffers.Release(int64(len(rest.Raw)))
				}
				return nil
			}
		}
		if n := len(b.Events); n > 0 {
			from, wait = eventlog.Start{AfterSeq: b.Events[n-1].Seq}, minWait
			size = min(2*size, s.streamBuffer)
			continue
		}
		select {
		case out <- catchEvent{end: true}:
		case <-ctx.Done():
			return nil
		}
		select {
		case <-time.After(wait):
			wait = min(2*wait, maxWait)
		case <-ctx.Done():
			return nil
		}
	}
}

// ListEvents implements the RPC.
func (s *Events) ListEvents(ctx context.Context, req *hookstreamv1.ListEventsRequest) (*hookstreamv1.ListEventsResponse, error) {
	f, subjects, err := s.compile(req.GetFilter())
	if err != nil {
		return nil, err
	}
	var start eventlog.Start
	if t := req.GetPageToken(); t != "" {
		seq, err := eventlog.ParseCursor(t)
		if err != nil {
			return nil, errInvalid(ReasonInvalidPageToken, "page_token is not one this server issued")
		}
		// A page token is the next position to read, at most one past the end.
		if err := s.withinLog(ctx, seq-1); err != nil {
			return nil, err
		}
		start.FromSeq = seq
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultPageSize
	}
	// The scan and every evaluation stop when the client goes away, when
	// the server shuts down, and after listTimeout.
	select {
	case <-s.stopping:
		return nil, errShuttingDown()
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	resp := &hookstreamv1.ListEventsResponse{}
	budget := filter.NewBudget(listFilterBudget)
	var matchErr error
	var at uint64 // the event being evaluated
	next, err := s.log.Scan(ctx, start, subjects, maxScan, func(st eventlog.Stored) bool {
		at = st.Seq
		ok, err := f.MatchWithin(ctx, st.Event, budget)
		if err != nil {
			matchErr = err
			return false
		}
		if ok {
			resp.Events = append(resp.Events, st.Event)
		}
		return len(resp.Events) < size
	})
	switch {
	case ctx.Err() != nil:
		select {
		case <-s.stopping:
			return nil, errShuttingDown()
		default:
		}
		return nil, status.FromContextError(ctx.Err()).Err()
	case errors.Is(matchErr, filter.ErrBudgetSpent):
		return nil, errFilterBudget(eventlog.Cursor(at))
	case matchErr != nil:
		return nil, errInvalid(ReasonInvalidFilter, matchErr.Error())
	case err != nil:
		s.logger.ErrorContext(ctx, "list failed", "err", err)
		return nil, errLogUnreadable()
	}
	if next > 0 {
		resp.NextPageToken = eventlog.Cursor(next)
	}
	return resp, nil
}

// An event is stored in the log a moment after it is received (its
// append has a write timeout of seconds), by the log's clock (the NATS
// server's, a little off this host's on a cluster). So a search by
// received time reads the log from rangeLead before the range to rangeLag
// after it.
const (
	rangeLead = 5 * time.Second
	rangeLag  = time.Minute
)

// GetEvent implements the RPC. Its cost is bounded by the log's lookup
// budget (see eventlog.Log.Get).
func (s *Events) GetEvent(ctx context.Context, req *hookstreamv1.GetEventRequest) (*hookstreamv1.GetEventResponse, error) {
	var opts eventlog.GetOptions
	var after, before time.Time
	if t := req.GetReceivedAfter(); t != nil {
		after = t.AsTime()
		opts.After = after.Add(-rangeLead)
	}
	if t := req.GetReceivedBefore(); t != nil {
		before = t.AsTime()
		opts.Before = before.Add(rangeLag)
	}
	st, lk, err := s.log.Get(ctx, req.GetId(), opts)
	s.metrics.getReads.Observe(float64(lk.Reads))
	switch {
	case errors.Is(err, eventlog.ErrNotFound):
		return nil, errEventNotFound(req.GetId(), after, before)
	case errors.Is(err, eventlog.ErrBudgetExhausted):
		// Every event stored from lk.From to lk.To was checked: every
		// event received from a little after the one to a little before
		// the other.
		from, upTo := lk.From.Add(rangeLead), s.now()
		if !lk.To.IsZero() {
			upTo = lk.To.Add(-rangeLag)
		}
		s.logger.DebugContext(ctx, "get: lookup budget exhausted", "event_id", req.GetId(), "reads", lk.Reads,
			"searched_from", from, "searched_to", upTo)
		return nil, errLookupBudget(req.GetId(), lk.Budget, lk.Reads, from, upTo, lk.Reach)
	case err != nil:
		s.logger.ErrorContext(ctx, "get failed", "event_id", req.GetId(), "err", err)
		return nil, errLogUnreadable()
	}
	return &hookstreamv1.GetEventResponse{Event: st.Event, Cursor: eventlog.Cursor(st.Seq)}, nil
}
