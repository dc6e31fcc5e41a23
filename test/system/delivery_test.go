package system

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/delivery/webhook"
)

// deliveryYAML allows loopback receivers and makes retries quick.
const deliveryYAML = `delivery:
  allow_http: true
  allow_networks: ["127.0.0.0/8"]
  plain_secrets: true
  retry_schedule: [50ms, 100ms, 150ms]
  jitter: 0
  timeout: 1s
`

// receiver is a loopback webhook receiver that verifies signatures and
// records what it got, by webhook-id.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	got    []delivered
	byID   map[string]int
	answer func(r *http.Request, n int) int // status for the n-th request (from 1)
	bad    int
}

type delivered struct {
	id   string
	body []byte
	h    http.Header
	at   time.Time
}

func newReceiver(t *testing.T, answer func(*http.Request, int) int) *receiver {
	rc := &receiver{t: t, byID: map[string]int{}, answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		secret := rc.secret
		rc.got = append(rc.got, delivered{id: r.Header.Get("webhook-id"), body: body, h: r.Header.Clone(), at: time.Now()})
		n := len(rc.got)
		rc.mu.Unlock()
		if secret != "" {
			if err := webhook.Verify(secret, r.Header, body, 5*time.Minute, time.Now()); err != nil {
				rc.mu.Lock()
				rc.bad++
				rc.mu.Unlock()
				t.Errorf("delivery %s does not verify: %v", r.Header.Get("webhook-id"), err)
			}
		}
		code := http.StatusNoContent
		if rc.answer != nil {
			code = rc.answer(r, n)
		}
		if code < 300 {
			rc.mu.Lock()
			rc.byID[r.Header.Get("webhook-id")]++
			rc.mu.Unlock()
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// switchable is a receiver that answers code while failing is on, and
// 200 otherwise; fail switches it.
func switchable(t *testing.T, code int) (rc *receiver, fail func(bool)) {
	var mu sync.Mutex
	failing := true
	rc = newReceiver(t, func(*http.Request, int) int {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return code
		}
		return 200
	})
	return rc, func(on bool) {
		mu.Lock()
		failing = on
		mu.Unlock()
	}
}

func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	rc.secret = s
	rc.mu.Unlock()
}

// waitFor waits until every id was accepted at least once.
func (rc *receiver) waitFor(t *testing.T, ids []string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rc.mu.Lock()
		missing := 0
		for _, id := range ids {
			if rc.byID[id] == 0 {
				missing++
			}
		}
		rc.mu.Unlock()
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events not delivered within %s", missing, len(ids), within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (rc *receiver) requests() []delivered {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivered(nil), rc.got...)
}

func (s *server) endpoints() hookstreamv1.EndpointServiceClient {
	return hookstreamv1.NewEndpointServiceClient(s.conn)
}

func createEndpoint(t *testing.T, s *server, ep *hookstreamv1.Endpoint) *hookstreamv1.Endpoint {
	t.Helper()
	resp, err := s.endpoints().CreateEndpoint(context.Background(), &hookstreamv1.CreateEndpointRequest{Endpoint: ep})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetEndpoint()
}

// postLeadNotes stores ClinchPad notes of the given leads, one per lead
// per round, and returns the event ids in log order.
func postLeadNotes(t *testing.T, s *server, tag string, leads []string, rounds int) []string {
	t.Helper()
	h := s.app.Handler()
	var ids []string
	for r := range rounds {
		for _, lead := range leads {
			body := fmt.Sprintf(`{"activity": {"_id": "act-%s-%s-%d", "created_at": "2024-06-11T01:00:00Z", "type": "lead:note"},
				"lead": {"_id": %q}, "handshake_key": %q}`, tag, lead, r, lead, cpHandshake)
			req := httptest.NewRequest(http.MethodPost, "/v1/webhooks/clinchpad", bytes.NewReader([]byte(body)))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("ingest: %d %s", rec.Code, rec.Body)
			}
			ids = append(ids, s.lastEventID(rec.Body.Bytes()))
		}
	}
	return ids
}

func TestDeliverySignedAndComplete(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc := newReceiver(t, nil)
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL + "/hook"})
	if ep.GetSecret() == "" || ep.GetId() == "" {
		t.Fatalf("create answered %v", ep)
	}
	rc.setSecret(ep.GetSecret())
	ids := postLeadNotes(t, s, "a", []string{"l1", "l2", "l3"}, 10)
	rc.waitFor(t, ids, 10*time.Second)
	for _, d := range rc.requests() {
		if d.h.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", d.h.Get("Content-Type"))
		}
	}
}

// attemptsOf lists an endpoint's attempts of one event.
func attemptsOf(t *testing.T, s *server, endpoint, eventID string) []*hookstreamv1.DeliveryAttempt {
	t.Helper()
	resp, err := s.endpoints().ListDeliveryAttempts(context.Background(),
		&hookstreamv1.ListDeliveryAttemptsRequest{EndpointId: endpoint, EventId: eventID, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetAttempts()
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeliveryRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	// Each event fails twice (500, then 429 with Retry-After: 1), then
	// succeeds.
	seen := map[string]int{}
	var mu sync.Mutex
	var retryAfterGap time.Duration
	var second time.Time
	rc := newReceiver(t, func(r *http.Request, _ int) int {
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get("webhook-id")
		seen[id]++
		switch seen[id] {
		case 1:
			return 500
		case 2:
			second = time.Now()
			return 429
		}
		if seen[id] == 3 && retryAfterGap == 0 {
			retryAfterGap = time.Since(second)
		}
		return 200
	})
	rc.srv.Config.Handler = retryAfter(rc.srv.Config.Handler)
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL})
	rc.setSecret(ep.GetSecret())
	ids := postLeadNotes(t, s, "r", []string{"l1"}, 1)
	rc.waitFor(t, ids, 10*time.Second)
	mu.Lock()
	gap := retryAfterGap
	mu.Unlock()
	if gap < 900*time.Millisecond {
		t.Errorf("the attempt after 429 with Retry-After: 1 came %s later; want about 1s", gap)
	}
	var as []*hookstreamv1.DeliveryAttempt
	waitUntil(t, 5*time.Second, "3 attempts recorded", func() bool { as = attemptsOf(t, s, ep.GetId(), ids[0]); return len(as) == 3 })
	want := []hookstreamv1.AttemptOutcome{hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_RETRYING,
		hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_RETRYING, hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED}
	for i, a := range as {
		if a.GetOutcome() != want[i] || a.GetAttempt() != uint32(i+1) {
			t.Errorf("attempt %d: %v #%d, want %v", i, a.GetOutcome(), a.GetAttempt(), want[i])
		}
	}
	if as[0].GetStatusCode() != 500 || as[1].GetStatusCode() != 429 {
		t.Errorf("statuses %d, %d", as[0].GetStatusCode(), as[1].GetStatusCode())
	}
}

// retryAfter adds Retry-After: 1 to 429 answers.
func retryAfter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&retryAfterWriter{ResponseWriter: w}, r)
	})
}

type retryAfterWriter struct{ http.ResponseWriter }

func (w *retryAfterWriter) WriteHeader(code int) {
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.ResponseWriter.WriteHeader(code)
}

