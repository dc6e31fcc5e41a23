package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	otelcodes "go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/auth"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/tracing"
)

// Source is one configured webhook endpoint.
type Source struct {
	Name       string
	Vendor     hookstreamv1.Vendor
	Auth       auth.Authenticator
	Normalizer normalize.Normalizer
	// RateLimit (requests per second, with Burst) caps accepted requests;
	// zero means no limit.
	RateLimit float64
	Burst     int
	// Title and Where describe the vendor to people (normalize.Vendor),
	// and Credentials are what the source's vendor sends, for SourceService:
	// ListSources masks them, GetSourceCredentials (admin) shows them.
	Title, Where string
	Credentials  normalize.Credentials
	// RetryKey is the vendor's (normalize.Vendor.RetryKey), or nil.
	RetryKey func(body []byte) []byte

	limiter *rate.Limiter
	m       sourceMetrics
	// seen records the last request and the last failure, for ListSources.
	seen *sourceSeen
}

// sourceMetrics are a source's metric series, resolved once so the hot
// path does no label lookups.
type sourceMetrics struct {
	accepted, duplicate, quarantined, unauthenticated, rateLimited, unavailable, invalid prometheus.Counter
	duplicates, clientGone                                                               prometheus.Counter
	authMissing, authWrong                                                               prometheus.Counter
	latency                                                                              prometheus.Observer
}

func newSourceMetrics(m *Metrics, name string) sourceMetrics {
	w := func(outcome string) prometheus.Counter { return m.webhooks.WithLabelValues(name, outcome) }
	return sourceMetrics{
		accepted: w("accepted"), duplicate: w("duplicate"), quarantined: w("quarantined"),
		unauthenticated: w("unauthenticated"), rateLimited: w("rate_limited"), unavailable: w("unavailable"), invalid: w("invalid"),
		duplicates:  m.duplicates.WithLabelValues(name),
		clientGone:  m.clientGone.WithLabelValues(name),
		authMissing: m.authFailures.WithLabelValues(name, "missing"),
		authWrong:   m.authFailures.WithLabelValues(name, "wrong"),
		latency:     m.ingestLatency.WithLabelValues(name),
	}
}

// pipeline normalizes a request body and stores the outcome: the event in
// the log, or the scrubbed request in quarantine. Ingest and reprocessing
// share it, so both follow the same id and quarantine rules.
type pipeline struct {
	log     *eventlog.Log
	logger  *slog.Logger
	metrics *Metrics
	sources map[string]*Source
	// keepRaw stores each event's request body with it (Event.raw).
	keepRaw bool
	// tracer makes the spans of each step (nil: tracing off).
	tracer *tracing.Tracer
}

