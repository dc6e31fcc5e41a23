package service

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/normalize"
)

// The read budget of one ListQuarantined or ReprocessAllQuarantined call
// (documented in quarantine_service.proto): entries read from the log,
// whether they match or not, and their stored size. 4 MB keeps a page
// within gRPC's default 4 MiB message limit.
const (
	quarantineScanEntries = 1000
	quarantineScanBytes   = 4_000_000
	// reprocessBatch bounds the reprocesses (each an append and an update)
	// of one ReprocessAllQuarantined call.
	reprocessBatch = 100
)

// Quarantine implements hookstreamv1.QuarantineServiceServer.
type Quarantine struct {
	hookstreamv1.UnimplementedQuarantineServiceServer
	p *pipeline
	// scanEntries and scanBytes are the read budget of one call (the
	// constants above; tests lower them).
	scanEntries, scanBytes int
}

func newQuarantine(p *pipeline) *Quarantine {
	return &Quarantine{p: p, scanEntries: quarantineScanEntries, scanBytes: quarantineScanBytes}
}

// ListQuarantined implements the RPC. It reads the bucket in the order
// entries were last written, from the position in the page token, within
// the call's read budget; a page cut short by the budget still carries a
// token, so a filter that matches little cannot turn into a long scan.
func (s *Quarantine) ListQuarantined(ctx context.Context, req *hookstreamv1.ListQuarantinedRequest) (*hookstreamv1.ListQuarantinedResponse, error) {
	filters := filterKey(req.GetSource(), req.GetIncludeReprocessed())
	var from uint64
	if t := req.GetPageToken(); t != "" {
		tok, err := parsePageToken(t, tokenList, filters)
		if err != nil {
			return nil, errInvalid(ReasonInvalidPageToken, "page_token is not one this server issued for this source and include_reprocessed")
		}
		from = tok.from
	}
	size := pageSize(req.GetPageSize())
	resp := &hookstreamv1.ListQuarantinedResponse{}
	next, err := s.p.log.ScanQuarantine(ctx, eventlog.QuarantineScan{
		From: from, MaxEntries: s.scanEntries, MaxBytes: s.scanBytes, Batch: max(size, 100),
	}, func(q *hookstreamv1.QuarantinedRequest, _ uint64) bool {
		if src := req.GetSource(); src != "" && q.GetSource() != src {
			return true
		}
		if !req.GetIncludeReprocessed() && q.GetState() == hookstreamv1.QuarantineState_QUARANTINE_STATE_REPROCESSED {
			return true
		}
		resp.Requests = append(resp.Requests, apiView(q))
		return len(resp.Requests) < size
	})
	if err != nil {
		s.p.logger.ErrorContext(ctx, "list quarantine failed", "err", err)
		return nil, errLogUnreadable()
	}
	if next > 0 {
		resp.NextPageToken = pageToken{kind: tokenList, from: next}.encode(filters)
	}
	return resp, nil
}

// apiView is how an entry is shown: the body as text when it is valid
// UTF-8, as bytes otherwise. Storage keeps bytes.
func apiView(q *hookstreamv1.QuarantinedRequest) *hookstreamv1.QuarantinedRequest {
	body := storedBody(q)
	if utf8.Valid(body) {
		q.Body, q.BodyText = nil, string(body)
	} else {
		q.Body, q.BodyText = body, ""
	}
	return q
}

// storedBody is an entry's body, in whichever field holds it.
func storedBody(q *hookstreamv1.QuarantinedRequest) []byte {
	if len(q.GetBody()) == 0 && q.GetBodyText() != "" {
		return []byte(q.GetBodyText())
	}
	return q.GetBody()
}

// ReprocessQuarantined implements the RPC.
func (s *Quarantine) ReprocessQuarantined(ctx context.Context, req *hookstreamv1.ReprocessQuarantinedRequest) (*hookstreamv1.ReprocessQuarantinedResponse, error) {
	q, rev, err := s.p.log.QuarantineEntry(ctx, req.GetId())
	switch {
	case errors.Is(err, eventlog.ErrNotFound):
		return nil, errNotFound(ReasonEntryNotFound, "no quarantine entry with id "+req.GetId())
	case err != nil:
		s.p.logger.ErrorContext(ctx, "read quarantine failed", "quarantine_id", req.GetId(), "err", err)
		return nil, errLogUnavailable()
	}
	res, err := s.reprocess(ctx, q, rev)
	if err != nil {
		return nil, err
	}
	return &hookstreamv1.ReprocessQuarantinedResponse{Result: res}, nil
}

