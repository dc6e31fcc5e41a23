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
	"github.com/hookstream/hookstream/service/eventlog"
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
	log, store := openTestLog(b)
	appendEvents(b, log, "bench", b.N)
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
	e := startLoopbackEngine(b, log, store, func(o *Options) { o.MaxInFlight = 10 })

	want := int64(b.N) * endpoints
	b.ResetTimer()
	cpu0, err := cputime.Process()
	if err != nil {
		b.Skip(err)
	}
	for i, u := range urls {
		createFromStart(b, e, store, fmt.Sprintf("ep_bench%d", i), u)
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

// startLoopbackEngine starts a delivery engine whose client may reach
// 127.0.0.0/8 (the tests' receivers); change adjusts its options.
func startLoopbackEngine(tb testing.TB, log *eventlog.Log, store *Store, change func(*Options)) *Engine {
	tb.Helper()
	comp, err := filter.NewCompiler()
	if err != nil {
		tb.Fatal(err)
	}
	never := make(chan struct{})
	o := Options{
		Logger: slog.New(slog.DiscardHandler), Log: log, Store: store, Metrics: NewMetrics(prometheus.NewRegistry()),
		Client: webhook.NewClient(webhook.Options{AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}),
		Compile: func(expr string) (*filter.Filter, string, error) {
			f, err := comp.Compile(expr)
			return f, "", err
		},
		// Workers catch up by reading on, and find later events on their
		// once-a-second poll.
		Next:    func() (<-chan struct{}, uint64) { return never, 0 },
		Timeout: 10 * time.Second, Schedule: []time.Duration{time.Second}, DisableAfter: time.Hour,
		MaxInFlight: 10, MaxPending: 10_000, SecretOverlap: time.Hour,
	}
	change(&o)
	e, err := Start(context.Background(), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.Stop)
	return e
}

// createFromStart creates an active endpoint that delivers the whole log
// to url.
func createFromStart(tb testing.TB, e *Engine, store *Store, id, url string) {
	tb.Helper()
	ctx := context.Background()
	ep := &Endpoint{Endpoint: &hookstreamv1.Endpoint{Id: id, Url: url,
		State: hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE, Start: &hookstreamv1.Endpoint_StartPosition{StartPosition: hookstreamv1.StartPosition_START_POSITION_BEGINNING}},
		Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Expires: []time.Time{{}}}
	if err := e.Init(ctx, ep.Endpoint); err != nil {
		tb.Fatal(err)
	}
	if err := store.Create(ctx, ep); err != nil {
		tb.Fatal(err)
	}
}

// appendEvents stores n copies of the benchmark's event, each with its
// own id (from tag and its number, as EventID makes them).
func appendEvents(tb testing.TB, log *eventlog.Log, tag string, n int) {
	tb.Helper()
	ev := benchEvent(tb)
	for i := range n {
		ev.Id = normalize.EventID(tag, hookstreamv1.Vendor_VENDOR_CLOSER, strconv.Itoa(i))
		ev.ReceivedAt = timestamppb.Now()
		if _, err := log.Append(context.Background(), ev); err != nil {
			tb.Fatal(err)
		}
	}
}

// benchEvent is the Closer golden event, the harness's headline payload.
func benchEvent(tb testing.TB) *hookstreamv1.Event {
	raw, err := os.ReadFile("../normalize/closer/testdata/closed.golden.json")
	if err != nil {
		tb.Fatal(err)
	}
	var golden struct {
		Event json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		tb.Fatal(err)
	}
	ev := &hookstreamv1.Event{}
	if err := protojson.Unmarshal(golden.Event, ev); err != nil {
		tb.Fatal(err)
	}
	return ev
}

// TestSendersRetire: a worker's senders, as many as attempts were in
// flight at once, end when the endpoint has had nothing to send for a
// while, and new ones take later attempts.
func TestSendersRetire(t *testing.T) {
	t.Parallel()
	log, store := openTestLog(t)
	release := make(chan struct{})
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	appendEvents(t, log, "retire", 8)
	e := startLoopbackEngine(t, log, store, func(o *Options) { o.MaxInFlight, o.sendersIdle = 4, 100*time.Millisecond })
	createFromStart(t, e, store, "ep_retire", srv.URL+"/hook")
	_, w := workerOf(t, "ep_retire", e)

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("waited 10 s for %s (senders %d, delivered %d)", what, w.liveSenders.Load(), got.Load())
			}
		}
	}
	// The receiver holds every request: max_in_flight senders, no more.
	waitFor("4 senders", func() bool { return w.liveSenders.Load() == 4 })
	time.Sleep(300 * time.Millisecond) // longer than sendersIdle: busy senders stay
	if n := w.liveSenders.Load(); n != 4 {
		t.Fatalf("%d senders with 4 attempts in flight, want 4", n)
	}
	close(release)
	waitFor("the 8 deliveries", func() bool { return got.Load() == 8 })
	waitFor("the idle senders to end", func() bool { return w.liveSenders.Load() == 0 })

	appendEvents(t, log, "retire-later", 3)
	waitFor("the later deliveries", func() bool { return got.Load() == 11 })
}
