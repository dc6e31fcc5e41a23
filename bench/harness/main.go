// Command harness measures hookstream against a reference server on this
// machine and prints a table of figures and ratios. Each scenario runs in
// rounds that alternate the two sides (A B A B ...), because the machine's
// speed drifts; ratios are taken within a round and the median reported.
//
// The outbound scenarios (outbound10, outlatency1000, outdead; see
// outbound.go) measure delivery to loopback HTTP receivers in this
// process instead; they have no reference side.
//
// Usage: go run ./bench/harness [-rounds 3] [-duration 6s] [-scenarios all]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/app"
	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/internal/vendors"
)

const (
	apiToken    = "harness-admin-token-0123456789"
	closerToken = "harness-closer-token-0123456789"
	pdPassword  = "harness-pipedrive-password"
	cpKey       = "harness-handshake-key"
)

var (
	rounds    = flag.Int("rounds", 3, "rounds per scenario (each runs both sides)")
	duration  = flag.Duration("duration", 6*time.Second, "measured time per side per round")
	warmup    = flag.Duration("warmup", 0, "load before each measured side of the ingest and outbound latency scenarios, not counted (a server's first seconds grow its heap and JetStream's block caches)")
	conns     = flag.Int("conns", 64, "connections for closed-loop scenarios")
	scenarios = flag.String("scenarios", "all", "comma-separated: ingest1,ingest10,latency1000,latency3000,delivery10,fanout100,stalled,fsync,groupcommit,sharedsync,groupcommit-interval,tracing,"+
		"outbound10,outlatency1000,outdead (or all; outbound = the three out* scenarios)")
	payload     = flag.String("payload", "closer", "payload for ingest scenarios: closer (1.5 KB closed conversation), pipedrive, clinchpad, mixed")
	verbose     = flag.Bool("v", false, "print each round")
	groupCommit = flag.String("group-commit", "auto", "hookstream's log.group_commit: auto (shared syncs with fsync: always), on (atomic batches), off")
	hsEnv       = flag.String("hs-env", "", "extra environment of the hookstream process, comma-separated (e.g. GOGC=400,GOMEMLIMIT=512MiB)")
	inProcess   = flag.Bool("inprocess", false, "run hookstream inside the harness process instead of as its own process")
	cpuProfile  = flag.String("cpuprofile", "", "write a CPU profile of the harness process here (with -inprocess it includes hookstream)")
	memProfile  = flag.String("memprofile", "", "write an allocation profile of the harness process here at the end (with -inprocess it includes hookstream)")
	traceOut    = flag.String("trace", "", "write an execution trace of the harness process here (with -inprocess it includes hookstream; read it with go tool trace)")
)

