package webhook_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstream/hookstream/service/delivery/webhook"
)

// answer is what a scripted receiver writes for its n-th request (from 0),
// and whether it then closes the connection.
type answer func(n int) (text string, hangUp bool)

// newRawServer accepts connections on l (a new loopback listener when
// nil) and runs handle on each. It returns the address and how many
// connections were opened.
func newRawServer(t *testing.T, l net.Listener, handle func(c net.Conn)) (string, *atomic.Int64) {
	t.Helper()
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	var (
		conns atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		open  []net.Conn
	)
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	return l.Addr().String(), &conns
}

// newScriptServer starts a loopback receiver that reads each request with
// net/http's parser and answers with the script's exact bytes. It returns
// the URL and how many connections were opened.
func newScriptServer(t *testing.T, script answer) (string, *atomic.Int64) {
	t.Helper()
	var requests atomic.Int64
	addr, conns := newRawServer(t, nil, func(c net.Conn) {
		serveRequests(c, func() bool {
			text, hangUp := script(int(requests.Add(1) - 1))
			_, err := io.WriteString(c, text)
			return err == nil && !hangUp
		})
	})
	return "http://" + addr, conns
}

// serveRequests reads requests from c, each to its end, and calls answer
// after each one, until c fails or answer returns false.
func serveRequests(c net.Conn, answer func() bool) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if !answer() {
			return
		}
	}
}

func always(text string, hangUp bool) answer {
	return func(int) (string, bool) { return text, hangUp }
}

// The answer is read with net/http's parser, whatever framing the receiver
// chose, and the connection is kept only when the answer ended cleanly and
// the receiver did not ask to close it.
func TestSendReadsEveryFraming(t *testing.T) {
	t.Parallel()
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	tests := []struct {
		name      string
		script    answer
		wantBody  string
		wantConns int64 // for three sends
	}{
		{"sized", always(ok, false), "ok", 1},
		{"chunked with a trailer", always("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\no\r\n1\r\nk\r\n0\r\nX-Sum: 1\r\n\r\n", false), "ok", 1},
		// The receiver keeps the connection open here, so only our reading of
		// the header stops its reuse.
		{"connection: close", always("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false), "ok", 3},
		{"HTTP/1.0 until the end", always("HTTP/1.0 200 OK\r\n\r\nok", true), "ok", 3},
		{"informational answers first", always("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"+ok, false), "ok", 1},
		{"a 204 with no body", always("HTTP/1.1 204 No Content\r\n\r\n", false), "", 1},
		{"a body past what is kept", always("HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n"+strings.Repeat("x", 20000), false), strings.Repeat("x", webhook.MaxResponseBody), 1},
		{"a body past the drain limit", always("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("x", 100000), false), strings.Repeat("x", webhook.MaxResponseBody), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, conns := newScriptServer(t, tt.script)
			c := newClient(t, webhook.Options{AllowNetworks: allowLoopback, Timeout: 5 * time.Second})
			for i := range 3 {
				res := c.Send(t.Context(), testRequest(t, url))
				if !res.OK() || res.Err != "" || string(res.Body) != tt.wantBody {
					t.Fatalf("send %d: status %d, err %q, body of %d bytes, want 2xx with %d", i, res.Status, res.Err, len(res.Body), len(tt.wantBody))
				}
			}
			if n := conns.Load(); n != tt.wantConns {
				t.Errorf("3 sends opened %d connections, want %d", n, tt.wantConns)
			}
		})
	}
}

// Answers that are not HTTP, or not one we can take, fail the attempt with
// a reason.
func TestSendRefusesBadAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		script  answer
		wantErr string
	}{
		{"too many informational answers", always(strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 6)+"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false), "too many informational"},
		{"switching protocols", always("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false), "switched protocols"},
		{"endless headers", always("HTTP/1.1 200 OK\r\n"+strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 80), false), "larger than 64 KiB"},
		{"not HTTP", always("SSH-2.0-OpenSSH_9.6\r\n", true), "malformed HTTP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, _ := newScriptServer(t, tt.script)
			c := newClient(t, webhook.Options{AllowNetworks: allowLoopback, Timeout: 5 * time.Second})
			res := c.Send(t.Context(), testRequest(t, url))
			if res.Status != 0 || !strings.Contains(res.Err, tt.wantErr) {
				t.Errorf("Result = %+v, want Err mentioning %q", res, tt.wantErr)
			}
		})
	}
}

// A receiver that closed a connection while it sat idle (its keep-alive
// timeout is shorter than ours) costs nothing: the next attempt sees that
// and opens a new one, and the receiver gets the request once.
func TestSendAfterReceiverClosedIdleConnection(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.IdleTimeout = 20 * time.Millisecond
	states := watchConns(srv)
	srv.Start()
	t.Cleanup(srv.Close)
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback})
	if res := c.Send(t.Context(), testRequest(t, srv.URL)); !res.OK() {
		t.Fatalf("first send: %+v", res)
	}
	waitFor(t, "the receiver to close the idle connection", func() bool { return states.closed.Load() == 1 })
	if res := c.Send(t.Context(), testRequest(t, srv.URL)); !res.OK() {
		t.Fatalf("send after the receiver closed the connection: %+v", res)
	}
	if n := states.active.Load(); n != 2 {
		t.Errorf("receiver saw %d requests, want 2", n)
	}
}

