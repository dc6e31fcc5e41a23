package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/cputime"
	"github.com/hookstream/hookstream/service/delivery/webhook"
	"github.com/hookstream/hookstream/service/filter"
	"github.com/hookstream/hookstream/service/normalize"
)

// BenchmarkDelivery measures what outbound delivery costs: b.N events (a
// Closer closed conversation each) are stored first, then 10 endpoints
// that start at the beginning of the log deliver all of them to loopback
// receivers in this process, which answer 204. Reported per delivery:
// wall time (ns/op is per event) and CPU time, user and system, of the
// whole process (receivers included, which cost the same in every
// build). The harness's outbound scenarios measure the live path; this
// is the one to compare builds with, in process and without a load
// generator (-benchtime 2000x -count 6, alternating).
func BenchmarkDelivery(b *testing.B) {
	const endpoints = 10
	ctx := context.Background()
	log, store := openTestLog(b)
	ev := benchEvent(b)
	for i := range b.N {
		e := ev
		e.Id = normalize.EventID("bench", hookstreamv1.Vendor_VENDOR_CLOSER, strconv.Itoa(i))
		e.ReceivedAt = timestamppb.Now()
		if _, err := log.Append(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	var got atomic.Int64
	var urls []string
	for range endpoints {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			got.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}))
		b.Cleanup(srv.Close)
		urls = append(urls, srv.URL+"/hook")
	}
	comp, err := filter.NewCompiler()
	if err != nil {
		b.Fatal(err)
	}
	never := make(chan struct{})
	e, err := Start(ctx, Options{
		Logger: slog.New(slog.DiscardHandler), Log: log, Store: store, Metrics: NewMetrics(prometheus.NewRegistry()),
		Client: webhook.NewClient(webhook.Options{AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}),
		Compile: func(expr string) (*filter.Filter, string, error) {
			f, err := comp.Compile(expr)
			return f, "", err
		},
		Next:    func() (<-chan struct{}, uint64) { return never, 0 },
		Timeout: 10 * time.Second, Schedule: []time.Duration{time.Second}, DisableAfter: time.Hour,
		MaxInFlight: 10, MaxPending: 10_000, SecretOverlap: time.Hour,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.Stop)

	want := int64(b.N) * endpoints
	b.ResetTimer()
	cpu0, err := cputime.Process()
	if err != nil {
		b.Skip(err)
	}
	for i, u := range urls {
		ep := &Endpoint{Endpoint: &hookstreamv1.Endpoint{Id: fmt.Sprintf("ep_bench%d", i), Url: u,
			State: hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE, Start: &hookstreamv1.Endpoint_StartPosition{StartPosition: hookstreamv1.StartPosition_START_POSITION_BEGINNING}},
			Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Expires: []time.Time{{}}}
		if err := e.Init(ctx, ep.Endpoint); err != nil {
			b.Fatal(err)
		}
		if err := store.Create(ctx, ep); err != nil {
			b.Fatal(err)
		}
	}
	for deadline := time.Now().Add(2 * time.Minute); got.Load() < want; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d deliveries arrived in 2 minutes", got.Load(), want)
		}
	}
	cpu1, err := cputime.Process()
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	cpu := cpu1 - cpu0
	b.ReportMetric(float64(cpu.Microseconds())/float64(want), "cpu-µs/delivery")
	b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "deliveries/s")
}

// benchEvent is the Closer golden event, the harness's headline payload.
func benchEvent(b *testing.B) *hookstreamv1.Event {
	raw, err := os.ReadFile("../normalize/closer/testdata/closed.golden.json")
	if err != nil {
		b.Fatal(err)
	}
	var golden struct {
		Event json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		b.Fatal(err)
	}
	ev := &hookstreamv1.Event{}
	if err := protojson.Unmarshal(golden.Event, ev); err != nil {
		b.Fatal(err)
	}
	return ev
}
