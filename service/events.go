package service

import (
	"context"
	"errors"
	"log/slog"
	"strings"
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
	filters   *filter.Compiler
	heartbeat time.Duration
	now       func() time.Time
	stopping  <-chan struct{}
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
	s.logger.InfoContext(ctx, "subscriber connected", "filter", f.String(), "subjects", strings.Join(subjects, ","))
	defer s.logger.InfoContext(ctx, "subscriber disconnected", "filter", f.String())

	heartbeat := time.NewTicker(s.heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case st := <-deliveries:
			ok, err := f.Match(st.Event)
			if err != nil {
				return errInvalid(ReasonInvalidFilter, err.Error())
			}
			if !ok {
				continue
			}
			if err := stream.Send(&hookstreamv1.SubscribeResponse{Message: &hookstreamv1.SubscribeResponse_Delivery{
				Delivery: &hookstreamv1.EventDelivery{Event: st.Event, Cursor: eventlog.Cursor(st.Seq)},
			}}); err != nil {
				return err
			}
			heartbeat.Reset(s.heartbeat)
		case <-heartbeat.C:
			if err := stream.Send(&hookstreamv1.SubscribeResponse{Message: &hookstreamv1.SubscribeResponse_Heartbeat{
				Heartbeat: &hookstreamv1.Heartbeat{Time: timestamppb.New(s.now())},
			}}); err != nil {
				return err
			}
		case err := <-tailErr:
			if ctx.Err() != nil {
				return nil
			}
			s.logger.ErrorContext(ctx, "subscription lost the log", "err", err)
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
