package system

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

func errorReason(t *testing.T, r rawResponse) string {
	t.Helper()
	var b struct {
		Error struct {
			Code    int
			Status  string
			Message string
			Details []struct {
				Type   string `json:"@type"`
				Reason string
			}
		}
	}
	if err := json.Unmarshal(r.body, &b); err != nil || b.Error.Code != r.code || b.Error.Status == "" {
		t.Fatalf("%d with a body that is not our error JSON: %s", r.code, r.body)
	}
	for _, d := range b.Error.Details {
		if strings.HasSuffix(d.Type, "google.rpc.ErrorInfo") {
			return d.Reason
		}
	}
	return ""
}

// One body limit for HTTP and gRPC, with an error that names it.
func TestBodyLimitOverGRPC(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "")
	cfg.HTTP.BodyLimit = 4096
	s := startServer(t, cfg)
	big := []byte(`{"x": "` + strings.Repeat("a", 5000) + `"}`)
	_, err := hookstreamv1.NewIngestServiceClient(s.conn).IngestWebhook(context.Background(), &hookstreamv1.IngestWebhookRequest{
		Source: "closer", Params: map[string]string{"token": closerToken},
		Body: &httpbody.HttpBody{ContentType: "application/json", Data: big},
	})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "4096") {
		t.Fatalf("gRPC body above the limit: %v, want INVALID_ARGUMENT naming the limit", err)
	}
	var reason string
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			reason = info.GetReason()
		}
	}
	if reason != "BODY_TOO_LARGE" {
		t.Errorf("reason %q, want BODY_TOO_LARGE", reason)
	}
	if r := s.send(http.MethodPost, "/v1/webhooks/closer?token="+closerToken, big, nil); r.code != http.StatusRequestEntityTooLarge || errorReason(t, r) != "BODY_TOO_LARGE" {
		t.Errorf("HTTP body above the limit: %d %s", r.code, r.body)
	}
	// Nothing was stored.
	if list, err := s.quarantine().ListQuarantined(context.Background(), &hookstreamv1.ListQuarantinedRequest{}); err != nil || len(list.GetRequests()) != 0 {
		t.Errorf("quarantine: %v %v", list, err)
	}
}

// Content-Encoding: gzip is decoded within the body limit; anything that
// cannot be decoded, and so scrubbed, is refused.
func TestContentEncoding(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "")
	cfg.HTTP.BodyLimit = 64 << 10
	s := startServer(t, cfg)
	path := "/v1/webhooks/clinchpad"
	body := fixture(t, "clinchpad", "lead_won")
	h := func(kv ...string) http.Header {
		out := http.Header{"Content-Type": {"application/json"}}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	bomb := gzipped(t, bytes.Repeat([]byte(" "), 10<<20)) // 10 MiB of spaces in ~10 KiB
	for _, tc := range []struct {
		name   string
		body   []byte
		header http.Header
		code   int
		reason string
	}{
		{"gzip", gzipped(t, body), h("Content-Encoding", "gzip"), http.StatusOK, ""},
		{"x-gzip, upper case", gzipped(t, body), h("Content-Encoding", "X-GZIP"), http.StatusOK, ""},
		{"identity", body, h("Content-Encoding", "identity"), http.StatusOK, ""},
		{"decompression bomb", bomb, h("Content-Encoding", "gzip"), http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE"},
		{"not gzip", body, h("Content-Encoding", "gzip"), http.StatusBadRequest, "BODY_UNREADABLE"},
		{"deflate", body, h("Content-Encoding", "deflate"), http.StatusUnsupportedMediaType, "UNSUPPORTED_CONTENT_ENCODING"},
		{"br", body, h("Content-Encoding", "br"), http.StatusUnsupportedMediaType, "UNSUPPORTED_CONTENT_ENCODING"},
		{"gzip twice", gzipped(t, gzipped(t, body)), h("Content-Encoding", "gzip, gzip"), http.StatusUnsupportedMediaType, "UNSUPPORTED_CONTENT_ENCODING"},
		{"gzip inside gzip", gzipped(t, gzipped(t, body)), h("Content-Encoding", "gzip"), http.StatusUnsupportedMediaType, "UNSUPPORTED_CONTENT_ENCODING"},
		{"gzip without the header", gzipped(t, body), h(), http.StatusUnsupportedMediaType, "UNSUPPORTED_CONTENT_ENCODING"},
	} {
		r := s.send(http.MethodPost, path+"?handshake_key="+cpHandshake, tc.body, tc.header)
		if r.code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, r.code, r.body, tc.code)
			continue
		}
		if tc.reason != "" && errorReason(t, r) != tc.reason {
			t.Errorf("%s: %s, want reason %s", tc.name, r.body, tc.reason)
		}
		if tc.code == http.StatusUnsupportedMediaType && !strings.Contains(string(r.body), "uncompressed") {
			t.Errorf("%s: the message does not say what to send: %s", tc.name, r.body)
		}
	}
	// Over gRPC there is no Content-Encoding: a compressed body is refused.
	_, err := hookstreamv1.NewIngestServiceClient(s.conn).IngestWebhook(context.Background(), &hookstreamv1.IngestWebhookRequest{
		Source: "clinchpad", Params: map[string]string{"handshake_key": cpHandshake},
		Body: &httpbody.HttpBody{ContentType: "application/json", Data: gzipped(t, body)},
	})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("gzip body over gRPC: %v", err)
	}
	if list, err := s.quarantine().ListQuarantined(context.Background(), &hookstreamv1.ListQuarantinedRequest{}); err != nil || len(list.GetRequests()) != 0 {
		t.Errorf("quarantine holds %d entries, want none", len(list.GetRequests()))
	}
}

