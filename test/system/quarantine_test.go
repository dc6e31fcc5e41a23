package system

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// A full quarantine answers 503 with Retry-After (never 2xx), counts it in
// a metric, and loses nothing: once an operator discards entries, the
// vendor's retry is quarantined.
func TestQuarantineFull(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "")
	cfg.HTTP.BodyLimit = 16 << 10
	cfg.Quarantine.MaxBytes = 48 << 10
	s := startServer(t, cfg)
	ctx := context.Background()
	st, err := s.app.Log().QuarantineStatus(ctx)
	if err != nil || st.MaxBytes != 48<<10 || st.MaxAge != 720*time.Hour {
		t.Fatalf("quarantine bucket: %+v %v, want max bytes 48KiB and the default max age 720h", st, err)
	}

	path := "/v1/webhooks/closer?token=" + closerToken
	bad := func(i int) []byte {
		return []byte(fmt.Sprintf(`{"eventType": %d, "pad": %q}`, i, strings.Repeat("x", 8000)))
	}
	var ids []string
	var refused []byte
	for i := 0; refused == nil; i++ {
		resp := s.post(path, bad(i), nil)
		switch {
		case resp.code == http.StatusServiceUnavailable:
			refused = bad(i)
			if got := resp.header.Get("Retry-After"); got != "60" {
				t.Errorf("Retry-After %q, want 60", got)
			}
			if got := resp.reason(); got != "QUARANTINE_FULL" {
				t.Errorf("reason %v, want QUARANTINE_FULL", got)
			}
		case resp.code != http.StatusAccepted:
			t.Fatalf("bad body %d: %d %v", i, resp.code, resp.body)
		case i > 20:
			t.Fatal("a 48KiB quarantine never filled up")
		default:
			ids = append(ids, resp.body["quarantine_id"].(string))
		}
	}
	if len(ids) < 3 || len(ids) > 6 {
		t.Errorf("48KiB held %d entries of 8KB, want 3 to 6", len(ids))
	}
	// The vendor's retries keep getting 503 while it is full; a retry of a
	// request already stored is still answered 202.
	if resp := s.post(path, refused, nil); resp.code != http.StatusServiceUnavailable {
		t.Errorf("retry while full: %d %v, want 503", resp.code, resp.body)
	}
	if resp := s.post(path, bad(0), nil); resp.code != http.StatusAccepted || resp.body["quarantine_id"] != ids[0] {
		t.Errorf("retry of a stored request while full: %d %v", resp.code, resp.body)
	}
	code, metrics := httpDo(t, http.MethodGet, s.base+"/metrics", readToken)
	used := regexp.MustCompile(`(?m)^hookstream_quarantine_bytes (\d+)$`).FindStringSubmatch(metrics)
	if used == nil {
		t.Error("/metrics lacks hookstream_quarantine_bytes")
	} else if n, _ := strconv.Atoi(used[1]); n < len(ids)*8000 || n > 48<<10 {
		t.Errorf("hookstream_quarantine_bytes %d, want between %d and %d", n, len(ids)*8000, 48<<10)
	}
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`hookstream_quarantine_full_total{source="closer"} 2`,
		`hookstream_webhook_requests_total{outcome="unavailable",source="closer"} 2`,
		fmt.Sprintf(`hookstream_webhook_requests_total{outcome="quarantined",source="closer"} %d`, len(ids)+1),
		fmt.Sprintf("hookstream_quarantine_max_bytes %d\n", 48<<10),
		fmt.Sprintf("hookstream_quarantine_entries %d\n", len(ids)),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The log's file systems, for an alert before the disk guard refuses.
	if m := regexp.MustCompile(`(?m)^hookstream_log_disk_free_bytes\{dir="([^"]+)"\} (\S+)$`).FindAllStringSubmatch(metrics, -1); len(m) < 2 {
		t.Errorf("/metrics has %d hookstream_log_disk_free_bytes lines, want the data dir and the index dir", len(m))
	} else if f, err := strconv.ParseFloat(m[0][2], 64); err != nil || f <= 0 {
		t.Errorf("hookstream_log_disk_free_bytes{dir=%q} %s", m[0][1], m[0][2])
	}
	if !strings.Contains(metrics, "hookstream_log_min_free_disk_bytes 2.68435456e+08\n") {
		t.Error("/metrics lacks hookstream_log_min_free_disk_bytes 256MiB")
	}

	// Discard: admin only, NOT_FOUND for unknown ids, over REST and gRPC.
	if code, body := httpDo(t, http.MethodDelete, s.base+"/v1/quarantine/"+ids[0], readToken); code != http.StatusForbidden {
		t.Errorf("discard with a read token: %d %s, want 403", code, body)
	}
	reader := dial(t, s, grpc.WithPerRPCCredentials(bearer(readToken)))
	if _, err := hookstreamv1.NewQuarantineServiceClient(reader).DiscardQuarantined(ctx, &hookstreamv1.DiscardQuarantinedRequest{Id: ids[0]}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC discard with a read token: %v", err)
	}
	if code, body := httpDo(t, http.MethodDelete, s.base+"/v1/quarantine/0123456789abcdef0123456789abcdef", adminToken); code != http.StatusNotFound ||
		!strings.Contains(body, "QUARANTINE_ENTRY_NOT_FOUND") {
		t.Errorf("discard of an unknown id: %d %s, want 404", code, body)
	}
	if code, body := httpDo(t, http.MethodDelete, s.base+"/v1/quarantine/"+ids[0], adminToken); code != http.StatusOK {
		t.Errorf("discard: %d %s", code, body)
	}
	if _, err := s.quarantine().DiscardQuarantined(ctx, &hookstreamv1.DiscardQuarantinedRequest{Id: ids[1]}); err != nil {
		t.Errorf("gRPC discard: %v", err)
	}
	if _, err := s.quarantine().DiscardQuarantined(ctx, &hookstreamv1.DiscardQuarantinedRequest{Id: ids[1]}); status.Code(err) != codes.NotFound {
		t.Errorf("second discard: %v, want NotFound", err)
	}

	// Room again: the vendor's next retry is stored, so nothing was lost.
	resp := s.post(path, refused, nil)
	if resp.code != http.StatusAccepted {
		t.Fatalf("retry after discards: %d %v, want 202", resp.code, resp.body)
	}
	list, err := s.quarantine().ListQuarantined(ctx, &hookstreamv1.ListQuarantinedRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, q := range list.GetRequests() {
		found = found || q.GetId() == resp.body["quarantine_id"] && q.GetBodyText() == string(refused)
		if q.GetId() == ids[0] || q.GetId() == ids[1] {
			t.Errorf("discarded entry %s still listed", q.GetId())
		}
	}
	if !found || len(list.GetRequests()) != len(ids)-1 {
		t.Errorf("after the retry the quarantine lists %d entries (want %d), the refused request found: %v", len(list.GetRequests()), len(ids)-1, found)
	}
}