func main() {
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "harness:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "harness:", err)
			os.Exit(1)
		}
	}
	if *memProfile != "" {
		runtime.MemProfileRate = 64 << 10
	}
	if *traceOut != "" {
		f, err := os.Create(*traceOut)
		if err == nil {
			err = trace.Start(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "harness:", err)
			os.Exit(1)
		}
	}
	err := run()
	if *traceOut != "" {
		trace.Stop()
	}
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if *memProfile != "" && err == nil {
		err = writeHeapProfile(*memProfile)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

type row struct {
	scenario, metric, ref, hs, ratio, target string
}

func run() error {
	dir, err := os.MkdirTemp("", "hookstream-harness-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	fmt.Fprintf(os.Stderr, "building hookstream and the reference server...\n")
	bins := map[string]string{}
	for name, pkg := range map[string]string{"hookstream": "./cmd/hookstream", "refserver": "./bench/refserver"} {
		bins[name] = filepath.Join(dir, name)
		if out, err := exec.Command("go", "build", "-o", bins[name], pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	env := &env{dir: dir, bins: bins}
	want := map[string]bool{}
	for _, s := range strings.Split(*scenarios, ",") {
		want[strings.TrimSpace(s)] = true
	}
	all := want["all"]
	var rows []row
	add := func(r ...row) { rows = append(rows, r...) }
	fmt.Fprintf(os.Stderr, "machine: %d CPUs, %s; %d rounds x %s per side; payload %s\n", runtime.NumCPU(), runtime.Version(), *rounds, *duration, *payload)
	if *warmup > 0 {
		fmt.Fprintf(os.Stderr, "warm-up: %s of uncounted load before each measured side (ingest, latency and outbound latency scenarios)\n", *warmup)
	}
	if all || want["ingest1"] {
		add(env.ingest("ingest, 1 subscriber", 1, "interval", "≥ 0.60×")...)
	}
	if all || want["ingest10"] {
		add(env.ingest("ingest, 10 subscribers", 10, "interval", "≥ 0.45×")...)
	}
	if all || want["latency1000"] {
		add(env.latency(1000, "≤ 1.5×"))
	}
	if all || want["latency3000"] {
		add(env.latency(3000, "≤ 2×"))
	}
	if all || want["delivery10"] {
		add(env.delivery())
	}
	if all || want["fanout100"] {
		add(env.fanout())
	}
	if all || want["stalled"] {
		add(env.stalled())
	}
	if all || want["fsync"] {
		add(env.ingest("ingest, fsync: always, 1 subscriber", 1, "always", "≥ 0.30×")...)
	}
	if all || want["groupcommit"] {
		add(env.groupCommitRow("always", "off", "auto"))
	}
	if all || want["sharedsync"] {
		// Shared syncs (auto, on Linux) against atomic batches (on).
		add(env.groupCommitRow("always", "on", "auto"))
	}
	if want["groupcommit-interval"] {
		add(env.groupCommitRow("interval", "off", "on"))
	}
	if all || want["tracing"] {
		add(env.tracingRow(0.01), env.tracingRow(1))
	}
	if all || want["outbound"] || want["outbound10"] {
		add(env.outboundThroughput()...)
	}
	if all || want["outbound"] || want["outlatency1000"] {
		add(env.outboundLatency(1000)...)
	}
	if all || want["outbound"] || want["outdead"] {
		add(env.outboundDead()...)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "| scenario\t| metric\t| reference\t| hookstream\t| ratio\t| target\t|")
	fmt.Fprintln(tw, "|---\t|---\t|---\t|---\t|---\t|---\t|")
	for _, r := range rows {
		fmt.Fprintf(tw, "| %s\t| %s\t| %s\t| %s\t| %s\t| %s\t|\n", r.scenario, r.metric, r.ref, r.hs, r.ratio, r.target)
	}
	return tw.Flush()
}

// env starts servers for the scenarios.
type env struct {
	dir  string
	bins map[string]string
	n    int
}

// server is a running process under test (or, with -inprocess, an
// app.App in the harness's own process).
type server struct {
	cmd      *exec.Cmd
	app      *app.App
	httpAddr string
	grpcAddr string
}

func (s *server) stop() {
	if s.app != nil {
		s.app.Shutdown(5 * time.Second)
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

func waitHTTP(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("server did not come up: " + url)
}

func (e *env) reference(args ...string) *server {
	s := &server{httpAddr: fmt.Sprintf("127.0.0.1:%d", freePort())}
	s.cmd = exec.Command(e.bins["refserver"], append([]string{"-addr", s.httpAddr}, args...)...)
	if err := s.cmd.Start(); err != nil {
		panic(err)
	}
	if err := waitHTTP("http://" + s.httpAddr + "/"); err != nil {
		panic(err)
	}
	return s
}

func (e *env) hookstream(fsync string) *server { return e.hookstreamWith(fsync, "") }

// hookstreamWith starts hookstream with extra top-level YAML (e.g. a
// delivery: section) appended to the standard config.
func (e *env) hookstreamWith(fsync, extra string) *server {
	return e.hookstreamGC(fsync, *groupCommit, extra)
}

// hookstreamGC starts hookstream with log.group_commit set to gc.
func (e *env) hookstreamGC(fsync, gc, extra string) *server {
	e.n++
	s := &server{httpAddr: fmt.Sprintf("127.0.0.1:%d", freePort()), grpcAddr: fmt.Sprintf("127.0.0.1:%d", freePort())}
	cfgPath := filepath.Join(e.dir, fmt.Sprintf("hookstream-%d.yaml", e.n))
	cfg := fmt.Sprintf(`http: {addr: %q}
grpc: {addr: %q}
api: {tokens: [{name: harness, scope: admin, token: %q}]}
log: {data_dir: %q, fsync: %s, group_commit: %s}
sources:
  - {name: closer, vendor: closer, auth: {token: %q}}
  - {name: pipedrive, vendor: pipedrive, auth: {basic: {username: pd, password: %q}}}
  - {name: clinchpad, vendor: clinchpad, auth: {handshake_key: %q}}
%s`, s.httpAddr, s.grpcAddr, apiToken, filepath.Join(e.dir, fmt.Sprintf("data-%d", e.n)), fsync, gc, closerToken, pdPassword, cpKey, extra)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		panic(err)
	}
	if *inProcess {
		c, err := config.Load(cfgPath, vendors.Config())
		if err != nil {
			panic(err)
		}
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		if s.app, err = app.Start(context.Background(), c, logger, vendors.Registry); err != nil {
			panic(err)
		}
		s.httpAddr, s.grpcAddr = s.app.HTTPAddr(), s.app.GRPCAddr()
		return s
	}
	s.cmd = exec.Command(e.bins["hookstream"], "serve", "--config", cfgPath, "--log-level", "error")
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, os.Stderr
	if *hsEnv != "" {
		s.cmd.Env = append(os.Environ(), strings.Split(*hsEnv, ",")...)
	}
	if err := s.cmd.Start(); err != nil {
		panic(err)
	}
	if err := waitHTTP("http://" + s.httpAddr + "/healthz"); err != nil {
		panic(err)
	}
	return s
}

// request is one webhook to send.
type request struct {
	path   string
	header http.Header
	body   []byte
}

var seq atomic.Int64

// nextRequest builds a webhook with a unique delivery id (so no request
// is a duplicate) for the chosen payload.
func nextRequest(kind string) request {
	n := seq.Add(1)
	if kind == "mixed" {
		kind = []string{"closer", "pipedrive", "clinchpad"}[n%3]
	}
	switch kind {
	case "pipedrive":
		h := http.Header{"Content-Type": {"application/json"}}
		h.Set("Authorization", "Basic "+basic("pd", pdPassword))
		return request{"/v1/webhooks/pipedrive", h, fmt.Appendf(nil, pipedriveTmpl, n, n)}
	case "clinchpad":
		return request{"/v1/webhooks/clinchpad", http.Header{"Content-Type": {"application/json"}}, fmt.Appendf(nil, clinchpadTmpl, n, cpKey)}
	}
	return request{"/v1/webhooks/closer?token=" + closerToken, http.Header{"Content-Type": {"application/json"}},
		fmt.Appendf(nil, closerTmpl, 1718000000000+n)}
}

// result is what one side measured.
type result struct {
	ok, errs  int64
	byStatus  map[int]int64
	latencies []time.Duration
	elapsed   time.Duration
}

// finish totals a run that began at start.
func (r *result) finish(start time.Time) *result {
	r.elapsed = time.Since(start)
	r.ok = int64(len(r.latencies))
	for k, v := range r.byStatus {
		if k/100 != 2 {
			r.errs += v
		}
	}
	return r
}

func (r *result) rps() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r *result) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	slices.Sort(r.latencies)
	return r.latencies[min(len(r.latencies)-1, int(float64(len(r.latencies))*p))]
}

func newClient(n int) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: n, MaxIdleConnsPerHost: n, MaxConnsPerHost: n, IdleConnTimeout: time.Minute,
	}}
}