// A credential sent more than once must be the same every time; conflicting
// copies are refused, identical ones accepted.
func TestRepeatedCredentials(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	with := func(kv ...string) http.Header {
		out := jsonCT.Clone()
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	good, bad := pipedriveAuth(pdPassword)["Authorization"], pipedriveAuth("wrong")["Authorization"]
	cp := fixture(t, "clinchpad", "lead_won")
	// Each case gets its own activity id, so no answer is a duplicate.
	n := 0
	clinch := func(extraKey string) []byte {
		n++
		b := bytes.Replace(cp, []byte(`"6667a1b0c3d4e5f601234503"`), []byte(`"dup-`+strconv.Itoa(n)+`"`), 1)
		if extraKey != "" {
			b = bytes.Replace(b, []byte(`"handshake_key"`), []byte(`"handshake_key": "`+extraKey+`", "handshake_key"`), 1)
		}
		return b
	}
	closer := fixture(t, "closer", "created")
	pd := fixture(t, "pipedrive", "v2_change_deal")
	for _, tc := range []struct {
		name, path string
		body       []byte
		header     http.Header
		code       int
		reason     string
	}{
		{"two Authorization headers, different", "/v1/webhooks/pipedrive", pd, with("Authorization", good, "Authorization", bad), http.StatusBadRequest, "CONFLICTING_CREDENTIALS"},
		{"two Authorization headers, wrong first", "/v1/webhooks/pipedrive", pd, with("Authorization", bad, "Authorization", good), http.StatusBadRequest, "CONFLICTING_CREDENTIALS"},
		{"two Authorization headers, identical", "/v1/webhooks/pipedrive", pd, with("Authorization", good, "Authorization", good), http.StatusOK, ""},
		{"two token parameters, different", "/v1/webhooks/closer?token=" + closerToken + "&token=wrong-token-0123456789", closer, jsonCT, http.StatusBadRequest, "CONFLICTING_CREDENTIALS"},
		{"two token parameters, identical", "/v1/webhooks/closer?token=" + closerToken + "&token=" + closerToken, closer, jsonCT, http.StatusOK, ""},
		{"two token headers, different", "/v1/webhooks/closer", closer, with("X-Hookstream-Token", closerToken, "X-Hookstream-Token", "wrong-token-0123456789"), http.StatusBadRequest, "CONFLICTING_CREDENTIALS"},
		{"token parameter and header, different", "/v1/webhooks/closer?token=" + closerToken, closer, with("X-Hookstream-Token", "wrong-token-0123456789"), http.StatusUnauthorized, "UNAUTHENTICATED"},
		{"two handshake_key parameters, different", "/v1/webhooks/clinchpad?handshake_key=" + cpHandshake + "&handshake_key=nope", clinch(""), jsonCT, http.StatusBadRequest, "CONFLICTING_CREDENTIALS"},
		{"two handshake_key members, different", "/v1/webhooks/clinchpad", clinch("nope"), jsonCT, http.StatusUnauthorized, "UNAUTHENTICATED"},
		{"two handshake_key members, wrong last", "/v1/webhooks/clinchpad", bytes.Replace(clinch(""), []byte(`"lead": {`), []byte(`"handshake\u005fkey": "nope", "lead": {`), 1), jsonCT, http.StatusUnauthorized, "UNAUTHENTICATED"},
		{"two handshake_key members, identical", "/v1/webhooks/clinchpad", clinch(cpHandshake), jsonCT, http.StatusOK, ""},
	} {
		r := s.send(http.MethodPost, tc.path, tc.body, tc.header)
		if r.code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, r.code, r.body, tc.code)
			continue
		}
		if tc.reason != "" && errorReason(t, r) != tc.reason {
			t.Errorf("%s: %s, want reason %s", tc.name, r.body, tc.reason)
		}
	}
}

