package gateway

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// WebhookSpan names the span of one webhook request (an HTTP server span):
// the parent of the ingest service's spans (service/tracing).
const WebhookSpan = "POST /v1/webhooks/{source}"

// instrumentation names the instrumentation scope of the webhook span,
// the one hookstream's other spans have.
const instrumentation = "github.com/hookstream/hookstream"

// propagator is the W3C Trace Context, the one format hookstream reads
// and writes.
var propagator = propagation.TraceContext{}

// withTracing traces the REST routes with otelhttp when tp is set. The
// webhook route makes its own span (see webhooks.serve), Connect and
// gRPC-Web calls get theirs from the gRPC server they are passed to, and
// health checks, metrics scrapes, the OpenAPI document and CORS
// preflights are not traced: they would only be noise.
func withTracing(h http.Handler, tp trace.TracerProvider) http.Handler {
	if tp == nil {
		return h
	}
	return otelhttp.NewHandler(h, "hookstream",
		otelhttp.WithTracerProvider(tp),
		// hookstream's metrics are Prometheus's (/metrics); otelhttp's own
		// would go nowhere.
		otelhttp.WithMeterProvider(noop.NewMeterProvider()),
		otelhttp.WithPropagators(propagator),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch {
			case r.Method == http.MethodOptions, isRPC(r), strings.HasPrefix(r.URL.Path, "/v1/webhooks/"):
				return false
			}
			switch r.URL.Path {
			case "/healthz", "/metrics", "/openapi.json":
				return false
			}
			return true
		}),
		// The method alone: paths hold ids, which would make every span
		// name different. The gRPC span below names the method called.
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
	)
}

// webhookSpanOptions start a webhook's span: the root of a new trace, as
// vendors are outside callers whose trace context is not trusted (a
// caller could otherwise force every request to be sampled), linked to
// the context the caller sent, if any.
func webhookSpanOptions(r *http.Request) []trace.SpanStartOption {
	opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindServer)}
	if r.Header.Get("Traceparent") == "" {
		return opts
	}
	if caller := trace.SpanContextFromContext(propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))); caller.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: caller}))
	}
	return opts
}

// setRequestAttributes describes a webhook request on its (sampled) span,
// never with its query, which may hold the source's token.
func setRequestAttributes(span trace.Span, r *http.Request) {
	span.SetAttributes(
		semconv.HTTPRequestMethodKey.String(http.MethodPost),
		semconv.HTTPRoute("/v1/webhooks/{source}"),
		semconv.URLPath(r.URL.Path),
		semconv.URLScheme(scheme(r)),
		semconv.UserAgentOriginal(r.UserAgent()),
	)
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// statusWriter remembers the status of a response, for its span.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the server's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
