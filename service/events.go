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
	return f, []string{eventlog.FilterSubject("", p.Source, vendor, p.Entity, p.Action)}, nil
}

// Subscribe implements the RPC.
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

	// Reading the log, sending and watching run apart: the tail goroutine
	// fills a small buffer, the sender drains it into the stream, and this
	// goroutine notices a client that stopped reading. Memory per stream is
	// bounded by the two buffers and the consumer's pull batch; the log and
	// other streams never wait for a slow client.
	deliveries := make(chan eventlog.Stored, 64)
	tailErr := make(chan error, 1)
	go func() {
		tailErr <- s.log.Tail(ctx, start, subjects, func(st eventlog.Stored) error {
			select {
			case deliveries <- st:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	out := make(chan *hookstreamv1.SubscribeResponse, 16)
	sendErr := make(chan error, 1)
	var sending atomic.Int64 // unix nanos when the pending Send began, 0 when idle
	var lastCursor atomic.Value
	go func() {
		for {
			select {
			case m := <-out:
				sending.Store(time.Now().UnixNano())
				err := stream.Send(m)
				sending.Store(0)
				if err != nil {
					sendErr <- err
					return
				}
				if d := m.GetDelivery(); d != nil {
					lastCursor.Store(d.GetCursor())
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	logger.InfoContext(ctx, "subscriber connected", "filter", f.String(), "subjects", strings.Join(subjects, ","))
	defer logger.InfoContext(ctx, "subscriber disconnected")

	heartbeat := time.NewTicker(s.heartbeat)
	defer heartbeat.Stop()
	watchdog := time.NewTicker(min(s.stall/4, time.Second))
	defer watchdog.Stop()
	// pending is the next message for the sender. While it waits, no more
	// is read from the log, but the watchdog and shutdown are still heard.
	var pending *hookstreamv1.SubscribeResponse
	for {
		in, outCh := deliveries, chan<- *hookstreamv1.SubscribeResponse(nil)
		if pending != nil {
			in, outCh = nil, out
		}
		select {
		case outCh <- pending:
			pending = nil
			heartbeat.Reset(s.heartbeat)
		case st := <-in:
			lag.Set(float64(st.Pending))
			ok, err := f.Match(st.Event)
			if err != nil {
				return errInvalid(ReasonInvalidFilter, err.Error())
			}
			if ok {
				pending = &hookstreamv1.SubscribeResponse{Message: &hookstreamv1.SubscribeResponse_Delivery{
					Delivery: &hookstreamv1.EventDelivery{Event: st.Event, Cursor: eventlog.Cursor(st.Seq)},
				}}
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
		case err := <-sendErr:
			return err
		case err := <-tailErr:
			if ctx.Err() != nil {
				return nil
			}
			logger.ErrorContext(ctx, "subscription lost the log", "err", err)
			return errLogUnavailable()
		case <-ctx.Done():
			return nil
		case <-s.stopping:
			return errShuttingDown()
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
		start.FromSeq = seq
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultPageSize
	}
	resp := &hookstreamv1.ListEventsResponse{}
	var matchErr error
	next, err := s.log.Scan(ctx, start, subjects, maxScan, func(st eventlog.Stored) bool {
		ok, err := f.Match(st.Event)
		if err != nil {
			matchErr = err
			return false
		}
		if ok {
			resp.Events = append(resp.Events, st.Event)
		}
		return len(resp.Events) < size
	})
	if matchErr != nil {
		return nil, errInvalid(ReasonInvalidFilter, matchErr.Error())
	}
	if err != nil {
		s.logger.ErrorContext(ctx, "list failed", "err", err)
		return nil, errLogUnavailable()
	}
	if next > 0 {
		resp.NextPageToken = eventlog.Cursor(next)
	}
	return resp, nil
}

// GetEvent implements the RPC.
func (s *Events) GetEvent(ctx context.Context, req *hookstreamv1.GetEventRequest) (*hookstreamv1.GetEventResponse, error) {
	st, err := s.log.Get(ctx, req.GetId())
	switch {
	case errors.Is(err, eventlog.ErrNotFound):
		return nil, errNotFound(ReasonEventNotFound, "no event with id "+req.GetId()+" (it may have aged out of the log)")
	case err != nil:
		s.logger.ErrorContext(ctx, "get failed", "event_id", req.GetId(), "err", err)
		return nil, errLogUnavailable()
	}
	return &hookstreamv1.GetEventResponse{Event: st.Event, Cursor: eventlog.Cursor(st.Seq)}, nil
}