// A wrong method gets 405 with Allow and our error body; the webhook route
// ignores X-HTTP-Method-Override.
func TestMethods(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir(), ""))
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodGet, "/v1/webhooks/closer", "POST"},
		{http.MethodPut, "/v1/webhooks/closer", "POST"},
		{http.MethodDelete, "/v1/events", "GET"},
		{http.MethodPost, "/v1/events/0123", "GET"},
		{http.MethodPost, "/healthz", "GET"},
		{http.MethodGet, "/v1/quarantine:reprocess", "POST"},
	} {
		r := s.send(tc.method, tc.path, nil, http.Header{"Authorization": {"Bearer " + adminToken}})
		if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow=%q %s, want 405 with Allow: %s", tc.method, tc.path, r.code, r.header.Get("Allow"), r.body, tc.allow)
			continue
		}
		if reason := errorReason(t, r); reason != "METHOD_NOT_ALLOWED" {
			t.Errorf("%s %s: reason %q", tc.method, tc.path, reason)
		}
	}
	// A form POST does not fall back to a GET route.
	r := s.send(http.MethodPost, "/v1/events", []byte("page_size=1"),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {"Bearer " + adminToken}})
	if r.code != http.StatusMethodNotAllowed {
		t.Errorf("form POST to a GET route: %d %s, want 405", r.code, r.body)
	}
	// A form-encoded webhook with a method override is still a webhook.
	for _, override := range []string{"GET", "DELETE", "PUT"} {
		r := s.send(http.MethodPost, "/v1/webhooks/clinchpad?handshake_key="+cpHandshake, []byte("handshake_key=x&lead=1"),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Http-Method-Override": {override}})
		if r.code != http.StatusAccepted {
			t.Errorf("POST with X-HTTP-Method-Override: %s: %d %s, want the webhook handled (202 quarantined)", override, r.code, r.body)
		}
	}
}

// The body buffer grows as bytes arrive: clients that declare a large
// Content-Length and send little do not make the server reserve it.
func TestDeclaredLengthReservesNothing(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "")
	cfg.HTTP.ReadTimeout = time.Minute
	s := startServer(t, cfg)
	addr := strings.TrimPrefix(s.base, "http://")
	const conns = 200
	declared := int(cfg.HTTP.BodyLimit) // 1 MiB by default
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/webhooks/closer?token=%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"n\": %d",
			closerToken, declared, i)
	}
	// A request that completes after all of them: by then the server has
	// accepted them all and their handlers are reading.
	if r := s.send(http.MethodGet, "/healthz", nil, nil); r.code != http.StatusOK {
		t.Fatalf("/healthz: %d", r.code)
	}
	// Heap held while the bodies have not arrived. Before the fix it rose
	// by conns × 1 MiB within milliseconds; wait up to a second for that.
	bound := uint64(32 << 20)
	var grew uint64
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		var now runtime.MemStats
		runtime.ReadMemStats(&now)
		if now.HeapAlloc > before.HeapAlloc {
			grew = max(grew, now.HeapAlloc-before.HeapAlloc)
		}
		if grew > bound {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d connections declaring %d bytes: heap grew by %d KiB", conns, declared, grew>>10)
	if grew > bound {
		t.Errorf("heap grew by %d MiB for %d connections that sent a few bytes each (bound %d MiB)", grew>>20, conns, bound>>20)
	}
}
