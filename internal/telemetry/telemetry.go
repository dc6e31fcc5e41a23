// Package telemetry builds hookstream's OpenTelemetry tracer provider from
// the config: an OTLP exporter over HTTP or gRPC, a parent-based ratio
// sampler and a batch span processor.
package telemetry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"

	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/internal/tlsconf"
)

// Options are what New needs besides the config.
type Options struct {
	Logger *slog.Logger
	// Processor, when set, takes the spans instead of an OTLP exporter
	// (tests, benchmarks): tracing is then on whatever the config's
	// endpoint, with its sampling ratio.
	Processor sdktrace.SpanProcessor
}

// Provider is tracing turned on: the SDK's tracer provider and what it
// exports to. A nil *Provider is tracing off.
type Provider struct {
	tp *sdktrace.TracerProvider
}

// New builds the tracer provider the config asks for, nil when tracing
// is off. Nothing is sent until there are spans, and an unreachable
// endpoint does not stop the start: exports fail later, logged.
func New(ctx context.Context, cfg config.Telemetry, o Options) (*Provider, error) {
	sp := o.Processor
	if sp == nil {
		if !cfg.Enabled() {
			return nil, nil
		}
		exp, err := exporter(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("telemetry: %w", err)
		}
		sp = sdktrace.NewBatchSpanProcessor(&loggingExporter{SpanExporter: exp, logger: o.Logger, endpoint: cfg.OTLPEndpoint})
	}
	ratio := config.DefaultSamplingRatio
	if cfg.SamplingRatio != nil {
		ratio = *cfg.SamplingRatio
	}
	name := cfg.ServiceName
	if name == "" {
		name = config.DefaultTelemetryServiceName
	}
	// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, as usual, come
	// last and win.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(name), semconv.ServiceVersion(version())),
		resource.WithFromEnv(),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		// A new trace is sampled at the ratio; a span with a parent
		// (an event's deliveries, a caller's sampled API call) follows
		// its parent, so a webhook's trace is whole or absent.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithSpanProcessor(sp),
	)
	return &Provider{tp: tp}, nil
}

// TracerProvider is the provider to make spans with, nil when tracing is
// off.
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p == nil {
		return nil
	}
	return p.tp
}

// Shutdown sends the spans still queued (within ctx) and stops.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.Shutdown(ctx)
}

// exporter makes the OTLP exporter of cfg: the endpoint's scheme says
// whether it uses TLS; an OTLP/HTTP URL without a path gets /v1/traces.
func exporter(ctx context.Context, cfg config.Telemetry) (sdktrace.SpanExporter, error) {
	u, err := url.Parse(cfg.OTLPEndpoint)
	if err != nil {
		return nil, errors.New("telemetry.otlp_endpoint is not a URL")
	}
	var tc *tls.Config
	if u.Scheme == "https" && (cfg.TLS.CA != "" || cfg.TLS.Cert != "") {
		if tc, err = tlsconf.Client(cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			return nil, fmt.Errorf("telemetry.tls: %w", err)
		}
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = config.DefaultTelemetryTimeout
	}
	if cfg.Protocol == "grpc" {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(u.Host), otlptracegrpc.WithTimeout(timeout)}
		switch {
		case u.Scheme == "http":
			opts = append(opts, otlptracegrpc.WithInsecure())
		case tc != nil:
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tc)))
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(cfg.Headers))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	path := u.Path
	if strings.Trim(path, "/") == "" {
		path = "/v1/traces"
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithURLPath(path), otlptracehttp.WithTimeout(timeout)}
	switch {
	case u.Scheme == "http":
		opts = append(opts, otlptracehttp.WithInsecure())
	case tc != nil:
		opts = append(opts, otlptracehttp.WithTLSClientConfig(tc))
	}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
	}
	return otlptracehttp.New(ctx, opts...)
}

// loggingExporter logs failed exports through hookstream's logger, at
// most once a minute with how many failed since, instead of OpenTelemetry's
// global error handler (which prints to stderr once per batch).
type loggingExporter struct {
	sdktrace.SpanExporter
	logger   *slog.Logger
	endpoint string

	mu     sync.Mutex
	last   time.Time
	failed int
}

func (e *loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err == nil || e.logger == nil {
		return err
	}
	e.mu.Lock()
	e.failed += len(spans)
	if time.Since(e.last) < time.Minute {
		e.mu.Unlock()
		return nil
	}
	failed := e.failed
	e.last, e.failed = time.Now(), 0
	e.mu.Unlock()
	e.logger.Warn("telemetry: spans could not be exported", "endpoint", e.endpoint, "spans_dropped", failed, "err", err)
	return nil
}

// version is the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
