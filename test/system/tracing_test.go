package system

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/hookstream/hookstream/gateway"
	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/app"
	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/internal/vendors"
	"github.com/hookstream/hookstream/service/eventlog"
	"github.com/hookstream/hookstream/service/tracing"
)

// startTraced starts a server whose spans go to an in-memory exporter.
func startTraced(t *testing.T, cfg *config.Config) (*server, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	s := startServerOpts(t, cfg, app.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(exp)))
	return s, exp
}

// startServerOpts is startServer with app options.
func startServerOpts(t testing.TB, cfg *config.Config, opts ...app.Option) *server {
	t.Helper()
	return startServerWith(t, cfg, vendors.Registry, opts...)
}

// oneWebhook sets up one outbound endpoint (its receiver) and one live
// Subscribe stream, posts one Closer webhook over HTTP, and waits until
// both got it. It returns the event id, its cursor and the request the
// receiver got.
func oneWebhook(t *testing.T, s *server, header map[string]string) (id, cursor string, got delivered) {
	t.Helper()
	rc := newReceiver(t, nil)
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL + "/hook"})
	rc.setSecret(ep.GetSecret())
	sub := s.subscribe(&hookstreamv1.SubscribeRequest{})
	if _, err := sub.stream.Header(); err != nil { // the stream is live from here
		t.Fatal(err)
	}
	resp := s.post("/v1/webhooks/closer?token="+closerToken, fixture(t, "closer", "closed"), header)
	if resp.code != http.StatusOK {
		t.Fatalf("webhook: %d %v", resp.code, resp.body)
	}
	id = fmt.Sprint(resp.body["event_id"])
	d := sub.next()
	if d.GetEvent().GetId() != id {
		t.Fatalf("subscribe delivered %s, want %s", d.GetEvent().GetId(), id)
	}
	rc.waitFor(t, []string{id}, 10*time.Second)
	reqs := rc.requests()
	return id, d.GetCursor(), reqs[len(reqs)-1]
}

