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
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
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
// stream must be before it joins the hub.
const joinBelow = 1024

// Subscribe implements the RPC.
//
// A stream is live (fed by the process's hub) or catching up (reading the
// log on its own consumer, from its start position or after a detach).
// Both paths track the last log position the stream has passed, and every
// event at or below it is skipped, so switching between them loses nothing
// and repeats nothing.
func (s *Events) Subscribe(req *hookstreamv1.SubscribeRequest, stream grpc.ServerStreamingServer[hookstreamv1.SubscribeResponse]) error {
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

	// The sender goroutine owns stream.Send; this goroutine feeds it and
	// notices a client that stopped reading.
	out := make(chan any, 16) // *encodedDelivery or *SubscribeResponse
	sendErr := make(chan error, 1)
	var sending atomic.Int64 // unix nanos when the pending Send began, 0 when idle
	var lastCursor atomic.Value
	go func() {
		for {
			select {
			case m := <-out:
				sending.Store(time.Now().UnixNano())
				err := stream.SendMsg(m)
				sending.Store(0)
				if err != nil {
					sendErr <- err
					return
				}
				if d, ok := m.(*encodedDelivery); ok {
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
		catchup     chan eventlog.Stored
		tailErr     chan error
		stopTail    context.CancelFunc = func() {}
		idle        bool
		pending     any
		lastSubject = ">"
	)
	if len(subjects) == 1 {
		lastSubject = subjects[0]
	}
	defer func() {
		stopTail()
		if feed != nil {
			s.hub.leave(feed)
		}
	}()
	goLive := func() {
		stopTail()
		catchup, tailErr = nil, nil
		last = max(last, joinedAt)
		live = true
	}
	startCatchup := func(from eventlog.Start) {
		tctx, tcancel := context.WithCancel(ctx)
		stopTail = tcancel
		catchup, tailErr = make(chan eventlog.Stored, 64), make(chan error, 1)
		ch, errc := catchup, tailErr
		go func() {
			errc <- s.log.Tail(tctx, from, subjects, nil, func(st eventlog.Stored) error {
				select {
				case ch <- st:
					return nil
				case <-tctx.Done():
					return tctx.Err()
				}
			})
		}()
		live = false
	}
	deliver := func(st eventlog.Stored, frame *encodedDelivery) error {
		if st.Seq <= last {
			return nil
		}
		last = st.Seq
		ok := true
		if !f.Empty() {
			ev, err := st.Decoded()
			if err != nil {
				logger.ErrorContext(ctx, "undecodable event in the log", "seq", st.Seq, "err", err)
				return errInternal()
			}
			if ok, err = f.MatchWithin(ctx, ev, nil); err != nil {
				return errInvalid(ReasonInvalidFilter, err.Error())
			}
		}
		if ok {
			if frame != nil {
				pending = frame
			} else {
				pending = encodeDelivery(st.Raw, eventlog.Cursor(st.Seq))
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
	for {
		// While a message waits for the sender, nothing more is read; the
		// hub detaches a feed that fills up, and the stream catches up on
		// its own later.
		in, feedCh, outCh := catchup, (chan hubEvent)(nil), chan<- any(nil)
		var detached chan struct{}
		if feed != nil {
			detached = feed.detached
			if live {
				feedCh = feed.ch
			}
		}
		if pending != nil {
			in, feedCh, outCh = nil, nil, out
		}
		select {
		case outCh <- pending:
			pending = nil
			heartbeat.Reset(s.heartbeat)
		case st := <-in:
			idle = false
			lag.Set(float64(st.Pending))
			if err := deliver(st, nil); err != nil {
				return err
			}
			if feed == nil && st.Pending < joinBelow {
				feed, joinedAt = s.hub.join()
			}
			if feed != nil && st.Seq >= joinedAt {
				goLive()
			}
		case ev := <-feedCh:
			lag.Set(float64(len(feed.ch)))
			if err := deliver(ev.Stored, ev.frame); err != nil {
				return err
			}
		case <-detached:
			// Too slow for the hub (or the hub lost the log): keep what was
			// queued, then read the log from where this stream is.
			s.hub.leave(feed)
			queued := feed.ch
			feed = nil
			if live {
				for len(queued) > 0 && pending == nil {
					ev := <-queued
					if err := deliver(ev.Stored, ev.frame); err != nil {
						return err
					}
				}
				// Whatever is still queued (the sender was busy) is read
				// again from the log: last only covers what was processed.
				logger.DebugContext(ctx, "subscriber left the hub; catching up on its own", "after", last)
				startCatchup(eventlog.Start{AfterSeq: last})
			}
		case <-heartbeat.C:
			if pending == nil && len(out) == 0 && sending.Load() == 0 {
				pending = &hookstreamv1.SubscribeResponse{Message: &hookstreamv1.SubscribeResponse_Heartbeat{
					Heartbeat: &hookstreamv1.Heartbeat{Time: timestamppb.New(s.now())},
				}}
			}
		case <-watchdog.C:
			if began := sending.Load(); began != 0 && time.Since(time.Unix(0, began)) > s.stall {
				cursor, _ := lastCursor.Load().(string)
				logger.WarnContext(ctx, "dropping stalled subscriber", "stalled_for", s.stall, "last_cursor", cursor)
				return errStalled(s.stall, cursor)
			}
			// A catching-up stream whose filter matches nothing new never
			// reaches the hub's position by reading; ask the log instead.
			if !live && pending == nil {
				if feed == nil {
					feed, joinedAt = s.hub.join()
				} else if idle {
					if m, err := s.log.LastSeqFor(ctx, lastSubject); err == nil && m <= last {
						goLive()
					}
				}
				idle = true
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
