package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/normalize"
)

// Quarantine implements hookstreamv1.QuarantineServiceServer.
type Quarantine struct {
	hookstreamv1.UnimplementedQuarantineServiceServer
	p *pipeline
}

// ListQuarantined implements the RPC. The page token is the position
// (receive time and id) of the last entry returned, so entries added or
// reprocessed meanwhile do not shift later pages.
func (s *Quarantine) ListQuarantined(ctx context.Context, req *hookstreamv1.ListQuarantinedRequest) (*hookstreamv1.ListQuarantinedResponse, error) {
	var after position
	if t := req.GetPageToken(); t != "" {
		var err error
		if after, err = parsePosition(t); err != nil {
			return nil, errInvalid(ReasonInvalidPageToken, "page_token is not one this server issued")
		}
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultPageSize
	}
	all, err := s.p.log.QuarantineEntries(ctx)
	if err != nil {
		s.p.logger.ErrorContext(ctx, "list quarantine failed", "err", err)
		return nil, errLogUnavailable()
	}
	resp := &hookstreamv1.ListQuarantinedResponse{}
	for _, q := range all {
		if t := req.GetPageToken(); t != "" && !after.before(q) {
			continue
		}
		if src := req.GetSource(); src != "" && q.GetSource() != src {
			continue
		}
		if !req.GetIncludeReprocessed() && q.GetState() == hookstreamv1.QuarantineState_QUARANTINE_STATE_REPROCESSED {
			continue
		}
		if len(resp.Requests) == size {
			last := resp.Requests[size-1]
			resp.NextPageToken = positionOf(last).String()
			break
		}
		resp.Requests = append(resp.Requests, q)
	}
	return resp, nil
}

// ReprocessQuarantined implements the RPC.
func (s *Quarantine) ReprocessQuarantined(ctx context.Context, req *hookstreamv1.ReprocessQuarantinedRequest) (*hookstreamv1.ReprocessQuarantinedResponse, error) {
	res, err := s.reprocess(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &hookstreamv1.ReprocessQuarantinedResponse{Result: res}, nil
}

// ReprocessAllQuarantined implements the RPC.
func (s *Quarantine) ReprocessAllQuarantined(ctx context.Context, req *hookstreamv1.ReprocessAllQuarantinedRequest) (*hookstreamv1.ReprocessAllQuarantinedResponse, error) {
	all, err := s.p.log.QuarantineEntries(ctx)
	if err != nil {
		s.p.logger.ErrorContext(ctx, "list quarantine failed", "err", err)
		return nil, errLogUnavailable()
	}
	resp := &hookstreamv1.ReprocessAllQuarantinedResponse{}
	for _, q := range all {
		if q.GetState() != hookstreamv1.QuarantineState_QUARANTINE_STATE_PENDING {
			continue
		}
		if src := req.GetSource(); src != "" && q.GetSource() != src {
			continue
		}
		res, err := s.reprocess(ctx, q.GetId())
		if err != nil {
			return nil, err
		}
		resp.Results = append(resp.Results, res)
		if res.GetOutcome() == hookstreamv1.IngestOutcome_INGEST_OUTCOME_QUARANTINED {
			resp.StillFailing++
		} else {
			resp.Reprocessed++
		}
	}
	return resp, nil
}

// reprocess runs one entry through the current normalizer with its
// original source and receive time, so the event gets the id a first-time
// success would have had.
func (s *Quarantine) reprocess(ctx context.Context, id string) (*hookstreamv1.ReprocessResult, error) {
	q, rev, err := s.p.log.QuarantineEntry(ctx, id)
	switch {
	case errors.Is(err, eventlog.ErrNotFound):
		return nil, errNotFound(ReasonEntryNotFound, "no quarantine entry with id "+id)
	case err != nil:
		s.p.logger.ErrorContext(ctx, "read quarantine failed", "quarantine_id", id, "err", err)
		return nil, errLogUnavailable()
	}
	if q.GetState() == hookstreamv1.QuarantineState_QUARANTINE_STATE_REPROCESSED {
		return &hookstreamv1.ReprocessResult{Id: id, Outcome: hookstreamv1.IngestOutcome_INGEST_OUTCOME_DUPLICATE, EventId: q.GetEventId()}, nil
	}
	src, ok := s.p.sources[q.GetSource()]
	if !ok {
		return nil, statusError(codes.FailedPrecondition, ReasonUnknownSource, map[string]string{"source": q.GetSource()},
			fmt.Sprintf("entry %s belongs to source %q, which is no longer configured", id, q.GetSource()))
	}
	received := q.GetReceivedAt().AsTime()
	ev, err := src.Normalizer.Normalize(normalize.Input{Source: src.Name, Body: q.GetBody(), ReceivedAt: received})
	if err != nil {
		rej := normalize.AsRejection(err)
		q.Rejection = rej.Proto()
		if err := s.p.log.UpdateQuarantine(ctx, q, rev); err != nil {
			s.p.logger.WarnContext(ctx, "could not record the new rejection", "quarantine_id", id, "err", err)
		}
		return &hookstreamv1.ReprocessResult{Id: id, Outcome: hookstreamv1.IngestOutcome_INGEST_OUTCOME_QUARANTINED, Rejection: rej.Proto()}, nil
	}
	app, err := s.p.log.Append(ctx, ev)
	if err != nil {
		s.p.logger.ErrorContext(ctx, "append failed", "quarantine_id", id, "event_id", ev.GetId(), "err", err)
		return nil, errLogUnavailable()
	}
	q.State = hookstreamv1.QuarantineState_QUARANTINE_STATE_REPROCESSED
	q.EventId = ev.GetId()
	if err := s.p.log.UpdateQuarantine(ctx, q, rev); err != nil {
		// The event is stored; a later reprocess finds it a duplicate.
		s.p.logger.WarnContext(ctx, "could not mark entry reprocessed", "quarantine_id", id, "err", err)
	}
	outcome := hookstreamv1.IngestOutcome_INGEST_OUTCOME_ACCEPTED
	if app.Duplicate {
		outcome = hookstreamv1.IngestOutcome_INGEST_OUTCOME_DUPLICATE
	}
	s.p.logger.InfoContext(ctx, "quarantine entry reprocessed", "quarantine_id", id, "source", src.Name, "event_id", ev.GetId())
	return &hookstreamv1.ReprocessResult{Id: id, Outcome: outcome, EventId: ev.GetId()}, nil
}

// position orders quarantine entries: receive time, then id.
type position struct {
	nanos int64
	id    string
}

func positionOf(q *hookstreamv1.QuarantinedRequest) position {
	return position{nanos: q.GetReceivedAt().AsTime().UnixNano(), id: q.GetId()}
}

func (p position) String() string { return strconv.FormatInt(p.nanos, 10) + "_" + p.id }

// before reports whether p sorts before q's position.
func (p position) before(q *hookstreamv1.QuarantinedRequest) bool {
	o := positionOf(q)
	return p.nanos < o.nanos || p.nanos == o.nanos && p.id < o.id
}

func parsePosition(s string) (position, error) {
	n, id, ok := strings.Cut(s, "_")
	nanos, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil || id == "" || nanos < 0 || nanos > time.Now().Add(24*time.Hour).UnixNano() {
		return position{}, errors.New("bad position")
	}
	return position{nanos: nanos, id: id}, nil
}
