package main

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// Outbound delivery: hookstream POSTs every event to N endpoints, each a
// loopback receiver in this process that answers 204 and records, by
// webhook-id (the event id), when each delivery first arrived and how
// often it came.

var (
	outEndpoints = flag.Int("out-endpoints", 10, "outbound: healthy endpoints (receivers)")
	outConns     = flag.Int("out-conns", 64, "outbound throughput: ingest connections (closed loop)")
	outInFlight  = flag.Int("out-max-in-flight", 0, "outbound: each endpoint's max_in_flight (0: the server default, 10)")
	outTimeout   = flag.Duration("out-timeout", 2*time.Second, "outbound: delivery.timeout (what the dead endpoint costs per attempt)")
	outDrain     = flag.Duration("out-drain", 10*time.Second, "outbound: most time to wait after ingest stops for the backlog to arrive")
	latencyDump  = flag.String("latency-dump", "", "outbound latency: write every delivery of each measured side as CSV (send offset ms, latency ms, receiver) to PREFIX-<side>-<round>.csv, to see when the slow ones happened")
	outRate      = flag.Int("out-rate", 1000, "outbound latency: events/s ingested (open loop)")
)

func deliveryYAML() string {
	return fmt.Sprintf(`delivery:
  allow_http: true
  allow_networks: ["127.0.0.0/8"]
  plain_secrets: true
  timeout: %s
`, *outTimeout)
}

// receiver is one loopback endpoint.
type receiver struct {
	srv   *http.Server
	url   string
	dead  bool
	stop  chan struct{}
	reqs  atomic.Int64 // requests answered 204 (all requests when dead)
	mu    sync.Mutex
	first map[string]time.Time // webhook-id → first arrival
	dups  int64                // requests for an id already seen
}

func newReceiver(dead bool) *receiver {
	rc := &receiver{dead: dead, stop: make(chan struct{}), first: map[string]time.Time{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	rc.url = "http://" + l.Addr().String() + "/hook"
	rc.srv = &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = rc.srv.Serve(l) }()
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	if rc.dead {
		// Never answers: hookstream's delivery timeout ends the attempt.
		rc.reqs.Add(1)
		select {
		case <-r.Context().Done():
		case <-rc.stop:
		}
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	if _, seen := rc.first[id]; seen {
		rc.dups++
	} else {
		rc.first[id] = at
	}
	rc.mu.Unlock()
	rc.reqs.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) close() {
	close(rc.stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := rc.srv.Shutdown(ctx); err != nil {
		_ = rc.srv.Close()
	}
}

func (rc *receiver) unique() int64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return int64(len(rc.first))
}

// outbound is a hookstream with endpoints pointing at receivers.
type outbound struct {
	hs      *server
	healthy receivers
	dead    []*receiver
}

func (e *env) startOutbound(healthy, dead int) *outbound {
	o := &outbound{hs: e.hookstreamWith("interval", deliveryYAML())}
	conn, err := grpc.NewClient(o.hs.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(apiToken)))
	if err != nil {
		panic(err)
	}
	defer func() { _ = conn.Close() }()
	client := hookstreamv1.NewEndpointServiceClient(conn)
	create := func(rc *receiver) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := client.CreateEndpoint(ctx, &hookstreamv1.CreateEndpointRequest{Endpoint: &hookstreamv1.Endpoint{
			Url: rc.url, Description: "harness", MaxInFlight: uint32(*outInFlight)}})
		if err != nil {
			panic(fmt.Sprintf("CreateEndpoint: %v", err))
		}
	}
	o.healthy = newReceivers(healthy)
	for _, rc := range o.healthy {
		create(rc)
	}
	for range dead {
		rc := newReceiver(true)
		o.dead = append(o.dead, rc)
		create(rc)
	}
	time.Sleep(300 * time.Millisecond) // workers take their leases
	return o
}

func (o *outbound) stop() {
	o.hs.stop()
	o.healthy.close()
	for _, rc := range o.dead {
		rc.close()
	}
}

// receivers are the healthy endpoints of one run.
type receivers []*receiver

func newReceivers(n int) receivers {
	var rs receivers
	for range n {
		rs = append(rs, newReceiver(false))
	}
	return rs
}

