package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstream/hookstream/service/delivery/webhook"
	"github.com/hookstream/hookstream/service/tracing"
)

var allowLoopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func newClient(t *testing.T, o webhook.Options) *webhook.Client {
	t.Helper()
	c := webhook.NewClient(o)
	t.Cleanup(c.Close)
	return c
}

// newServer starts a loopback server that counts the requests it gets.
func newServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// newHangingServer starts a server whose handler blocks until the test
// ends, well past any client timeout. The release is registered after the
// server's Close, so it runs first and Close does not wait on the handler.
func newHangingServer(t *testing.T, beforeBlocking http.HandlerFunc) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if beforeBlocking != nil {
			beforeBlocking(w, r)
		}
		<-release
	})
	t.Cleanup(func() { close(release) })
	return srv
}

func testRequest(t *testing.T, url string) webhook.Request {
	t.Helper()
	return webhook.Request{
		URL:         url,
		ID:          "0123456789abcdef0123456789abcdef",
		Timestamp:   time.Now(),
		Body:        []byte(`{"type":"deal.updated"}`),
		ContentType: "application/json",
		Keys:        [][]byte{mustParseSecret(t, newTestSecret(t))},
	}
}

func TestSendStatus(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16000 bytes
	tests := []struct {
		name           string
		handler        http.HandlerFunc
		wantStatus     int
		wantOK         bool
		wantGone       bool
		wantBody       []byte
		wantRetryAfter [2]time.Duration // inclusive range
	}{
		{
			name:       "200",
			handler:    func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "thanks") },
			wantStatus: 200, wantOK: true, wantBody: []byte("thanks"),
		},
		{
			name:       "204",
			handler:    func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) },
			wantStatus: 204, wantOK: true,
		},
		{
			name:       "500",
			handler:    func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", 500) },
			wantStatus: 500, wantBody: []byte("boom\n"),
		},
		{
			name: "500 ignores Retry-After",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(500)
			},
			wantStatus: 500,
		},
		{
			name: "429 Retry-After seconds",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "120")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			wantStatus: 429, wantRetryAfter: [2]time.Duration{120 * time.Second, 120 * time.Second},
		},
		{
			name: "429 Retry-After HTTP-date",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", time.Now().Add(2*time.Minute).UTC().Format(http.TimeFormat))
				w.WriteHeader(http.StatusTooManyRequests)
			},
			// HTTP-dates have whole seconds, and the clock moves on.
			wantStatus: 429, wantRetryAfter: [2]time.Duration{118 * time.Second, 120 * time.Second},
		},
		{
			name: "429 Retry-After date in the past",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			wantStatus: 429,
		},
		{
			name: "429 Retry-After garbage",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "soon")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			wantStatus: 429,
		},
		{
			name: "503 Retry-After",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			wantStatus: 503, wantRetryAfter: [2]time.Duration{30 * time.Second, 30 * time.Second},
		},
		{
			name: "503 Retry-After clamped to a day",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "99999999999999999999999")
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			wantStatus: 503, wantRetryAfter: [2]time.Duration{24 * time.Hour, 24 * time.Hour},
		},
		{
			name:       "410",
			handler:    func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) },
			wantStatus: 410, wantGone: true,
		},
		{
			name:       "body over 4 KiB is cut",
			handler:    func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(big) },
			wantStatus: 200, wantOK: true, wantBody: big[:4096],
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, calls := newServer(t, tt.handler)
			c := newClient(t, webhook.Options{AllowNetworks: allowLoopback})
			res := c.Send(t.Context(), testRequest(t, srv.URL))
			if res.Status != tt.wantStatus || res.OK() != tt.wantOK || res.Gone != tt.wantGone {
				t.Errorf("Status, OK, Gone = %d, %v, %v; want %d, %v, %v", res.Status, res.OK(), res.Gone, tt.wantStatus, tt.wantOK, tt.wantGone)
			}
			if res.Err != "" {
				t.Errorf("Err = %q, want empty when a status came", res.Err)
			}
			if !bytes.Equal(res.Body, tt.wantBody) {
				t.Errorf("Body = %d bytes %.40q, want %d bytes %.40q", len(res.Body), res.Body, len(tt.wantBody), tt.wantBody)
			}
			if lo, hi := tt.wantRetryAfter[0], tt.wantRetryAfter[1]; res.RetryAfter < lo || res.RetryAfter > hi {
				t.Errorf("RetryAfter = %v, want in [%v, %v]", res.RetryAfter, lo, hi)
			}
			if res.Latency <= 0 {
				t.Errorf("Latency = %v", res.Latency)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("server got %d requests, want 1", n)
			}
		})
	}
}

