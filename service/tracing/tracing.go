// Package tracing is hookstream's OpenTelemetry tracing: span and
// attribute names, the W3C trace context stored with each event, and a
// tracer that costs nothing when tracing is off.
package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Span names. A webhook's span is the HTTP server span of its request
// (gateway.WebhookSpan) or the gRPC server span of an IngestWebhook call;
// these are its children and the spans that continue its trace later.
const (
	// SpanAuth checks the source's credentials.
	SpanAuth = "hookstream.auth"
	// SpanNormalize decodes, validates and normalizes the vendor's body.
	SpanNormalize = "hookstream.normalize"
	// SpanAppend stores the event in the log; its context is stored with
	// the event, so the spans below are its children.
	SpanAppend = "hookstream.append"
	// SpanQuarantine stores a request that could not be normalized.
	SpanQuarantine = "hookstream.quarantine"
	// SpanSubscribeDeliver is one event sent on one Subscribe stream.
	SpanSubscribeDeliver = "hookstream.subscribe.deliver"
	// SpanDeliveryAttempt is one outbound delivery attempt to an endpoint.
	SpanDeliveryAttempt = "hookstream.delivery.attempt"
)

// Attribute keys of hookstream's own spans (the standard ones come from
// OpenTelemetry's semantic conventions). None ever holds a secret or a
// payload value.
const (
	AttrSource       = attribute.Key("hookstream.source")
	AttrVendor       = attribute.Key("hookstream.vendor")
	AttrEventID      = attribute.Key("hookstream.event_id")
	AttrEventType    = attribute.Key("hookstream.event_type")
	AttrOutcome      = attribute.Key("hookstream.outcome")
	AttrDuplicate    = attribute.Key("hookstream.duplicate")
	AttrQuarantineID = attribute.Key("hookstream.quarantine_id")
	AttrRejection    = attribute.Key("hookstream.rejection")
	AttrAuthScheme   = attribute.Key("hookstream.auth.scheme")
	AttrCursor       = attribute.Key("hookstream.cursor")
	AttrSubscriber   = attribute.Key("hookstream.subscriber")
	AttrEndpointID   = attribute.Key("hookstream.endpoint_id")
	AttrAttempt      = attribute.Key("hookstream.delivery.attempt")
)

// Tracer starts hookstream's spans. A nil *Tracer is tracing turned off:
// Start then returns its context unchanged and a span that does nothing,
// without allocating, so the hot paths pay nothing for tracing they do
// not use.
type Tracer struct {
	t trace.Tracer
}

// instrumentation names hookstream's spans' instrumentation scope (the
// gateway's webhook span has the same).
const instrumentation = "github.com/hookstream/hookstream"

// New returns a tracer from tp; a nil tp is tracing off (a nil Tracer).
func New(tp trace.TracerProvider) *Tracer {
	if tp == nil {
		return nil
	}
	return &Tracer{t: tp.Tracer(instrumentation)}
}

// Enabled reports whether spans are made at all.
func (t *Tracer) Enabled() bool { return t != nil }

// off is the span of a nil Tracer: the API's no-op span, a shared value.
var off = trace.SpanFromContext(context.Background())

// Start starts a span of kind as a child of the span in ctx. Its options
// are built only when tracing is on: a variadic list of them would be
// allocated on every call, on.
func (t *Tracer) Start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	if t == nil {
		return ctx, off
	}
	if span, skip := unsampledParent(ctx); skip {
		return ctx, span
	}
	return t.t.Start(ctx, name, trace.WithSpanKind(kind))
}

// StartWith starts a span with options, for callers that have checked
// Enabled (the options cost an allocation either way).
func (t *Tracer) StartWith(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t == nil {
		return ctx, off
	}
	if span, skip := unsampledParent(ctx); skip {
		return ctx, span
	}
	return t.t.Start(ctx, name, opts...)
}

// unsampledParent returns the span in ctx when it is a parent that was
// not sampled: with hookstream's parent-based sampler (internal/telemetry)
// no child of it is ever recorded, so none is made, and the parent stands
// in for it (ending it, or setting anything on it, does nothing, as it
// records nothing). Most webhooks are not sampled at a low ratio, and this
// keeps their cost to the one span of the request. The trace context that
// travels on (stored with the event, sent to receivers) is then the
// parent's: the same trace, marked not sampled.
func unsampledParent(ctx context.Context) (trace.Span, bool) {
	span := trace.SpanFromContext(ctx)
	sc := span.SpanContext()
	return span, sc.IsValid() && !sc.IsSampled() && !span.IsRecording()
}

// Context is the W3C trace context of a span as stored with an event: a
// traceparent and, when the trace has vendor state, a tracestate header.
// The zero value is no trace (tracing was off when the event was stored).
type Context struct {
	Parent, State string
}

// HeaderParent and HeaderState are the W3C Trace Context header names,
// used on log messages and outbound requests alike.
const (
	HeaderParent = "traceparent"
	HeaderState  = "tracestate"
)

// FromContext is the trace context of the span in ctx, zero when there is
// none (tracing off, or nothing started one). An unsampled span's context
// is kept too: it carries the trace id and the decision not to sample,
// which parent-based sampling downstream follows.
func FromContext(ctx context.Context) Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return Context{}
	}
	var c carrier
	propagation.TraceContext{}.Inject(ctx, &c)
	return Context(c)
}

// Remote returns ctx with c as its remote parent span, or ctx as it is
// when c is zero or not a valid traceparent.
func (c Context) Remote(ctx context.Context) context.Context {
	if c.Parent == "" {
		return ctx
	}
	cr := carrier(c)
	return propagation.TraceContext{}.Extract(ctx, &cr)
}

// SpanContext is c parsed, invalid when c is zero or malformed.
func (c Context) SpanContext() trace.SpanContext {
	if c.Parent == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(c.Remote(context.Background()))
}

// carrier holds the two headers of a Context for the W3C propagator,
// without a map.
type carrier Context

func (c *carrier) Get(key string) string {
	switch key {
	case HeaderParent:
		return c.Parent
	case HeaderState:
		return c.State
	}
	return ""
}

func (c *carrier) Set(key, value string) {
	switch key {
	case HeaderParent:
		c.Parent = value
	case HeaderState:
		c.State = value
	}
}

func (c *carrier) Keys() []string { return []string{HeaderParent, HeaderState} }

// Propagator is the one propagation format hookstream reads and writes:
// W3C Trace Context (traceparent, tracestate).
func Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }
