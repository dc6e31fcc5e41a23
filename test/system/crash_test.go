package system

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

var (
	crashDuration = flag.Duration("crash.duration", 8*time.Second, "how long TestCrashUnderLoad sends webhooks")
	crashRate     = flag.Int("crash.rate", 200, "webhooks per second TestCrashUnderLoad sends")
	crashKills    = flag.Int("crash.kills", 2, "how many times TestCrashUnderLoad SIGKILLs the server")
	crashReport   = flag.String("crash.report", "", "write TestCrashUnderLoad's figures as JSON to this file")
)

// hookstreamBinary builds this command once per test run.
func hookstreamBinary(t testing.TB) string {
	t.Helper()
	return goBinary(t, "hookstream", "github.com/hookstream/hookstream/cmd/hookstream")
}

// proc is hookstream running as a separate process.
type proc struct {
	t        testing.TB
	bin      string
	config   string
	httpAddr string
	grpcAddr string
	cmd      *exec.Cmd
	stderr   *logBuffer
}

func newProc(t testing.TB, dataDir, extraLog string) *proc {
	t.Helper()
	p := &proc{t: t, bin: hookstreamBinary(t),
		httpAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), grpcAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	p.config = filepath.Join(t.TempDir(), "hookstream.yaml")
	cfg := fmt.Sprintf(`
http: {addr: %q}
grpc: {addr: %q}
shutdown_timeout: 2s
api: {tokens: [{name: admin, scope: admin, token: %q}]}
log:
  data_dir: %q
%s
sources:
  - {name: clinchpad, vendor: clinchpad, auth: {handshake_key: %q}}
`, p.httpAddr, p.grpcAddr, adminToken, dataDir, extraLog, cpHandshake)
	if err := os.WriteFile(p.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs the process and waits until it answers /healthz.
func (p *proc) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, "serve", "--config", p.config, "--log-level", "warn")
	p.stderr = &logBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.stderr
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	cmd := p.cmd
	p.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("hookstream did not become healthy within 90s; its log:\n%s", p.stderr.String())
}

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// loadResult counts what a load run saw.
type loadResult struct {
	// refused: no HTTP answer (process down); failed: a non-2xx answer.
	sent, acked, refused, failed, skipped atomic.Int64
	mu                                    sync.Mutex
	ackedIDs                              map[string]bool
	// unanswered and ackedN hold the request numbers (see loadBody) of
	// requests that got no answer and of acknowledged ones, for retries.
	unanswered, ackedN []int
}

// loadBody is the n-th unique ClinchPad activity of a load run.
func loadBody(n int) string {
	return fmt.Sprintf(`{"activity": {"_id": "act-%08d", "created_at": "2024-06-11T01:00:00Z", "type": "note:created",
		"note_content": "load %d"}, "lead": {"_id": "lead-load", "name": "Load"}, "handshake_key": %q}`, n, n, cpHandshake)
}

// sendLoad posts unique ClinchPad activities to urls (round-robin) at a
// fixed rate until ctx ends, with at most 64 requests in flight.
func sendLoad(ctx context.Context, urls []string, rate int, res *loadResult) {
	client := &http.Client{Timeout: 3 * time.Second}
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			res.skipped.Add(1)
			continue
		}
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			defer func() { <-sem }()
			res.sent.Add(1)
			resp, err := client.Post(urls[n%len(urls)]+"/v1/webhooks/clinchpad", "application/json", strings.NewReader(loadBody(n)))
			if err != nil {
				res.refused.Add(1)
				res.mu.Lock()
				res.unanswered = append(res.unanswered, n)
				res.mu.Unlock()
				return
			}
			defer resp.Body.Close()
			var out struct {
				EventID string `json:"event_id"`
			}
			if resp.StatusCode/100 != 2 || json.NewDecoder(resp.Body).Decode(&out) != nil || out.EventID == "" {
				res.failed.Add(1)
				return
			}
			res.acked.Add(1)
			res.mu.Lock()
			res.ackedIDs[out.EventID] = true
			res.ackedN = append(res.ackedN, n)
			res.mu.Unlock()
		}(n)
	}
}

// resumingSubscriber reads every event from the beginning, reconnecting
// (to any of addrs) after each failure with after_cursor set to the last
// event it processed, and counts deliveries per id.
type resumingSubscriber struct {
	mu         sync.Mutex
	seen       map[string]int
	reconnects int
}