func TestSendHeaders(t *testing.T) {
	t.Parallel()
	type seen struct {
		method string
		header http.Header
		body   []byte
	}
	got := make(chan seen, 1)
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Header.Clone(), body}
		w.WriteHeader(http.StatusNoContent)
	})
	secret, oldSecret := newTestSecret(t), newTestSecret(t)
	req := webhook.Request{
		URL:         srv.URL + "/hooks?x=1",
		ID:          "evt_1",
		Timestamp:   time.Unix(time.Now().Unix(), 0),
		Body:        []byte(`{"hello":"wörld"}`),
		ContentType: "application/cloudevents+json",
		Keys:        [][]byte{mustParseSecret(t, secret), mustParseSecret(t, oldSecret)},
		Headers: map[string]string{
			"X-Team":            "growth",
			"webhook-id":        "forged",
			"Webhook-Signature": "v1,Zm9yZ2Vk",
			"webhook-timestamp": "1",
			"content-type":      "text/plain",
			"User-Agent":        "curl/8",
			"Authorization":     "Bearer user-token",
		},
		BasicUser:     "hook",
		BasicPassword: "s3cret pass",
	}
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback})
	if res := c.Send(t.Context(), req); !res.OK() {
		t.Fatalf("Send: %+v", res)
	}
	s := <-got
	if s.method != http.MethodPost {
		t.Errorf("method = %s, want POST", s.method)
	}
	if !bytes.Equal(s.body, req.Body) {
		t.Errorf("body = %q, want %q", s.body, req.Body)
	}
	want := map[string]string{
		"Webhook-Id":        "evt_1",
		"Webhook-Timestamp": strconv.FormatInt(req.Timestamp.Unix(), 10),
		"Webhook-Signature": webhook.Sign(req.Keys, req.ID, req.Timestamp, req.Body),
		"Content-Type":      "application/cloudevents+json",
		"User-Agent":        "hookstream-webhooks/1",
		"X-Team":            "growth",
	}
	for name, value := range want {
		if vs := s.header.Values(name); len(vs) != 1 || vs[0] != value {
			t.Errorf("%s = %q, want exactly [%q]", name, vs, value)
		}
	}
	if user, pass, ok := (&http.Request{Header: s.header}).BasicAuth(); !ok || user != "hook" || pass != "s3cret pass" {
		t.Errorf("basic auth = %q, %q, %v", user, pass, ok)
	}
	for _, sec := range []string{secret, oldSecret} {
		if err := webhook.Verify(sec, s.header, s.body, 5*time.Minute, time.Now()); err != nil {
			t.Errorf("receiver's Verify: %v", err)
		}
	}
}

func TestSendDefaults(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	srv, _ := newServer(t, func(_ http.ResponseWriter, r *http.Request) { got <- r.Clone(context.Background()) })
	req := testRequest(t, srv.URL)
	req.Timestamp, req.ContentType, req.Method = time.Time{}, "", ""
	req.Headers = map[string]string{"Authorization": "Bearer user-token"}
	before := time.Now().Unix()
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback})
	if res := c.Send(t.Context(), req); !res.OK() {
		t.Fatalf("Send: %+v", res)
	}
	r := <-got
	if r.Method != http.MethodPost {
		t.Errorf("method = %s", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if ts, err := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64); err != nil || ts < before || ts > time.Now().Unix() {
		t.Errorf("webhook-timestamp = %q, want now", r.Header.Get("webhook-timestamp"))
	}
	// Without basic auth, the owner's own Authorization header is theirs to send.
	if a := r.Header.Get("Authorization"); a != "Bearer user-token" {
		t.Errorf("Authorization = %q", a)
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	srv := newHangingServer(t, nil)
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback, Timeout: 300 * time.Millisecond})
	res := c.Send(t.Context(), testRequest(t, srv.URL))
	if res.Status != 0 || res.OK() {
		t.Errorf("Status = %d, want 0", res.Status)
	}
	if !strings.Contains(res.Err, "timeout after 300ms") {
		t.Errorf("Err = %q, want a timeout", res.Err)
	}
}