// TestDeliveryDeadLettersAndRedrive runs with fsync: interval and with
// fsync: always (where dead letters and redrive requests wait for the
// log's shared syncs).
func TestDeliveryDeadLettersAndRedrive(t *testing.T) {
	t.Parallel()
	for _, fsync := range []string{"interval", "always"} {
		t.Run("fsync="+fsync, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, t.TempDir(), deliveryYAML)
			cfg.Log.Fsync = fsync
			s := startServer(t, cfg)
			deadLettersAndRedrive(t, s)
			// 5 events, the endpoint, 5 dead letters and 5 redrive
			// requests waited for a shared sync with fsync: always.
			synced := metricValue(t, s, "hookstream_log_synced_writes_total")
			if fsync == "always" && synced < 16 || fsync == "interval" && synced != 0 {
				t.Errorf("hookstream_log_synced_writes_total = %v with fsync: %s; want at least 16 with always, 0 with interval", synced, fsync)
			}
		})
	}
}

func deadLettersAndRedrive(t *testing.T, s *server) {
	rc, fail := switchable(t, 503)
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL})
	ids := postLeadNotes(t, s, "d", []string{"l1", "l2"}, 1)
	ctx := context.Background()
	var dead []*hookstreamv1.DeadLetter
	waitUntil(t, 10*time.Second, "2 dead letters", func() bool {
		resp, err := s.endpoints().ListDeadLetters(ctx, &hookstreamv1.ListDeadLettersRequest{EndpointId: ep.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		dead = resp.GetDeadLetters()
		return len(dead) == 2
	})
	stored := `hookstream_dead_letters_stored{endpoint="` + ep.GetId() + `"}`
	waitUntil(t, 5*time.Second, "hookstream_dead_letters_stored at 2", func() bool { return metricValue(t, s, stored) == 2 })
	for _, d := range dead {
		if len(d.GetAttempts()) != 4 {
			t.Errorf("dead letter %s has %d attempts, want 4 (1 + 3 retries)", d.GetEventId(), len(d.GetAttempts()))
		}
		for _, a := range d.GetAttempts() {
			if a.GetStatusCode() != 503 {
				t.Errorf("attempt status %d", a.GetStatusCode())
			}
		}
	}
	fail(false)
	// What does not clearly select is refused, not taken as "all".
	for name, req := range map[string]*hookstreamv1.RedriveDeadLettersRequest{
		"all: false": {Selector: &hookstreamv1.RedriveDeadLettersRequest_All{All: false}},
		"empty id":   {Selector: &hookstreamv1.RedriveDeadLettersRequest_DeadLetterId{}},
		"range ends first": {Selector: &hookstreamv1.RedriveDeadLettersRequest_DeadTime{DeadTime: &hookstreamv1.TimeRange{
			StartTime: timestamppb.Now(), EndTime: timestamppb.New(time.Now().Add(-time.Hour))}}},
	} {
		req.EndpointId = ep.GetId()
		if r, err := s.endpoints().RedriveDeadLetters(ctx, req); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("redrive with %s: %v %v, want INVALID_ARGUMENT", name, r, err)
		}
	}
	// Redrive one, then the rest.
	r, err := s.endpoints().RedriveDeadLetters(ctx, &hookstreamv1.RedriveDeadLettersRequest{EndpointId: ep.GetId(),
		Selector: &hookstreamv1.RedriveDeadLettersRequest_DeadLetterId{DeadLetterId: dead[0].GetId()}})
	if err != nil || r.GetRedriven() != 1 {
		t.Fatalf("redrive one: %v %v", r, err)
	}
	rc.waitFor(t, []string{dead[0].GetEventId()}, 10*time.Second)
	// A range that holds none of them redrives nothing; one around now
	// the rest.
	past := &hookstreamv1.TimeRange{StartTime: timestamppb.New(time.Now().Add(-2 * time.Hour)), EndTime: timestamppb.New(time.Now().Add(-time.Hour))}
	r, err = s.endpoints().RedriveDeadLetters(ctx, &hookstreamv1.RedriveDeadLettersRequest{EndpointId: ep.GetId(),
		Selector: &hookstreamv1.RedriveDeadLettersRequest_DeadTime{DeadTime: past}})
	if err != nil || r.GetRedriven() != 0 {
		t.Fatalf("redrive a range in the past: %v %v", r, err)
	}
	// The range is half-open and on dead_time as listed: one that ends
	// at the letter's dead_time leaves it, one that starts there takes it.
	at := dead[1].GetDeadTime().AsTime()
	before := &hookstreamv1.TimeRange{StartTime: timestamppb.New(at.Add(-time.Hour)), EndTime: timestamppb.New(at)}
	r, err = s.endpoints().RedriveDeadLetters(ctx, &hookstreamv1.RedriveDeadLettersRequest{EndpointId: ep.GetId(),
		Selector: &hookstreamv1.RedriveDeadLettersRequest_DeadTime{DeadTime: before}})
	if err != nil || r.GetRedriven() != 0 {
		t.Fatalf("redrive a range ending at the dead letter's dead_time: %v %v, want none", r, err)
	}
	from := &hookstreamv1.TimeRange{StartTime: timestamppb.New(at), EndTime: timestamppb.New(at.Add(time.Microsecond))}
	r, err = s.endpoints().RedriveDeadLetters(ctx, &hookstreamv1.RedriveDeadLettersRequest{EndpointId: ep.GetId(),
		Selector: &hookstreamv1.RedriveDeadLettersRequest_DeadTime{DeadTime: from}})
	if err != nil || r.GetRedriven() != 1 {
		t.Fatalf("redrive a range starting at the dead letter's dead_time: %v %v", r, err)
	}
	rc.waitFor(t, ids, 10*time.Second)
	resp, err := s.endpoints().ListDeadLetters(ctx, &hookstreamv1.ListDeadLettersRequest{EndpointId: ep.GetId()})
	if err != nil || len(resp.GetDeadLetters()) != 0 {
		t.Fatalf("dead letters after redrive: %v %v", resp, err)
	}
	// An endpoint without dead letters has no series.
	waitUntil(t, 5*time.Second, "hookstream_dead_letters_stored gone after the redrive", func() bool { return metricValue(t, s, stored) == -1 })

	// All of them, after another failing stretch.
	fail(true)
	more := postLeadNotes(t, s, "d2", []string{"l1", "l2", "l3"}, 1)
	waitUntil(t, 10*time.Second, "3 new dead letters", func() bool {
		resp, err := s.endpoints().ListDeadLetters(ctx, &hookstreamv1.ListDeadLettersRequest{EndpointId: ep.GetId()})
		return err == nil && len(resp.GetDeadLetters()) == 3
	})
	fail(false)
	r, err = s.endpoints().RedriveDeadLetters(ctx, &hookstreamv1.RedriveDeadLettersRequest{EndpointId: ep.GetId(),
		Selector: &hookstreamv1.RedriveDeadLettersRequest_All{All: true}})
	if err != nil || r.GetRedriven() != 3 {
		t.Fatalf("redrive all: %v %v", r, err)
	}
	rc.waitFor(t, more, 10*time.Second)
	// An unknown dead letter is NOT_FOUND.
	_, err = s.endpoints().RedriveDeadLetters(ctx, &hookstreamv1.RedriveDeadLettersRequest{EndpointId: ep.GetId(),
		Selector: &hookstreamv1.RedriveDeadLettersRequest_DeadLetterId{DeadLetterId: "dl_999999"}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown dead letter: %v", err)
	}
}

func TestDeliveryGoneDisablesAndResumeDelivers(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc, fail := switchable(t, 410)
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL})
	ctx := context.Background()
	first := postLeadNotes(t, s, "g", []string{"l1"}, 1)
	waitUntil(t, 10*time.Second, "endpoint disabled", func() bool {
		got, err := s.endpoints().GetEndpoint(ctx, &hookstreamv1.GetEndpointRequest{Id: ep.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		return got.GetEndpoint().GetState() == hookstreamv1.EndpointState_ENDPOINT_STATE_DISABLED
	})
	got, _ := s.endpoints().GetEndpoint(ctx, &hookstreamv1.GetEndpointRequest{Id: ep.GetId()})
	if reason := got.GetEndpoint().GetDisabledReason(); !bytes.Contains([]byte(reason), []byte("410")) {
		t.Errorf("disabled reason %q does not say 410", reason)
	}
	disabled := `hookstream_deliveries_total{endpoint="` + ep.GetId() + `",outcome="endpoint_disabled"}`
	if v := metricValue(t, s, disabled); v != 1 {
		t.Errorf("%s = %v, want 1", disabled, v)
	}
	more := postLeadNotes(t, s, "g2", []string{"l1", "l2"}, 3)
	time.Sleep(300 * time.Millisecond) // nothing may arrive while disabled
	if n := len(rc.requests()); n != 1 {
		t.Errorf("a disabled endpoint got %d requests, want only the one answered 410", n)
	}
	fail(false)
	if _, err := s.endpoints().ResumeEndpoint(ctx, &hookstreamv1.ResumeEndpointRequest{Id: ep.GetId()}); err != nil {
		t.Fatal(err)
	}
	rc.waitFor(t, append(first, more...), 10*time.Second)
}

// TestSendTestEventGoneDisables: a 410 to a test event disables the
// endpoint as a delivery's 410 does; no event goes to it afterwards.
func TestSendTestEventGoneDisables(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc, _ := switchable(t, 410)
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL})
	ctx := context.Background()
	resp, err := s.endpoints().SendTestEvent(ctx, &hookstreamv1.SendTestEventRequest{Id: ep.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if a := resp.GetAttempt(); a.GetStatusCode() != 410 || a.GetOutcome() != hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_ENDPOINT_DISABLED {
		t.Errorf("test attempt = %d %v, want 410 ENDPOINT_DISABLED", a.GetStatusCode(), a.GetOutcome())
	}
	got, err := s.endpoints().GetEndpoint(ctx, &hookstreamv1.GetEndpointRequest{Id: ep.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if e := got.GetEndpoint(); e.GetState() != hookstreamv1.EndpointState_ENDPOINT_STATE_DISABLED || !strings.Contains(e.GetDisabledReason(), "410") {
		t.Errorf("endpoint after a 410 to its test event: %v %q, want DISABLED with the 410 named", e.GetState(), e.GetDisabledReason())
	}
	postLeadNotes(t, s, "tg", []string{"l1"}, 2)
	time.Sleep(300 * time.Millisecond) // nothing may arrive while disabled
	if n := len(rc.requests()); n != 1 {
		t.Errorf("the disabled endpoint got %d requests, want only the test event", n)
	}
}

func TestDeliveryPauseResume(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc := newReceiver(t, nil)
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL})
	ctx := context.Background()
	if _, err := s.endpoints().PauseEndpoint(ctx, &hookstreamv1.PauseEndpointRequest{Id: ep.GetId()}); err != nil {
		t.Fatal(err)
	}
	// No wait: the worker runs paused once the RPC has returned.
	ids := postLeadNotes(t, s, "p", []string{"l1", "l2"}, 5)
	time.Sleep(500 * time.Millisecond)
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("a paused endpoint got %d requests", n)
	}
	if _, err := s.endpoints().ResumeEndpoint(ctx, &hookstreamv1.ResumeEndpointRequest{Id: ep.GetId()}); err != nil {
		t.Fatal(err)
	}
	rc.waitFor(t, ids, 10*time.Second)
}

