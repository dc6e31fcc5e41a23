package system

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// storedText is what a stored body reveals: compressed bodies are
// uncompressed, since whoever reads the store can do the same.
func storedText(b []byte) string {
	if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
		if plain, err := io.ReadAll(zr); err == nil {
			return string(plain)
		}
	}
	return string(b)
}

// Values that must never reach the store: credentials in every spelling a
// vendor (or an attacker) could use, and Closer's per-customer keys.
var storedSecrets = []string{
	pdPassword, cpHandshake, closerToken, "9b7e1d20-44aa-4f0e-8c3b-2a6f5e9d7b11",
	"s3cr3t", "pd\\u002dsecret", "closer\\u002dtoken", // JSON-escaped spellings
	"old-rotated-key", "escaped-api-key", "bo-api-key", "top-level-api-key", "nested-api-key",
	"lead-level-key", "pair-api-key",
	// Each vendor's secret member names hold for the others too.
	"pd-custom-api-key-0", "pd-custom-api-key-1", "pd-pair-key", "cp-activity-api-key", "closer-handshake-key",
}

func assertNothingSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range storedSecrets {
		if strings.Contains(text, s) {
			t.Errorf("%s holds %q: %s", where, s, text)
		}
	}
}

// Nothing secret is stored, in quarantine or in events, whatever the
// encoding of the body, the spelling of the member names, or where in the
// payload a credential is echoed.
func TestSecretsNeverStored(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	ctx := context.Background()
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

	// Authenticated but unprocessable: quarantined (202) with secrets removed.
	quarantined := []struct {
		name, path string
		body       []byte
		header     map[string]string
	}{
		{"gzip", "/v1/webhooks/clinchpad?handshake_key=" + cpHandshake,
			gzipped(t, []byte(`{"activity": {"type": "lead:won"}, "lead": {}, "handshake_key": "`+cpHandshake+`"}`)),
			map[string]string{"Content-Encoding": "gzip"}},
		{"escaped member name and value", "/v1/webhooks/clinchpad",
			[]byte(`{"activity": {"type": "lead:won"}, "lead": {}, "handshake\u005fkey": "s3cr3t\u002dhandshake"}`), nil},
		{"escaped Closer apiKey", "/v1/webhooks/closer?token=" + closerToken,
			[]byte(`{"eventType": 5, "timestamp": 1, "customer": {"id": "c", "api\u004bey": "escaped-api-key"}}`), nil},
		{"Closer backOfficeData pair", "/v1/webhooks/closer?token=" + closerToken,
			[]byte(`{"eventType": 5, "timestamp": 1, "customer": {"id": "c", "backOfficeData": [{"value": "pair-api-key", "key": "apiKey"}]}}`), nil},
		{"form body, percent-encoded key", "/v1/webhooks/clinchpad?handshake_key=" + cpHandshake,
			[]byte(`lead=1&handshake_key=s3cr3t%2Dhandshake`), form},
		{"form body, another key", "/v1/webhooks/clinchpad?handshake_key=" + cpHandshake,
			[]byte(`handshake%5Fkey=old-rotated-key&lead=1`), form},
		{"form body, JSON payload", "/v1/webhooks/clinchpad?handshake_key=" + cpHandshake,
			[]byte(`payload=%7B%22handshake_key%22%3A%22old-rotated-key%22%7D`), form},
		{"credential in the content type", "/v1/webhooks/clinchpad?handshake_key=" + cpHandshake,
			[]byte(`{"activity": {}}`), map[string]string{"Content-Type": "application/json; handshake_key=old-rotated-key; k=" + cpHandshake}},
		{"escaped source password", "/v1/webhooks/pipedrive",
			[]byte(`{"meta": {"note": "pd\u002dsecret-Zx81"}, "broken": `), pipedriveAuth(pdPassword)},
	}
	for _, tc := range quarantined {
		header := map[string]string{}
		for k, v := range tc.header {
			header[k] = v
		}
		r := s.post(tc.path, tc.body, header)
		if r.code != http.StatusAccepted {
			t.Errorf("%s: %d %v, want 202 (quarantined)", tc.name, r.code, r.body)
		}
	}
	list, err := s.quarantine().ListQuarantined(ctx, &hookstreamv1.ListQuarantinedRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetRequests()) != len(quarantined) {
		t.Errorf("quarantine holds %d entries, want %d", len(list.GetRequests()), len(quarantined))
	}
	for _, q := range list.GetRequests() {
		assertNothingSecret(t, "quarantined body", storedText(q.GetBody()))
		assertNothingSecret(t, "quarantined content type", q.GetContentType())
	}

	// Accepted: the stored events hold no secret either.
	accepted := []struct {
		name, path string
		body       string
		header     map[string]string
	}{
		{"Closer", "/v1/webhooks/closer?token=" + closerToken, `{"eventType": "ThreadClosedEvent", "timestamp": 1718000950456,
			"apiKey": "top-level-api-key",
			"customer": {"id": "c-1", "apiKey": "9b7e1d20-44aa-4f0e-8c3b-2a6f5e9d7b11", "firstName": "Ann",
				"backOfficeData": [{"key": "currentPage", "value": "https://x"}, {"key": "apiKey", "value": "bo-api-key"}],
				"profile": {"keys": [{"api\u004bey": "nested-api-key"}], "pair": {"key": "apiKey", "value": "pair-api-key"}}},
			"messageHistory": [{"author": {"id": "c-1", "role": "CUSTOMER"}, "timestamp": 1718000950000,
				"message": "my link is https://h/v1/webhooks/closer?token=` + closerToken + `"},
				{"author": {"id": "c-1", "role": "CUSTOMER"}, "timestamp": 1718000950001, "message": "again: closer\u002dtoken-0123456789abcdef"}]}`, nil},
		{"ClinchPad", "/v1/webhooks/clinchpad", `{"activity": {"_id": "a-1", "type": "note:created", "created_at": "2024-06-11T01:00:00Z",
			"note_content": "the key is s3cr3t\u002dhandshake, or ` + cpHandshake + `", "old_handshake_key": "old-rotated-key"},
			"lead": {"_id": "l-1", "name": "L", "custom": {"handshake_key": "lead-level-key"}}, "handshake_key": "` + cpHandshake + `"}`, nil},
		{"Pipedrive", "/v1/webhooks/pipedrive", strings.Replace(string(fixture(t, "pipedrive", "v2_change_deal")),
			`"data": {`, `"data": {"note": "password `+pdPassword+` and pd\u002dsecret-Zx81", `, 1), pipedriveAuth(pdPassword)},
		// Secret member names of other vendors: a Pipedrive custom field
		// named apiKey (changed, so also a change), a ClinchPad activity's
		// apiKey, a Closer body with a handshake_key.
		{"Pipedrive apiKey field", "/v1/webhooks/pipedrive", strings.Replace(strings.Replace(strings.Replace(string(fixture(t, "pipedrive", "v2_change_deal")),
			`"data": {`, `"data": {"apiKey": "pd-custom-api-key-1", "cf": {"key": "apiKey", "value": "pd-pair-key"}, "note": "password `+pdPassword+`", `, 1),
			`"previous": {`, `"previous": {"apiKey": "pd-custom-api-key-0", `, 1), // another delivery, not a retry of the one above
			"3f6b2d1e-8c4a-4e0b-9a7d-51c2e8f09b44", "3f6b2d1e-8c4a-4e0b-9a7d-51c2e8f09b45", 1), pipedriveAuth(pdPassword)},
		{"ClinchPad apiKey", "/v1/webhooks/clinchpad", `{"activity": {"_id": "a-2", "type": "lead:created", "created_at": "2024-06-11T01:00:00Z",
			"apiKey": "cp-activity-api-key"}, "lead": {"_id": "l-2", "name": "L", "note": "` + cpHandshake + `"}, "handshake_key": "` + cpHandshake + `"}`, nil},
		{"Closer handshake_key", "/v1/webhooks/closer?token=" + closerToken, `{"eventType": "ThreadCreatedEvent", "timestamp": 1718000950999,
			"handshake_key": "closer-handshake-key", "customer": {"id": "c-2", "firstName": "Bo", "note": "` + closerToken + `"}}`, nil},
	}
	for _, tc := range accepted {
		r := s.post(tc.path, []byte(tc.body), tc.header)
		if r.code != http.StatusOK || r.body["duplicate"] == true {
			t.Fatalf("%s: %d %v, want 200 and a new event", tc.name, r.code, r.body)
		}
		got, err := s.events().GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: r.body["event_id"].(string)})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := protojson.Marshal(got.GetEvent())
		assertNothingSecret(t, tc.name+" event", string(raw))
		if !strings.Contains(string(raw), "[REDACTED]") {
			t.Errorf("%s event: no redaction marker where a secret was: %s", tc.name, raw)
		}
	}
}