// Connections idle longer than Options.IdleTimeout are closed by us.
func TestSendClosesIdleConnections(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	states := watchConns(srv)
	srv.Start()
	t.Cleanup(srv.Close)
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback, IdleTimeout: 50 * time.Millisecond})
	if res := c.Send(t.Context(), testRequest(t, srv.URL)); !res.OK() {
		t.Fatalf("send: %+v", res)
	}
	waitFor(t, "the idle connection to be closed", func() bool { return states.closed.Load() == 1 })
}

// Canceling the caller's context stops an attempt in flight at once, not
// at the timeout.
func TestSendCanceledInFlight(t *testing.T) {
	t.Parallel()
	srv := newHangingServer(t, nil)
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback, Timeout: time.Minute})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	res := c.Send(ctx, testRequest(t, srv.URL))
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Send returned %s after the cancel", took)
	}
	if res.Status != 0 || !strings.Contains(res.Err, "canceled") {
		t.Errorf("Result = %+v, want canceled", res)
	}
}

// A receiver that answers before reading a large body, and stops reading,
// is heard: its status is the result.
func TestSendEarlyAnswerToLargeBody(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	})
	req := testRequest(t, srv.URL)
	req.Body = []byte(`{"pad":"` + strings.Repeat("x", 8<<20) + `"}`)
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback, Timeout: 10 * time.Second})
	res := c.Send(t.Context(), req)
	if res.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("Result = status %d, err %q, want 413", res.Status, res.Err)
	}
}

// HTTPS: the receiver's certificate is verified, HTTP/1.1 is spoken even to
// a server that offers HTTP/2, and the connection is reused.
func TestSendHTTPS(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 2)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		got <- r
		w.WriteHeader(http.StatusAccepted)
	}))
	srv.EnableHTTP2 = true
	states := watchConns(srv)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback, RootCAs: roots})
	secret := newTestSecret(t)
	for i := range 2 {
		req := testRequest(t, srv.URL+"/hook?a=1")
		req.Keys = [][]byte{mustParseSecret(t, secret)}
		if res := c.Send(t.Context(), req); res.Status != http.StatusAccepted {
			t.Fatalf("send %d: %+v", i, res)
		}
		r := <-got
		if r.Proto != "HTTP/1.1" || r.URL.RequestURI() != "/hook?a=1" || r.TLS == nil {
			t.Errorf("request %d: %s %s (TLS %v), want HTTP/1.1 /hook?a=1 over TLS", i, r.Proto, r.URL.RequestURI(), r.TLS != nil)
		}
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header, body, time.Minute, time.Now()); err != nil {
			t.Errorf("request %d: Verify: %v", i, err)
		}
	}
	if n := states.opened.Load(); n != 1 {
		t.Errorf("2 sends opened %d connections, want 1", n)
	}
}

// connStates counts a test server's connections by the states they enter.
type connStates struct{ opened, active, closed atomic.Int64 }

// watchConns counts srv's connection states; call it before starting srv.
func watchConns(srv *httptest.Server) *connStates {
	cs := &connStates{}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			cs.opened.Add(1)
		case http.StateActive:
			cs.active.Add(1)
		case http.StateClosed:
			cs.closed.Add(1)
		}
	}
	return cs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