// storedTrace is the trace context the log holds with the event at cursor.
func storedTrace(t *testing.T, s *server, cursor string) tracing.Context {
	t.Helper()
	seq, err := eventlog.ParseCursor(cursor)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.app.Log().At(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	return st.Trace
}

// spansBy waits until the exporter holds a span of every name, and returns
// them by name (the first of each).
func spansBy(t *testing.T, exp *tracetest.InMemoryExporter, names ...string) map[string]tracetest.SpanStub {
	t.Helper()
	var by map[string]tracetest.SpanStub
	waitUntil(t, 10*time.Second, "spans "+strings.Join(names, ", "), func() bool {
		by = map[string]tracetest.SpanStub{}
		for _, sp := range exp.GetSpans() {
			if _, ok := by[sp.Name]; !ok {
				by[sp.Name] = sp
			}
		}
		for _, n := range names {
			if _, ok := by[n]; !ok {
				return false
			}
		}
		return true
	})
	return by
}

func attr(sp tracetest.SpanStub, key string) string {
	for _, kv := range sp.Attributes {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// TestTracingSpanTree follows one webhook through to one Subscribe
// delivery and one outbound delivery: one trace, rooted at the webhook's
// span, with auth, normalize and append as its children, and the
// deliveries as children of the append, whose context the log stores with
// the event; the receiver gets the attempt's traceparent.
func TestTracingSpanTree(t *testing.T) {
	t.Parallel()
	s, exp := startTraced(t, testConfig(t, t.TempDir(), deliveryYAML))
	// A vendor's own trace context is not trusted: the webhook starts a
	// trace of its own, linked to it.
	vendorTrace := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	id, cursor, got := oneWebhook(t, s, map[string]string{"traceparent": vendorTrace})

	spans := spansBy(t, exp, gateway.WebhookSpan, tracing.SpanAuth, tracing.SpanNormalize, tracing.SpanAppend,
		tracing.SpanSubscribeDeliver, tracing.SpanDeliveryAttempt)
	root := spans[gateway.WebhookSpan]
	traceID := root.SpanContext.TraceID()
	if root.Parent.IsValid() {
		t.Errorf("the webhook span has parent %s; want a new root", root.Parent.SpanID())
	}
	if root.SpanKind != trace.SpanKindServer {
		t.Errorf("the webhook span is %s; want server", root.SpanKind)
	}
	if len(root.Links) != 1 || root.Links[0].SpanContext.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("the webhook span's links %v; want the vendor's context", root.Links)
	}
	for k, want := range map[string]string{"hookstream.source": "closer", "hookstream.vendor": "closer",
		"hookstream.event_id": id, "hookstream.outcome": "accepted", "http.response.status_code": "200",
		"http.route": "/v1/webhooks/{source}"} {
		if v := attr(root, k); v != want {
			t.Errorf("webhook span %s = %q, want %q", k, v, want)
		}
	}
	if strings.Contains(fmt.Sprint(root.Attributes), closerToken) {
		t.Error("the webhook span holds the source's token")
	}
	parentOf := map[string]string{
		tracing.SpanAuth:             gateway.WebhookSpan,
		tracing.SpanNormalize:        gateway.WebhookSpan,
		tracing.SpanAppend:           gateway.WebhookSpan,
		tracing.SpanSubscribeDeliver: tracing.SpanAppend,
		tracing.SpanDeliveryAttempt:  tracing.SpanAppend,
	}
	for child, parent := range parentOf {
		sp := spans[child]
		if sp.SpanContext.TraceID() != traceID {
			t.Errorf("%s is in trace %s, want %s", child, sp.SpanContext.TraceID(), traceID)
		}
		if sp.Parent.SpanID() != spans[parent].SpanContext.SpanID() {
			t.Errorf("%s has parent %s, want %s (%s)", child, sp.Parent.SpanID(), parent, spans[parent].SpanContext.SpanID())
		}
	}
	if v := attr(spans[tracing.SpanAppend], "hookstream.event_id"); v != id {
		t.Errorf("append span event id %q", v)
	}
	attempt := spans[tracing.SpanDeliveryAttempt]
	if attempt.SpanKind != trace.SpanKindClient || attr(attempt, "http.response.status_code") != "204" ||
		attr(attempt, "hookstream.event_id") != id || attr(attempt, "hookstream.delivery.attempt") != "1" {
		t.Errorf("attempt span %s %v", attempt.SpanKind, attempt.Attributes)
	}
	deliver := spans[tracing.SpanSubscribeDeliver]
	if attr(deliver, "hookstream.cursor") != cursor || attr(deliver, "hookstream.event_id") != id {
		t.Errorf("subscribe span %v", deliver.Attributes)
	}
	// The Subscribe send is linked to the stream's own span (the
	// subscriber's trace).
	if len(deliver.Links) != 1 || deliver.Links[0].SpanContext.TraceID() == traceID {
		t.Errorf("subscribe span links %v; want the stream's span", deliver.Links)
	}

	// The log holds the append span's context with the event.
	tc := storedTrace(t, s, cursor)
	if sc := tc.SpanContext(); sc.TraceID() != traceID || sc.SpanID() != spans[tracing.SpanAppend].SpanContext.SpanID() || !sc.IsSampled() {
		t.Errorf("stored trace context %q; want the append span's, sampled", tc.Parent)
	}
	// The receiver continues the trace from the attempt.
	want := fmt.Sprintf("00-%s-%s-01", traceID, attempt.SpanContext.SpanID())
	if tp := got.h.Get("traceparent"); tp != want {
		t.Errorf("the receiver got traceparent %q, want %q", tp, want)
	}
}

// TestTracingOff: without tracing nothing is stored with events and no
// traceparent goes out, even if the vendor sent one.
func TestTracingOff(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	_, cursor, got := oneWebhook(t, s, map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	if tc := storedTrace(t, s, cursor); tc != (tracing.Context{}) {
		t.Errorf("stored trace context %+v with tracing off", tc)
	}
	if tp := got.h.Get("traceparent"); tp != "" {
		t.Errorf("the receiver got traceparent %q with tracing off", tp)
	}
}

// TestTracingUnsampled: with a sampling ratio of 0 nothing is recorded,
// but the trace id still travels with the event, marked not sampled, so
// a receiver that samples by parent agrees.
func TestTracingUnsampled(t *testing.T) {
	t.Parallel()
	s, exp := startTraced(t, testConfig(t, t.TempDir(), deliveryYAML+"telemetry: {sampling_ratio: 0}\n"))
	_, cursor, got := oneWebhook(t, s, nil)
	tc := storedTrace(t, s, cursor)
	sc := tc.SpanContext()
	if !sc.IsValid() || sc.IsSampled() {
		t.Fatalf("stored trace context %q; want a valid, unsampled one", tc.Parent)
	}
	if tp := got.h.Get("traceparent"); !strings.HasPrefix(tp, "00-"+sc.TraceID().String()+"-") || !strings.HasSuffix(tp, "-00") {
		t.Errorf("the receiver got traceparent %q; want trace %s, not sampled", tp, sc.TraceID())
	}
	for _, sp := range exp.GetSpans() {
		if sp.SpanContext.TraceID() == sc.TraceID() {
			t.Errorf("span %s of the unsampled webhook was recorded", sp.Name)
		}
	}
}

// otlpSink is an in-process OTLP receiver (over HTTP or gRPC) that keeps
// the names of the spans it is sent, with their service.name.
type otlpSink struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []string // "service/name"
}

func (k *otlpSink) add(req *collectortrace.ExportTraceServiceRequest) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				k.spans = append(k.spans, service+"/"+sp.GetName())
			}
		}
	}
}