// A receiver that answers 2xx and then stalls on the body has accepted the
// webhook: the status stands, with what body came before the timeout.
func TestSendTimeoutAfterStatus(t *testing.T) {
	t.Parallel()
	srv := newHangingServer(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
	})
	// Long enough for the status to arrive on a loaded CI machine.
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback, Timeout: time.Second})
	res := c.Send(t.Context(), testRequest(t, srv.URL))
	if !res.OK() || res.Err != "" || string(res.Body) != "partial" {
		t.Errorf("Result = %+v, want 200 with body \"partial\"", res)
	}
}

func TestSendConnectionFailures(t *testing.T) {
	t.Parallel()
	hangUp := func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		conn.Close()
	}
	refusedURL := func(t *testing.T) string {
		// A port that was just free: nothing listens there.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}
	tests := []struct {
		name    string
		url     func(t *testing.T) string
		wantErr string
	}{
		{"closed before a response", func(t *testing.T) string { srv, _ := newServer(t, hangUp); return srv.URL }, "connection closed before a response"},
		{"refused", refusedURL, "connection refused"},
		{"plain http on https", func(t *testing.T) string {
			srv, _ := newServer(t, func(http.ResponseWriter, *http.Request) {})
			return strings.Replace(srv.URL, "http://", "https://", 1)
		}, "server gave HTTP response to HTTPS client"},
		{"unknown certificate authority", func(t *testing.T) string {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			// The handshake our client aborts is logged otherwise.
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.StartTLS()
			t.Cleanup(srv.Close)
			return srv.URL
		}, "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, webhook.Options{AllowNetworks: allowLoopback})
			res := c.Send(t.Context(), testRequest(t, tt.url(t)))
			if res.Status != 0 || res.OK() {
				t.Errorf("Status = %d, want 0", res.Status)
			}
			if !strings.Contains(res.Err, tt.wantErr) {
				t.Errorf("Err = %q, want it to mention %q", res.Err, tt.wantErr)
			}
		})
	}
}

func TestSendRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	target, targetCalls := newServer(t, func(http.ResponseWriter, *http.Request) {})
	loc := strings.Replace(target.URL, "http://", "http://user:pw-in-location@", 1) + "/next?token=query-secret#frag"
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, loc, http.StatusFound)
	})
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback})
	res := c.Send(t.Context(), testRequest(t, srv.URL))
	if res.Status != 302 || res.OK() {
		t.Errorf("Status = %d, want 302 and not OK", res.Status)
	}
	want := "redirect not followed (302 to " + target.URL + "/next)"
	if res.Err != want {
		t.Errorf("Err = %q, want %q", res.Err, want)
	}
	if n := targetCalls.Load(); n != 0 {
		t.Errorf("redirect target got %d requests", n)
	}
}

func TestSendBlockedAddress(t *testing.T) {
	t.Parallel()
	srv, calls := newServer(t, func(http.ResponseWriter, *http.Request) {})
	tests := []struct {
		name    string
		url     string
		wantErr string
	}{
		{"loopback", srv.URL, "address 127.0.0.1 is blocked (loopback)"},
		// The check is on the address connected to, not the URL's text.
		{"localhost", strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), "is blocked (loopback)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, webhook.Options{})
			res := c.Send(t.Context(), testRequest(t, tt.url))
			if res.Status != 0 || !strings.Contains(res.Err, tt.wantErr) {
				t.Errorf("Result = %+v, want Err mentioning %q", res, tt.wantErr)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("server got %d requests from a blocked client", n)
	}
	// The same server is reachable once loopback is allowed.
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback})
	if res := c.Send(t.Context(), testRequest(t, srv.URL)); !res.OK() {
		t.Errorf("with 127.0.0.0/8 allowed: %+v", res)
	}
}

// Whatever goes wrong, Err never carries the basic auth password or the
// URL's query (which often holds a token).
func TestSendErrNeverLeaksSecrets(t *testing.T) {
	t.Parallel()
	const password, query = "pw-hunter2-secret", "token=query-hunter2"
	hangUp, _ := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	})
	slow := newHangingServer(t, nil)
	redirect, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere?"+query, http.StatusTemporaryRedirect)
	})
	tests := []struct {
		name  string
		url   string
		allow []netip.Prefix
	}{
		{"closed", hangUp.URL, allowLoopback},
		{"timeout", slow.URL, allowLoopback},
		{"blocked", hangUp.URL, nil},
		{"redirect", redirect.URL, allowLoopback},
		{"dns", "http://no-such-host.invalid", nil},
		{"userinfo in URL", strings.Replace(hangUp.URL, "http://", "http://hook:"+password+"@", 1), allowLoopback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, webhook.Options{AllowNetworks: tt.allow, Timeout: 300 * time.Millisecond})
			req := testRequest(t, tt.url+"/hooks?"+query)
			req.BasicUser, req.BasicPassword = "hook", password
			res := c.Send(t.Context(), req)
			if res.OK() || res.Err == "" {
				t.Fatalf("Result = %+v, want a failure with Err", res)
			}
			if strings.Contains(res.Err, "hunter2") {
				t.Errorf("Err leaks a secret: %q", res.Err)
			}
		})
	}
}