// process normalizes body and appends the event, or quarantines the
// request; the error is a gRPC status.
func (p *pipeline) process(ctx context.Context, src *Source, body []byte, contentType string, received time.Time) (*hookstreamv1.IngestWebhookResponse, error) {
	// A write, once started, is not tied to the caller: a vendor that hangs
	// up mid-append must neither cancel it (its retry then finds the event
	// stored) nor show up as an unavailable log. The log's own write
	// deadline bounds it instead.
	ctx = context.WithoutCancel(ctx)
	_, span := p.tracer.Start(ctx, tracing.SpanNormalize, trace.SpanKindInternal)
	ev, err := src.Normalizer.Normalize(normalize.Input{Source: src.Name, Body: body, ReceivedAt: received})
	if err != nil {
		rej := normalize.AsRejection(err)
		if span.IsRecording() {
			span.SetAttributes(tracing.AttrVendor.String(normalize.Token(src.Vendor)), tracing.AttrRejection.String(rej.Code.String()))
		}
		span.End()
		return p.quarantine(ctx, src, body, contentType, received, rej)
	}
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrVendor.String(normalize.Token(src.Vendor)), tracing.AttrEventType.String(ev.GetType()),
			tracing.AttrEventID.String(ev.GetId()))
	}
	span.End()
	data, err := p.scrubEvent(src, ev, body, contentType)
	if err != nil { // an event protobuf cannot encode: invalid UTF-8 that got past validation
		p.logger.ErrorContext(ctx, "event not encoded", "source", src.Name, "event_id", ev.GetId(), "err", err)
		return p.quarantine(ctx, src, body, contentType, received, normalize.Reject(
			hookstreamv1.RejectionCode_REJECTION_CODE_INVALID_FIELD, "", "normalized event cannot be encoded"))
	}
	appendStart := time.Now()
	// The append span's context is stored with the event (see
	// eventlog.Append): Subscribe and outbound deliveries are its children.
	actx, span := p.tracer.Start(ctx, tracing.SpanAppend, trace.SpanKindProducer)
	app, err := p.append(actx, src.Name, ev, data)
	p.metrics.appendLatency.Observe(time.Since(appendStart).Seconds())
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrEventID.String(ev.GetId()), semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingDestinationName(eventlog.Subject(ev)), tracing.AttrDuplicate.Bool(app.Duplicate))
		if err != nil {
			span.SetStatus(otelcodes.Error, "append failed")
		}
	}
	span.End()
	switch {
	case errors.Is(err, eventlog.ErrTooLarge):
		return p.quarantine(ctx, src, body, contentType, received, normalize.Reject(
			hookstreamv1.RejectionCode_REJECTION_CODE_INVALID_FIELD, "", "normalized event exceeds the log's maximum message size"))
	case err != nil:
		if !errors.Is(err, eventlog.ErrDiskShort) { // the log says that once, not per webhook
			p.logger.ErrorContext(actx, "append failed", "source", src.Name, "event_id", ev.GetId(), "err", err)
		}
		return nil, errLogUnavailable()
	}
	outcome := hookstreamv1.IngestOutcome_INGEST_OUTCOME_ACCEPTED
	if app.Duplicate {
		outcome = hookstreamv1.IngestOutcome_INGEST_OUTCOME_DUPLICATE
		src.m.duplicates.Inc()
	}
	if p.logger.Enabled(ctx, slog.LevelDebug) { // the arguments alone cost allocations on every webhook
		p.logger.DebugContext(ctx, "event stored", "source", src.Name, "event_id", ev.GetId(), "type", ev.GetType(),
			"seq", app.Seq, "duplicate", app.Duplicate)
	}
	return &hookstreamv1.IngestWebhookResponse{Outcome: outcome, EventId: ev.GetId(), Duplicate: app.Duplicate}, nil
}

// scrubEvent removes src's secrets from ev, as from quarantined bodies, and
// gives it its request (body and content type, scrubbed the same way) when
// the log keeps raw requests. It runs after the id is derived: the
// original request is not part of it. It returns the event's encoding for
// the log. Most webhooks hold nothing to scrub, and the scrubbers' walk
// costs about as much as normalizing: a body and an encoding that
// normalize.NothingToScrub passes skip it.
func (p *pipeline) scrubEvent(src *Source, ev *hookstreamv1.Event, body []byte, contentType string) ([]byte, error) {
	members, secrets := src.Normalizer.SecretMembers(), src.Auth.Secrets()
	if p.keepRaw {
		clean := body
		if !normalize.NothingToScrub(body, members, secrets) {
			clean = normalize.ScrubBody(body, members, secrets)
		}
		ev.Raw = rawRequest(clean, scrubContentType(src, contentType))
	}
	data, err := eventlog.Encode(ev)
	// The request in it is scrubbed already, as a body (Closer's and
	// ClinchPad's always hold a secret member): the rest is what to look at.
	if err != nil || normalize.NothingToScrub(eventlog.StripRaw(data), members, secrets) {
		return data, err
	}
	// The request was scrubbed above, as a body: ScrubEvent leaves it be.
	raw := ev.Raw
	ev.Raw = nil
	normalize.ScrubEvent(ev, members, secrets)
	ev.Raw = raw
	return eventlog.Encode(ev)
}

