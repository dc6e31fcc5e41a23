package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/normalize"
)

// The bounds of one ReplayNormalization call (documented in
// admin_service.proto): events of the source read, whatever they hold;
// the bytes read are bounded by the log's scan budget as well.
const (
	replayBatch = 5000
	// replayFailures caps the rejections a response lists.
	replayFailures = 10
	// tokenReplay is the page token kind of ReplayNormalization.
	tokenReplay = 'n'
)

// Admin implements hookstreamv1.AdminServiceServer.
type Admin struct {
	hookstreamv1.UnimplementedAdminServiceServer
	p *pipeline
	// batch is the events read per call (replayBatch; tests lower it).
	batch int
}

func newAdmin(p *pipeline) *Admin { return &Admin{p: p, batch: replayBatch} }

// ReplayNormalization implements the RPC. A run reads the source's events
// from a little before start_time (events are stored a moment after they
// are received, and clocks differ by a little) up to the position the log
// had reached when the run started, or the first event stored a minute
// after end_time, whichever comes first: its own appends are never read
// again. The positions travel in the page token.
func (s *Admin) ReplayNormalization(ctx context.Context, req *hookstreamv1.ReplayNormalizationRequest) (*hookstreamv1.ReplayNormalizationResponse, error) {
	src, ok := s.p.sources[req.GetSource()]
	if !ok {
		return nil, errUnknownSource(req.GetSource())
	}
	var startAt, endAt time.Time
	if t := req.GetStartTime(); t != nil {
		startAt = t.AsTime()
	}
	if t := req.GetEndTime(); t != nil {
		endAt = t.AsTime()
	}
	subject := eventlog.FilterSubject(src.Name, "", "", "")
	filters := replayFilterKey(req)
	var start eventlog.Start
	var tok pageToken
	if t := req.GetPageToken(); t != "" {
		var err error
		if tok, err = parsePageToken(t, tokenReplay, filters); err != nil {
			return nil, errInvalid(ReasonInvalidPageToken, "page_token is not one this server issued for this source, time range and dry_run")
		}
		start = eventlog.Start{FromSeq: tok.from}
	} else {
		until, err := s.runEnd(ctx, subject, endAt)
		if err != nil {
			s.p.logger.ErrorContext(ctx, "replay: read log failed", "source", src.Name, "err", err)
			return nil, errLogUnreadable()
		}
		tok = pageToken{kind: tokenReplay, until: until}
		if !startAt.IsZero() {
			start = eventlog.Start{Time: startAt.Add(-rangeLead)}
		}
	}
	resp := &hookstreamv1.ReplayNormalizationResponse{}
	var failure error // an append that failed: the call fails, its token is not advanced
	done := false
	next, err := s.p.log.Scan(ctx, start, []string{subject}, s.batch, func(st eventlog.Stored) bool {
		if st.Seq >= tok.until {
			done = true
			return false
		}
		resp.Scanned++
		failure = s.replayOne(ctx, src, st.Event, startAt, endAt, req.GetDryRun(), resp)
		return failure == nil
	})
	switch {
	case err != nil:
		s.p.logger.ErrorContext(ctx, "replay: read log failed", "source", src.Name, "err", err)
		return nil, errLogUnreadable()
	case failure != nil:
		return nil, failure
	}
	if next > 0 && next < tok.until && !done {
		resp.NextPageToken = pageToken{kind: tokenReplay, from: next, until: tok.until}.encode(filters)
	}
	s.p.logger.InfoContext(ctx, "replay batch", "source", src.Name, "dry_run", req.GetDryRun(), "scanned", resp.Scanned,
		"unchanged", resp.Unchanged, "changed", resp.Changed, "appended", resp.Appended, "without_raw", resp.WithoutRaw,
		"failed", resp.Failed, "more", resp.NextPageToken != "")
	return resp, nil
}

// runEnd is the log position a new run stops before: the one after the
// newest event, or the first event of the source stored a minute after
// end when that comes first.
func (s *Admin) runEnd(ctx context.Context, subject string, end time.Time) (uint64, error) {
	last, err := s.p.log.LastSeq(ctx)
	if err != nil {
		return 0, err
	}
	until := last + 1
	if !end.IsZero() {
		b, err := s.p.log.ReadBatch(ctx, eventlog.Start{Time: end.Add(rangeLag)}, subject, 1, 1)
		if err != nil {
			return 0, err
		}
		if len(b.Events) > 0 {
			until = min(until, b.Events[0].Seq)
		}
	}
	return until, nil
}

