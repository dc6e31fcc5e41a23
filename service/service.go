package service

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/service/auth"
	"github.com/hookstream/hookstream/service/budget"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/filter"
	"github.com/hookstream/hookstream/service/tracing"
)

// Options are the dependencies of the services.
type Options struct {
	Logger  *slog.Logger
	Log     *eventlog.Log
	Sources []Source
	Filters *filter.Compiler
	// Metrics receive the service metrics (default: a private registry).
	Metrics *Metrics
	// Heartbeat is the idle interval after which a stream gets a heartbeat.
	Heartbeat time.Duration
	// StallTimeout ends a stream whose client accepts no byte of what was
	// sent to it for this long.
	StallTimeout time.Duration
	// MaxStreams caps open Subscribe streams (default 1000), and
	// MaxStreamsPerToken those of one API token (default 100).
	MaxStreams, MaxStreamsPerToken int
	// StreamBuffer is, in bytes, how much a live stream may have queued
	// before it is detached to catch up on its own, and the size of its
	// catch-up reads (default 1 MiB; one event always fits).
	StreamBuffer int
	// BufferBudget caps, in bytes, what all streams together hold beyond
	// their live queues: catch-up reads, and events until their bytes have
	// left for the client (default 256 MiB). Streams wait for room.
	BufferBudget int64
	// HideUnknownSources answers webhooks for unknown sources with 401
	// like bad credentials, instead of 404.
	HideUnknownSources bool
	// BodyLimit caps webhook bodies (bytes; zero: no cap), the same limit
	// the HTTP route enforces, so gRPC callers cannot go around it.
	BodyLimit int64
	// KeepRaw stores each event's original request body, secrets removed,
	// with it (Event.raw); the read APIs send it only when asked.
	KeepRaw bool
	// PublicURL is http.public_url: how vendors reach the webhook route,
	// for the URLs SourceService shows (empty: unknown).
	PublicURL string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Tracer makes the spans of webhooks and Subscribe deliveries; nil is
	// tracing off.
	Tracer *tracing.Tracer
}

// Services are the gRPC service implementations, sharing one pipeline.
type Services struct {
	Ingest     *Ingest
	Events     *Events
	Quarantine *Quarantine
	Admin      *Admin
	Sources    *Sources

	stopOnce sync.Once
	stopping chan struct{}
}

// New builds the services.
func New(o Options) (*Services, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = config.DefaultHeartbeat
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = config.DefaultStallTimeout
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = config.DefaultMaxStreams
	}
	if o.MaxStreamsPerToken <= 0 {
		o.MaxStreamsPerToken = config.DefaultMaxStreamsPerToken
	}
	if o.StreamBuffer <= 0 {
		o.StreamBuffer = config.DefaultStreamBuffer
	}
	if o.BufferBudget <= 0 {
		o.BufferBudget = config.DefaultBufferBudget
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	sources := make(map[string]*Source, len(o.Sources))
	for i := range o.Sources {
		s := &o.Sources[i]
		if _, dup := sources[s.Name]; dup {
			return nil, fmt.Errorf("service: duplicate source %q", s.Name)
		}
		if s.Auth == nil || s.Normalizer == nil {
			return nil, fmt.Errorf("service: source %q needs an authenticator and a normalizer", s.Name)
		}
		if s.RateLimit > 0 {
			s.limiter = rate.NewLimiter(rate.Limit(s.RateLimit), max(1, s.Burst))
		}
		s.m = newSourceMetrics(o.Metrics, s.Name)
		s.seen = &sourceSeen{}
		sources[s.Name] = s
	}
	p := &pipeline{log: o.Log, logger: o.Logger, metrics: o.Metrics, sources: sources, keepRaw: o.KeepRaw, tracer: o.Tracer}
	s := &Services{stopping: make(chan struct{})}
	s.Ingest = &Ingest{p: p, now: o.Now, hideUnknown: o.HideUnknownSources, bodyLimit: o.BodyLimit,
		unknown: o.Metrics.webhooks.WithLabelValues("_unknown", "unknown_source")}
	for _, src := range sources {
		// Only a handshake-key source parses bodies to authenticate; with
		// none, no source's answer costs a parse, and no request needs one.
		s.Ingest.readBodies = s.Ingest.readBodies || o.HideUnknownSources && src.Auth.Scheme() == auth.SchemeHandshake
	}
	s.Events = &Events{log: o.Log, logger: o.Logger, metrics: o.Metrics, filters: o.Filters, heartbeat: o.Heartbeat,
		stall: o.StallTimeout, now: o.Now, stopping: s.stopping, hub: newHub(o.Log, o.Logger, o.StreamBuffer),
		limits: newStreamLimits(o.MaxStreams, o.MaxStreamsPerToken), buffers: budget.New(o.BufferBudget), streamBuffer: o.StreamBuffer, tracer: o.Tracer}
	o.Metrics.buffers.Store(s.Events.buffers)
	if err := s.Events.hub.start(); err != nil {
		return nil, err
	}
	s.Quarantine = newQuarantine(p)
	s.Admin = newAdmin(p)
	s.Sources = newSources(o.Sources, sources, o.PublicURL)
	return s, nil
}

// Stop ends every open stream with UNAVAILABLE (clients resume from their
// cursor elsewhere), so a graceful shutdown is not held up by them.
func (s *Services) Stop() {
	s.stopOnce.Do(func() {
		close(s.stopping)
		s.Events.hub.stop()
	})
}