func TestDeliveryPerSubjectOrder(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), strings.Replace(deliveryYAML, "[50ms, 100ms, 150ms]", "[400ms, 400ms, 400ms]", 1)))
	// Lead "stuck" fails its first event three times; lead "ok" never
	// fails. "ok" must not wait for "stuck", and each lead's events
	// arrive in log order.
	var mu sync.Mutex
	fails := map[string]int{}
	rc := newReceiver(t, func(r *http.Request, _ int) int {
		body, _ := io.ReadAll(r.Body)
		_ = body
		return 200
	})
	order := map[string][]string{}
	stuckFirst := ""
	okBeforeStuck := 0
	rc.answer = func(r *http.Request, n int) int {
		mu.Lock()
		defer mu.Unlock()
		d := rc.got[n-1]
		lead := leadOf(d.body)
		id := d.id
		if id == stuckFirst && fails[id] < 3 {
			fails[id]++
			return 500
		}
		if id == stuckFirst {
			okBeforeStuck = len(order["ok"])
		}
		order[lead] = append(order[lead], id)
		return 200
	}
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL,
		Ordering: hookstreamv1.EndpointOrdering_ENDPOINT_ORDERING_PER_SUBJECT, MaxInFlight: 10})
	_ = ep
	ids := postLeadNotes(t, s, "o0", []string{"stuck"}, 1)
	mu.Lock()
	stuckFirst = ids[0]
	mu.Unlock()
	stuck := ids
	var ok []string
	for r := range 5 {
		ids := postLeadNotes(t, s, fmt.Sprintf("o%d", r+1), []string{"stuck", "ok"}, 1)
		stuck, ok = append(stuck, ids[0]), append(ok, ids[1])
	}
	rc.waitFor(t, append(stuck, ok...), 10*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(order["stuck"]) != fmt.Sprint(stuck) {
		t.Errorf("lead stuck delivered as %v, want log order %v", order["stuck"], stuck)
	}
	if fmt.Sprint(order["ok"]) != fmt.Sprint(ok) {
		t.Errorf("lead ok delivered as %v, want log order %v", order["ok"], ok)
	}
	if okBeforeStuck != len(ok) {
		t.Errorf("only %d of %d events of lead ok were delivered while lead stuck was retried: head-of-line blocking", okBeforeStuck, len(ok))
	}
	if fails[stuckFirst] != 3 {
		t.Errorf("the stuck event failed %d times, want 3", fails[stuckFirst])
	}
}

// leadOf finds the ClinchPad lead id in a delivered Event.
func leadOf(body []byte) string {
	var ev struct {
		Subject struct {
			ID string `json:"id"`
		} `json:"subject"`
	}
	_ = json.Unmarshal(body, &ev)
	return ev.Subject.ID
}

// TestDeliveryHostileReceivers: a receiver that hangs past the timeout,
// one that closes the connection, one that redirects, and a slow one, next
// to a healthy one. Each failing kind is retried and dead-lettered with a
// reason, the redirect is not followed, and the healthy and slow receivers
// get everything.
func TestDeliveryHostileReceivers(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), strings.Replace(deliveryYAML, "timeout: 1s", "timeout: 300ms", 1)))
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The body is read first: only then does the server notice the
		// client going away (and cancel r.Context()).
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	closer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = c.Close()
		}
	}))
	t.Cleanup(closer.Close)
	healthy := newReceiver(t, nil)
	var followed sync.Mutex
	redirectTargetHits := 0
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed.Lock()
		redirectTargetHits++
		followed.Unlock()
	}))
	t.Cleanup(target.Close)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusFound))
	t.Cleanup(redirect.Close)
	slow := newReceiver(t, func(*http.Request, int) int { time.Sleep(100 * time.Millisecond); return 200 })
	t.Cleanup(s.stop) // before the receivers close: they wait for open requests

	eps := map[string]*hookstreamv1.Endpoint{}
	for name, url := range map[string]string{"hang": hang.URL, "close": closer.URL, "redirect": redirect.URL,
		"healthy": healthy.srv.URL, "slow": slow.srv.URL} {
		eps[name] = createEndpoint(t, s, &hookstreamv1.Endpoint{Url: url, Description: name})
	}
	ids := postLeadNotes(t, s, "h", []string{"l1", "l2", "l3"}, 2)
	healthy.waitFor(t, ids, 10*time.Second)
	slow.waitFor(t, ids, 10*time.Second)
	ctx := context.Background()
	for name, want := range map[string]string{"hang": "timeout", "close": "", "redirect": "redirect"} {
		var dead []*hookstreamv1.DeadLetter
		waitUntil(t, 15*time.Second, name+" dead letters", func() bool {
			resp, err := s.endpoints().ListDeadLetters(ctx, &hookstreamv1.ListDeadLettersRequest{EndpointId: eps[name].GetId()})
			if err != nil {
				t.Fatal(err)
			}
			dead = resp.GetDeadLetters()
			return len(dead) == len(ids)
		})
		for _, a := range dead[0].GetAttempts() {
			if a.GetOutcome() == hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED {
				t.Errorf("%s: an attempt succeeded", name)
			}
			if !strings.Contains(strings.ToLower(a.GetError()), want) || (name != "redirect" && a.GetError() == "") {
				t.Errorf("%s: attempt error %q does not say %q", name, a.GetError(), want)
			}
		}
	}
	followed.Lock()
	defer followed.Unlock()
	if redirectTargetHits != 0 {
		t.Errorf("a redirect was followed %d times", redirectTargetHits)
	}
}