// append stores ev, encoded as data, in the log. An event too large for
// the log with its raw request is stored without it: the configured limits
// leave room for the body twice (see internal/app), but a normalized event
// may still outgrow its body, and the event is worth more than its copy of
// the request.
func (p *pipeline) append(ctx context.Context, source string, ev *hookstreamv1.Event, data []byte) (eventlog.Appended, error) {
	app, err := p.log.AppendEncoded(ctx, ev, data)
	if errors.Is(err, eventlog.ErrTooLarge) && ev.Raw != nil {
		p.logger.WarnContext(ctx, "event stored without its raw request: too large for the log with it",
			"source", source, "event_id", ev.GetId(), "raw_bytes", len(ev.Raw.GetBodyText())+len(ev.Raw.GetBody()))
		ev.Raw = nil
		app, err = p.log.Append(ctx, ev)
	}
	return app, err
}

func (p *pipeline) quarantine(ctx context.Context, src *Source, body []byte, contentType string, received time.Time, rej *normalize.Rejection) (*hookstreamv1.IngestWebhookResponse, error) {
	clean := scrub(src, body)
	contentType = scrubContentType(src, contentType)
	key := clean
	if src.RetryKey != nil {
		key = src.RetryKey(clean)
	}
	q := &hookstreamv1.QuarantinedRequest{
		Id:          quarantineID(src.Name, key),
		Source:      src.Name,
		Vendor:      src.Vendor,
		Rejection:   rej.Proto(),
		ReceivedAt:  timestamppb.New(received),
		ContentType: contentType,
		Body:        clean,
		State:       hookstreamv1.QuarantineState_QUARANTINE_STATE_PENDING,
	}
	// Its log lines below name the quarantine span, which holds the
	// quarantine id (with tracing off qctx is ctx).
	qctx, span := p.tracer.Start(ctx, tracing.SpanQuarantine, trace.SpanKindInternal)
	created, err := p.log.Quarantine(ctx, q)
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrQuarantineID.String(q.GetId()), tracing.AttrRejection.String(rej.Code.String()))
		if err != nil {
			span.SetStatus(otelcodes.Error, "quarantine write failed")
		}
	}
	span.End()
	switch {
	case errors.Is(err, eventlog.ErrQuarantineFull):
		// Never a 2xx for a request that is not stored: the vendor retries
		// it, and it is quarantined once there is room again.
		p.metrics.quarantineFull.WithLabelValues(src.Name).Inc()
		p.logger.WarnContext(qctx, "webhook refused: quarantine full", "source", src.Name, "quarantine_id", q.GetId(),
			"code", rej.Code.String())
		return nil, errQuarantineFull(src.Name)
	case err != nil:
		if !errors.Is(err, eventlog.ErrDiskShort) { // the log says that once, not per webhook
			p.logger.ErrorContext(qctx, "quarantine write failed", "source", src.Name, "quarantine_id", q.GetId(), "err", err)
		}
		return nil, errLogUnavailable()
	}
	p.metrics.quarantined.WithLabelValues(src.Name, rej.Code.String()).Inc()
	p.logger.WarnContext(qctx, "webhook quarantined", "source", src.Name, "quarantine_id", q.GetId(),
		"code", rej.Code.String(), "field", rej.Field, "reason", rej.Message, "repeat", !created)
	return &hookstreamv1.IngestWebhookResponse{
		Outcome:      hookstreamv1.IngestOutcome_INGEST_OUTCOME_QUARANTINED,
		QuarantineId: q.GetId(),
		Rejection:    rej.Proto(),
	}, nil
}