// ReprocessAllQuarantined implements the RPC. A run covers the entries
// written before its first call (the token carries that end), so entries
// it updates itself, which move to the end of the bucket, are not retried
// again within the run and a client looping on the token always finishes.
func (s *Quarantine) ReprocessAllQuarantined(ctx context.Context, req *hookstreamv1.ReprocessAllQuarantinedRequest) (*hookstreamv1.ReprocessAllQuarantinedResponse, error) {
	filters := filterKey(req.GetSource(), false)
	tok := pageToken{kind: tokenReprocess}
	if t := req.GetPageToken(); t != "" {
		var err error
		if tok, err = parsePageToken(t, tokenReprocess, filters); err != nil {
			return nil, errInvalid(ReasonInvalidPageToken, "page_token is not one this server issued for this source")
		}
	} else {
		st, err := s.p.log.QuarantineStatus(ctx)
		if err != nil {
			s.p.logger.ErrorContext(ctx, "read quarantine failed", "err", err)
			return nil, errLogUnreadable()
		}
		tok.until = st.LastSeq + 1
	}
	type candidate struct {
		q   *hookstreamv1.QuarantinedRequest
		rev uint64
	}
	var batch []candidate
	next, err := s.p.log.ScanQuarantine(ctx, eventlog.QuarantineScan{
		From: tok.from, Until: tok.until, MaxEntries: s.scanEntries, MaxBytes: s.scanBytes,
	}, func(q *hookstreamv1.QuarantinedRequest, rev uint64) bool {
		if q.GetState() != hookstreamv1.QuarantineState_QUARANTINE_STATE_PENDING {
			return true
		}
		if src := req.GetSource(); src != "" && q.GetSource() != src {
			return true
		}
		if _, ok := s.p.sources[q.GetSource()]; !ok {
			// Cannot be reprocessed until the source is configured again;
			// failing the call would stop every run at this entry.
			s.p.logger.WarnContext(ctx, "reprocess skips an entry of an unconfigured source", "quarantine_id", q.GetId(), "source", q.GetSource())
			return true
		}
		batch = append(batch, candidate{q, rev})
		return len(batch) < reprocessBatch
	})
	if err != nil {
		s.p.logger.ErrorContext(ctx, "list quarantine failed", "err", err)
		return nil, errLogUnreadable()
	}
	resp := &hookstreamv1.ReprocessAllQuarantinedResponse{}
	for _, c := range batch {
		res, err := s.reprocess(ctx, c.q, c.rev)
		if err != nil {
			// Entries done so far are marked; the same token skips them.
			return nil, err
		}
		resp.Results = append(resp.Results, res)
		if res.GetOutcome() == hookstreamv1.IngestOutcome_INGEST_OUTCOME_QUARANTINED {
			resp.StillFailing++
		} else {
			resp.Reprocessed++
		}
	}
	if next > 0 {
		resp.NextPageToken = pageToken{kind: tokenReprocess, from: next, until: tok.until}.encode(filters)
	}
	return resp, nil
}

// DiscardQuarantined implements the RPC.
func (s *Quarantine) DiscardQuarantined(ctx context.Context, req *hookstreamv1.DiscardQuarantinedRequest) (*hookstreamv1.DiscardQuarantinedResponse, error) {
	err := s.p.log.DiscardQuarantine(ctx, req.GetId())
	switch {
	case errors.Is(err, eventlog.ErrNotFound):
		return nil, errNotFound(ReasonEntryNotFound, "no quarantine entry with id "+req.GetId())
	case err != nil:
		s.p.logger.ErrorContext(ctx, "discard quarantine entry failed", "quarantine_id", req.GetId(), "err", err)
		return nil, errLogUnavailable()
	}
	s.p.logger.InfoContext(ctx, "quarantine entry discarded", "quarantine_id", req.GetId())
	return &hookstreamv1.DiscardQuarantinedResponse{}, nil
}

