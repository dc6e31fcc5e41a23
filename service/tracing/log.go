package tracing

import (
	"context"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/trace"
)

// Log attribute keys of a record's trace context, W3C hex as
// OpenTelemetry shows them (32 and 16 digits).
const (
	LogTraceID = "trace_id"
	LogSpanID  = "span_id"
)

// LogHandler wraps h so that a record logged with a context holding a
// valid span context (…Context variants, Logger.Log) carries its trace_id
// and span_id, and an operator can go from a log line to its trace. It is
// installed only when tracing is on: with tracing off the logger is h
// itself. The ids are those of an unsampled trace too: receivers see that
// trace id (see FromContext), though no backend holds the trace.
//
// The ids always stay at the top level of the record, beside msg, even
// under a WithGroup: a search for trace_id=… finds every line whatever
// logger wrote it. A grouped logger's traced records are therefore
// rebuilt with their group attributes nested by hand and handled by the
// handler from before the first group; records without a span go through
// the grouped handler as they are.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(*logHandler); ok {
		return h
	}
	return &logHandler{h: h}
}

type logHandler struct {
	// h is the wrapped handler with every WithAttrs and WithGroup
	// applied, for records without a span context.
	h slog.Handler
	// base is h before its first group, nil when there is none; groups
	// are the groups opened since, outermost first, each with the
	// attributes added while it was the innermost.
	base   slog.Handler
	groups []logGroup
}

type logGroup struct {
	name  string
	attrs []slog.Attr
}

func (l *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l *logHandler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return l.h.Handle(ctx, r)
	}
	ids := [2]slog.Attr{slog.String(LogTraceID, sc.TraceID().String()), slog.String(LogSpanID, sc.SpanID().String())}
	if l.base == nil {
		// Clone: r's attributes may be shared with the caller's copy,
		// which AddAttrs must not write over.
		r = r.Clone()
		r.AddAttrs(ids[:]...)
		return l.h.Handle(ctx, r)
	}
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	for i := len(l.groups) - 1; i >= 0; i-- {
		g := l.groups[i]
		// An empty group is left out by the handlers, as WithGroup's
		// would be.
		attrs = []slog.Attr{{Key: g.name, Value: slog.GroupValue(slices.Concat(g.attrs, attrs)...)}}
	}
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	nr.AddAttrs(attrs...)
	nr.AddAttrs(ids[:]...)
	return l.base.Handle(ctx, nr)
}

func (l *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return l
	}
	n := &logHandler{h: l.h.WithAttrs(attrs), base: l.base}
	if l.base != nil {
		n.groups = slices.Clone(l.groups)
		last := &n.groups[len(n.groups)-1]
		last.attrs = slices.Concat(last.attrs, attrs)
	}
	return n
}

func (l *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return l
	}
	base := l.base
	if base == nil {
		base = l.h
	}
	return &logHandler{
		h:      l.h.WithGroup(name),
		base:   base,
		groups: append(slices.Clip(l.groups), logGroup{name: name}),
	}
}