func (r *resumingSubscriber) run(ctx context.Context, addrs []string) {
	cursor := ""
	for i := 0; ctx.Err() == nil; i++ {
		conn, err := grpc.NewClient(addrs[i%len(addrs)], grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(bearer(adminToken)))
		if err != nil {
			return
		}
		req := &hookstreamv1.SubscribeRequest{Start: &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING}}
		if cursor != "" {
			req.Start = &hookstreamv1.SubscribeRequest_AfterCursor{AfterCursor: cursor}
		}
		stream, err := hookstreamv1.NewEventServiceClient(conn).Subscribe(ctx, req)
		for err == nil {
			var m *hookstreamv1.SubscribeResponse
			if m, err = stream.Recv(); err == nil && m.GetDelivery() != nil {
				r.mu.Lock()
				r.seen[m.GetDelivery().GetEvent().GetId()]++
				r.mu.Unlock()
				cursor = m.GetDelivery().GetCursor()
			}
		}
		_ = conn.Close()
		r.mu.Lock()
		r.reconnects++
		r.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitFor waits until the subscriber has seen every id in want.
func (r *resumingSubscriber) waitFor(want map[string]bool, timeout time.Duration) (missing int) {
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		missing = 0
		for id := range want {
			if r.seen[id] == 0 {
				missing++
			}
		}
		r.mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			return missing
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCrashUnderLoad SIGKILLs the server (embedded JetStream) several
// times while webhooks arrive at a steady rate. Every acknowledged event
// must be readable afterwards, and a subscriber resuming from its cursor
// must receive each event exactly once. An outbound endpoint created
// before the load must receive every acknowledged event at least once
// (repeats of an id after a crash are allowed, and counted).
func TestCrashUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary under load")
	}
	// JetStream's own dedup window is cut short, so the retries below can
	// only be recognised by the dedup index, across the kills.
	p := newProc(t, t.TempDir(), "  dedup_guard: 500ms\n"+crashDeliveryYAML)
	p.start()
	// An outbound endpoint, created before the load, whose receiver (in
	// this process, so it outlives the kills) fails 10% of requests: some
	// retries are in flight or scheduled whenever the server dies.
	rc := newCountingReceiver(t, 100)
	ep := createEndpointAt(t, p.grpcAddr, &hookstreamv1.Endpoint{Url: rc.srv.URL + "/hook"})
	var logs []string // the logs of the killed runs
	res := &loadResult{ackedIDs: map[string]bool{}}
	sub := &resumingSubscriber{seen: map[string]int{}}
	subCtx, stopSub := context.WithCancel(context.Background())
	defer stopSub()
	go sub.run(subCtx, []string{p.grpcAddr})

	loadCtx, stopLoad := context.WithTimeout(context.Background(), *crashDuration)
	defer stopLoad()
	loadDone := make(chan struct{})
	go func() { sendLoad(loadCtx, []string{"http://" + p.httpAddr}, *crashRate, res); close(loadDone) }()
	kills := 0
	var downtime time.Duration
	for i := 1; i <= *crashKills; i++ {
		select {
		case <-time.After(*crashDuration / time.Duration(*crashKills+1)):
		case <-loadDone:
		}
		p.kill()
		kills++
		logs = append(logs, p.stderr.String())
		down := time.Now()
		p.start()
		downtime += time.Since(down)
	}
	<-loadDone
	// Like a vendor, retry what got no answer, and redeliver a sample of
	// what was acknowledged (each must be a duplicate now).
	retried := retryLoad(t, "http://"+p.httpAddr, res)

	missing := sub.waitFor(res.ackedIDs, 30*time.Second)
	stopSub()

	v := verify(t, p.grpcAddr, res, sub)
	lost, dups, delivered, reconnects := v.lost, v.dups, v.delivered, v.reconnects

	// Outbound delivery: after the last restart the endpoint is taken over
	// once the killed run's lease expires (10s), and every acknowledged
	// event reaches the receiver at least once; repeats are allowed.
	dc := rc.waitAll(res.ackedIDs, 60*time.Second)
	t.Logf("crash under load, delivery to endpoint %s: %d acked events, %d missing, %d duplicates (repeats of an id), "+
		"%d delivered but not acked, %d requests (%d answered 500), %d received while the same id was in flight, waited %.1fs",
		ep.GetId(), dc.Acked, dc.Missing, dc.Duplicates, dc.Extra, dc.Requests, dc.Failed500, dc.Overlaps, dc.WaitS)
	t.Logf("delivery lines of the runs' logs:\n%s", deliveryLogLines(strings.Join(append(logs, p.stderr.String()), "\n")))
	if dc.Missing != 0 {
		t.Errorf("outbound delivery skipped %d of %d acknowledged events (e.g. %v)", dc.Missing, dc.Acked, dc.missingID)
	}

	report := map[string]any{
		"duration_s": crashDuration.Seconds(), "rate_per_s": *crashRate, "kills": kills,
		"sent": res.sent.Load(), "acked": res.acked.Load(), "no_answer": res.refused.Load(), "non_2xx": res.failed.Load(),
		"generator_skipped": res.skipped.Load(), "lost": lost, "missing_from_subscriber": missing,
		"duplicates_delivered": dups, "distinct_delivered": delivered, "subscriber_reconnects": reconnects,
		"mean_restart_ms":    downtime.Milliseconds() / int64(max(kills, 1)),
		"retried_unanswered": retried.unanswered, "retried_unanswered_already_stored": retried.unansweredDup,
		"redelivered_acked": retried.acked, "stored_twice": v.storedTwice, "delivery": dc,
	}
	b, _ := json.Marshal(report)
	t.Logf("crash under load: %s", b)
	if *crashReport != "" {
		if err := os.WriteFile(*crashReport, b, 0o644); err != nil {
			t.Error(err)
		}
	}
	if lost != 0 || missing != 0 || dups != 0 || v.storedTwice != 0 {
		t.Errorf("lost %d acknowledged events, stored %d twice; subscriber missed %d and saw %d duplicates", lost, v.storedTwice, missing, dups)
	}
	if res.acked.Load() == 0 || kills == 0 {
		t.Errorf("nothing was tested: %d acked, %d kills", res.acked.Load(), kills)
	}
	if errors.Is(loadCtx.Err(), context.Canceled) {
		t.Log("load stopped early")
	}
}

