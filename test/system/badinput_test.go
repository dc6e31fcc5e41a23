package system

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// Bad input never gets a 5xx or crashes the server: authenticated requests
// are quarantined with a reason, unauthenticated ones get 401, and every
// answer says why.
func TestBadInput(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	pd := pipedriveAuth(pdPassword)
	for _, tc := range []struct {
		name        string
		path        string
		body        []byte
		header      map[string]string
		contentType string
		wantCode    int
		wantReason  string // rejection code (202) or error reason
	}{
		{"malformed JSON", "/v1/webhooks/pipedrive", []byte(`{"meta": {`), pd, "", 202, "REJECTION_CODE_MALFORMED_JSON"},
		{"wrong shape: array", "/v1/webhooks/pipedrive", []byte(`[1, 2, 3]`), pd, "", 202, "REJECTION_CODE_WRONG_SHAPE"},
		{"wrong shape: meta is a string", "/v1/webhooks/pipedrive", []byte(`{"meta": "x", "data": {}}`), pd, "", 202, "REJECTION_CODE_UNKNOWN_FORMAT"},
		{"wrong shape: field types", "/v1/webhooks/closer?token=" + closerToken, []byte(`{"eventType": 5, "timestamp": 1718000000000, "customer": {"id": "c"}}`), nil, "", 202, "REJECTION_CODE_WRONG_SHAPE"},
		{"empty body", "/v1/webhooks/pipedrive", nil, pd, "", 202, "REJECTION_CODE_EMPTY_BODY"},
		{"invalid UTF-8", "/v1/webhooks/pipedrive", []byte("{\"meta\": \"\xff\xfe\"}"), pd, "", 202, "REJECTION_CODE_INVALID_UTF8"},
		{"huge number", "/v1/webhooks/pipedrive", bytes.Replace(fixture(t, "pipedrive", "v2_change_deal"), []byte(`"value": 12000`), []byte(`"value": 1e999999`), 1), pd, "", 202, "REJECTION_CODE_WRONG_SHAPE"},
		{"huge integer id", "/v1/webhooks/pipedrive", bytes.Replace(fixture(t, "pipedrive", "v1_updated_deal"), []byte(`"id": 4812,`), []byte(`"id": 123456789012345678901234567890,`), 1), pd, "", 200, ""},
		{"deep nesting 100k", "/v1/webhooks/pipedrive", []byte(`{"meta": {"action": "change", "entity": "deal", "id": "x", "timestamp": "2024-06-10T08:00:00Z"}, "data": {"a": ` + deep + `}}`), pd, "", 202, "REJECTION_CODE_MALFORMED_JSON"},
		{"form content type", "/v1/webhooks/pipedrive", []byte(`meta=1&data=2`), pd, "application/x-www-form-urlencoded", 202, "REJECTION_CODE_MALFORMED_JSON"},
		{"XML", "/v1/webhooks/clinchpad?handshake_key=" + cpHandshake, []byte(`<activity/>`), nil, "application/xml", 202, "REJECTION_CODE_MALFORMED_JSON"},
		{"missing required field", "/v1/webhooks/clinchpad", []byte(`{"activity": {"type": "lead:won", "created_at": "2024-06-11T01:00:00Z"}, "lead": {"_id": "l"}, "handshake_key": "` + cpHandshake + `"}`), nil, "", 202, "REJECTION_CODE_INVALID_FIELD"},
		{"unknown event type", "/v1/webhooks/clinchpad", bytes.Replace(fixture(t, "clinchpad", "lead_won"), []byte(`"lead:won"`), []byte(`"deal:teleported"`), 1), nil, "", 200, ""},
		{"unknown Pipedrive entity", "/v1/webhooks/pipedrive", bytes.Replace(fixture(t, "pipedrive", "v2_create_project"), []byte(`"project"`), []byte(`"spaceship"`), 1), pd, "", 200, ""},
		{"unknown source", "/v1/webhooks/hubspot", []byte(`{}`), nil, "", 404, "UNKNOWN_SOURCE"},
		{"bad source name", "/v1/webhooks/UPPER", []byte(`{}`), nil, "", 400, "INVALID_REQUEST"},
		{"unauthenticated malformed", "/v1/webhooks/pipedrive", []byte(`{"meta": {`), nil, "", 401, "UNAUTHENTICATED"},
		{"unauthenticated deep nesting", "/v1/webhooks/clinchpad", []byte(deep), nil, "", 401, "UNAUTHENTICATED"},
		{"unauthenticated empty", "/v1/webhooks/closer", nil, nil, "", 401, "UNAUTHENTICATED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := map[string]string{}
			for k, v := range tc.header {
				header[k] = v
			}
			if tc.contentType != "" {
				header["Content-Type"] = tc.contentType
			}
			resp := s.postRaw(tc.path, tc.body, header)
			if resp.code != tc.wantCode {
				t.Fatalf("%d %v, want %d", resp.code, resp.body, tc.wantCode)
			}
			switch {
			case tc.wantCode == 202:
				if got := resp.body["reason"].(map[string]any)["code"]; got != tc.wantReason {
					t.Errorf("rejection %v, want %s", resp.body["reason"], tc.wantReason)
				}
			case tc.wantCode >= 400:
				if got := resp.reason(); got != tc.wantReason {
					t.Errorf("error %v, want reason %s", resp.body["error"], tc.wantReason)
				}
			}
		})
	}
	// Everything authenticated and unprocessable is in quarantine.
	list, err := s.quarantine().ListQuarantined(context.Background(), &hookstreamv1.ListQuarantinedRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.GetRequests()); n != 11 {
		t.Errorf("quarantine holds %d entries, want 11", n)
	}
	for _, q := range list.GetRequests() {
		if q.GetRejection().GetMessage() == "" {
			t.Errorf("entry %s has no reason", q.GetId())
		}
		assertNoSecrets(t, "quarantine entry "+q.GetId(), q.GetBodyText()+string(q.GetBody()))
	}
}

// postRaw is post without a default content type.
func (s *server) postRaw(path string, body []byte, header map[string]string) response {
	if _, ok := header["Content-Type"]; !ok {
		header["Content-Type"] = "application/json"
	}
	return s.post(path, body, header)
}

// FuzzIngress throws arbitrary bodies, paths and headers at the HTTP
// handler of a real server: it must never panic or answer 500.
func FuzzIngress(f *testing.F) {
	for _, seed := range []struct{ source, query, auth, body string }{
		{"pipedrive", "", "Basic cGlwZWRyaXZlOnBkLXNlY3JldC1aeDgx", `{"meta": {"action": "change", "entity": "deal", "id": "1", "timestamp": "2024-06-10T08:00:00Z"}, "data": {}}`},
		{"clinchpad", "handshake_key=" + cpHandshake, "", `{"activity": {"_id": "a", "type": "lead:won", "created_at": "2024-06-11T01:00:00Z"}, "lead": {"_id": "l"}}`},
		{"closer", "token=" + closerToken, "", `{"eventType": "ThreadCreatedEvent", "timestamp": 1, "customer": {"id": "c"}}`},
		{"nope", "", "Bearer x", `{}`},
	} {
		f.Add(seed.source, seed.query, seed.auth, []byte(seed.body))
	}
	h := startServer(f, testConfig(f, f.TempDir(), "")).app.Handler()
	f.Fuzz(func(t *testing.T, source, query, authz string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/webhooks/x", bytes.NewReader(body))
		req.URL.Path = "/v1/webhooks/" + source
		req.URL.RawQuery = query
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%d for source %q: %s", rec.Code, source, rec.Body.String())
		}
	})
}