// TestDeliveryFilterChange: a filter change applies to events read after
// it; events the old filter excluded are not delivered.
func TestDeliveryFilterChange(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc := newReceiver(t, nil)
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL, Filter: `event.subject.id == "a"`})
	ids := postLeadNotes(t, s, "f1", []string{"a", "b"}, 3)
	rc.waitFor(t, []string{ids[0], ids[2], ids[4]}, 10*time.Second)
	ctx := context.Background()
	if _, err := s.endpoints().UpdateEndpoint(ctx, &hookstreamv1.UpdateEndpointRequest{
		Endpoint:   &hookstreamv1.Endpoint{Id: ep.GetId(), Filter: `event.subject.id == "b"`},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"filter"}},
	}); err != nil {
		t.Fatal(err)
	}
	// No wait: the worker runs with the new filter once the RPC has
	// returned.
	later := postLeadNotes(t, s, "f2", []string{"a", "b"}, 3)
	rc.waitFor(t, []string{later[1], later[3], later[5]}, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	got := map[string]bool{}
	for _, d := range rc.requests() {
		got[d.id] = true
	}
	for i, id := range ids {
		if got[id] != (i%2 == 0) {
			t.Errorf("before the change, event %d (lead %s) delivered = %v", i, []string{"a", "b"}[i%2], got[id])
		}
	}
	for i, id := range later {
		if got[id] != (i%2 == 1) {
			t.Errorf("after the change, event %d (lead %s) delivered = %v", i, []string{"a", "b"}[i%2], got[id])
		}
	}
	// A bad filter is refused with the reason.
	_, err := s.endpoints().UpdateEndpoint(ctx, &hookstreamv1.UpdateEndpointRequest{
		Endpoint:   &hookstreamv1.Endpoint{Id: ep.GetId(), Filter: `event.nope == 1`},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"filter"}},
	})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad filter: %v", err)
	}
}