// replayOne normalizes one stored event's raw request again and, when the
// result differs and this is not a dry run, appends the corrected event.
// The error, a gRPC status, is for a log that cannot take the append.
func (s *Admin) replayOne(ctx context.Context, src *Source, old *hookstreamv1.Event, startAt, endAt time.Time, dryRun bool,
	resp *hookstreamv1.ReplayNormalizationResponse) error {
	received := old.GetReceivedAt().AsTime()
	if !startAt.IsZero() && received.Before(startAt) || !endAt.IsZero() && !received.Before(endAt) {
		return nil
	}
	if old.GetSupersedes() != "" {
		resp.CorrectionsSkipped++
		return nil
	}
	raw := old.GetRaw()
	if raw == nil {
		resp.WithoutRaw++
		return nil
	}
	body := raw.GetBody()
	if len(body) == 0 {
		body = []byte(raw.GetBodyText())
	}
	fresh, err := src.Normalizer.Normalize(normalize.Input{Source: src.Name, Body: body, ReceivedAt: received})
	if err != nil {
		s.fail(resp, old.GetId(), normalize.AsRejection(err))
		return nil
	}
	// As at ingest. The raw body was scrubbed already, so this only
	// matters for a normalizer that changed which members are secret.
	normalize.ScrubEvent(fresh, src.Normalizer.SecretMembers(), src.Auth.Secrets())
	fresh.ReceivedAt = old.GetReceivedAt()
	if sameNormalization(old, fresh) {
		resp.Unchanged++
		return nil
	}
	resp.Changed++
	if dryRun {
		return nil
	}
	fresh.Id = replayID(src, old.GetId(), fresh)
	fresh.Supersedes = old.GetId()
	fresh.Raw = raw
	data, err := eventlog.Encode(fresh)
	var app eventlog.Appended
	if err == nil {
		app, err = s.p.append(ctx, src.Name, fresh, data)
	}
	switch {
	case errors.Is(err, eventlog.ErrTooLarge):
		s.fail(resp, old.GetId(), normalize.Reject(hookstreamv1.RejectionCode_REJECTION_CODE_INVALID_FIELD, "",
			"corrected event exceeds the log's maximum message size"))
		return nil
	case err != nil:
		s.p.logger.ErrorContext(ctx, "replay: append failed", "source", src.Name, "event_id", fresh.GetId(), "supersedes", old.GetId(), "err", err)
		return errLogUnavailable()
	}
	if !app.Duplicate {
		resp.Appended++
		s.p.logger.InfoContext(ctx, "corrected event appended", "source", src.Name, "event_id", fresh.GetId(),
			"supersedes", old.GetId(), "seq", app.Seq)
	}
	return nil
}

func (s *Admin) fail(resp *hookstreamv1.ReplayNormalizationResponse, id string, rej *normalize.Rejection) {
	resp.Failed++
	if len(resp.Failures) < replayFailures {
		resp.Failures = append(resp.Failures, &hookstreamv1.ReplayFailure{EventId: id, Rejection: rej.Proto()})
	}
}

// sameNormalization compares a stored event with a fresh normalization of
// its raw request, leaving out what is not the normalizer's: the raw
// request itself and the receive time (the fresh one is given the stored
// one anyway). The id stays in: a normalizer that now derives another
// dedup key has changed the event too.
func sameNormalization(stored, fresh *hookstreamv1.Event) bool {
	a, b := withoutReplayFields(stored), withoutReplayFields(fresh)
	return proto.Equal(a, b)
}

// withoutReplayFields is a shallow copy of ev without its raw request,
// receive time and supersedes; ev is not changed.
func withoutReplayFields(ev *hookstreamv1.Event) *hookstreamv1.Event {
	c := proto.Clone(ev).(*hookstreamv1.Event)
	c.Raw, c.ReceivedAt, c.Supersedes = nil, nil, ""
	return c
}

// replayID is the id of the event that corrects original: derived from
// the original's id and a digest of the corrected content (its
// deterministic encoding without id, receive time, raw request and
// supersedes), so the same correction replayed again gets the same id and
// the log stores it once, while a later, different fix gets a new one.
func replayID(src *Source, original string, fresh *hookstreamv1.Event) string {
	c := withoutReplayFields(fresh)
	c.Id = ""
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		// Not reachable for a message that normalized; any stable value
		// keeps the id deterministic.
		b = nil
	}
	sum := sha256.Sum256(b)
	return normalize.EventID(src.Name, src.Vendor, original, "replay", hex.EncodeToString(sum[:]))
}

// replayFilterKey identifies the request fields a replay token is bound
// to.
func replayFilterKey(req *hookstreamv1.ReplayNormalizationRequest) string {
	key := req.GetSource() + "\x00" + strconv.FormatBool(req.GetDryRun())
	for _, t := range []*timestamppb.Timestamp{req.GetStartTime(), req.GetEndTime()} {
		key += "\x00"
		if t != nil {
			key += t.AsTime().Format(time.RFC3339Nano)
		}
	}
	return key
}