func TestSendRefusesBadRequests(t *testing.T) {
	t.Parallel()
	srv, calls := newServer(t, func(http.ResponseWriter, *http.Request) {})
	tests := []struct {
		name    string
		edit    func(*webhook.Request)
		wantErr string
	}{
		{"no keys", func(r *webhook.Request) { r.Keys = nil }, "unsigned"},
		{"empty key", func(r *webhook.Request) { r.Keys = append(r.Keys, nil) }, "signing key 1 has 0 bytes"},
		{"no id", func(r *webhook.Request) { r.ID = "" }, "id"},
		{"dot in id", func(r *webhook.Request) { r.ID = "a.b" }, "'.'"},
		{"newline in id", func(r *webhook.Request) { r.ID = "a\nb" }, "id"},
		{"bad URL", func(r *webhook.Request) { r.URL = "ftp://example.com/" }, "scheme"},
		{"bad method", func(r *webhook.Request) { r.Method = "PO ST" }, "method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := testRequest(t, srv.URL)
			tt.edit(&req)
			res := newClient(t, webhook.Options{AllowNetworks: allowLoopback}).Send(t.Context(), req)
			if res.Status != 0 || !strings.Contains(res.Err, tt.wantErr) {
				t.Errorf("Result = %+v, want Err mentioning %q", res, tt.wantErr)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("server got %d requests", n)
	}
}

func TestSendCanceledByCaller(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, func(http.ResponseWriter, *http.Request) {})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res := newClient(t, webhook.Options{AllowNetworks: allowLoopback}).Send(ctx, testRequest(t, srv.URL))
	if res.Status != 0 || !strings.Contains(res.Err, "canceled") {
		t.Errorf("Result = %+v, want canceled", res)
	}
}

// Responses are read and drained so that the next attempt to the same host
// reuses the connection, even when the body is longer than what is kept.
func TestSendReusesConnections(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte("x"), 20<<10))
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns[c] = true
			mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback})
	for i := range 3 {
		if res := c.Send(t.Context(), testRequest(t, srv.URL)); !res.OK() || len(res.Body) != 4096 {
			t.Fatalf("send %d: status %d, %d body bytes", i, res.Status, len(res.Body))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 1 {
		t.Errorf("3 sequential sends used %d connections, want 1", len(conns))
	}
}

func TestSendConcurrent(t *testing.T) {
	t.Parallel()
	srv, calls := newServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback})
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for i := range 20 {
		wg.Go(func() {
			req := testRequest(t, srv.URL)
			req.ID = fmt.Sprintf("evt%d", i)
			if res := c.Send(t.Context(), req); !res.OK() {
				errs <- fmt.Sprintf("%s: %+v", req.ID, res)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := calls.Load(); n != 20 {
		t.Errorf("server got %d requests, want 20", n)
	}
}

// TestSendTraceContext: a request with a trace context carries it as
// traceparent and tracestate, over an endpoint's own headers of the same
// names; one without sends neither of ours, and the signature holds.
func TestSendTraceContext(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 2)
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	})
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback})
	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

	req := testRequest(t, srv.URL)
	req.Headers = map[string]string{"traceparent": "00-11111111111111111111111111111111-2222222222222222-01", "tracestate": "owner=1"}
	req.Trace = tracing.Context{Parent: parent}
	if res := c.Send(context.Background(), req); !res.OK() {
		t.Fatalf("send: %+v", res)
	}
	h := <-got
	if h.Get("traceparent") != parent || h.Get("tracestate") != "" {
		t.Errorf("traceparent %q tracestate %q; want ours only", h.Get("traceparent"), h.Get("tracestate"))
	}
	if h.Get(webhook.HeaderSignature) != webhook.Sign(req.Keys, req.ID, req.Timestamp, req.Body) {
		t.Error("the signature changed with the trace headers")
	}

	req = testRequest(t, srv.URL)
	if res := c.Send(context.Background(), req); !res.OK() {
		t.Fatalf("send: %+v", res)
	}
	if h := <-got; h.Get("traceparent") != "" {
		t.Errorf("traceparent %q without a trace context", h.Get("traceparent"))
	}
}