func (rs receivers) urls() []string {
	var us []string
	for _, rc := range rs {
		us = append(us, rc.url)
	}
	return us
}

func (rs receivers) close() {
	for _, rc := range rs {
		rc.close()
	}
}

// delivered is the requests answered 204.
func (rs receivers) delivered() int64 {
	var n int64
	for _, rc := range rs {
		n += rc.reqs.Load()
	}
	return n
}

// reset forgets what the receivers have seen (after a warm-up).
func (rs receivers) reset() {
	for _, rc := range rs {
		rc.mu.Lock()
		clear(rc.first)
		rc.dups = 0
		rc.reqs.Store(0)
		rc.mu.Unlock()
	}
}

func (rs receivers) dups() int64 {
	var n int64
	for _, rc := range rs {
		rc.mu.Lock()
		n += rc.dups
		rc.mu.Unlock()
	}
	return n
}

// drain waits, at most *outDrain, until the receivers hold want distinct
// deliveries; it returns how long that took and what is missing.
func (rs receivers) drain(want int64) (time.Duration, int64) {
	start := time.Now()
	for {
		var got int64
		for _, rc := range rs {
			got += rc.unique()
		}
		if got >= want || time.Since(start) >= *outDrain {
			return time.Since(start), max(0, want-got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// latencies are, for every (receiver, event) pair that arrived, the time
// from sending the event's webhook to its first arrival.
func (rs receivers) latencies(sent map[string]time.Time) []time.Duration {
	var lat []time.Duration
	for _, rc := range rs {
		rc.mu.Lock()
		for id, t0 := range sent {
			if at, ok := rc.first[id]; ok {
				lat = append(lat, at.Sub(t0))
			}
		}
		rc.mu.Unlock()
	}
	return lat
}

// dump writes every delivery of the events in sent as CSV: when its
// webhook was sent (ms after the first), its latency (ms), the receiver.
func (rs receivers) dump(path string, sent map[string]time.Time) error {
	var first time.Time
	for _, t0 := range sent {
		if first.IsZero() || t0.Before(first) {
			first = t0
		}
	}
	var b strings.Builder
	b.WriteString("send_ms,latency_ms,receiver\n")
	for i, rc := range rs {
		rc.mu.Lock()
		for id, t0 := range sent {
			if at, ok := rc.first[id]; ok {
				fmt.Fprintf(&b, "%.3f,%.3f,%d\n", float64(t0.Sub(first))/1e6, float64(at.Sub(t0))/1e6, i)
			}
		}
		rc.mu.Unlock()
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// throughputRun is one closed-loop ingest window with endpoints attached.
type throughputRun struct {
	ingest     *result
	deliveries float64 // per second, healthy receivers, during the window
	backlog    int64   // deliveries owed when ingest stopped
	drainTook  time.Duration
	missing    int64 // still owed after the drain
	dups       int64
	deadReqs   int64
}

func (e *env) throughputRun(healthy, dead int) throughputRun {
	o := e.startOutbound(healthy, dead)
	defer o.stop()
	before := o.healthy.delivered()
	start := time.Now()
	in := closedLoop("http://"+o.hs.httpAddr, *outConns, *duration, *payload)
	got := o.healthy.delivered() - before
	r := throughputRun{ingest: in, deliveries: float64(got) / time.Since(start).Seconds()}
	want := in.ok * int64(healthy)
	r.backlog = max(0, want-got)
	r.drainTook, r.missing = o.healthy.drain(want)
	r.dups = o.healthy.dups()
	for _, rc := range o.dead {
		r.deadReqs += rc.reqs.Load()
	}
	return r
}

func (r throughputRun) String() string {
	s := fmt.Sprintf("ingest %.0f req/s (statuses %v), deliveries %.0f/s, backlog at stop %d, drain %s (%.0f/s; %d still owed), duplicates %d",
		r.ingest.rps(), r.ingest.byStatus, r.deliveries, r.backlog, r.drainTook.Round(10*time.Millisecond),
		float64(r.backlog-r.missing)/r.drainTook.Seconds(), r.missing, r.dups)
	if r.deadReqs > 0 {
		s += fmt.Sprintf(", dead endpoint got %d requests", r.deadReqs)
	}
	return s
}

// outboundThroughput: closed-loop ingest with N healthy endpoints;
// deliveries/s while ingest runs.
func (e *env) outboundThroughput() []row {
	name := fmt.Sprintf("outbound, %d endpoints, ingest at saturation", *outEndpoints)
	fmt.Fprintf(os.Stderr, "%s...\n", name)
	var rates, ins []float64
	var dups, missing int64
	for r := range *rounds {
		round(name, r)
		t := e.throughputRun(*outEndpoints, 0)
		rates, ins = append(rates, t.deliveries), append(ins, t.ingest.rps())
		dups, missing = dups+t.dups, missing+t.missing
		fmt.Fprintf(os.Stderr, "    round %d: %s\n", r+1, t)
	}
	metric := "deliveries/s, all endpoints (ref col: ingest req/s)"
	if dups > 0 || missing > 0 {
		metric += fmt.Sprintf(" (%d duplicates; %d still owed when the -out-drain wait ended)", dups, missing)
	}
	return []row{{name, metric, fmt.Sprintf("%.0f", median(ins)), fmt.Sprintf("%.0f", median(rates)), "—", "≥ 5000"}}
}

// outboundDead: rounds alternate N healthy endpoints with N healthy + 1
// whose receiver never answers; ratios of deliveries/s to the healthy
// endpoints and of ingest req/s.
func (e *env) outboundDead() []row {
	name := fmt.Sprintf("outbound, %d endpoints + 1 dead", *outEndpoints)
	fmt.Fprintf(os.Stderr, "%s (delivery timeout %s)...\n", name, *outTimeout)
	var dA, dB, iA, iB, dR, iR []float64
	for r := range *rounds {
		round(name, r)
		a := e.throughputRun(*outEndpoints, 0)
		b := e.throughputRun(*outEndpoints, 1)
		dA, dB, dR = append(dA, a.deliveries), append(dB, b.deliveries), append(dR, b.deliveries/a.deliveries)
		iA, iB, iR = append(iA, a.ingest.rps()), append(iB, b.ingest.rps()), append(iR, b.ingest.rps()/a.ingest.rps())
		fmt.Fprintf(os.Stderr, "    round %d healthy only: %s\n    round %d with dead:     %s\n    ratios: deliveries %.2f×, ingest %.2f×\n",
			r+1, a, r+1, b, b.deliveries/a.deliveries, b.ingest.rps()/a.ingest.rps())
	}
	return []row{
		{name, "deliveries/s to the healthy ones: without (ref col) vs with the dead one", fmt.Sprintf("%.0f", median(dA)),
			fmt.Sprintf("%.0f", median(dB)), fmt.Sprintf("%.2f×", median(dR)), "≥ 0.90×"},
		{name, "ingest req/s: without (ref col) vs with the dead one", fmt.Sprintf("%.0f", median(iA)),
			fmt.Sprintf("%.0f", median(iB)), fmt.Sprintf("%.2f×", median(iR)), "≥ 0.90×"},
	}
}

// outboundLatency: open-loop ingest at rate with N endpoints; the time
// from sending each ingest request to each receiver's first arrival. The
// reference is refserver -relay: the same webhooks POSTed to the same
// kind of receivers straight from memory, the bare ceiling on this
// machine.
func (e *env) outboundLatency(rate int) []row {
	if *outRate != 1000 {
		rate = *outRate
	}
	name := fmt.Sprintf("outbound latency, %d endpoints at %d ev/s", *outEndpoints, rate)
	fmt.Fprintf(os.Stderr, "%s...\n", name)
	var refs, hss, ratios []float64
	var cpuRef, cpuHS []time.Duration
	var missing, dups int64
	measure := func(side string, r int, s *server, rs receivers) (time.Duration, time.Duration, bool) {
		if *warmup > 0 {
			warmed, _ := openLoopIDs("http://"+s.httpAddr, rate, *warmup, *payload)
			rs.drain(int64(len(warmed)) * int64(len(rs)))
			rs.reset()
			step("warmed up")
		}
		m := meterCPU(s)
		sent, in := openLoopIDs("http://"+s.httpAddr, rate, *duration, *payload)
		_, miss := rs.drain(int64(len(sent)) * int64(len(rs)))
		cpu, cpuOK := m.per(int64(len(sent)))
		res := &result{latencies: rs.latencies(sent)}
		if *latencyDump != "" {
			if err := rs.dump(fmt.Sprintf("%s-%s-%d.csv", *latencyDump, side, r+1), sent); err != nil {
				fmt.Fprintf(os.Stderr, "    latency dump: %v\n", err)
			}
		}
		missing, dups = missing+miss, dups+rs.dups()
		fmt.Fprintf(os.Stderr, "    round %d %s: %d events (ingest statuses %v, POST→2xx p99 %s), %d deliveries: ingest→receiver p50 %s p90 %s p99 %s p99.9 %s max %s; %d still owed, %d duplicates\n",
			r+1, side, len(sent), in.byStatus, in.pct(.99), len(res.latencies), res.pct(.5), res.pct(.9), res.pct(.99), res.pct(.999), res.pct(1), miss, rs.dups())
		if cpuOK {
			fmt.Fprintf(os.Stderr, "      server CPU per event (its ingest and %d deliveries): %.1f µs\n", len(rs), us(cpu))
		}
		return res.pct(.99), cpu, cpuOK
	}
	for r := range *rounds {
		round(name, r)
		rs := newReceivers(*outEndpoints)
		ref := e.reference("-relay", strings.Join(rs.urls(), ","), "-relay-in-flight", strconv.Itoa(cmp.Or(*outInFlight, 10)))
		a, ca, okA := measure("reference", r, ref, rs)
		ref.stop()
		rs.close()
		o := e.startOutbound(*outEndpoints, 0)
		b, cb, okB := measure("hookstream", r, o.hs, o.healthy)
		o.stop()
		if okA && okB {
			cpuRef, cpuHS = append(cpuRef, ca), append(cpuHS, cb)
		}
		refs, hss = append(refs, float64(a.Microseconds())), append(hss, float64(b.Microseconds()))
		ratios = append(ratios, float64(b)/float64(a))
	}
	metric := "ingest send→receiver p99, µs"
	if dups > 0 || missing > 0 {
		metric += fmt.Sprintf(" (%d duplicates; %d still owed when the -out-drain wait ended)", dups, missing)
	}
	cr, ch, cratio := cpuCells(cpuRef, cpuHS)
	return []row{
		{name, metric, fmt.Sprintf("%.0f", median(refs)), fmt.Sprintf("%.0f", median(hss)), fmt.Sprintf("%.2f×", median(ratios)), "≤ 10000 µs"},
		{name, fmt.Sprintf("server CPU per event (ingest and %d deliveries), µs", *outEndpoints), cr, ch, cratio, "report"},
	}
}

// openLoopIDs sends at a fixed rate for d and returns, by event id (from
// the ingest answer), when each request was sent.
func openLoopIDs(base string, rate int, d time.Duration, kind string) (map[string]time.Time, *result) {
	c := newClient(512)
	res := &result{byStatus: map[int]int64{}}
	sent := map[string]time.Time{}
	var mu sync.Mutex
	jobs := make(chan time.Time, rate)
	var wg sync.WaitGroup
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for due := range jobs {
				t0 := time.Now()
				code, id, err := sendID(c, base, nextRequest(kind))
				lat := time.Since(due)
				mu.Lock()
				if err != nil {
					res.byStatus[-1]++
				} else {
					res.byStatus[code]++
					if code/100 == 2 {
						res.latencies = append(res.latencies, lat)
						if id != "" {
							sent[id] = t0
						}
					}
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	schedule(start, rate, d, jobs, func() {
		mu.Lock()
		res.byStatus[-2]++
		mu.Unlock()
	})
	wg.Wait()
	return sent, res.finish(start)
}

var eventIDKey = []byte(`"event_id":"`)

// sendID sends rq and returns the status and the event id of the answer.
func sendID(c *http.Client, base string, rq request) (int, string, error) {
	req, _ := http.NewRequest(http.MethodPost, base+rq.path, bytes.NewReader(rq.body))
	req.Header = rq.header
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	var id string
	if i := bytes.Index(body, eventIDKey); i >= 0 {
		rest := body[i+len(eventIDKey):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 {
			id = string(rest[:j])
		}
	}
	return resp.StatusCode, id, nil
}