// TestDeliveryDeleteInFlight: deleting an endpoint while its receiver
// holds requests ends its deliveries; nothing more arrives, and it is gone
// from the API.
func TestDeliveryDeleteInFlight(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), strings.Replace(deliveryYAML, "timeout: 1s", "timeout: 5s", 1)))
	entered := make(chan struct{}, 100)
	var mu sync.Mutex
	hits := 0
	hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		hits++
		mu.Unlock()
		entered <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(hold.Close)
	t.Cleanup(s.stop) // before the receiver closes: it waits for open requests
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: hold.URL})
	postLeadNotes(t, s, "x", []string{"l1", "l2"}, 5)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery reached the receiver")
	}
	ctx := context.Background()
	if _, err := s.endpoints().DeleteEndpoint(ctx, &hookstreamv1.DeleteEndpointRequest{Id: ep.GetId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.endpoints().GetEndpoint(ctx, &hookstreamv1.GetEndpointRequest{Id: ep.GetId()}); status.Code(err) != codes.NotFound {
		t.Fatalf("get after delete: %v", err)
	}
	// No wait: the worker has stopped once the RPC has returned.
	mu.Lock()
	before := hits
	mu.Unlock()
	postLeadNotes(t, s, "y", []string{"l1"}, 3)
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	if hits != before {
		t.Errorf("a deleted endpoint got %d more requests", hits-before)
	}
	if !strings.Contains(s.logs.String(), "endpoint deleted") {
		t.Error("no log line for the delete")
	}
}

// TestDeliveryRefusesPrivateAddresses: without allow_networks, a loopback
// receiver is never contacted; the attempt says the address is blocked.
func TestDeliveryRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), strings.Replace(deliveryYAML, `allow_networks: ["127.0.0.0/8"]`, `allow_networks: []`, 1)))
	rc := newReceiver(t, nil)
	// "localhost" resolves to loopback: the check is on the address
	// connected to, after DNS.
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: strings.Replace(rc.srv.URL, "127.0.0.1", "localhost", 1)})
	resp, err := s.endpoints().SendTestEvent(context.Background(), &hookstreamv1.SendTestEventRequest{Id: ep.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	a := resp.GetAttempt()
	if a.GetOutcome() != hookstreamv1.AttemptOutcome_ATTEMPT_OUTCOME_FAILED || !strings.Contains(a.GetError(), "blocked") {
		t.Errorf("attempt to loopback: %v %q", a.GetOutcome(), a.GetError())
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("the blocked receiver got %d requests", n)
	}
	// A blocked address written as such is refused when the endpoint is
	// made, over gRPC and over the Pipedrive-compatible API, rather than
	// failing every attempt for the whole retry schedule.
	for _, u := range []string{rc.srv.URL, "https://10.0.0.1/x", "https://169.254.169.254/latest", "http://[fd00::1]:8080/"} {
		_, err := s.endpoints().CreateEndpoint(context.Background(), &hookstreamv1.CreateEndpointRequest{Endpoint: &hookstreamv1.Endpoint{Url: u}})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "is blocked") || !strings.Contains(err.Error(), "delivery.allow_networks") {
			t.Errorf("create with %s: %v, want INVALID_ARGUMENT naming delivery.allow_networks", u, err)
		}
	}
	code, body := httpSend(t, http.MethodPost, s.base+"/api/v1/webhooks", adminToken, "application/json",
		`{"subscription_url": "https://10.0.0.1/x", "event_action": "*", "event_object": "*"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "is blocked") {
		t.Errorf("Pipedrive API create with a private address: %d %s", code, body)
	}
}

// TestEndpointAPIOverHTTP drives the REST mapping the README shows with
// curl, and the scopes: read tokens list, only admin tokens change.
func TestEndpointAPIOverHTTP(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc := newReceiver(t, nil)
	do := func(method, path, token, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	body := fmt.Sprintf(`{"url": %q, "filter": "event.vendor == hookstream.v1.Vendor.VENDOR_CLINCHPAD", "format": "ENDPOINT_FORMAT_CLOUDEVENTS"}`, rc.srv.URL)
	if code, _ := do("POST", "/v1/endpoints", readToken, body); code != http.StatusForbidden {
		t.Errorf("create with a read token: %d", code)
	}
	code, out := do("POST", "/v1/endpoints", adminToken, body)
	if code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	ep := out["endpoint"].(map[string]any)
	id, secret := ep["id"].(string), ep["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Errorf("secret %q", secret)
	}
	rc.setSecret(secret)
	code, out = do("GET", "/v1/endpoints", readToken, "")
	if code != 200 || len(out["endpoints"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, out)
	}
	if strings.Contains(fmt.Sprint(out), secret) {
		t.Error("list shows the secret")
	}
	if code, _ := do("GET", "/v1/endpoints/"+id+"/secret", readToken, ""); code != http.StatusForbidden {
		t.Errorf("secret with a read token: %d", code)
	}
	// What may be a receiver's credential (extra header values, the URL's
	// query) is masked for a read token, and shown to an admin.
	code, out = do("POST", "/v1/endpoints", adminToken, fmt.Sprintf(`{"url": %q, "headers": {"X-Api-Key": "hdr-secret-123456"}, "filter": "event.type == \"none\""}`,
		rc.srv.URL+"/x?sig=query-secret-1&v=2"))
	if code != 200 {
		t.Fatalf("create with headers: %d %v", code, out)
	}
	id2 := out["endpoint"].(map[string]any)["id"].(string)
	for _, path := range []string{"/v1/endpoints/" + id2, "/v1/endpoints"} {
		_, asReader := do("GET", path, readToken, "")
		_, asAdmin := do("GET", path, adminToken, "")
		if r := fmt.Sprint(asReader); strings.Contains(r, "hdr-secret") || strings.Contains(r, "query-secret") ||
			!strings.Contains(r, "X-Api-Key:MASKED") || !strings.Contains(r, "sig=MASKED") {
			t.Errorf("GET %s with a read token shows %s; want the header's value and the query masked", path, r)
		}
		if a := fmt.Sprint(asAdmin); !strings.Contains(a, "hdr-secret-123456") || !strings.Contains(a, "sig=query-secret-1") {
			t.Errorf("GET %s with an admin token shows %s; want the header and the query", path, a)
		}
	}
	if code, _ := do("DELETE", "/v1/endpoints/"+id2, adminToken, ""); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	ids := postLeadNotes(t, s, "rest", []string{"l1"}, 2)
	rc.waitFor(t, ids, 10*time.Second)
	for _, d := range rc.requests() {
		var ce map[string]any
		if err := json.Unmarshal(d.body, &ce); err != nil || ce["specversion"] != "1.0" || ce["id"] != d.id {
			t.Errorf("not a CloudEvent: %s", d.body)
		}
		if d.h.Get("Content-Type") != "application/cloudevents+json" {
			t.Errorf("content type %q", d.h.Get("Content-Type"))
		}
	}
	code, out = do("POST", "/v1/endpoints/"+id+":rotateSecret", adminToken, `{}`)
	if code != 200 {
		t.Fatalf("rotate: %d %v", code, out)
	}
	newSecret := out["endpoint"].(map[string]any)["secret"].(string)
	if newSecret == secret || out["endpoint"].(map[string]any)["previousSecretExpireTime"] == nil {
		t.Errorf("rotate answered %v", out)
	}
	// During the overlap both secrets verify every delivery.
	rc.setSecret(secret)
	more := postLeadNotes(t, s, "rest2", []string{"l1"}, 1)
	rc.waitFor(t, more, 10*time.Second)
	rc.setSecret(newSecret)
	more = postLeadNotes(t, s, "rest3", []string{"l1"}, 1)
	rc.waitFor(t, more, 10*time.Second)
	code, out = do("GET", "/v1/events/"+ids[0]+"/attempts", readToken, "")
	if code != 200 || len(out["attempts"].([]any)) != 1 {
		t.Errorf("attempts of an event: %d %v", code, out)
	}
	if code, out = do("POST", "/v1/endpoints/"+id+":sendTest", adminToken, `{}`); code != 200 ||
		out["attempt"].(map[string]any)["outcome"] != "ATTEMPT_OUTCOME_SUCCEEDED" {
		t.Errorf("send test: %d %v", code, out)
	}
	if code, _ := do("DELETE", "/v1/endpoints/"+id, adminToken, ""); code != 200 {
		t.Errorf("delete: %d", code)
	}
	if code, out := do("GET", "/v1/endpoints/"+id, readToken, ""); code != 404 || !strings.Contains(fmt.Sprint(out), "ENDPOINT_NOT_FOUND") {
		t.Errorf("get deleted: %d %v", code, out)
	}
	if strings.Contains(s.logs.String(), secret) || strings.Contains(s.logs.String(), newSecret) {
		t.Error("a secret is in the logs")
	}
}

// TestDeliveryResumesAfterCheckpointConflict: a checkpoint write that
// fails its compare-and-set (here: the state rewritten behind the
// worker's back, as when a write of its own timed out yet was applied)
// stops the worker; the endpoint must then be delivered again (this
// replica takes it anew), not left with a lease renewed for a worker that
// has exited.
func TestDeliveryResumesAfterCheckpointConflict(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc := newReceiver(t, nil)
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL})
	rc.setSecret(ep.GetSecret())
	first := postLeadNotes(t, s, "c1", []string{"l1"}, 3)
	rc.waitFor(t, first, 10*time.Second)

	ctx := context.Background()
	state, err := s.app.Log().JetStream().KeyValue(ctx, "hookstream_delivery_state")
	if err != nil {
		t.Fatal(err)
	}
	ent, err := state.Get(ctx, ep.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.Put(ctx, ep.GetId(), ent.Value()); err != nil {
		t.Fatal(err)
	}
	// The worker's next save conflicts and it stops.
	postLeadNotes(t, s, "c2", []string{"l1"}, 1)
	waitUntil(t, 5*time.Second, "the worker to notice the conflict", func() bool {
		return strings.Contains(s.logs.String(), "another replica took the endpoint over")
	})
	later := postLeadNotes(t, s, "c3", []string{"l1", "l2"}, 3)
	rc.waitFor(t, later, 20*time.Second)
}

// TestDeliveryEndpointOptions: back-fill from the beginning or a time,
// extra headers and Basic auth on every request, the rate limit, metrics
// without secrets, and /healthz untouched by a failing endpoint.
func TestDeliveryEndpointOptions(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	old := postLeadNotes(t, s, "bf1", []string{"l1", "l2"}, 2)
	time.Sleep(50 * time.Millisecond)
	mark := time.Now()
	recent := postLeadNotes(t, s, "bf2", []string{"l1", "l2"}, 2)

	all := newReceiver(t, nil)
	createEndpoint(t, s, &hookstreamv1.Endpoint{Url: all.srv.URL,
		Start: &hookstreamv1.Endpoint_StartPosition{StartPosition: hookstreamv1.StartPosition_START_POSITION_BEGINNING}})
	since := newReceiver(t, nil)
	createEndpoint(t, s, &hookstreamv1.Endpoint{Url: since.srv.URL, Start: &hookstreamv1.Endpoint_StartTime{StartTime: timestamppb.New(mark)}})
	now := newReceiver(t, nil)
	const password = "basic-pass-Qw7z-0123"
	createEndpoint(t, s, &hookstreamv1.Endpoint{Url: now.srv.URL, Headers: map[string]string{"X-Team": "orders"},
		BasicAuth: &hookstreamv1.BasicAuth{Username: "hooks", Password: password}, RateLimit: 5})
	live := postLeadNotes(t, s, "bf3", []string{"l1", "l2", "l3"}, 3)

	all.waitFor(t, slices.Concat(old, recent, live), 10*time.Second)
	since.waitFor(t, slices.Concat(recent, live), 10*time.Second)
	now.waitFor(t, live, 10*time.Second)
	time.Sleep(100 * time.Millisecond)
	for _, id := range old {
		for _, d := range since.requests() {
			if d.id == id {
				t.Errorf("an endpoint starting at %s got event %s stored before it", mark, id)
			}
		}
	}
	if n := len(now.requests()); n != len(live) {
		t.Errorf("an endpoint starting now got %d requests, want %d", n, len(live))
	}
	reqs := now.requests()
	for _, d := range reqs {
		user, pass, ok := (&http.Request{Header: d.h}).BasicAuth()
		if d.h.Get("X-Team") != "orders" || !ok || user != "hooks" || pass != password {
			t.Errorf("request without the endpoint's header or Basic auth: %v", d.h)
		}
	}
	// 9 requests at 5/s with a burst of 5: the last is at least 0.6 s
	// after the first (4 more tokens at 200 ms each, less a margin).
	first, last := reqs[0].at, reqs[len(reqs)-1].at
	if gap := last.Sub(first); gap < 600*time.Millisecond {
		t.Errorf("9 requests at rate_limit 5/s took %s", gap)
	}

	// A failing endpoint leaves /healthz alone; metrics name endpoints by
	// id and carry no secret.
	bad := newReceiver(t, func(*http.Request, int) int { return 500 })
	badEP := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: bad.srv.URL})
	postLeadNotes(t, s, "bf4", []string{"l1"}, 1)
	waitUntil(t, 5*time.Second, "a failing attempt", func() bool { return len(bad.requests()) > 0 })
	if code, body := httpDo(t, "GET", s.base+"/healthz", ""); code != 200 {
		t.Errorf("/healthz with a failing endpoint: %d %s", code, body)
	}
	var metrics string
	waitUntil(t, 5*time.Second, "delivery metrics", func() bool {
		_, metrics = httpDo(t, "GET", s.base+"/metrics", readToken)
		return strings.Contains(metrics, `hookstream_deliveries_total{endpoint="`+badEP.GetId()+`",outcome="retrying"}`)
	})
	for _, want := range []string{"hookstream_delivery_attempt_seconds_bucket", "hookstream_delivery_queue_depth", "hookstream_delivery_oldest_undelivered_seconds", "hookstream_delivery_lag_events"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	for _, secret := range []string{password, badEP.GetSecret()} {
		if strings.Contains(metrics, secret) || strings.Contains(s.logs.String(), secret) {
			t.Errorf("a secret is in the metrics or logs")
		}
	}
}

// TestDeliveryDisabledAfterFailingTooLong: an endpoint whose every attempt
// fails for delivery.disable_after is disabled with the reason, and
// delivers what accumulated once resumed.
func TestDeliveryDisabledAfterFailingTooLong(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), strings.Replace(deliveryYAML, "[50ms, 100ms, 150ms]",
		"[200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms]", 1)+"  disable_after: 1s\n"))
	rc, fail := switchable(t, 502)
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL})
	ids := postLeadNotes(t, s, "dis", []string{"l1"}, 2)
	ctx := context.Background()
	var got *hookstreamv1.Endpoint
	waitUntil(t, 10*time.Second, "the endpoint disabled", func() bool {
		resp, err := s.endpoints().GetEndpoint(ctx, &hookstreamv1.GetEndpointRequest{Id: ep.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		got = resp.GetEndpoint()
		return got.GetState() == hookstreamv1.EndpointState_ENDPOINT_STATE_DISABLED
	})
	if !strings.Contains(got.GetDisabledReason(), "every attempt failed since") {
		t.Errorf("disabled reason %q", got.GetDisabledReason())
	}
	// Operators see it: the state series, and one warning while it failed
	// (after a tenth of disable_after here), before the disabling.
	state := func(st string) string {
		return `hookstream_endpoint_state{endpoint="` + ep.GetId() + `",state="` + st + `"}`
	}
	waitUntil(t, 5*time.Second, "hookstream_endpoint_state disabled", func() bool {
		return metricValue(t, s, state("disabled")) == 1 && metricValue(t, s, state("active")) == 0
	})
	logs := s.logs.String()
	if n := strings.Count(logs, "delivery: endpoint failing"); n != 1 || strings.Index(logs, "delivery: endpoint failing") > strings.Index(logs, "delivery: endpoint disabled") {
		t.Errorf("%d warnings that the endpoint is failing (want 1, before it was disabled):\n%s", n, logs)
	}
	fail(false)
	more := postLeadNotes(t, s, "dis2", []string{"l1"}, 2)
	if _, err := s.endpoints().ResumeEndpoint(ctx, &hookstreamv1.ResumeEndpointRequest{Id: ep.GetId()}); err != nil {
		t.Fatal(err)
	}
	rc.waitFor(t, append(ids, more...), 10*time.Second)
	waitUntil(t, 5*time.Second, "hookstream_endpoint_state active", func() bool {
		return metricValue(t, s, state("active")) == 1 && metricValue(t, s, state("disabled")) == 0
	})
}

// TestDeliveryFailingIsLogged: once every attempt of an endpoint has
// failed for a tenth of disable_after (here; a minute by default), one
// warning says so, and an info line when it delivers again.
func TestDeliveryFailingIsLogged(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), strings.Replace(deliveryYAML, "[50ms, 100ms, 150ms]",
		"[100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms]", 1)+"  disable_after: 5s\n"))
	rc, fail := switchable(t, 503)
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL})
	ids := postLeadNotes(t, s, "fl", []string{"l1"}, 1)
	waitUntil(t, 5*time.Second, "the warning that the endpoint is failing", func() bool {
		return strings.Contains(s.logs.String(), "delivery: endpoint failing")
	})
	fail(false)
	rc.waitFor(t, ids, 10*time.Second)
	waitUntil(t, 5*time.Second, "the line that it delivers again", func() bool {
		return strings.Contains(s.logs.String(), "delivery: endpoint delivers again")
	})
	logs := s.logs.String()
	if n := strings.Count(logs, "delivery: endpoint failing"); n != 1 || !strings.Contains(logs, "endpoint="+ep.GetId()) {
		t.Errorf("%d warnings that the endpoint is failing, want 1 naming it:\n%s", n, logs)
	}
	if strings.Contains(logs, "delivery: endpoint disabled") {
		t.Errorf("the endpoint was disabled:\n%s", logs)
	}
}

// TestEndpointUpdateMask: whole fields only; an update of basic_auth
// without a password keeps the password (responses never show it).
func TestEndpointUpdateMask(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc := newReceiver(t, nil)
	ctx := context.Background()
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL, BasicAuth: &hookstreamv1.BasicAuth{Username: "u", Password: "p-123456"},
		Headers: map[string]string{"X-A": "1"}})
	if ep.GetBasicAuth().GetPassword() != "" {
		t.Error("a response shows the Basic password")
	}
	_, err := s.endpoints().UpdateEndpoint(ctx, &hookstreamv1.UpdateEndpointRequest{
		Endpoint: &hookstreamv1.Endpoint{Id: ep.GetId()}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"headers.X-A"}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("a sub-path mask: %v", err)
	}
	// A client that read the endpoint and writes it back whole.
	got, err := s.endpoints().GetEndpoint(ctx, &hookstreamv1.GetEndpointRequest{Id: ep.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	upd := got.GetEndpoint()
	upd.Description = "orders"
	if _, err := s.endpoints().UpdateEndpoint(ctx, &hookstreamv1.UpdateEndpointRequest{Endpoint: upd}); err != nil {
		t.Fatal(err)
	}
	ids := postLeadNotes(t, s, "um", []string{"l1"}, 1)
	rc.waitFor(t, ids, 10*time.Second)
	d := rc.requests()[0]
	if user, pass, ok := (&http.Request{Header: d.h}).BasicAuth(); !ok || user != "u" || pass != "p-123456" || d.h.Get("X-A") != "1" {
		t.Errorf("after a whole update: basic %q %q %v, X-A %q", user, pass, ok, d.h.Get("X-A"))
	}

	// Over REST the mask is made of the body's fields (grpc-gateway):
	// sending back what GET returned, its output-only fields included,
	// changes what changed (AIP-203); basicAuth's username and password
	// are one field; "*" is every field.
	patch := func(query, body string) (int, string) {
		return httpSend(t, http.MethodPatch, s.base+"/v1/endpoints/"+ep.GetId()+query, adminToken, "application/json", body)
	}
	code, body := httpDo(t, http.MethodGet, s.base+"/v1/endpoints/"+ep.GetId(), adminToken)
	if code != http.StatusOK {
		t.Fatalf("GET: %d %s", code, body)
	}
	var read map[string]any
	if err := json.Unmarshal([]byte(body), &read); err != nil {
		t.Fatal(err)
	}
	whole := read["endpoint"].(map[string]any)
	whole["description"] = "changed over REST"
	b, _ := json.Marshal(whole)
	if code, body := patch("", string(b)); code != http.StatusOK || !strings.Contains(body, "changed over REST") {
		t.Errorf("PATCH of what GET returned: %d %s", code, body)
	}
	if code, body := patch("", `{"basicAuth": {"username": "v", "password": "p-654321"}}`); code != http.StatusOK || !strings.Contains(body, `"username":"v"`) {
		t.Errorf("PATCH of basicAuth: %d %s", code, body)
	}
	whole["description"] = "every field"
	b, _ = json.Marshal(whole)
	if code, body := patch("?update_mask=*", string(b)); code != http.StatusOK || !strings.Contains(body, "every field") {
		t.Errorf("PATCH with update_mask=*: %d %s", code, body)
	}
	// The mask may name fields as JSON does.
	if code, body := patch("?update_mask=maxInFlight", `{"maxInFlight": 3}`); code != http.StatusOK || !strings.Contains(body, `"maxInFlight":3`) {
		t.Errorf("PATCH with update_mask=maxInFlight: %d %s", code, body)
	}
	// As the OpenAPI document names it, the mask limits the change to the
	// fields it names, whatever else the body holds.
	if code, body := patch("?updateMask=description", `{"description": "masked", "maxInFlight": 7}`); code != http.StatusOK ||
		!strings.Contains(body, `"description":"masked"`) || !strings.Contains(body, `"maxInFlight":3`) {
		t.Errorf("PATCH with updateMask=description: %d %s", code, body)
	}
}

// TestDeliveryRotatedSecretStopsAfterOverlap: once a rotation's overlap
// ends, the previous secret no longer signs, even though nothing else about
// the endpoint changed (its worker keeps the endpoint it loaded).
func TestDeliveryRotatedSecretStopsAfterOverlap(t *testing.T) {
	t.Parallel()
	// Long enough for the first delivery to land inside it on a loaded
	// machine.
	const overlap = 3 * time.Second
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc := newReceiver(t, nil)
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL})
	first := ep.GetSecret()
	rc.waitFor(t, postLeadNotes(t, s, "ov1", []string{"l1"}, 1), 10*time.Second)
	rot, err := s.endpoints().RotateEndpointSecret(context.Background(),
		&hookstreamv1.RotateEndpointSecretRequest{Id: ep.GetId(), Overlap: durationpb.New(overlap)})
	if err != nil {
		t.Fatal(err)
	}
	ends := time.Now().Add(overlap)
	second := rot.GetEndpoint().GetSecret()
	during := postLeadNotes(t, s, "ov2", []string{"l1"}, 1)
	rc.waitFor(t, during, 10*time.Second)
	time.Sleep(time.Until(ends) + 500*time.Millisecond) // the overlap ends
	after := postLeadNotes(t, s, "ov3", []string{"l1"}, 1)
	rc.waitFor(t, after, 10*time.Second)
	for _, d := range rc.requests() {
		sigs := strings.Fields(d.h.Get("webhook-signature"))
		oldOK := webhook.Verify(first, d.h, d.body, time.Minute, time.Now()) == nil
		newOK := webhook.Verify(second, d.h, d.body, time.Minute, time.Now()) == nil
		switch d.id {
		case during[0]:
			if len(sigs) != 2 || !oldOK || !newOK {
				t.Errorf("during the overlap: %d signatures, old verifies %v, new %v; want 2, true, true", len(sigs), oldOK, newOK)
			}
		case after[0]:
			if len(sigs) != 1 || oldOK || !newOK {
				t.Errorf("after the overlap: %d signatures, old verifies %v, new %v; want 1, false, true", len(sigs), oldOK, newOK)
			}
		}
	}
}

// metricValue reads one sample of /metrics, -1 when absent.
func metricValue(t *testing.T, s *server, series string) float64 {
	t.Helper()
	_, body := httpDo(t, "GET", s.base+"/metrics", readToken)
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}

// TestDeliveryGaugesStayCurrent: an endpoint waiting an hour for its next
// retry shows its oldest undelivered event getting older, and a paused one
// its lag growing, though neither changes its saved progress meanwhile.
func TestDeliveryGaugesStayCurrent(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), strings.Replace(deliveryYAML, "[50ms, 100ms, 150ms]", "[1h]", 1)))
	bad := newReceiver(t, func(*http.Request, int) int { return 500 })
	ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: bad.srv.URL})
	postLeadNotes(t, s, "gc", []string{"l1"}, 1)
	age := `hookstream_delivery_oldest_undelivered_seconds{endpoint="` + ep.GetId() + `"}`
	var first float64
	waitUntil(t, 5*time.Second, "the failed event counted", func() bool {
		first = metricValue(t, s, age)
		return len(bad.requests()) == 1 && first >= 0
	})
	waitUntil(t, 5*time.Second, "the oldest event's age to grow", func() bool { return metricValue(t, s, age) >= first+1.5 })
	// So does how long every attempt of it has failed.
	failing := `hookstream_endpoint_failing_seconds{endpoint="` + ep.GetId() + `"}`
	waitUntil(t, 5*time.Second, "hookstream_endpoint_failing_seconds to grow", func() bool { return metricValue(t, s, failing) >= 1.5 })

	rc := newReceiver(t, nil)
	paused := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL})
	rc.waitFor(t, postLeadNotes(t, s, "gc2", []string{"l1"}, 1), 10*time.Second)
	if _, err := s.endpoints().PauseEndpoint(context.Background(), &hookstreamv1.PauseEndpointRequest{Id: paused.GetId()}); err != nil {
		t.Fatal(err)
	}
	// The worker takes the pause in a moment; events stored before that
	// may still go out, so events are stored until the lag shows.
	lag := `hookstream_delivery_lag_events{endpoint="` + paused.GetId() + `"}`
	posted := 0
	waitUntil(t, 10*time.Second, "a paused endpoint's lag to show", func() bool {
		if metricValue(t, s, lag) >= 4 {
			return true
		}
		if posted < 50 {
			posted++
			postLeadNotes(t, s, fmt.Sprintf("gc3-%d", posted), []string{"l1"}, 1)
			time.Sleep(100 * time.Millisecond)
		}
		return false
	})
}

// TestEndpointPagingAndValidation: AIP-158 paging of endpoints, tokens
// refused with INVALID_ARGUMENT, the secret's form, and the fields the
// API refuses (headers hookstream sets itself, a bad URL).
func TestEndpointPagingAndValidation(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc := newReceiver(t, nil)
	ctx := context.Background()
	api := s.endpoints()
	// An event id is 32 lower-case hex digits, here as in GetEvent.
	if _, err := api.ListDeliveryAttempts(ctx, &hookstreamv1.ListDeliveryAttemptsRequest{EventId: "nothex"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("attempts of event nothex: %v, want INVALID_ARGUMENT", err)
	}
	created := map[string]bool{}
	for range 3 {
		ep := createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL})
		created[ep.GetId()] = true
		key, err := webhook.ParseSecret(ep.GetSecret())
		if !strings.HasPrefix(ep.GetSecret(), "whsec_") || err != nil || len(key) != 32 {
			t.Errorf("secret %q: %v, %d bytes", ep.GetSecret(), err, len(key))
		}
	}
	first, err := api.ListEndpoints(ctx, &hookstreamv1.ListEndpointsRequest{PageSize: 2})
	if err != nil || len(first.GetEndpoints()) != 2 || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %v %v", first, err)
	}
	second, err := api.ListEndpoints(ctx, &hookstreamv1.ListEndpointsRequest{PageSize: 2, PageToken: first.GetNextPageToken()})
	if err != nil || len(second.GetEndpoints()) != 1 || second.GetNextPageToken() != "" {
		t.Fatalf("second page: %v %v", second, err)
	}
	for _, ep := range slices.Concat(first.GetEndpoints(), second.GetEndpoints()) {
		if !created[ep.GetId()] || ep.GetSecret() != "" {
			t.Errorf("listed %s (secret %q)", ep.GetId(), ep.GetSecret())
		}
		delete(created, ep.GetId())
	}
	if len(created) != 0 {
		t.Errorf("not listed: %v", created)
	}
	id := first.GetEndpoints()[0].GetId()
	// AIP-158: a page size above the maximum is served as the maximum.
	if all, err := api.ListEndpoints(ctx, &hookstreamv1.ListEndpointsRequest{PageSize: 1_000_000}); err != nil {
		t.Errorf("ListEndpoints(page_size 1,000,000) = %v; want the page served at the maximum size", err)
	} else if len(all.GetEndpoints()) < 2 || all.GetNextPageToken() != "" {
		t.Errorf("ListEndpoints(page_size 1,000,000) = %d endpoints, next %q; want all of them on one page", len(all.GetEndpoints()), all.GetNextPageToken())
	}
	for name, call := range map[string]func() error{
		"endpoints token": func() error {
			_, err := api.ListEndpoints(ctx, &hookstreamv1.ListEndpointsRequest{PageToken: "not-a-token"})
			return err
		},
		"negative page size": func() error {
			_, err := api.ListEndpoints(ctx, &hookstreamv1.ListEndpointsRequest{PageSize: -1})
			return err
		},
		"attempts token": func() error {
			_, err := api.ListDeliveryAttempts(ctx, &hookstreamv1.ListDeliveryAttemptsRequest{EndpointId: id, PageToken: "not-a-token"})
			return err
		},
		"dead letters token": func() error {
			_, err := api.ListDeadLetters(ctx, &hookstreamv1.ListDeadLettersRequest{EndpointId: id, PageToken: "not-a-token"})
			return err
		},
		"a token of another list": func() error {
			_, err := api.ListDeadLetters(ctx, &hookstreamv1.ListDeadLettersRequest{EndpointId: id, PageToken: first.GetNextPageToken()})
			return err
		},
		"webhook-signature header": func() error {
			_, err := api.CreateEndpoint(ctx, &hookstreamv1.CreateEndpointRequest{Endpoint: &hookstreamv1.Endpoint{Url: rc.srv.URL,
				Headers: map[string]string{"Webhook-Signature": "v1,forged"}}})
			return err
		},
		"content-type header": func() error {
			_, err := api.CreateEndpoint(ctx, &hookstreamv1.CreateEndpointRequest{Endpoint: &hookstreamv1.Endpoint{Url: rc.srv.URL,
				Headers: map[string]string{"content-type": "text/plain"}}})
			return err
		},
		"authorization header": func() error {
			_, err := api.UpdateEndpoint(ctx, &hookstreamv1.UpdateEndpointRequest{Endpoint: &hookstreamv1.Endpoint{Id: id,
				Headers: map[string]string{"Authorization": "Bearer x"}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"headers"}}})
			return err
		},
		"ftp URL": func() error {
			_, err := api.CreateEndpoint(ctx, &hookstreamv1.CreateEndpointRequest{Endpoint: &hookstreamv1.Endpoint{Url: "ftp://example.com/x"}})
			return err
		},
		"no URL": func() error {
			_, err := api.CreateEndpoint(ctx, &hookstreamv1.CreateEndpointRequest{Endpoint: &hookstreamv1.Endpoint{}})
			return err
		},
	} {
		if err := call(); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want INVALID_ARGUMENT", name, err)
		}
	}
}

// TestDeliveryConcurrencyBound: an unordered endpoint has at most
// max_in_flight requests open at once (default 10), and uses them.
func TestDeliveryConcurrencyBound(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	for _, limit := range []uint32{0, 3} {
		var mu sync.Mutex
		conc, most := 0, 0
		rc := newReceiver(t, func(*http.Request, int) int {
			mu.Lock()
			conc++
			most = max(most, conc)
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
			mu.Lock()
			conc--
			mu.Unlock()
			return 200
		})
		createEndpoint(t, s, &hookstreamv1.Endpoint{Url: rc.srv.URL, MaxInFlight: limit, Filter: fmt.Sprintf(`event.subject.id.startsWith("c%d-")`, limit)})
		var leads []string
		for i := range 15 {
			leads = append(leads, fmt.Sprintf("c%d-%d", limit, i))
		}
		ids := postLeadNotes(t, s, fmt.Sprintf("cb%d", limit), leads, 2)
		rc.waitFor(t, ids, 15*time.Second)
		want := int(limit)
		if want == 0 {
			want = 10
		}
		mu.Lock()
		if most > want || most < 2 {
			t.Errorf("max_in_flight %d: at most %d requests at once, want 2..%d", limit, most, want)
		}
		mu.Unlock()
	}
}

// JSON bodies over REST and Connect: an unknown member is ignored (a newer
// client's field), an unknown enum name is refused (it chose the default
// before); a Connect body that does not parse is INVALID_ARGUMENT, and
// Connect's JSON leaves unset fields out, as REST's does.
func TestJSONBodies(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), deliveryYAML))
	rc := newReceiver(t, nil)
	call := func(path, contentType, body string) (int, string) {
		return httpSend(t, http.MethodPost, s.base+path, adminToken, contentType, body)
	}
	const connectCreate = "/hookstream.v1.EndpointService/CreateEndpoint"
	for _, c := range []struct {
		name, path, body string
		want             int
	}{
		{"REST, unknown enum name", "/v1/endpoints", `{"url": "` + rc.srv.URL + `", "ordering": "ENDPOINT_ORDERING_PERSUBJECT"}`, 400},
		{"REST, unknown member", "/v1/endpoints", `{"url": "` + rc.srv.URL + `", "someFutureField": 1}`, 200},
		{"Connect, unknown enum name", connectCreate, `{"endpoint": {"url": "` + rc.srv.URL + `", "format": "BOGUS"}}`, 400},
		{"Connect, unknown member", connectCreate, `{"endpoint": {"url": "` + rc.srv.URL + `"}, "someFutureField": 1}`, 200},
		{"Connect, cut short", connectCreate, `{"endpoint": {"url":`, 400},
	} {
		code, body := call(c.path, "application/json", c.body)
		if code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.want)
		}
		if c.path == connectCreate && code == 200 && (strings.Contains(body, `"filter":""`) || strings.Contains(body, `"basicAuth":null`)) {
			t.Errorf("%s: Connect's JSON writes unset fields: %s", c.name, body)
		}
	}
}
