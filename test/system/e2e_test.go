package system

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/internal/app"
	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/internal/vendors"
	"github.com/hookstream/hookstream/service/normalize"
)

// Secrets used by the test sources. The security test greps outputs for them.
const (
	pdPassword   = "pd-secret-Zx81"
	cpHandshake  = "s3cr3t-handshake" // the value in the ClinchPad fixtures
	closerToken  = "closer-token-0123456789abcdef"
	adminToken   = "admin-api-token-0123456789"
	readToken    = "read-api-token-0123456789"
	testdataRoot = "../../service/normalize"
)

func testConfig(t testing.TB, dataDir, extra string) *config.Config {
	t.Helper()
	// One or two sources per vendor the binary is built with (a vendor
	// removed from internal/vendors drops out here too).
	var sources strings.Builder
	for _, line := range []struct{ vendor, yaml string }{
		{"closer", fmt.Sprintf("{name: closer, vendor: closer, auth: {token: %q}}", closerToken)},
		{"pipedrive", fmt.Sprintf("{name: pipedrive, vendor: pipedrive, auth: {basic: {username: pipedrive, password: %q}}}", pdPassword)},
		{"pipedrive", fmt.Sprintf("{name: pipedrive-us, vendor: pipedrive, auth: {basic: {username: us, password: %q}}}", pdPassword+"-us")},
		{"clinchpad", fmt.Sprintf("{name: clinchpad, vendor: clinchpad, auth: {handshake_key: %q}}", cpHandshake)},
	} {
		if _, ok := vendors.Registry.Lookup(line.vendor); ok {
			sources.WriteString("  - " + line.yaml + "\n")
		}
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
http: {addr: "127.0.0.1:0"}
grpc: {addr: "127.0.0.1:0"}
subscribe: {heartbeat: 200ms}
shutdown_timeout: 5s
api:
  tokens:
    - {name: test-admin, scope: admin, token: %q}
    - {name: test-reader, scope: read, token: %q}
log:
  data_dir: %q
%s
sources:
%s`, adminToken, readToken, dataDir, extra, sources.String())), func(string) (string, bool) { return "", false },
		vendors.Config())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// server is a real hookstream on loopback ports.
type server struct {
	t    testing.TB
	app  *app.App
	logs *logBuffer
	base string
	conn *grpc.ClientConn
}

func startServer(t testing.TB, cfg *config.Config) *server {
	t.Helper()
	return startServerWith(t, cfg, vendors.Registry)
}

// startServerWith starts a server built with the vendors of reg and the
// app options opts.
func startServerWith(t testing.TB, cfg *config.Config, reg *normalize.Registry, opts ...app.Option) *server {
	t.Helper()
	logs := &logBuffer{}
	// Tests read the debug lines too (that no secret is logged, say);
	// benchmarks log at the level a deployment runs by default, info,
	// or they would measure the formatting of a line per webhook.
	level := slog.LevelDebug
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
	a, err := app.Start(context.Background(), cfg, logger, reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(adminToken)))
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, app: a, logs: logs, base: "http://" + a.HTTPAddr(), conn: conn}
	t.Cleanup(s.stop)
	return s
}

// bearer sends an API token on every call (over plaintext, for tests).
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

func (s *server) stop() {
	if s.app == nil {
		return
	}
	_ = s.conn.Close()
	s.app.Shutdown(5 * time.Second)
	s.app = nil
}

func (s *server) events() hookstreamv1.EventServiceClient {
	return hookstreamv1.NewEventServiceClient(s.conn)
}

func (s *server) quarantine() hookstreamv1.QuarantineServiceClient {
	return hookstreamv1.NewQuarantineServiceClient(s.conn)
}

type response struct {
	code   int
	header http.Header
	body   map[string]any
}

// reason is the ErrorInfo reason of an error answer (the Google JSON
// error shape every HTTP error has), "" when there is none.
func (r response) reason() string {
	e, _ := r.body["error"].(map[string]any)
	details, _ := e["details"].([]any)
	for _, d := range details {
		if m, _ := d.(map[string]any); strings.HasSuffix(fmt.Sprint(m["@type"]), "google.rpc.ErrorInfo") {
			return fmt.Sprint(m["reason"])
		}
	}
	return ""
}

// post sends a webhook the way a vendor would.
func (s *server) post(path string, body []byte, header map[string]string) response {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.base+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{code: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &out.body); err != nil {
		s.t.Fatalf("POST %s: %d with non-JSON body %q", path, resp.StatusCode, raw)
	}
	return out
}

func pipedriveAuth(password string) map[string]string {
	req, _ := http.NewRequest(http.MethodPost, "http://x", nil)
	req.SetBasicAuth("pipedrive", password)
	return map[string]string{"Authorization": req.Header.Get("Authorization")}
}

func fixture(t testing.TB, vendor, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataRoot, vendor, "testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// subscription collects deliveries from one Subscribe stream.
type subscription struct {
	t      testing.TB
	stream grpc.ServerStreamingClient[hookstreamv1.SubscribeResponse]
	cancel context.CancelFunc
}

func (s *server) subscribe(req *hookstreamv1.SubscribeRequest) *subscription {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := s.events().Subscribe(ctx, req)
	if err != nil {
		cancel()
		s.t.Fatal(err)
	}
	s.t.Cleanup(cancel)
	return &subscription{t: s.t, stream: stream, cancel: cancel}
}

// next returns the next delivery, skipping heartbeats, failing after 10 s.
func (sub *subscription) next() *hookstreamv1.EventDelivery {
	sub.t.Helper()
	type result struct {
		d   *hookstreamv1.EventDelivery
		err error
	}
	ch := make(chan result, 1)
	go func() {
		for {
			m, err := sub.stream.Recv()
			if err != nil {
				ch <- result{err: err}
				return
			}
			if d := m.GetDelivery(); d != nil {
				ch <- result{d: d}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			sub.t.Fatalf("stream ended: %v", r.err)
		}
		return r.d
	case <-time.After(10 * time.Second):
		sub.t.Fatal("no delivery within 10s")
	}
	return nil
}

// quiet asserts no delivery arrives for d (heartbeats are fine).
func (sub *subscription) quiet(d time.Duration) {
	sub.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m, err := sub.stream.Recv()
		if err != nil {
			sub.t.Fatalf("stream ended: %v", err)
		}
		if m.GetDelivery() != nil {
			sub.t.Fatalf("unexpected delivery %s", m.GetDelivery().GetEvent().GetId())
		}
	}
}

func listAll(t *testing.T, s *server, filter string) []*hookstreamv1.Event {
	t.Helper()
	var all []*hookstreamv1.Event
	token := ""
	for {
		resp, err := s.events().ListEvents(context.Background(), &hookstreamv1.ListEventsRequest{PageSize: 2, PageToken: token, Filter: filter})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, resp.GetEvents()...)
		if token = resp.GetNextPageToken(); token == "" {
			return all
		}
	}
}

func TestEndToEnd(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	sub := s.subscribe(&hookstreamv1.SubscribeRequest{Start: &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING}})

	type sample struct {
		path, vendor, fixture string
		header                map[string]string
		typ, subjectKind      string
		subjectID             string
		occurred              string
		contactName, email    string
	}
	samples := []sample{
		{"/v1/webhooks/closer?token=" + closerToken, "closer", "created", nil,
			"conversation.created", "conversation", "5f0c2a8e-3b1d-4c7a-9e21-7d4b8f6a1c30", "2024-06-10T06:13:20.123Z", "Anna Kowalska", "anna@example.com"},
		{"/v1/webhooks/closer?token=" + closerToken, "closer", "closed", nil,
			"conversation.closed", "conversation", "5f0c2a8e-3b1d-4c7a-9e21-7d4b8f6a1c30", "2024-06-10T06:29:10.456Z", "Anna Kowalska", "anna@example.com"},
		{"/v1/webhooks/closer", "closer", "created_toplevel_contact", map[string]string{"X-Hookstream-Token": closerToken},
			"conversation.created", "conversation", "00000000-0000-0000-0000-000000000001", "2019-06-14T08:07:44.789Z", "Jon Snow", "jon.snow@winterfell.com"},
		{"/v1/webhooks/pipedrive", "pipedrive", "v1_updated_deal", pipedriveAuth(pdPassword),
			"deal.updated", "deal", "4812", "2024-06-10T08:00:00.512907Z", "Jane Roe", ""},
		{"/v1/webhooks/pipedrive", "pipedrive", "v2_change_deal", pipedriveAuth(pdPassword),
			"deal.updated", "deal", "4812", "2024-06-10T08:00:00.512Z", "", ""},
		{"/v1/webhooks/pipedrive", "pipedrive", "v2_create_person", pipedriveAuth(pdPassword),
			"person.created", "person", "222", "2024-06-10T08:05:00.1Z", "Max Mustermann", "max@privat.example"},
		{"/v1/webhooks/clinchpad", "clinchpad", "lead_moved", nil,
			"lead.moved", "lead", "6650c0ffee0123456789abcd", "2024-06-11T01:01:00Z", "", ""},
		{"/v1/webhooks/clinchpad?handshake_key=" + cpHandshake, "clinchpad", "seed_note_created", nil,
			"note.created", "lead", "52cfa124cce8b4d113000056", "2014-01-10T09:37:58Z", "", ""},
	}
	// seed_note_created carries ClinchPad's own sample key in the body, so
	// send it with the key stripped and ours in the query instead.
	ids := map[string]bool{}
	for _, smp := range samples {
		body := fixture(t, smp.vendor, smp.fixture)
		if smp.fixture == "seed_note_created" {
			body = bytes.Replace(body, []byte(`"handshake_key": "gfhkd1asfsa"`), []byte(`"x": 1`), 1)
		}
		before := time.Now().UTC()
		resp := s.post(smp.path, body, smp.header)
		if resp.code != http.StatusOK || resp.body["status"] != "accepted" {
			t.Fatalf("%s: %d %v", smp.fixture, resp.code, resp.body)
		}
		id := resp.body["event_id"].(string)
		ids[id] = true
		d := sub.next()
		ev := d.GetEvent()
		if ev.GetId() != id || ev.GetType() != smp.typ || ev.GetSubject().GetKind() != smp.subjectKind || ev.GetSubject().GetId() != smp.subjectID {
			t.Errorf("%s: got id=%s type=%s subject=%v; want id=%s type=%s subject=%s/%s",
				smp.fixture, ev.GetId(), ev.GetType(), ev.GetSubject(), id, smp.typ, smp.subjectKind, smp.subjectID)
		}
		if got := ev.GetOccurredAt().AsTime().Format(time.RFC3339Nano); got != smp.occurred {
			t.Errorf("%s: occurred_at %s, want %s", smp.fixture, got, smp.occurred)
		}
		if got := ev.GetReceivedAt().AsTime(); got.Before(before.Add(-time.Second)) || got.After(time.Now().Add(time.Second)) {
			t.Errorf("%s: received_at %s not around the POST", smp.fixture, got)
		}
		if ev.GetContact().GetName() != smp.contactName || ev.GetContact().GetEmail() != smp.email {
			t.Errorf("%s: contact %v, want %q <%s>", smp.fixture, ev.GetContact(), smp.contactName, smp.email)
		}
		if d.GetCursor() == "" {
			t.Errorf("%s: delivery without a cursor", smp.fixture)
		}
	}

	// A vendor retry of the same delivery (v2 attempt 3) is stored once.
	retry := s.post("/v1/webhooks/pipedrive", fixture(t, "pipedrive", "v2_change_deal_retry"), pipedriveAuth(pdPassword))
	if retry.code != http.StatusOK || retry.body["duplicate"] != true {
		t.Fatalf("retry: %d %v", retry.code, retry.body)
	}
	sub.quiet(500 * time.Millisecond)
	if n := len(listAll(t, s, "")); n != len(samples) {
		t.Fatalf("log holds %d events, want %d", n, len(samples))
	}

	// Wrong or missing credentials: 401, nothing stored.
	for name, tc := range map[string]struct {
		path   string
		header map[string]string
		body   []byte
	}{
		"pipedrive wrong password":  {"/v1/webhooks/pipedrive", pipedriveAuth("nope"), fixture(t, "pipedrive", "v2_create_project")},
		"pipedrive no auth":         {"/v1/webhooks/pipedrive", nil, fixture(t, "pipedrive", "v2_create_project")},
		"pipedrive other source pw": {"/v1/webhooks/pipedrive-us", pipedriveAuth(pdPassword), fixture(t, "pipedrive", "v2_create_project")},
		"closer wrong token":        {"/v1/webhooks/closer?token=wrong-token-0123456789", nil, fixture(t, "closer", "closed_bot")},
		"closer no token":           {"/v1/webhooks/closer", nil, fixture(t, "closer", "closed_bot")},
		"clinchpad wrong key":       {"/v1/webhooks/clinchpad", nil, bytes.Replace(fixture(t, "clinchpad", "lead_won"), []byte(cpHandshake), []byte("guess"), 1)},
		"clinchpad no key":          {"/v1/webhooks/clinchpad", nil, fixture(t, "clinchpad", "no_handshake_system_user")},
		"clinchpad malformed":       {"/v1/webhooks/clinchpad", nil, []byte(`{"activity": `)},
	} {
		resp := s.post(tc.path, tc.body, tc.header)
		if resp.code != http.StatusUnauthorized {
			t.Errorf("%s: %d %v, want 401", name, resp.code, resp.body)
		}
		if strings.HasPrefix(tc.path, "/v1/webhooks/pipedrive") && resp.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", name)
		}
	}
	sub.quiet(300 * time.Millisecond)
	if n := len(listAll(t, s, "")); n != len(samples) {
		t.Fatalf("after rejected requests the log holds %d events, want %d", n, len(samples))
	}
	qs, err := s.quarantine().ListQuarantined(context.Background(), &hookstreamv1.ListQuarantinedRequest{})
	if err != nil || len(qs.GetRequests()) != 0 {
		t.Fatalf("unauthenticated requests reached quarantine: %v %v", qs, err)
	}

	// Unknown source: 404.
	if resp := s.post("/v1/webhooks/hubspot", []byte(`{}`), nil); resp.code != http.StatusNotFound {
		t.Errorf("unknown source: %d, want 404", resp.code)
	}

	// Malformed JSON from an authenticated source: quarantined with a
	// reason, listed, and reprocessable.
	bad := []byte(`{"activity": {"_id": "x", "type": "lead:moved"`) // truncated
	q := s.post("/v1/webhooks/clinchpad?handshake_key="+cpHandshake, bad, nil)
	if q.code != http.StatusAccepted || q.body["status"] != "quarantined" {
		t.Fatalf("malformed: %d %v", q.code, q.body)
	}
	reason := q.body["reason"].(map[string]any)
	if reason["code"] != "REJECTION_CODE_MALFORMED_JSON" || !strings.Contains(reason["message"].(string), "line 1") {
		t.Errorf("quarantine reason %v", reason)
	}
	qid := q.body["quarantine_id"].(string)
	again := s.post("/v1/webhooks/clinchpad?handshake_key="+cpHandshake, bad, nil)
	if again.body["quarantine_id"] != qid {
		t.Errorf("retry of a bad request got a new quarantine entry: %v vs %s", again.body["quarantine_id"], qid)
	}
	list, err := s.quarantine().ListQuarantined(context.Background(), &hookstreamv1.ListQuarantinedRequest{Source: "clinchpad"})
	if err != nil || len(list.GetRequests()) != 1 || list.GetRequests()[0].GetId() != qid {
		t.Fatalf("ListQuarantined = %v, %v", list, err)
	}
	entry := list.GetRequests()[0]
	if entry.GetRejection().GetCode() != hookstreamv1.RejectionCode_REJECTION_CODE_MALFORMED_JSON || entry.GetBodyText() != string(bad) || len(entry.GetBody()) != 0 {
		t.Errorf("entry %v", entry)
	}
	res, err := s.quarantine().ReprocessQuarantined(context.Background(), &hookstreamv1.ReprocessQuarantinedRequest{Id: qid})
	if err != nil || res.GetResult().GetOutcome() != hookstreamv1.IngestOutcome_INGEST_OUTCOME_QUARANTINED {
		t.Errorf("reprocess of a still-broken entry: %v %v", res, err)
	}
	if _, err := s.quarantine().ReprocessQuarantined(context.Background(), &hookstreamv1.ReprocessQuarantinedRequest{Id: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("reprocess unknown id: %v", err)
	}

	// The secrets never reach the log, the quarantine or the server's logs.
	for _, e := range listAll(t, s, "") {
		raw, _ := json.Marshal(e)
		assertNoSecrets(t, "event "+e.GetId(), string(raw))
	}
	assertNoSecrets(t, "server logs", s.logs.String())

	// GetEvent and a filtered list.
	for id := range ids {
		got, err := s.events().GetEvent(context.Background(), &hookstreamv1.GetEventRequest{Id: id})
		if err != nil || got.GetEvent().GetId() != id {
			t.Errorf("GetEvent(%s) = %v, %v", id, got, err)
		}
	}
	// Over HTTP, with a time range: found, not found in the range, and a
	// range that ends before it starts.
	for id := range ids {
		after := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		before := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
		if code, body := httpDo(t, http.MethodGet, s.base+"/v1/events/"+id+"?received_after="+after+"&received_before="+before, readToken); code != http.StatusOK || !strings.Contains(body, id) {
			t.Errorf("GET event %s in range: %d %s", id, code, body)
		}
		const unknown = "00112233445566778899aabbccddeeff"
		if code, body := httpDo(t, http.MethodGet, s.base+"/v1/events/"+unknown+"?received_after="+after, readToken); code != http.StatusNotFound ||
			!strings.Contains(body, "EVENT_NOT_FOUND") || !strings.Contains(body, `"received_after":"`+after) {
			t.Errorf("GET unknown event in range: %d %s", code, body)
		}
		if code, body := httpDo(t, http.MethodGet, s.base+"/v1/events/"+id+"?received_after="+before+"&received_before="+after, readToken); code != http.StatusBadRequest ||
			!strings.Contains(body, "received_after must not be later than received_before") {
			t.Errorf("GET event with an inverted range: %d %s", code, body)
		}
		break
	}
	if got := listAll(t, s, `event.vendor == hookstream.v1.Vendor.VENDOR_CLOSER`); len(got) != 3 {
		t.Errorf("closer events: %d, want 3", len(got))
	}
	if got := listAll(t, s, `event.type.startsWith("deal.") && event.source == "pipedrive"`); len(got) != 2 {
		t.Errorf("pipedrive deal events: %d, want 2", len(got))
	}
	if _, err := s.events().ListEvents(context.Background(), &hookstreamv1.ListEventsRequest{Filter: "event.nope"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad filter: %v", err)
	}
}

func assertNoSecrets(t *testing.T, where, text string) {
	t.Helper()
	for _, secret := range []string{pdPassword, cpHandshake, closerToken, "9b7e1d20-44aa-4f0e-8c3b-2a6f5e9d7b11"} {
		if strings.Contains(text, secret) {
			t.Errorf("%s contains the secret %q", where, secret)
		}
	}
}

// A subscriber resuming from its cursor after a server restart misses
// nothing and sees nothing twice.
func TestResumeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, testConfig(t, dir, ""))
	sub := s.subscribe(&hookstreamv1.SubscribeRequest{Start: &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING}})
	var posted []string
	postLead := func(s *server, i int) {
		body := fmt.Sprintf(`{"activity": {"_id": "act-%04d", "created_at": "2024-06-11T01:00:00Z", "type": "note:created", "note_content": "n%d"},
			"lead": {"_id": "lead-1", "name": "L"}, "handshake_key": %q}`, i, i, cpHandshake)
		resp := s.post("/v1/webhooks/clinchpad", []byte(body), nil)
		if resp.code != http.StatusOK {
			t.Fatalf("post %d: %d %v", i, resp.code, resp.body)
		}
		posted = append(posted, resp.body["event_id"].(string))
	}
	for i := range 5 {
		postLead(s, i)
	}
	var cursor string
	var seen []string
	for range 3 {
		d := sub.next()
		seen = append(seen, d.GetEvent().GetId())
		cursor = d.GetCursor()
	}
	sub.cancel()
	s.stop()

	s2 := startServer(t, testConfig(t, dir, ""))
	for i := 5; i < 8; i++ {
		postLead(s2, i)
	}
	resumed := s2.subscribe(&hookstreamv1.SubscribeRequest{Start: &hookstreamv1.SubscribeRequest_AfterCursor{AfterCursor: cursor}})
	for range len(posted) - len(seen) {
		seen = append(seen, resumed.next().GetEvent().GetId())
	}
	resumed.quiet(500 * time.Millisecond)
	if strings.Join(seen, ",") != strings.Join(posted, ",") {
		t.Errorf("deliveries across the restart:\n got %v\nwant %v", seen, posted)
	}
}