// Over REST, a text body is JSON text (bodyText) and a binary one base64
// (body); paging tokens round-trip through the query string.
func TestQuarantineREST(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	pd := pipedriveAuth(pdPassword)
	text := []byte(`{"meta": {"action": "change"`) // truncated JSON
	binary := []byte("{\"meta\": \"\xff\xfe\"}")
	for _, b := range [][]byte{text, binary} {
		if resp := s.post("/v1/webhooks/pipedrive", b, pd); resp.code != http.StatusAccepted {
			t.Fatalf("post: %d %v", resp.code, resp.body)
		}
	}
	type entry struct {
		ID       string  `json:"id"`
		Body     *string `json:"body"`
		BodyText *string `json:"bodyText"`
	}
	var pages []entry
	token := ""
	for calls := 0; ; calls++ {
		code, raw := httpDo(t, http.MethodGet, s.base+"/v1/quarantine?pageSize=1&pageToken="+url.QueryEscape(token), adminToken)
		if code != http.StatusOK {
			t.Fatalf("GET /v1/quarantine: %d %s", code, raw)
		}
		var page struct {
			Requests      []entry `json:"requests"`
			NextPageToken string  `json:"nextPageToken"`
		}
		if err := json.Unmarshal([]byte(raw), &page); err != nil {
			t.Fatal(err)
		}
		pages = append(pages, page.Requests...)
		if token = page.NextPageToken; token == "" || calls > 5 {
			break
		}
	}
	if len(pages) != 2 {
		t.Fatalf("REST pages held %d entries, want 2", len(pages))
	}
	if e := pages[0]; e.BodyText == nil || *e.BodyText != string(text) || e.Body != nil {
		t.Errorf("text entry in JSON: bodyText %v body %v, want the text in bodyText only", e.BodyText, e.Body)
	}
	if e := pages[1]; e.Body == nil || *e.Body != base64.StdEncoding.EncodeToString(binary) || e.BodyText != nil {
		t.Errorf("binary entry in JSON: body %v bodyText %v, want base64 in body only", e.Body, e.BodyText)
	}
	if code, body := httpDo(t, http.MethodGet, s.base+"/v1/quarantine?pageToken=not-a-token", adminToken); code != http.StatusBadRequest || !strings.Contains(body, "INVALID_PAGE_TOKEN") {
		t.Errorf("made-up page token: %d %s, want 400 INVALID_PAGE_TOKEN", code, body)
	}
}

