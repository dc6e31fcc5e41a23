package system

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hookstream/hookstream/gateway"
	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/tracing"
)

var (
	logTraceID = regexp.MustCompile(`\btrace_id=([0-9a-f]+)\b`)
	logSpanID  = regexp.MustCompile(`\bspan_id=([0-9a-f]+)\b`)
)

// logLine waits for the server's log line that has every one of parts,
// and returns it.
func logLine(t *testing.T, s *server, parts ...string) string {
	t.Helper()
	var line string
	waitUntil(t, 10*time.Second, "a log line with "+strings.Join(parts, " "), func() bool {
		for l := range strings.Lines(s.logs.String()) {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				line = l
				return true
			}
		}
		return false
	})
	return line
}

// spanWhere waits for an exported span that match accepts.
func spanWhere(t *testing.T, exp *tracetest.InMemoryExporter, what string, match func(tracetest.SpanStub) bool) tracetest.SpanStub {
	t.Helper()
	var found tracetest.SpanStub
	waitUntil(t, 10*time.Second, what, func() bool {
		for _, sp := range exp.GetSpans() {
			if match(sp) {
				found = sp
				return true
			}
		}
		return false
	})
	return found
}

// TestTracingLogIDs: with tracing on, the log line of a quarantined
// webhook and that of a failed RPC carry the trace id of the exported
// trace and the id of the span they are about (the quarantine span, the
// RPC's server span); with tracing off they carry neither.
func TestTracingLogIDs(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		name := map[bool]string{true: "on", false: "off"}[on]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var s *server
			var exp *tracetest.InMemoryExporter
			if on {
				s, exp = startTraced(t, testConfig(t, t.TempDir(), ""))
			} else {
				s = startServer(t, testConfig(t, t.TempDir(), ""))
			}

			// A quarantined webhook.
			resp := s.post("/v1/webhooks/closer?token="+closerToken, []byte(`{"eventType": 1}`), nil)
			if resp.code != http.StatusAccepted {
				t.Fatalf("webhook: %d %v; want it quarantined", resp.code, resp.body)
			}
			qid, _ := resp.body["quarantine_id"].(string)
			quarantined := logLine(t, s, `msg="webhook quarantined"`, "quarantine_id="+qid)

			// A failed RPC (the event does not exist), over gRPC.
			_, err := s.events().GetEvent(context.Background(), &hookstreamv1.GetEventRequest{Id: strings.Repeat("0", 32)})
			if status.Code(err) != codes.NotFound {
				t.Fatalf("GetEvent: %v; want NotFound", err)
			}
			const method = "/hookstream.v1.EventService/GetEvent"
			rpc := logLine(t, s, "msg=rpc", "method="+method, "code=NotFound")

			if !on {
				for _, line := range []string{quarantined, rpc} {
					if strings.Contains(line, tracing.LogTraceID) || strings.Contains(line, tracing.LogSpanID) {
						t.Errorf("tracing off, yet: %s", line)
					}
				}
				return
			}
			root := spanWhere(t, exp, "the webhook's span", func(sp tracetest.SpanStub) bool {
				return sp.Name == gateway.WebhookSpan && attr(sp, string(tracing.AttrQuarantineID)) == qid
			})
			q := spanWhere(t, exp, "the quarantine span", func(sp tracetest.SpanStub) bool {
				return sp.Name == tracing.SpanQuarantine && sp.SpanContext.TraceID() == root.SpanContext.TraceID()
			})
			server := spanWhere(t, exp, "the GetEvent server span", func(sp tracetest.SpanStub) bool {
				return sp.Name == strings.TrimPrefix(method, "/") && sp.SpanKind == trace.SpanKindServer
			})
			for _, c := range []struct {
				line string
				span tracetest.SpanStub
			}{{quarantined, q}, {rpc, server}} {
				tid, sid := logTraceID.FindStringSubmatch(c.line), logSpanID.FindStringSubmatch(c.line)
				if tid == nil || sid == nil {
					t.Errorf("no trace_id or span_id: %s", c.line)
					continue
				}
				if want := c.span.SpanContext.TraceID().String(); tid[1] != want {
					t.Errorf("trace_id %s, want %s (span %s): %s", tid[1], want, c.span.Name, c.line)
				}
				if want := c.span.SpanContext.SpanID().String(); sid[1] != want {
					t.Errorf("span_id %s, want %s (span %s): %s", sid[1], want, c.span.Name, c.line)
				}
			}
			if got, want := root.SpanContext.TraceID().String(), logTraceID.FindStringSubmatch(quarantined); want == nil || got != want[1] {
				t.Errorf("the quarantine line is not in the webhook's trace %s: %s", got, quarantined)
			}
		})
	}
}

// TestTracingLogIDsDelivery: the line of an endpoint disabled by a
// delivery attempt (its receiver answered 410) carries the attempt span's
// trace and span ids, the trace of the webhook it delivered.
func TestTracingLogIDsDelivery(t *testing.T) {
	t.Parallel()
	s, exp := startTraced(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc := newReceiver(t, func(*http.Request, int) int { return http.StatusGone })
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL})
	if resp := s.post("/v1/webhooks/closer?token="+closerToken, fixture(t, "closer", "closed"), nil); resp.code != http.StatusOK {
		t.Fatalf("webhook: %d %v", resp.code, resp.body)
	}
	line := logLine(t, s, `msg="delivery: endpoint disabled"`, "endpoint="+ep.GetId())
	attempt := spanWhere(t, exp, "the attempt's span", func(sp tracetest.SpanStub) bool {
		return sp.Name == tracing.SpanDeliveryAttempt && attr(sp, string(tracing.AttrEndpointID)) == ep.GetId()
	})
	root := spanWhere(t, exp, "the webhook's span", func(sp tracetest.SpanStub) bool {
		return sp.Name == gateway.WebhookSpan && sp.SpanContext.TraceID() == attempt.SpanContext.TraceID()
	})
	tid, sid := logTraceID.FindStringSubmatch(line), logSpanID.FindStringSubmatch(line)
	if tid == nil || sid == nil || tid[1] != root.SpanContext.TraceID().String() || sid[1] != attempt.SpanContext.SpanID().String() {
		t.Errorf("want trace_id=%s span_id=%s (the attempt's): %s", root.SpanContext.TraceID(), attempt.SpanContext.SpanID(), line)
	}
}