// The same service works against an external nats-server process.
func TestExternalNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs nats-server")
	}
	bin := natsServerBinary(t)
	port, store := freePort(t), t.TempDir()
	startNATS := func() *exec.Cmd {
		cmd := exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-sd", store)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	nats := startNATS()

	s := startServer(t, testConfig(t, t.TempDir(), fmt.Sprintf("  url: nats://127.0.0.1:%d", port)))
	if s.app.Log().Embedded() {
		t.Fatal("log is embedded, want the external server")
	}
	sub := s.subscribe(&hookstreamv1.SubscribeRequest{Start: &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING}})
	resp := s.post("/v1/webhooks/pipedrive", fixture(t, "pipedrive", "v2_change_deal"), pipedriveAuth(pdPassword))
	if resp.code != http.StatusOK {
		t.Fatalf("post: %d %v", resp.code, resp.body)
	}
	if d := sub.next(); d.GetEvent().GetId() != resp.body["event_id"] {
		t.Fatalf("got %s, want %s", d.GetEvent().GetId(), resp.body["event_id"])
	}
	dup := s.post("/v1/webhooks/pipedrive", fixture(t, "pipedrive", "v2_change_deal_retry"), pipedriveAuth(pdPassword))
	if dup.body["duplicate"] != true {
		t.Fatalf("retry not deduplicated: %v", dup.body)
	}

	// With the log gone, ingest answers 503 with Retry-After (never 2xx),
	// health says so, and everything recovers by itself when it returns.
	_ = nats.Process.Signal(syscall.SIGTERM)
	_ = nats.Wait()
	body := fixture(t, "pipedrive", "v2_create_person")
	down := s.post("/v1/webhooks/pipedrive", body, pipedriveAuth(pdPassword))
	if down.code != http.StatusServiceUnavailable || down.header.Get("Retry-After") == "" {
		t.Fatalf("with the log down: %d %v %v, want 503 with Retry-After", down.code, down.header, down.body)
	}
	if code, _ := httpDo(t, http.MethodGet, s.base+"/healthz", ""); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz with the log down: %d", code)
	}
	startNATS()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := s.post("/v1/webhooks/pipedrive", body, pipedriveAuth(pdPassword))
		if r.code == http.StatusOK {
			break
		}
		if r.code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the log came back: %d %v", r.code, r.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d := sub.next(); d.GetEvent().GetType() != "person.created" {
		t.Errorf("after recovery the subscriber got %s", d.GetEvent().GetType())
	}
}