// Changed limits reach an existing bucket at the next start.
func TestQuarantineLimitsOnRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, "")
	s := startServer(t, cfg)
	s.stop()
	cfg = testConfig(t, dir, "")
	cfg.Quarantine.MaxBytes, cfg.Quarantine.MaxAge = 5<<20, 36*time.Hour
	s = startServer(t, cfg)
	st, err := s.app.Log().QuarantineStatus(context.Background())
	if err != nil || st.MaxBytes != 5<<20 || st.MaxAge != 36*time.Hour {
		t.Errorf("bucket after restart with new limits: %+v %v, want 5MiB and 36h", st, err)
	}
}

// Pipedrive counts its retries in the body (v1 `retry`, v2
// `meta.attempt`); a retry of a request that cannot be normalized still
// lands on the entry of its first attempt, and another request does not.
func TestQuarantinedRetryLandsOnItsEntry(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	pd := pipedriveAuth(pdPassword)
	// Neither carries the time of the change, so both are quarantined.
	v2 := func(attempt int, id string) []byte {
		return []byte(fmt.Sprintf(`{"meta": {"action": "change", "entity": "deal", "entity_id": %q, "version": "2.0", "attempt": %d}, "data": {"id": %s, "title": "x"}}`, id, attempt, id))
	}
	v1 := func(retry int) []byte {
		return []byte(fmt.Sprintf(`{"v": 1, "event": "updated.deal", "retry": %d, "meta": {"action": "updated", "object": "deal", "id": 7, "v": 1}, "current": {"id": 7}}`, retry))
	}
	post := func(body []byte) string {
		t.Helper()
		resp := s.post("/v1/webhooks/pipedrive", body, pd)
		if resp.code != http.StatusAccepted || resp.body["status"] != "quarantined" {
			t.Fatalf("post %s: %d %v, want 202 quarantined", body, resp.code, resp.body)
		}
		return resp.body["quarantine_id"].(string)
	}
	for name, bodies := range map[string][][]byte{
		"v2 meta.attempt": {v2(1, "42"), v2(2, "42"), v2(4, "42")},
		"v1 retry":        {v1(0), v1(1), v1(3)},
	} {
		first := post(bodies[0])
		for i, b := range bodies[1:] {
			if id := post(b); id != first {
				t.Errorf("%s: retry %d quarantined as %s, want the first attempt's entry %s", name, i+1, id, first)
			}
		}
	}
	if a, b := post(v2(1, "42")), post(v2(1, "43")); a == b {
		t.Errorf("two different requests share the quarantine entry %s", a)
	}
	code, raw := httpDo(t, http.MethodGet, s.base+"/v1/quarantine", adminToken)
	var list struct {
		Requests []struct {
			ID string `json:"id"`
		} `json:"requests"`
	}
	if err := json.Unmarshal([]byte(raw), &list); code != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/quarantine: %d %v %s", code, err, raw)
	}
	if len(list.Requests) != 3 {
		t.Errorf("quarantine holds %d entries, want 3 (one per request, retries included)", len(list.Requests))
	}
}