// scrub removes secrets from a body before it is stored: the vendor's
// secret members (Closer apiKey, ClinchPad handshake_key) and every
// occurrence of the source's own credentials (see normalize.ScrubBody).
func scrub(src *Source, body []byte) []byte {
	out := normalize.ScrubBody(body, src.Normalizer.SecretMembers(), src.Auth.Secrets())
	if len(out) > 0 && &out[0] == &body[0] {
		out = bytes.Clone(out) // never alias the request buffer in storage
	}
	return out
}

// scrubContentType removes secrets from a request's content type: it is
// the caller's text too, and a credential there is removed like one in
// the body.
func scrubContentType(src *Source, contentType string) string {
	return string(normalize.ScrubBody([]byte(contentType), src.Normalizer.SecretMembers(), src.Auth.Secrets()))
}

// rawRequest is an event's copy of its request (Event.raw): the body,
// already scrubbed, as text when it is valid UTF-8 and as bytes otherwise,
// the convention of quarantined requests. It never aliases body.
func rawRequest(body []byte, contentType string) *hookstreamv1.RawRequest {
	r := &hookstreamv1.RawRequest{ContentType: contentType}
	if utf8.Valid(body) {
		r.BodyText = string(body)
	} else {
		r.Body = bytes.Clone(body)
	}
	return r
}

