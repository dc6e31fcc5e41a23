package service

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/budget"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/filter"
	"github.com/hookstream/hookstream/service/tracing"
)

const (
	defaultPageSize = 50
	// maxPageSize is the most entries one list page holds; a larger
	// page_size is served as this (AIP-158: coerce, do not refuse).
	maxPageSize = 1000
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
	// tracer makes a span per event sent on a stream (nil: tracing off).
	tracer *tracing.Tracer
	// observe, when set (by tests), is told of every state a stream
	// enters, on the stream's goroutine.
	observe func(stream string, st streamState)
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

// Subscribe implements the RPC: once the request is admitted (stream
// caps) and checked, a subscription serves the stream (see subscribe.go).
//
// A stream is live (fed by the process's hub) or catching up (reading the
// log on its own, from its start position or after a detach). Both paths
// track the last log position the stream has passed, and every event at or
// below it is skipped, so switching between them loses nothing and
// repeats nothing. What a stream may hold is bounded in bytes (see
// streams.go), and a stream is stalled only when no byte of what it sent
// has reached its client for the stall timeout (see progress.go).
func (s *Events) Subscribe(req *hookstreamv1.SubscribeRequest, stream grpc.ServerStreamingServer[hookstreamv1.SubscribeResponse]) error {
	release, err := s.limits.admit(apiToken(stream.Context()))
	if err != nil {
		s.metrics.streamsRefused.Inc()
		return err
	}
	f, subjects, err := s.compile(req.GetFilter())
	if err != nil {
		release()
		return err
	}
	start, err := s.subscribeStart(stream.Context(), req)
	if err != nil {
		release()
		return err
	}
	// From here the subscription gives the place back, once the stream is
	// over on the wire.
	return s.newSubscription(f, subjects, req.GetIncludeRaw()).run(stream, start, release)
}

// subscribeStart is where a Subscribe request starts reading the log.
func (s *Events) subscribeStart(ctx context.Context, req *hookstreamv1.SubscribeRequest) (eventlog.Start, error) {
	var start eventlog.Start
	switch st := req.GetStart().(type) {
	case *hookstreamv1.SubscribeRequest_Position:
		start.New = st.Position != hookstreamv1.StartPosition_START_POSITION_BEGINNING
	case *hookstreamv1.SubscribeRequest_AfterCursor:
		seq, err := eventlog.ParseCursor(st.AfterCursor)
		if err != nil {
			return start, errInvalid(ReasonInvalidCursor, err.Error())
		}
		if err := s.withinLog(ctx, seq, func(last uint64) error { return errPastEnd(seq, last) }); err != nil {
			return start, err
		}
		start.AfterSeq = seq
	case *hookstreamv1.SubscribeRequest_StartTime:
		start.Time = st.StartTime.AsTime()
	default:
		start.New = true
	}
	return start, nil
}

// withinLog refuses a position past the log's end with pastEnd's error
// (which names what the client sent: a cursor, a page token).
func (s *Events) withinLog(ctx context.Context, seq uint64, pastEnd func(last uint64) error) error {
	last, err := s.log.LastSeq(ctx)
	if err != nil {
		s.logger.ErrorContext(ctx, "reading the log's end failed", "err", err)
		return errLogUnreadable()
	}
	if seq > last {
		return pastEnd(last)
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
		if err := s.withinLog(ctx, seq-1, func(last uint64) error { return errPageTokenPastEnd(seq, last) }); err != nil {
			return nil, err
		}
		start.FromSeq = seq
	} else if t := req.GetStartTime(); t != nil {
		start.Time = t.AsTime()
	}
	size := pageSize(req.GetPageSize())
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
			if !req.GetIncludeRaw() {
				st.Event.Raw = nil // decoded for this request alone
			}
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
	case errors.Is(matchErr, filter.ErrBudgetSpent) && len(resp.Events) > 0:
		// What matched is a page (a short one); the next starts again at
		// the event whose evaluation the budget cut short.
		resp.NextPageToken = eventlog.Cursor(at)
		return resp, nil
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
	// The range is on the event's received_at, inclusive at both ends; an
	// id the dedup index knows is found wherever it is, so the range is
	// checked here too.
	if at := st.Event.GetReceivedAt().AsTime(); !after.IsZero() && at.Before(after) || !before.IsZero() && at.After(before) {
		return nil, errEventNotFound(req.GetId(), after, before)
	}
	if !req.GetIncludeRaw() {
		st.Event.Raw = nil // decoded for this request alone
	}
	return &hookstreamv1.GetEventResponse{Event: st.Event, Cursor: eventlog.Cursor(st.Seq)}, nil
}

// pageSize is the page size a list request gets: defaultPageSize for 0,
// at most maxPageSize.
func pageSize(n int32) int {
	if n <= 0 {
		return defaultPageSize
	}
	return min(int(n), maxPageSize)
}