// reprocess runs one entry, read at revision rev, through the current
// normalizer with its original source and receive time, so the event gets
// the id a first-time success would have had.
func (s *Quarantine) reprocess(ctx context.Context, q *hookstreamv1.QuarantinedRequest, rev uint64) (*hookstreamv1.ReprocessResult, error) {
	id := q.GetId()
	if q.GetState() == hookstreamv1.QuarantineState_QUARANTINE_STATE_REPROCESSED {
		return &hookstreamv1.ReprocessResult{Id: id, Outcome: hookstreamv1.IngestOutcome_INGEST_OUTCOME_DUPLICATE, EventId: q.GetEventId()}, nil
	}
	src, ok := s.p.sources[q.GetSource()]
	if !ok {
		return nil, statusError(codes.FailedPrecondition, ReasonUnknownSource, map[string]string{"source": q.GetSource()},
			fmt.Sprintf("entry %s belongs to source %q, which is no longer configured", id, q.GetSource()))
	}
	received := q.GetReceivedAt().AsTime()
	ev, err := src.Normalizer.Normalize(normalize.Input{Source: src.Name, Body: storedBody(q), ReceivedAt: received})
	if err != nil {
		rej := normalize.AsRejection(err)
		q.Rejection = rej.Proto()
		if err := s.p.log.UpdateQuarantine(ctx, q, rev); err != nil {
			s.p.logger.WarnContext(ctx, "could not record the new rejection", "quarantine_id", id, "err", err)
		}
		return &hookstreamv1.ReprocessResult{Id: id, Outcome: hookstreamv1.IngestOutcome_INGEST_OUTCOME_QUARANTINED, Rejection: rej.Proto()}, nil
	}
	// The entry was scrubbed when it was quarantined, for the source as it
	// was then; its vendor or credentials may have changed since (a fixed
	// config is a common reason to reprocess), so the event and its copy
	// of the request are scrubbed for the source as it is now, as a
	// first-time success would have been.
	data, err := s.p.scrubEvent(src, ev, storedBody(q), q.GetContentType())
	var app eventlog.Appended
	if err == nil {
		app, err = s.p.append(ctx, src.Name, ev, data)
	}
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

// Page tokens of the quarantine APIs.
const (
	tokenVersion   = 1
	tokenList      = 'l' // ListQuarantined
	tokenReprocess = 'r' // ReprocessAllQuarantined
)

// pageToken is where a quarantine scan continues: the bucket position to
// read from and, for a reprocess run, the position where the run ends.
// Encoded, it is base64url of version, kind, both positions as uvarints
// and an FNV-1a checksum over them and the request's filters, so a token
// for another method or other filters, or a made-up or damaged one, is
// refused. It is a format check, not a secret: a forged position can only
// start a bounded scan elsewhere.
type pageToken struct {
	kind        byte
	from, until uint64
}

// filterKey identifies the request fields a token is bound to.
func filterKey(source string, includeReprocessed bool) string {
	return source + "\x00" + strconv.FormatBool(includeReprocessed)
}

func (t pageToken) encode(filters string) string {
	b := []byte{tokenVersion, t.kind}
	b = binary.AppendUvarint(b, t.from)
	b = binary.AppendUvarint(b, t.until)
	b = binary.BigEndian.AppendUint32(b, tokenSum(b, filters))
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenSum(b []byte, filters string) uint32 {
	h := fnv.New32a()
	h.Write(b)
	h.Write([]byte(filters))
	return h.Sum32()
}

var errBadToken = errors.New("bad page token")

func parsePageToken(s string, kind byte, filters string) (pageToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2+2+4 || b[0] != tokenVersion || b[1] != kind {
		return pageToken{}, errBadToken
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if tokenSum(body, filters) != sum {
		return pageToken{}, errBadToken
	}
	t := pageToken{kind: kind}
	rest := body[2:]
	var n int
	if t.from, n = binary.Uvarint(rest); n <= 0 {
		return pageToken{}, errBadToken
	}
	rest = rest[n:]
	if t.until, n = binary.Uvarint(rest); n <= 0 || n != len(rest) {
		return pageToken{}, errBadToken
	}
	if t.from == 0 || kind == tokenReprocess && t.until == 0 {
		return pageToken{}, errBadToken
	}
	return t, nil
}
