package system

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// crashDeliveryYAML is the delivery section of the crash and cluster
// tests' processes: loopback receivers, quick retries (ten of them, so a
// receiver failing 10% of requests never dead-letters an event).
const crashDeliveryYAML = `
delivery:
  allow_http: true
  allow_networks: ["127.0.0.0/8"]
  plain_secrets: true
  retry_schedule: [100ms, 200ms, 500ms, 1s, 1s, 1s, 1s, 1s, 1s, 1s]
  jitter: 0
  timeout: 2s
`

// countingReceiver is a loopback webhook receiver in the test process (so
// it outlives a SIGKILLed hookstream): it counts accepted deliveries by
// webhook-id, fails a fraction of requests with 500, and notes when one
// id is being received twice at the same moment (two deliverers at once).
type countingReceiver struct {
	srv      *httptest.Server
	failRate atomic.Uint64 // per mille of requests answered 500
	mu       sync.Mutex
	ok       map[string]int // accepted (2xx) deliveries per id
	inflight map[string]int
	requests int
	failed   int
	// overlaps counts requests that arrived while the same id was being
	// received already; maxConc is the most requests handled at once.
	overlaps, conc, maxConc int
}

func newCountingReceiver(t *testing.T, failPerMille uint64) *countingReceiver {
	rc := &countingReceiver{ok: map[string]int{}, inflight: map[string]int{}}
	rc.failRate.Store(failPerMille)
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("webhook-id")
		rc.mu.Lock()
		rc.requests++
		if rc.inflight[id] > 0 {
			rc.overlaps++
		}
		rc.inflight[id]++
		rc.conc++
		rc.maxConc = max(rc.maxConc, rc.conc)
		rc.mu.Unlock()
		// A moment of work, so that two deliverers of one id would meet.
		time.Sleep(2 * time.Millisecond)
		fail := rand.Uint64N(1000) < rc.failRate.Load()
		rc.mu.Lock()
		rc.inflight[id]--
		if rc.inflight[id] == 0 {
			delete(rc.inflight, id)
		}
		rc.conc--
		if fail {
			rc.failed++
		} else {
			rc.ok[id]++
		}
		rc.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// deliveryCheck is what the receiver saw of a set of acknowledged ids.
type deliveryCheck struct {
	Acked      int `json:"acked"`
	Missing    int `json:"missing"`
	Duplicates int `json:"duplicates"` // repeats of an acked id
	// Extra are delivered ids not among the acknowledged ones (stored but
	// unanswered before a kill, and not retried).
	Extra     int     `json:"delivered_not_acked"`
	Requests  int     `json:"requests"`
	Failed500 int     `json:"answered_500"`
	Overlaps  int     `json:"same_id_concurrently"`
	MaxConc   int     `json:"max_concurrent"`
	WaitS     float64 `json:"wait_for_all_s"`
	missingID []string
}

// waitAll waits up to within until every id in want was accepted at least
// once, and counts what the receiver saw.
func (rc *countingReceiver) waitAll(want map[string]bool, within time.Duration) deliveryCheck {
	start := time.Now()
	deadline := start.Add(within)
	for {
		c := rc.check(want)
		if c.Missing == 0 || time.Now().After(deadline) {
			c.WaitS = time.Since(start).Seconds()
			return c
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (rc *countingReceiver) check(want map[string]bool) deliveryCheck {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	c := deliveryCheck{Acked: len(want), Requests: rc.requests, Failed500: rc.failed, Overlaps: rc.overlaps, MaxConc: rc.maxConc}
	for id := range want {
		switch n := rc.ok[id]; n {
		case 0:
			c.Missing++
			if len(c.missingID) < 10 {
				c.missingID = append(c.missingID, id)
			}
		default:
			c.Duplicates += n - 1
		}
	}
	for id := range rc.ok {
		if !want[id] {
			c.Extra++
		}
	}
	return c
}

// createEndpointAt creates an endpoint through a hookstream process's gRPC
// API with the admin token.
func createEndpointAt(t *testing.T, grpcAddr string, ep *hookstreamv1.Endpoint) *hookstreamv1.Endpoint {
	t.Helper()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(adminToken)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := hookstreamv1.NewEndpointServiceClient(conn).CreateEndpoint(ctx, &hookstreamv1.CreateEndpointRequest{Endpoint: ep})
	if err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	return resp.GetEndpoint()
}

// deliversEndpoint says whether the process runs the endpoint's worker:
// its /metrics carry the endpoint's queue depth once the worker saved its
// progress.
func (p *proc) deliversEndpoint(t *testing.T, id string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.httpAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return regexp.MustCompile(`hookstream_delivery_queue_depth\{endpoint="` + regexp.QuoteMeta(id) + `"\}`).Match(b)
}

// deliveryLogLines picks the delivery warnings out of a process's log.
func deliveryLogLines(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "delivery") {
			out = append(out, l)
		}
	}
	if len(out) > 40 {
		out = append(out[:20], append([]string{fmt.Sprintf("... %d more ...", len(out)-40)}, out[len(out)-20:]...)...)
	}
	return strings.Join(out, "\n")
}