// retried counts what retryLoad sent.
type retried struct{ unanswered, unansweredDup, acked int }

// retryLoad resends every request of res that got no answer (each must now
// be acknowledged, as new or as a duplicate) and up to 500 acknowledged
// ones (each must be a duplicate of the same event).
func retryLoad(t *testing.T, url string, res *loadResult) retried {
	t.Helper()
	post := func(n int) (id string, duplicate bool) {
		// A vendor retries a 503 (a cluster settling after a node died;
		// on a loaded machine a new leader can take well over 10 s).
		for attempt := 1; ; attempt++ {
			resp, err := http.Post(url+"/v1/webhooks/clinchpad", "application/json", strings.NewReader(loadBody(n)))
			if err != nil {
				t.Fatalf("retry of request %d: %v", n, err)
			}
			var out struct {
				EventID   string `json:"event_id"`
				Duplicate bool   `json:"duplicate"`
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusServiceUnavailable && attempt < 120:
				time.Sleep(250 * time.Millisecond)
			case resp.StatusCode != http.StatusOK || err != nil || out.EventID == "":
				t.Fatalf("retry of request %d: %d", n, resp.StatusCode)
			default:
				return out.EventID, out.Duplicate
			}
		}
	}
	res.mu.Lock()
	unanswered, acked := slices.Clone(res.unanswered), slices.Clone(res.ackedN[:min(len(res.ackedN), 500)])
	res.mu.Unlock()
	var r retried
	for _, n := range unanswered {
		id, dup := post(n)
		r.unanswered++
		if dup {
			r.unansweredDup++
		}
		res.mu.Lock()
		res.ackedIDs[id] = true
		res.mu.Unlock()
	}
	for _, n := range acked {
		if _, dup := post(n); !dup {
			t.Errorf("redelivery of acknowledged request %d was stored again", n)
		}
		r.acked++
	}
	return r
}

// verified is what verify found.
type verified struct{ lost, dups, delivered, reconnects, storedTwice int }

// verify reads the whole log back through grpcAddr (ListEvents) and
// checks that every acknowledged id is in it, fetches a sample of them
// with GetEvent, and counts the subscriber's duplicates.
func verify(t *testing.T, grpcAddr string, res *loadResult, sub *resumingSubscriber) verified {
	t.Helper()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(adminToken)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	events := hookstreamv1.NewEventServiceClient(conn)
	stored := map[string]bool{}
	var v verified
	for token := ""; ; {
		var page *hookstreamv1.ListEventsResponse
		// A cluster that just lost a node may need a moment to serve reads.
		for attempt := 0; ; attempt++ {
			page, err = events.ListEvents(context.Background(), &hookstreamv1.ListEventsRequest{PageSize: 1000, PageToken: token})
			if err == nil || attempt == 20 {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil {
			t.Fatalf("listing the log: %v", err)
		}
		for _, e := range page.GetEvents() {
			if stored[e.GetId()] {
				v.storedTwice++
			}
			stored[e.GetId()] = true
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	sampled := 0
	for id := range res.ackedIDs {
		if !stored[id] {
			v.lost++
			if v.lost < 5 {
				t.Errorf("acknowledged event %s is not in the log", id)
			}
			continue
		}
		if sampled < 200 {
			sampled++
			if _, err := events.GetEvent(context.Background(), &hookstreamv1.GetEventRequest{Id: id}); err != nil {
				t.Errorf("GetEvent(%s): %v", id, err)
			}
		}
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for _, n := range sub.seen {
		v.dups += max(0, n-1)
	}
	v.delivered, v.reconnects = len(sub.seen), sub.reconnects
	return v
}
