package system

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/app"
	"github.com/hookstream/hookstream/internal/cputime"
)

// BenchmarkIngestHTTP measures the server side of one webhook: the HTTP
// handler, authentication, normalization, validation and the durable
// append to the embedded log, without the network. Run with -cpuprofile
// to see where the time goes. keep_raw=on (the default) stores each
// event with its request body (Event.raw), keep_raw=off without.
func BenchmarkIngestHTTP(b *testing.B) {
	for _, subs := range []int{0, 10} {
		for _, keepRaw := range []bool{true, false} {
			name := fmt.Sprintf("subscribers=%d/keep_raw=%s", subs, map[bool]string{true: "on", false: "off"}[keepRaw])
			b.Run(name, func(b *testing.B) { benchIngest(b, subs, keepRaw, "") })
		}
	}
}

// BenchmarkIngestHTTPTracing is BenchmarkIngestHTTP (no subscribers,
// keep_raw on) with tracing off, and on at two sampling ratios. The spans
// go through the batch processor an OTLP exporter would have to an
// exporter that drops them, so the figures leave out only the export's
// encoding and network, which happen off the request path.
func BenchmarkIngestHTTPTracing(b *testing.B) {
	for _, tc := range []struct {
		name  string
		ratio string // "" is tracing off
	}{{"tracing=off", ""}, {"tracing=1%", "0.01"}, {"tracing=100%", "1"}} {
		b.Run(tc.name, func(b *testing.B) { benchIngest(b, 0, true, tc.ratio) })
	}
}

// benchIngest posts webhooks in parallel; with ratio set, tracing is on,
// sampling that share of them.
func benchIngest(b *testing.B, subs int, keepRaw bool, ratio string) {
	extra := fmt.Sprintf("  keep_raw: %v\n", keepRaw)
	var opts []app.Option
	if ratio != "" {
		extra += "telemetry: {sampling_ratio: " + ratio + "}\n"
		opts = append(opts, app.WithSpanProcessor(sdktrace.NewBatchSpanProcessor(tracetest.NewNoopExporter())))
	}
	s := startServerOpts(b, testConfig(b, b.TempDir(), extra), opts...)
	for range subs {
		sub := s.subscribe(&hookstreamv1.SubscribeRequest{})
		go func() {
			for {
				if _, err := sub.stream.Recv(); err != nil {
					return
				}
			}
		}()
	}
	h := s.app.Handler()
	tmpl := fixture(b, "closer", "closed")
	b.ReportAllocs()
	b.SetBytes(int64(len(tmpl)))
	cpu0 := processCPU(b)
	defer func() {
		// ns/op is wall time with every core busy; CPU time per webhook
		// is the figure that compares builds on a machine that drifts.
		b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bytes.Replace(tmpl, []byte("1718000950456"), fmt.Appendf(nil, "%d", 1718000950456+seqNext()), 1)
			req := httptest.NewRequest(http.MethodPost, "/v1/webhooks/closer?token="+closerToken, bytes.NewReader(body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
}

// processCPU is the process's CPU time so far.
func processCPU(tb testing.TB) time.Duration {
	d, err := cputime.Process()
	if err != nil {
		tb.Fatal(err)
	}
	return d
}
