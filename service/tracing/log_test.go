package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// spanCtx is a context holding a valid (remote) span context.
func spanCtx(t testing.TB) (context.Context, trace.SpanContext) {
	t.Helper()
	tid, err := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex("b7ad6b7169203331")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithSpanContext(context.Background(), sc), sc
}

// shapes are loggers as the code builds them: plain, With, groups (nested,
// empty, with attributes before and after them).
var shapes = []struct {
	name  string
	shape func(*slog.Logger) *slog.Logger
}{
	{"plain", func(l *slog.Logger) *slog.Logger { return l }},
	{"with", func(l *slog.Logger) *slog.Logger { return l.With("subscriber", 7) }},
	{"group", func(l *slog.Logger) *slog.Logger { return l.WithGroup("g") }},
	{"with group with", func(l *slog.Logger) *slog.Logger { return l.With("a", 1).WithGroup("g").With("b", 2) }},
	{"nested groups", func(l *slog.Logger) *slog.Logger {
		return l.WithGroup("g").With("b", 2).WithGroup("h").With("c", 3, "d", "x")
	}},
	{"empty group", func(l *slog.Logger) *slog.Logger { return l.With("a", 1).WithGroup("g").WithGroup("h") }},
}

// logOne writes one record through shape on a JSON handler, wrapped or
// not, and decodes it; six attributes, more than a Record holds inline.
func logOne(ctx context.Context, t *testing.T, wrap bool, shape func(*slog.Logger) *slog.Logger, attrs ...any) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	var h slog.Handler = slog.NewJSONHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	if wrap {
		h = LogHandler(h)
	}
	shape(slog.New(h)).InfoContext(ctx, "webhook quarantined", attrs...)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	return m
}

// TestLogHandler: a record with a span context is the same record as the
// wrapped handler writes it, plus trace_id and span_id at its top level
// whatever groups the logger has; one without is written unchanged.
func TestLogHandler(t *testing.T) {
	t.Parallel()
	traced, sc := spanCtx(t)
	// With no attributes of its own, a record leaves an empty group out.
	for _, attrs := range [][]any{
		{"source", "closer", "quarantine_id", "q_1", "code", "INVALID_JSON", "field", "", "reason", "x", "repeat", false},
		nil,
	} {
		for _, s := range shapes {
			t.Run(fmt.Sprintf("%s/%d attrs", s.name, len(attrs)/2), func(t *testing.T) {
				t.Parallel()
				want := logOne(context.Background(), t, false, s.shape, attrs...)
				if got := logOne(context.Background(), t, true, s.shape, attrs...); !maps.EqualFunc(got, want, jsonEqual) {
					t.Errorf("without a span:\n got %v\nwant %v", got, want)
				}
				want[LogTraceID], want[LogSpanID] = sc.TraceID().String(), sc.SpanID().String()
				if got := logOne(traced, t, true, s.shape, attrs...); !maps.EqualFunc(got, want, jsonEqual) {
					t.Errorf("with a span:\n got %v\nwant %v", got, want)
				}
			})
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestLogHandlerText: in text the ids are plain top-level keys, after the
// record's own (grouped ones included).
func TestLogHandlerText(t *testing.T) {
	t.Parallel()
	ctx, _ := spanCtx(t)
	var buf bytes.Buffer
	l := slog.New(LogHandler(slog.NewTextHandler(&buf, nil)))
	l.WithGroup("g").InfoContext(ctx, "rpc", "code", "NotFound")
	line := buf.String()
	if !strings.HasSuffix(line, " g.code=NotFound trace_id=0af7651916cd43dd8448eb211c80319c span_id=b7ad6b7169203331\n") {
		t.Errorf("got %q", line)
	}
	buf.Reset()
	l.Info("no context")
	if strings.Contains(buf.String(), LogTraceID) {
		t.Errorf("a record without a context has a trace id: %q", buf.String())
	}
}

// TestLogHandlerEnabled: levels are the wrapped handler's.
func TestLogHandlerEnabled(t *testing.T) {
	t.Parallel()
	ctx, _ := spanCtx(t)
	h := LogHandler(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, h := range []slog.Handler{h, h.WithAttrs([]slog.Attr{slog.Int("a", 1)}), h.WithGroup("g")} {
		if h.Enabled(ctx, slog.LevelInfo) || !h.Enabled(ctx, slog.LevelWarn) {
			t.Errorf("%T: levels are not the wrapped handler's", h)
		}
	}
	if LogHandler(h) != h {
		t.Error("LogHandler wraps a handler twice")
	}
}

// TestLogHandlerSharedRecord: the ids are added to a copy, so a record
// handled twice (or by another handler too) does not get them twice or
// get corrupted.
func TestLogHandlerSharedRecord(t *testing.T) {
	t.Parallel()
	ctx, _ := spanCtx(t)
	var buf bytes.Buffer
	h := LogHandler(slog.NewTextHandler(&buf, nil))
	r := slog.NewRecord(time.Time{}, slog.LevelInfo, "m", 0)
	r.Add("a", 1, "b", 2, "c", 3, "d", 4, "e", 5, "f", 6)
	for range 2 {
		if err := h.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 || lines[0] != lines[1] || strings.Count(lines[0], LogTraceID+"=") != 1 || strings.Contains(lines[0], "BUG") {
		t.Errorf("got %q", lines)
	}
	if r.NumAttrs() != 6 {
		t.Errorf("the caller's record has %d attributes, want 6", r.NumAttrs())
	}
}

// nopHandler takes every record and does nothing, so allocations
// measured are the wrapper's.
type nopHandler struct{}

func (nopHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (nopHandler) Handle(context.Context, slog.Record) error { return nil }
func (h nopHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h nopHandler) WithGroup(string) slog.Handler           { return h }

// TestLogHandlerNoSpanCostsNothing: with tracing on, records without a
// span (most background logging) cost the wrapper no allocation. With
// tracing off it is not installed at all.
func TestLogHandlerNoSpanCostsNothing(t *testing.T) {
	h := LogHandler(nopHandler{})
	r := slog.NewRecord(time.Time{}, slog.LevelInfo, "m", 0)
	r.Add("a", 1, "b", 2, "c", 3, "d", 4, "e", 5, "f", 6)
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { _ = h.Handle(ctx, r) }); n != 0 {
		t.Errorf("a record without a span allocates %v times", n)
	}
}

// BenchmarkLogHandler is one JSON log line of six attributes through the
// wrapper, with and without a span in its context, against the bare
// handler.
func BenchmarkLogHandler(b *testing.B) {
	traced, _ := spanCtx(b)
	for _, bc := range []struct {
		name string
		wrap bool
		ctx  context.Context
	}{{"bare", false, context.Background()}, {"no span", true, context.Background()}, {"span", true, traced}} {
		b.Run(bc.name, func(b *testing.B) {
			var h slog.Handler = slog.NewJSONHandler(io.Discard, nil)
			if bc.wrap {
				h = LogHandler(h)
			}
			l := slog.New(h)
			b.ReportAllocs()
			for b.Loop() {
				l.WarnContext(bc.ctx, "webhook quarantined", "source", "closer", "quarantine_id", "q_0123456789abcdef",
					"code", "REJECTION_CODE_INVALID_JSON", "field", "", "reason", "not JSON", "repeat", false)
			}
		})
	}
}