func send(c *http.Client, base string, rq request) (int, error) {
	req, _ := http.NewRequest(http.MethodPost, base+rq.path, bytes.NewReader(rq.body))
	req.Header = rq.header
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// closedLoop runs conns workers sending back to back for d.
func closedLoop(base string, conns int, d time.Duration, kind string) *result {
	c := newClient(conns)
	var mu sync.Mutex
	res := &result{byStatus: map[int]int64{}}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			codes := map[int]int64{}
			for ctx.Err() == nil {
				rq := nextRequest(kind)
				t0 := time.Now()
				code, err := send(c, base, rq)
				if err != nil {
					codes[-1]++
					continue
				}
				codes[code]++
				if code/100 == 2 {
					lat = append(lat, time.Since(t0))
				}
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			for k, v := range codes {
				res.byStatus[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return res.finish(start)
}

// openLoop sends at a fixed rate for d; latency counts from each request's
// scheduled time, so queueing in the client or server is not hidden.
func openLoop(base string, rate int, d time.Duration, kind string) *result {
	c := newClient(512)
	res := &result{byStatus: map[int]int64{}}
	var mu sync.Mutex
	jobs := make(chan time.Time, rate) // up to 1 s of backlog
	var wg sync.WaitGroup
	for range 512 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for due := range jobs {
				code, err := send(c, base, nextRequest(kind))
				lat := time.Since(due)
				mu.Lock()
				if err != nil {
					res.byStatus[-1]++
				} else {
					res.byStatus[code]++
					if code/100 == 2 {
						res.latencies = append(res.latencies, lat)
					}
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	schedule(start, rate, d, jobs, func() {
		mu.Lock()
		res.byStatus[-2]++ // generator backlog full: counted as an error
		mu.Unlock()
	})
	wg.Wait()
	return res.finish(start)
}

// schedule hands due times to jobs at a fixed rate for d from start, then
// closes jobs; when the backlog is full it calls full instead (the
// generator fell behind, which the caller counts).
func schedule(start time.Time, rate int, d time.Duration, jobs chan<- time.Time, full func()) {
	interval := time.Second / time.Duration(rate)
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if due.Sub(start) >= d {
			break
		}
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		select {
		case jobs <- due:
		default:
			full()
		}
	}
	close(jobs)
}

// subscribers holds N Subscribe streams and what they received.
type subscribers struct {
	cancel     context.CancelFunc
	deliveries atomic.Int64
	mu         sync.Mutex
	latencies  []time.Duration
	wg         sync.WaitGroup
}

// subscribe opens n streams (from now on) and waits until they are live.
// With stall set, the streams never read.
func subscribe(grpcAddr string, n int, stall bool) *subscribers {
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscribers{cancel: cancel}
	for range n {
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(bearer(apiToken)), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
		if err != nil {
			panic(err)
		}
		stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, hookstreamv1.EventService_Subscribe_FullMethodName)
		if err != nil {
			panic(err)
		}
		if err := stream.SendMsg(&frame{}); err != nil { // SubscribeRequest{}: from now, no filter
			panic(err)
		}
		if err := stream.CloseSend(); err != nil {
			panic(err)
		}
		if _, err := stream.Header(); err != nil {
			panic(err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { _ = conn.Close() }()
			if stall {
				<-ctx.Done()
				return
			}
			var lat []time.Duration
			for {
				var f frame
				if err := stream.RecvMsg(&f); err != nil {
					break
				}
				if at, ok, err := receivedAt(f.b); err == nil && ok {
					s.deliveries.Add(1)
					lat = append(lat, time.Since(at))
				}
			}
			s.mu.Lock()
			s.latencies = append(s.latencies, lat...)
			s.mu.Unlock()
		}()
	}
	time.Sleep(200 * time.Millisecond) // consumers created server-side
	return s
}

func (s *subscribers) close() {
	s.cancel()
	s.wg.Wait()
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

var began = time.Now()

// warm loads the server at addr for -warmup with the closed loop,
// uncounted; warmAt does it at a fixed rate.
func warm(addr string) {
	if *warmup > 0 {
		closedLoop("http://"+addr, *conns, *warmup, *payload)
		step("warmed up")
	}
}

func warmAt(addr string, rate int) {
	if *warmup > 0 {
		openLoop("http://"+addr, rate, *warmup, *payload)
		step("warmed up")
	}
}

func round(name string, r int) {
	if *verbose {
		fmt.Fprintf(os.Stderr, "  [%5.1fs] %s: round %d\n", time.Since(began).Seconds(), name, r+1)
	}
}

func step(what string) {
	if *verbose {
		fmt.Fprintf(os.Stderr, "    [%5.1fs] %s\n", time.Since(began).Seconds(), what)
	}
}

// ingest: closed loop, reference vs hookstream with n subscribers attached.
func (e *env) ingest(name string, nsubs int, fsync, target string) []row {
	fmt.Fprintf(os.Stderr, "%s...\n", name)
	var ratios, refs, hss []float64
	var cpuRef, cpuHS []time.Duration
	var errs int64
	for r := range *rounds {
		round(name, r)
		ref := e.reference()
		step("reference up")
		warm(ref.httpAddr)
		ma := meterCPU(ref)
		a := closedLoop("http://"+ref.httpAddr, *conns, *duration, *payload)
		ca, okA := ma.per(a.ok)
		ref.stop()
		step("reference done")
		hs := e.hookstream(fsync)
		subs := subscribe(hs.grpcAddr, nsubs, false)
		step("hookstream up")
		warm(hs.httpAddr)
		mb := meterCPU(hs)
		b := closedLoop("http://"+hs.httpAddr, *conns, *duration, *payload)
		cb, okB := mb.per(b.ok)
		step("hookstream load done")
		if okA && okB {
			cpuRef, cpuHS = append(cpuRef, ca), append(cpuHS, cb)
		}
		subs.close()
		step("subscribers closed")
		hs.stop()
		step("hookstream stopped")
		errs += b.errs
		refs, hss = append(refs, a.rps()), append(hss, b.rps())
		ratios = append(ratios, b.rps()/a.rps())
		if *verbose {
			fmt.Fprintf(os.Stderr, "    ref %.0f req/s, hookstream %.0f req/s (p99 %s), ratio %.2f, errors %v\n", a.rps(), b.rps(), b.pct(.99), b.rps()/a.rps(), b.byStatus)
			if okA && okB {
				fmt.Fprintf(os.Stderr, "    server CPU per request: ref %.1f µs, hookstream %.1f µs\n", us(ca), us(cb))
			}
		}
	}
	metric := fmt.Sprintf("req/s, %d conns", *conns)
	if errs > 0 {
		metric += fmt.Sprintf(" (%d hookstream errors)", errs)
	}
	cr, ch, cratio := cpuCells(cpuRef, cpuHS)
	return []row{
		{name, metric, fmt.Sprintf("%.0f", median(refs)), fmt.Sprintf("%.0f", median(hss)), fmt.Sprintf("%.2f×", median(ratios)), target},
		{name, "server CPU per request, µs", cr, ch, cratio, "report"},
	}
}

// groupCommitRow: hookstream against itself with the given fsync, group
// commit ref (the reference column) and gc.
func (e *env) groupCommitRow(fsync, ref, gc string) row {
	return e.variantRow(fmt.Sprintf("group commit %s against %s, fsync: %s", gc, ref, fsync), ref, gc,
		func(i int) *server { return e.hookstreamGC(fsync, []string{ref, gc}[i], "") })
}

// tracingRow: hookstream against itself with tracing off (the reference
// column) and on at ratio, exporting over OTLP/HTTP to a sink in the
// harness that accepts every export.
func (e *env) tracingRow(ratio float64) row {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer sink.Close()
	on := fmt.Sprintf("telemetry: {otlp_endpoint: %q, sampling_ratio: %g}\n", sink.URL, ratio)
	return e.variantRow(fmt.Sprintf("tracing, sampling %g%%", ratio*100), "off", "on",
		func(i int) *server { return e.hookstreamWith("interval", []string{"", on}[i]) })
}

// variantRow runs hookstream against itself: start(0) is the variant in
// the reference column (named a), start(1) the one measured (b); one
// closed-loop run each per round with 1 subscriber, alternating.
func (e *env) variantRow(name, a, b string, start func(i int) *server) row {
	fmt.Fprintf(os.Stderr, "%s...\n", name)
	var ratios, as, bs []float64
	for r := range *rounds {
		round(name, r)
		var res [2]*result
		for i := range res {
			hs := start(i)
			subs := subscribe(hs.grpcAddr, 1, false)
			res[i] = closedLoop("http://"+hs.httpAddr, *conns, *duration, *payload)
			subs.close()
			hs.stop()
		}
		ra, rb := res[0], res[1]
		as, bs = append(as, ra.rps()), append(bs, rb.rps())
		ratios = append(ratios, rb.rps()/ra.rps())
		if *verbose {
			fmt.Fprintf(os.Stderr, "    %s %.0f req/s (p99 %s), %s %.0f req/s (p99 %s), ratio %.2f\n", a, ra.rps(), ra.pct(.99), b, rb.rps(), rb.pct(.99), rb.rps()/ra.rps())
		}
	}
	return row{name, fmt.Sprintf("req/s, %d conns: %s (ref col) vs %s", *conns, a, b), fmt.Sprintf("%.0f", median(as)), fmt.Sprintf("%.0f", median(bs)),
		fmt.Sprintf("%.2f×", median(ratios)), "report"}
}

// latency: open loop at a fixed rate, p99 reference vs hookstream (1 subscriber).
func (e *env) latency(rate int, target string) row {
	name := fmt.Sprintf("latency at %d req/s", rate)
	fmt.Fprintf(os.Stderr, "%s...\n", name)
	var ratios, refs, hss []float64
	var errs int64
	for r := range *rounds {
		round(name, r)
		ref := e.reference()
		warmAt(ref.httpAddr, rate)
		a := openLoop("http://"+ref.httpAddr, rate, *duration, *payload)
		ref.stop()
		hs := e.hookstream("interval")
		subs := subscribe(hs.grpcAddr, 1, false)
		warmAt(hs.httpAddr, rate)
		b := openLoop("http://"+hs.httpAddr, rate, *duration, *payload)
		subs.close()
		hs.stop()
		errs += b.errs + a.errs
		pa, pb := a.pct(.99), b.pct(.99)
		refs, hss = append(refs, float64(pa.Microseconds())), append(hss, float64(pb.Microseconds()))
		ratios = append(ratios, float64(pb)/float64(pa))
		if *verbose {
			fmt.Fprintf(os.Stderr, "    ref p50 %s p99 %s p99.9 %s; hookstream p50 %s p99 %s p99.9 %s; errors %v %v\n",
				a.pct(.5), pa, a.pct(.999), b.pct(.5), pb, b.pct(.999), a.byStatus, b.byStatus)
		}
	}
	metric := "POST→2xx p99, µs"
	if errs > 0 {
		metric += fmt.Sprintf(" (%d errors)", errs)
	}
	return row{name, metric, fmt.Sprintf("%.0f", median(refs)), fmt.Sprintf("%.0f", median(hss)), fmt.Sprintf("%.2f×", median(ratios)), target}
}

// delivery: 10 subscribers, 1000 events/s; publish→receive p99.
func (e *env) delivery() row {
	name := "delivery, 10 subscribers at 1000 ev/s"
	fmt.Fprintf(os.Stderr, "%s...\n", name)
	var p99s []float64
	for r := range *rounds {
		round(name, r)
		hs := e.hookstream("interval")
		subs := subscribe(hs.grpcAddr, 10, false)
		openLoop("http://"+hs.httpAddr, 1000, *duration, *payload)
		time.Sleep(500 * time.Millisecond)
		subs.close()
		hs.stop()
		res := &result{latencies: subs.latencies}
		p99s = append(p99s, float64(res.pct(.99).Microseconds()))
		if *verbose {
			fmt.Fprintf(os.Stderr, "    %d deliveries, p50 %s p99 %s\n", subs.deliveries.Load(), res.pct(.5), res.pct(.99))
		}
	}
	return row{name, "publish→receive p99, µs", "—", fmt.Sprintf("%.0f", median(p99s)), "—", "≤ 2000 µs"}
}

// fanout: 100 subscribers, ingest at saturation; total deliveries/s.
func (e *env) fanout() row {
	name := "fan-out, 100 subscribers at saturation"
	fmt.Fprintf(os.Stderr, "%s...\n", name)
	var rates []float64
	for r := range *rounds {
		round(name, r)
		hs := e.hookstream("interval")
		subs := subscribe(hs.grpcAddr, 100, false)
		start := time.Now()
		before := subs.deliveries.Load()
		closedLoop("http://"+hs.httpAddr, *conns, *duration, *payload)
		rate := float64(subs.deliveries.Load()-before) / time.Since(start).Seconds()
		subs.close()
		hs.stop()
		rates = append(rates, rate)
		if *verbose {
			fmt.Fprintf(os.Stderr, "    %.0f deliveries/s\n", rate)
		}
	}
	return row{name, "deliveries/s (all streams)", "—", fmt.Sprintf("%.0f", median(rates)), "—", "≥ 100000"}
}

// stalled: ingest with one subscriber that stops reading vs with none.
func (e *env) stalled() row {
	name := "ingest with a stalled subscriber"
	fmt.Fprintf(os.Stderr, "%s...\n", name)
	var ratios, as, bs []float64
	for r := range *rounds {
		round(name, r)
		hs := e.hookstream("interval")
		a := closedLoop("http://"+hs.httpAddr, *conns, *duration, *payload)
		hs.stop()
		hs = e.hookstream("interval")
		subs := subscribe(hs.grpcAddr, 1, true)
		b := closedLoop("http://"+hs.httpAddr, *conns, *duration, *payload)
		subs.close()
		hs.stop()
		as, bs = append(as, a.rps()), append(bs, b.rps())
		ratios = append(ratios, b.rps()/a.rps())
	}
	return row{name, "req/s: no subscriber (ref col) vs stalled one", fmt.Sprintf("%.0f", median(as)), fmt.Sprintf("%.0f", median(bs)),
		fmt.Sprintf("%.2f×", median(ratios)), "≥ 0.90×"}
}
