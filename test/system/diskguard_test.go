package system

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestDiskGuardOverHTTP: while the disk has less free than
// log.min_free_disk (here: more than any disk has), webhooks that would
// store an event or a quarantine entry get 503 LOG_UNAVAILABLE at once,
// /healthz says degraded naming the directory, and the log says so once,
// not once per refused webhook, which a vendor retrying for hours would
// turn into a flood.
func TestDiskGuardOverHTTP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, testConfig(t, dir, "  min_free_disk: 1000000GiB\n"))
	const n = 5
	for i := range n {
		body := fmt.Sprintf(`{"eventType": "ThreadCreatedEvent", "timestamp": %d, "customer": {"id": "c-%d"}}`, 1718000000000+i, i)
		if r := s.post("/v1/webhooks/closer?token="+closerToken, []byte(body), nil); r.code != http.StatusServiceUnavailable || r.reason() != "LOG_UNAVAILABLE" {
			t.Fatalf("webhook %d on a nearly full disk: %d %v", i, r.code, r.body)
		}
	}
	// Authenticated but not normalizable: it would be quarantined.
	if r := s.post("/v1/webhooks/closer?token="+closerToken, []byte(`{"eventType": 5}`), nil); r.code != http.StatusServiceUnavailable {
		t.Fatalf("a webhook for quarantine on a nearly full disk: %d %v", r.code, r.body)
	}
	code, body := httpDo(t, http.MethodGet, s.base+"/healthz", "")
	if code != http.StatusOK || !strings.Contains(body, `"degraded"`) || !strings.Contains(body, dir) || !strings.Contains(body, "log.min_free_disk") {
		t.Errorf("/healthz: %d %s, want degraded naming %s", code, body, dir)
	}
	logs := s.logs.String()
	if c := strings.Count(logs, "disk nearly full"); c != 1 {
		t.Errorf("%d log lines say the disk is nearly full, want 1", c)
	}
	for _, per := range []string{"append failed", "quarantine write failed"} {
		if strings.Contains(logs, per) {
			t.Errorf("the log has %q for a refusal the guard already reported", per)
		}
	}
}

// TestAuthFailuresLoggedOnce: a source's authentication failures are
// logged once per interval with the sender's address, not once per
// request: a misconfigured vendor or someone guessing would fill the log.
func TestAuthFailuresLoggedOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	for range 5 {
		if r := s.post("/v1/webhooks/closer?token=wrong-token-0123456789", []byte(`{}`), nil); r.code != http.StatusUnauthorized {
			t.Fatalf("wrong token: %d", r.code)
		}
	}
	logs := s.logs.String()
	if n := strings.Count(logs, "webhook rejected: authentication failed"); n != 1 {
		t.Errorf("%d log lines for 5 failures in a row, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs, "remote=127.0.0.1:") {
		t.Errorf("the failure's line does not name the sender:\n%s", logs)
	}
	if strings.Contains(logs, "wrong-token-0123456789") {
		t.Error("the log shows the wrong token")
	}
}