func (k *otlpSink) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	k.add(req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (k *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" ||
		r.Header.Get("X-Test-Key") != "k1" {
		http.Error(w, "unexpected request", http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	req := &collectortrace.ExportTraceServiceRequest{}
	if err == nil {
		err = proto.Unmarshal(raw, req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	k.add(req)
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (k *otlpSink) names() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.spans)
}

// TestTracingOTLPExport sends the spans of one webhook to an in-process
// OTLP receiver, over HTTP and over gRPC, configured as an operator would:
// the config's endpoint, protocol, headers and service name reach it.
func TestTracingOTLPExport(t *testing.T) {
	t.Parallel()
	for _, protocol := range []string{"http", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			sink := &otlpSink{}
			var endpoint string
			if protocol == "http" {
				srv := httptest.NewServer(sink)
				t.Cleanup(srv.Close)
				endpoint = srv.URL
			} else {
				lis, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				g := grpc.NewServer()
				collectortrace.RegisterTraceServiceServer(g, sink)
				go func() { _ = g.Serve(lis) }()
				t.Cleanup(g.Stop)
				endpoint = "http://" + lis.Addr().String()
			}
			s := startServer(t, testConfig(t, t.TempDir(), fmt.Sprintf(
				"telemetry: {otlp_endpoint: %q, protocol: %s, service_name: hooks-test, headers: {x-test-key: k1}}\n", endpoint, protocol)))
			if resp := s.post("/v1/webhooks/closer?token="+closerToken, fixture(t, "closer", "closed"), nil); resp.code != http.StatusOK {
				t.Fatalf("webhook: %d %v", resp.code, resp.body)
			}
			// Shutting down sends what the batch still holds.
			s.stop()
			got := sink.names()
			for _, want := range []string{gateway.WebhookSpan, tracing.SpanAuth, tracing.SpanNormalize, tracing.SpanAppend} {
				if !slices.Contains(got, "hooks-test/"+want) {
					t.Errorf("the receiver got %v; want %s of service hooks-test", got, want)
				}
			}
		})
	}
}

// TestTracingAPI: a REST call is one trace, its HTTP span the parent of
// the gRPC call it becomes; health checks and metrics make no spans.
func TestTracingAPI(t *testing.T) {
	t.Parallel()
	s, exp := startTraced(t, testConfig(t, t.TempDir(), ""))
	for _, path := range []string{"/healthz", "/metrics"} {
		if code, body := httpDo(t, http.MethodGet, s.base+path, readToken); code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
	}
	if code, body := httpDo(t, http.MethodGet, s.base+"/v1/events?page_size=1", readToken); code != http.StatusOK {
		t.Fatalf("ListEvents: %d %s", code, body)
	}
	const rpc = "hookstream.v1.EventService/ListEvents"
	var server tracetest.SpanStub
	waitUntil(t, 10*time.Second, "the ListEvents server span", func() bool {
		for _, sp := range exp.GetSpans() {
			if sp.Name == rpc && sp.SpanKind == trace.SpanKindServer {
				server = sp
				return true
			}
		}
		return false
	})
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, sp := range exp.GetSpans() {
		byID[sp.SpanContext.SpanID()] = sp
		if sp.Name != rpc && sp.Name != "GET" {
			t.Errorf("unexpected span %s (%s)", sp.Name, attr(sp, "url.path"))
		}
	}
	// server ← gRPC client ← HTTP GET, all in one trace.
	client, ok := byID[server.Parent.SpanID()]
	if !ok || client.SpanKind != trace.SpanKindClient {
		t.Fatalf("the server span's parent %v is not the gateway's gRPC client span", server.Parent.SpanID())
	}
	root, ok := byID[client.Parent.SpanID()]
	if !ok || root.Name != "GET" || root.SpanKind != trace.SpanKindServer || root.Parent.IsValid() {
		t.Fatalf("the client span's parent is %+v; want the HTTP GET root", root.Name)
	}
}

// TestTracingIngestRPC: a webhook handed in over gRPC (IngestService, as a
// vendor's relay would) starts a trace of its own, like one posted to
// /v1/webhooks/{source}: the caller's traceparent, sampled or not, is a
// link, never the parent, so an outside caller cannot decide what is
// sampled. At ratio 0 nothing of it is recorded; at ratio 1 its server
// span is a root linked to the caller's span.
func TestTracingIngestRPC(t *testing.T) {
	t.Parallel()
	const callerTrace, callerSpan = "abababababababababababababababa1", "cdcdcdcdcdcdcdcd"
	ingest := func(s *server, n int) {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
		body := fmt.Sprintf(`{"eventType": "ThreadCreatedEvent", "timestamp": %d, "customer": {"id": "c-%d"}}`, 1700000000000+n, n)
		if _, err := hookstreamv1.NewIngestServiceClient(s.conn).IngestWebhook(ctx, &hookstreamv1.IngestWebhookRequest{
			Source: "closer", Params: map[string]string{"token": closerToken},
			Body: &httpbody.HttpBody{ContentType: "application/json", Data: []byte(body)},
		}); err != nil {
			t.Fatal(err)
		}
	}
	caller, err := trace.TraceIDFromHex(callerTrace)
	if err != nil {
		t.Fatal(err)
	}

	s0, exp0 := startTraced(t, testConfig(t, t.TempDir(), "telemetry: {sampling_ratio: 0}\n"))
	ingest(s0, 1)
	s1, exp1 := startTraced(t, testConfig(t, t.TempDir(), ""))
	ingest(s1, 2)

	const rpc = "hookstream.v1.IngestService/IngestWebhook"
	server := spansBy(t, exp1, rpc, tracing.SpanNormalize, tracing.SpanAppend)[rpc]
	if server.Parent.IsValid() {
		t.Errorf("the IngestWebhook span's parent is %s; want a root", server.Parent.SpanID())
	}
	if server.SpanContext.TraceID() == caller {
		t.Errorf("the IngestWebhook span continues the caller's trace %s", caller)
	}
	if len(server.Links) != 1 || server.Links[0].SpanContext.TraceID() != caller || server.Links[0].SpanContext.SpanID().String() != callerSpan {
		t.Errorf("the IngestWebhook span's links are %+v; want the caller's span", server.Links)
	}
	// At ratio 0 nothing is recorded, however the caller flagged its trace
	// (the server at ratio 1 has exported by now, so the one at 0 had time).
	for _, sp := range exp0.GetSpans() {
		t.Errorf("at ratio 0, span %s (trace %s) was recorded", sp.Name, sp.SpanContext.TraceID())
	}
}