// TestSendBodyNeverLeaksBasicAuth: a receiver that echoes the request
// (headers and all) does not put the Basic password, or an extra header's
// value, into Result.Body, which the attempt log keeps.
func TestSendBodyNeverLeaksBasicAuth(t *testing.T) {
	t.Parallel()
	const password = "pw-hunter2-secret"
	echo, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_ = r.Header.Write(w)
		user, pass, _ := r.BasicAuth()
		fmt.Fprintf(w, "user=%s password=%s\n", user, pass)
	})
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback})
	req := testRequest(t, echo.URL)
	req.BasicUser, req.BasicPassword = "hook", password
	res := c.Send(t.Context(), req)
	if res.Status != http.StatusBadRequest || !bytes.Contains(res.Body, []byte("user=hook")) {
		t.Fatalf("Result = %+v, want the echo", res)
	}
	if bytes.Contains(res.Body, []byte("hunter2")) || bytes.Contains(res.Body, []byte("aG9vazpwdy1odW50ZXIy")) {
		t.Errorf("Body leaks the Basic password:\n%s", res.Body)
	}
	if !bytes.Contains(res.Body, []byte("Basic [redacted]")) {
		t.Errorf("Body does not show the redaction:\n%s", res.Body)
	}

	// So do the values of extra headers (where receivers' API keys go),
	// except short ones, which are no key.
	req = testRequest(t, echo.URL)
	req.Headers = map[string]string{"X-Api-Key": "key-0123456789-secret", "X-Version": "2"}
	res = c.Send(t.Context(), req)
	if bytes.Contains(res.Body, []byte("key-0123456789-secret")) || !bytes.Contains(res.Body, []byte("X-Api-Key: [redacted]")) ||
		!bytes.Contains(res.Body, []byte("X-Version: 2")) {
		t.Errorf("Body with extra headers echoed:\n%s\nwant the key redacted and the short value kept", res.Body)
	}

	// The URL's query values (a read token sees them MASKED) and the
	// echoes that escape what they quote: JSON with "\/" (PHP's
	// json_encode), percent-encoding.
	jsonEcho, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		hdr, _ := json.Marshal(r.Header.Get("X-Api-Key"))
		fmt.Fprintf(w, "Cannot POST %s\n{\"X-Api-Key\": %s, \"php\": %s, \"url\": %q}\n", r.URL.RequestURI(), hdr,
			strings.ReplaceAll(string(hdr), "/", `\/`), url.QueryEscape(r.URL.RequestURI()))
	})
	req = testRequest(t, jsonEcho.URL+"/hook?api_key=qkey-SECRET-4242&v=1")
	req.Headers = map[string]string{"X-Api-Key": "sk_live/AbC+9f3kQ=="}
	res = c.Send(t.Context(), req)
	for _, leak := range []string{"qkey-SECRET-4242", "sk_live", "AbC+9f3kQ", "AbC%2B9f3kQ"} {
		if bytes.Contains(res.Body, []byte(leak)) {
			t.Errorf("Body leaks %q:\n%s", leak, res.Body)
		}
	}
	if !bytes.Contains(res.Body, []byte("api_key=[redacted]&v=1")) {
		t.Errorf("Body does not show the query's redaction:\n%s", res.Body)
	}

	// An echo straddling the kept 4 KiB is redacted before the cut, so
	// not even its first bytes are kept.
	straddle, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, pass, _ := r.BasicAuth()
		_, _ = w.Write(bytes.Repeat([]byte("x"), webhook.MaxResponseBody-5))
		_, _ = w.Write([]byte(pass))
	})
	req = testRequest(t, straddle.URL)
	req.BasicUser, req.BasicPassword = "hook", password
	res = c.Send(t.Context(), req)
	if len(res.Body) != webhook.MaxResponseBody || bytes.Contains(res.Body, []byte(password[:5])) {
		t.Errorf("Body = %d bytes ending %q; want %d bytes without the password's first bytes", len(res.Body), res.Body[max(0, len(res.Body)-12):], webhook.MaxResponseBody)
	}
}
