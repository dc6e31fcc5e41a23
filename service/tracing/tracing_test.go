package tracing

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestOffCostsNothing(t *testing.T) {
	var tr *Tracer
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		c, span := tr.Start(ctx, SpanAppend, trace.SpanKindProducer)
		if span.IsRecording() {
			span.SetAttributes(AttrEventID.String("x"))
		}
		span.End()
		if FromContext(c) != (Context{}) {
			t.Fatal("a trace context with tracing off")
		}
	})
	if allocs != 0 {
		t.Errorf("tracing off allocates %v times per span", allocs)
	}
	if New(nil).Enabled() {
		t.Error("New(nil) is enabled")
	}
}

func TestContextRoundTrip(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tr := New(tp)
	ctx, span := tr.Start(context.Background(), SpanAppend, trace.SpanKindProducer)
	stored := FromContext(ctx)
	span.End()
	sc := span.SpanContext()
	if want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"; stored.Parent != want {
		t.Fatalf("stored %q, want %q", stored.Parent, want)
	}
	// A later span continues the trace from what was stored.
	_, child := tr.Start(stored.Remote(context.Background()), SpanDeliveryAttempt, trace.SpanKindClient)
	child.End()
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[1].Parent.SpanID() != sc.SpanID() || spans[1].SpanContext.TraceID() != sc.TraceID() || !spans[1].Parent.IsRemote() {
		t.Errorf("child %+v; want a child of %s", spans[1].Parent, sc.SpanID())
	}
	if got := stored.SpanContext(); !got.Equal(sc.WithRemote(true)) {
		t.Errorf("SpanContext() = %v, want %v", got, sc)
	}
	for _, bad := range []Context{{}, {Parent: "not a traceparent"}, {Parent: "00-00000000000000000000000000000000-b7ad6b7169203331-01"}} {
		if bad.SpanContext().IsValid() {
			t.Errorf("%q parsed as valid", bad.Parent)
		}
		if ctx := bad.Remote(context.Background()); trace.SpanContextFromContext(ctx).IsValid() {
			t.Errorf("%q gave a remote parent", bad.Parent)
		}
	}
}

// BenchmarkWebhookSpans is the tracing work of one webhook alone: its
// root span, auth, normalize and append, and the trace context stored
// with the event, with tracing off and sampled at 1 % and 100 % (spans to
// a batch processor whose exporter drops them).
func BenchmarkWebhookSpans(b *testing.B) {
	for _, tc := range []struct {
		name  string
		ratio float64 // < 0: off
	}{{"off", -1}, {"ratio=0.01", 0.01}, {"ratio=1", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			var tr *Tracer
			if tc.ratio >= 0 {
				tp := sdktrace.NewTracerProvider(
					sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(tc.ratio))),
					sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				tr = New(tp)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ctx, root := tr.Start(context.Background(), "POST /v1/webhooks/{source}", trace.SpanKindServer)
					for _, name := range []string{SpanAuth, SpanNormalize} {
						_, span := tr.Start(ctx, name, trace.SpanKindInternal)
						if span.IsRecording() {
							span.SetAttributes(AttrEventID.String("0123456789abcdef0123456789abcdef"))
						}
						span.End()
					}
					actx, span := tr.Start(ctx, SpanAppend, trace.SpanKindProducer)
					_ = FromContext(actx)
					span.End()
					root.End()
				}
			})
		})
	}
}
