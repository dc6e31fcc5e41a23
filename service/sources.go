package service

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/auth"
	"github.com/hookstream/hookstream/service/normalize"
)

// Sources implements hookstreamv1.SourceServiceServer: the configured
// sources as the inspector and operators see them.
type Sources struct {
	hookstreamv1.UnimplementedSourceServiceServer
	// order is the config's order; byName finds one.
	order     []*Source
	byName    map[string]*Source
	publicURL string
}

func newSources(configured []Source, byName map[string]*Source, publicURL string) *Sources {
	s := &Sources{byName: byName, publicURL: strings.TrimSuffix(publicURL, "/")}
	for i := range configured {
		s.order = append(s.order, byName[configured[i].Name])
	}
	return s
}

// ListSources implements the RPC. Secrets are masked: the caller may hold
// only a read token.
func (s *Sources) ListSources(context.Context, *hookstreamv1.ListSourcesRequest) (*hookstreamv1.ListSourcesResponse, error) {
	resp := &hookstreamv1.ListSourcesResponse{}
	for _, src := range s.order {
		resp.Sources = append(resp.Sources, s.describe(src))
	}
	return resp, nil
}

// GetSourceCredentials implements the RPC (admin scope, see
// requiredScope).
func (s *Sources) GetSourceCredentials(_ context.Context, req *hookstreamv1.GetSourceCredentialsRequest) (*hookstreamv1.GetSourceCredentialsResponse, error) {
	src, ok := s.byName[req.GetSource()]
	if !ok {
		return nil, errUnknownSource(req.GetSource())
	}
	return &hookstreamv1.GetSourceCredentialsResponse{SetupFields: setupFields(normalize.SetupFields(s.url(src), src.Credentials), true)}, nil
}

// path is a source's webhook path on the HTTP port.
func path(src *Source) string { return "/v1/webhooks/" + src.Name }

// url is the source's webhook URL as vendors reach it: under the public
// URL when one is configured, else its path alone.
func (s *Sources) url(src *Source) string { return s.publicURL + path(src) }

func (s *Sources) describe(src *Source) *hookstreamv1.Source {
	out := &hookstreamv1.Source{
		Name:          src.Name,
		Vendor:        src.Vendor,
		VendorTitle:   src.Title,
		AuthScheme:    authScheme(src.Auth.Scheme()),
		WebhookPath:   path(src),
		SetupLocation: src.Where,
		SetupFields:   setupFields(normalize.SetupFields(s.url(src), src.Credentials), false),
		RateLimit:     src.RateLimit,
		Stats: &hookstreamv1.SourceStats{
			Accepted:        counterValue(src.m.accepted),
			Duplicate:       counterValue(src.m.duplicate),
			Quarantined:     counterValue(src.m.quarantined),
			Unauthenticated: counterValue(src.m.unauthenticated),
			RateLimited:     counterValue(src.m.rateLimited),
			Unavailable:     counterValue(src.m.unavailable),
		},
	}
	if s.publicURL != "" {
		out.WebhookUrl = s.url(src)
	}
	if t := src.seen.last.Load(); t != 0 {
		out.Stats.LastRequestTime = timestamppb.New(time.Unix(0, t))
	}
	if e := src.seen.err.Load(); e != nil {
		out.Stats.LastError = &hookstreamv1.SourceError{Time: timestamppb.New(e.time), Outcome: e.outcome, Message: e.message}
	}
	return out
}

// setupFields converts fields to their proto form; without reveal, secret
// values are left out.
func setupFields(fields []normalize.SetupField, reveal bool) []*hookstreamv1.SetupField {
	out := make([]*hookstreamv1.SetupField, 0, len(fields))
	for _, f := range fields {
		p := &hookstreamv1.SetupField{Label: f.Label, Value: f.Value, Secret: f.Secret, MaskedValue: f.Masked}
		if f.Secret && !reveal {
			p.Value = ""
		}
		out = append(out, p)
	}
	return out
}

func authScheme(s auth.Scheme) hookstreamv1.SourceAuthScheme {
	switch s {
	case auth.SchemeNone:
		return hookstreamv1.SourceAuthScheme_SOURCE_AUTH_SCHEME_NONE
	case auth.SchemeBasic:
		return hookstreamv1.SourceAuthScheme_SOURCE_AUTH_SCHEME_BASIC
	case auth.SchemeHandshake:
		return hookstreamv1.SourceAuthScheme_SOURCE_AUTH_SCHEME_HANDSHAKE_KEY
	case auth.SchemeToken:
		return hookstreamv1.SourceAuthScheme_SOURCE_AUTH_SCHEME_TOKEN
	}
	return hookstreamv1.SourceAuthScheme_SOURCE_AUTH_SCHEME_UNSPECIFIED
}

// counterValue reads a counter of the metrics, so ListSources and
// /metrics never disagree.
func counterValue(c prometheus.Counter) int64 {
	var m dto.Metric
	if c == nil || c.Write(&m) != nil {
		return 0
	}
	return int64(m.GetCounter().GetValue())
}

// sourceSeen is what a source's last requests left behind: written on the
// ingest path without a lock, read by ListSources.
type sourceSeen struct {
	last atomic.Int64 // unix nanoseconds of the last request; 0: none yet
	err  atomic.Pointer[sourceFailure]

	// Authentication failures are logged at most once per authLogEvery
	// for a source: a misconfigured vendor or someone guessing would
	// otherwise write a line per request. held counts those not logged
	// since the last line, which says how many.
	authMu     sync.Mutex
	authLogged time.Time
	authHeld   int
}

// authLogEvery is how often a source's authentication failures are logged.
const authLogEvery = 10 * time.Second

// authLog says whether an authentication failure at now is logged, and how
// many were not since the last one that was.
func (s *sourceSeen) authLog(now time.Time) (ok bool, held int) {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if !s.authLogged.IsZero() && now.Sub(s.authLogged) < authLogEvery {
		s.authHeld++
		return false, 0
	}
	held, s.authHeld, s.authLogged = s.authHeld, 0, now
	return true, held
}

// sourceFailure is a request that produced no event. Its message holds no
// credential and no payload value.
type sourceFailure struct {
	time             time.Time
	outcome, message string
}

func (s *sourceSeen) request(t time.Time) { s.last.Store(t.UnixNano()) }

func (s *sourceSeen) failure(t time.Time, outcome, message string) {
	s.err.Store(&sourceFailure{time: t, outcome: outcome, message: message})
}

// rejectionSummary names why a request was quarantined by its code and
// field: the message may quote the payload, which read tokens must not see.
func rejectionSummary(r *hookstreamv1.Rejection) string {
	code := strings.TrimPrefix(r.GetCode().String(), "REJECTION_CODE_")
	if r.GetField() != "" {
		return code + " at " + r.GetField()
	}
	return code
}