// quarantineID is deterministic, so a vendor retry of the same bad request
// lands on the same entry instead of a new one: key is the scrubbed body,
// without the attempt counter of a vendor that changes it on each retry
// (Source.RetryKey).
func quarantineID(source string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Ingest implements hookstreamv1.IngestServiceServer.
type Ingest struct {
	hookstreamv1.UnimplementedIngestServiceServer
	p   *pipeline
	now func() time.Time
	// hideUnknown answers unknown sources like bad credentials.
	hideUnknown bool
	// readBodies: with hideUnknown, every body is read for credentials
	// before the source is looked up (set when a source needs them).
	readBodies bool
	unknown    prometheus.Counter
	bodyLimit  int64
	bodies     auth.BodyReader
}

// IngestWebhook implements the RPC.
func (s *Ingest) IngestWebhook(ctx context.Context, req *hookstreamv1.IngestWebhookRequest) (*hookstreamv1.IngestWebhookResponse, error) {
	body := req.GetBody().GetData()
	// Checked before the source is looked up: the answer must not depend
	// on whether it exists.
	if s.bodyLimit > 0 && int64(len(body)) > s.bodyLimit {
		return nil, errBodyTooLarge(len(body), s.bodyLimit)
	}
	if compressed(body) {
		return nil, errCompressedBody()
	}
	var creds *auth.BodyCredentials
	if s.readBodies {
		// Every body is read for credentials, known source or not and
		// whatever its scheme, so the time to answer does not tell a real
		// source from a made-up one (a handshake key is found by parsing
		// the body, which dominates the cost on large bodies).
		c := s.bodies.Read(body)
		creds = &c
	}
	src, ok := s.p.sources[req.GetSource()]
	if !ok {
		s.unknown.Inc()
		// Named in the log (the name passed its rule: a-z 0-9 _ -), so a
		// URL mistyped at a vendor can be found; never a metric label.
		s.p.logger.InfoContext(ctx, "webhook for a source that is not configured", "source", req.GetSource())
		if s.hideUnknown {
			return nil, errHiddenUnauthenticated()
		}
		return nil, errUnknownSource(req.GetSource())
	}
	start := time.Now()
	defer func() { src.m.latency.Observe(time.Since(start).Seconds()) }()
	src.seen.request(start)
	// The webhook's own span is the caller's: the gateway's HTTP server
	// span, or the gRPC server span of a direct call.
	webhookSpan := trace.SpanFromContext(ctx)
	if webhookSpan.IsRecording() {
		webhookSpan.SetAttributes(tracing.AttrSource.String(src.Name), tracing.AttrVendor.String(normalize.Token(src.Vendor)))
	}

	_, span := s.p.tracer.Start(ctx, tracing.SpanAuth, trace.SpanKindInternal)
	err := src.Auth.Authenticate(auth.Request{Headers: req.GetHeaders(), Params: req.GetParams(), Body: body, BodyCredentials: creds})
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrAuthScheme.String(string(src.Auth.Scheme())))
		if err != nil {
			span.SetStatus(otelcodes.Error, "authentication failed")
		}
	}
	span.End()
	if err != nil {
		setOutcome(webhookSpan, "unauthenticated", nil)
		var f *auth.Failure
		missing := errors.As(err, &f) && f.Missing
		src.m.unauthenticated.Inc()
		if missing {
			src.m.authMissing.Inc()
		} else {
			src.m.authWrong.Inc()
		}
		src.seen.failure(start, "unauthenticated", err.Error())
		if ok, held := src.seen.authLog(start); ok {
			args := []any{"source", src.Name, "scheme", string(src.Auth.Scheme()), "missing_credentials", missing}
			if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
				args = append(args, "remote", p.Addr.String())
			}
			if held > 0 {
				args = append(args, "not_logged_since_last", held)
			}
			s.p.logger.WarnContext(ctx, "webhook rejected: authentication failed", args...)
		}
		if s.hideUnknown {
			return nil, errHiddenUnauthenticated()
		}
		return nil, errUnauthenticated(string(src.Auth.Scheme()), err.Error())
	}
	// Limited after authentication, so requests without credentials cannot
	// use up the vendor's budget and get its real deliveries refused.
	if src.limiter != nil {
		if r := src.limiter.Reserve(); r.Delay() > 0 {
			wait := r.Delay()
			r.Cancel()
			src.m.rateLimited.Inc()
			src.seen.failure(start, "rate_limited", "over the source's rate limit")
			setOutcome(webhookSpan, "rate_limited", nil)
			return nil, errRateLimited(src.Name, wait)
		}
	}
	resp, err := s.p.process(ctx, src, body, req.GetBody().GetContentType(), s.now().UTC())
	if ctx.Err() != nil {
		// The outcome below is still what happened to the webhook; the
		// caller just never saw it (the vendor retries, and dedup holds).
		src.m.clientGone.Inc()
		s.p.logger.DebugContext(ctx, "webhook caller went away before the answer", "source", src.Name,
			"event_id", resp.GetEventId(), "outcome", resp.GetOutcome().String(), "cause", context.Cause(ctx))
	}
	switch {
	case err != nil:
		src.m.unavailable.Inc()
		src.seen.failure(start, "unavailable", status.Convert(err).Message())
		setOutcome(webhookSpan, "unavailable", nil)
	case resp.GetOutcome() == hookstreamv1.IngestOutcome_INGEST_OUTCOME_QUARANTINED:
		src.m.quarantined.Inc()
		src.seen.failure(start, "quarantined", rejectionSummary(resp.GetRejection()))
		setOutcome(webhookSpan, "quarantined", resp)
	case resp.GetDuplicate():
		src.m.duplicate.Inc()
		setOutcome(webhookSpan, "duplicate", resp)
	default:
		src.m.accepted.Inc()
		setOutcome(webhookSpan, "accepted", resp)
	}
	return resp, err
}

// setOutcome records on a webhook's span what came of it, with the
// metrics' outcome names.
func setOutcome(span trace.Span, outcome string, resp *hookstreamv1.IngestWebhookResponse) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(tracing.AttrOutcome.String(outcome))
	if id := resp.GetEventId(); id != "" {
		span.SetAttributes(tracing.AttrEventID.String(id))
	}
	if id := resp.GetQuarantineId(); id != "" {
		span.SetAttributes(tracing.AttrQuarantineID.String(id))
	}
}

// compressed reports whether body starts like a gzip or zstd stream. Such a
// body cannot be scrubbed of secrets before it is stored, so it is refused.
func compressed(body []byte) bool {
	return bytes.HasPrefix(body, []byte{0x1f, 0x8b}) || bytes.HasPrefix(body, []byte{0x28, 0xb5, 0x2f, 0xfd})
}
