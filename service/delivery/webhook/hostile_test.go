package webhook_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstream/hookstream/service/delivery/webhook"
)

// Receivers that misbehave in ways a connection kept between requests
// makes dangerous. Found by review of the transport (c09b649); each failed
// against it.

// newTLSListener returns a loopback TLS listener with httptest's
// certificate, offering http/1.1, and a pool that trusts it.
func newTLSListener(t *testing.T) (net.Listener, *tls.Config, *x509.CertPool) {
	t.Helper()
	s := httptest.NewUnstartedServer(http.NotFoundHandler())
	s.StartTLS()
	cfg := s.TLS.Clone()
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())
	s.Close()
	cfg.NextProtos = []string{"http/1.1"}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l, cfg, roots
}

// heldConn gathers the writes made while held into one TCP write.
type heldConn struct {
	net.Conn
	mu   sync.Mutex
	held *bytes.Buffer
}

func (h *heldConn) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held != nil {
		return h.held.Write(p)
	}
	return h.Conn.Write(p)
}

func (h *heldConn) hold() {
	h.mu.Lock()
	h.held = new(bytes.Buffer)
	h.mu.Unlock()
}

func (h *heldConn) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, _ = h.Conn.Write(h.held.Bytes())
	h.held = nil
}

// An unasked second answer must never be taken for the next request's.
// Over TLS it arrives as its own record in the same TCP segment, so
// tls.Conn takes it off the socket with the first: looking at the socket
// alone does not see it.
func TestSendNeverTakesALeftoverAnswer(t *testing.T) {
	t.Parallel()
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "http", true: "https"}[useTLS]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l, cfg, roots := newTLSListener(t)
			var requests atomic.Int64
			addr, _ := newRawServer(t, l, func(raw net.Conn) {
				hc := &heldConn{Conn: raw}
				var c net.Conn = hc
				if useTLS {
					c = tls.Server(hc, cfg)
				}
				serveRequests(c, func() bool {
					if requests.Add(1) > 1 {
						_, _ = io.WriteString(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\nfresh")
						return true
					}
					hc.hold()
					_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
					hc.release()
					return true
				})
			})
			c := newClient(t, webhook.Options{AllowNetworks: allowLoopback, RootCAs: roots, Timeout: 5 * time.Second})
			url := name + "://" + addr
			if res := c.Send(t.Context(), testRequest(t, url)); res.Status != http.StatusNoContent {
				t.Fatalf("first send: %+v", res)
			}
			time.Sleep(50 * time.Millisecond) // the leftover is in our socket by now
			res := c.Send(t.Context(), testRequest(t, url))
			if res.Status != http.StatusAccepted || string(res.Body) != "fresh" {
				t.Errorf("second send: status %d, body %q; want 202 \"fresh\"", res.Status, res.Body)
			}
		})
	}
}

// A connection stays usable while idle, however long ago the last
// attempt's deadline passed.
func TestSendReusesConnectionPastTheLastDeadline(t *testing.T) {
	t.Parallel()
	url, conns := newScriptServer(t, always("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false))
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback, Timeout: 200 * time.Millisecond})
	for i := range 2 {
		if res := c.Send(t.Context(), testRequest(t, url)); !res.OK() {
			t.Fatalf("send %d: %+v", i, res)
		}
		time.Sleep(400 * time.Millisecond)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("2 sends 400ms apart opened %d connections, want 1", n)
	}
}

// A receiver that answers early and then neither reads the rest of a
// large body nor closes the connection is heard at once.
func TestSendEarlyAnswerFromReceiverThatStopsReading(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	addr, _ := newRawServer(t, nil, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\n\r\ntoo large")
		<-release
	})
	t.Cleanup(func() { close(release) }) // before the server's cleanup, which waits for this handler
	req := testRequest(t, "http://"+addr)
	req.Body = []byte(`{"pad":"` + strings.Repeat("x", 16<<20) + `"}`)
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback, Timeout: 5 * time.Second})
	start := time.Now()
	res := c.Send(t.Context(), req)
	if res.Status != http.StatusRequestEntityTooLarge || string(res.Body) != "too large" {
		t.Errorf("Result = status %d, err %q, want 413 with its body", res.Status, res.Err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the early answer took %s", took)
	}
}

// An HTTPS attempt ends at its timeout or its cancel, not seconds later,
// when the receiver stopped reading: giving up does not wait to say
// goodbye (a TLS close_notify) into a full socket.
func TestSendOverTLSEndsOnTimeAgainstAStalledReceiver(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"timeout", "cancel"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			l, cfg, roots := newTLSListener(t)
			release := make(chan struct{})
			addr, _ := newRawServer(t, l, func(raw net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(tls.Server(raw, cfg))); err != nil {
					return
				}
				<-release
			})
			t.Cleanup(func() { close(release) }) // before the server's cleanup, which waits for this handler
			req := testRequest(t, "https://"+addr)
			req.Body = []byte(`{"pad":"` + strings.Repeat("x", 16<<20) + `"}`)
			o := webhook.Options{AllowNetworks: allowLoopback, RootCAs: roots, Timeout: 500 * time.Millisecond}
			ctx := t.Context()
			if how == "cancel" {
				o.Timeout = time.Minute
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(500*time.Millisecond, cancel)
			}
			start := time.Now()
			res := newClient(t, o).Send(ctx, req)
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Send took %s (%q), want about 500ms", took, res.Err)
			}
			if res.Status != 0 || res.Err == "" {
				t.Errorf("Result = %+v, want a failure", res)
			}
		})
	}
}

// An endpoint's headers that differ only in case go out once.
func TestSendOwnersHeadersOncePerName(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	srv, _ := newServer(t, func(_ http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() })
	req := testRequest(t, srv.URL)
	req.Headers = map[string]string{"X-A": "1", "X-B": "2", "x-a": "3", "Authorization": "Bearer a", "authorization": "Bearer b", "Accept": "x"}
	if res := newClient(t, webhook.Options{AllowNetworks: allowLoopback}).Send(t.Context(), req); !res.OK() {
		t.Fatalf("Send: %+v", res)
	}
	h := <-got
	want := map[string]string{"X-A": "1", "Authorization": "Bearer a", "X-B": "2", "Accept": "x"}
	for k, v := range want {
		if vs := h.Values(k); len(vs) != 1 || vs[0] != v {
			t.Errorf("%s = %q, want exactly [%q]", k, vs, v)
		}
	}
}

// The request line is always method, target, version: a space typed in
// the URL's query is sent encoded. IPv6 literals and escapes go out as
// written.
func TestSendRequestTarget(t *testing.T) {
	t.Parallel()
	tests := []struct{ network, url, want string }{
		{"tcp4", "/hook?a=1 HTTP/1.0", "/hook?a=1%20HTTP/1.0"},
		{"tcp4", "/a%2Fb/%E2%82%AC?x=%26y&z=1+2", "/a%2Fb/%E2%82%AC?x=%26y&z=1+2"},
		{"tcp4", "", "/"},
		{"tcp6", "/v6", "/v6"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			host := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[tt.network]
			l, err := net.Listen(tt.network, host)
			if err != nil {
				t.Skip("no loopback for", tt.network, err)
			}
			got := make(chan *http.Request, 1)
			addr, _ := newRawServer(t, l, func(c net.Conn) {
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				got <- req
				_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			})
			allow := append(allowLoopback, netip.MustParsePrefix("::1/128"))
			res := newClient(t, webhook.Options{AllowNetworks: allow}).Send(t.Context(), testRequest(t, "http://"+addr+tt.url))
			if res.Status != http.StatusNoContent {
				t.Fatalf("Send: %+v", res)
			}
			r := <-got
			if r.Host != addr || r.RequestURI != tt.want || r.Proto != "HTTP/1.1" {
				t.Errorf("Host %q, target %q, %s; want %q, %q, HTTP/1.1", r.Host, r.RequestURI, r.Proto, addr, tt.want)
			}
		})
	}
}

// A caller's deadline sooner than the timeout is reported as the caller's.
func TestSendCallersDeadline(t *testing.T) {
	t.Parallel()
	srv := newHangingServer(t, nil)
	c := newClient(t, webhook.Options{AllowNetworks: allowLoopback, Timeout: time.Minute})
	for i := range 3 { // the socket's timer and the context's race
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		res := c.Send(ctx, testRequest(t, srv.URL))
		cancel()
		if res.Err != "canceled before a response (context deadline exceeded)" {
			t.Errorf("run %d: Err = %q after the caller's 100ms deadline", i, res.Err)
		}
	}
}

// A receiver that quotes our request in a malformed answer does not get
// the Basic credentials into the attempt's error.
func TestSendErrNeverQuotesCredentials(t *testing.T) {
	t.Parallel()
	addr, _ := newRawServer(t, nil, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		// A header line without a colon: the parser's error quotes it.
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n"+req.Header.Get("Authorization")+"\r\n\r\n")
	})
	req := testRequest(t, "http://"+addr)
	req.BasicUser, req.BasicPassword = "hook", "pw-hunter2"
	res := newClient(t, webhook.Options{AllowNetworks: allowLoopback}).Send(t.Context(), req)
	if res.Err == "" || strings.Contains(res.Err, "aG9vazpwdy1odW50ZXIy") || strings.Contains(res.Err, "hunter2") {
		t.Errorf("Err = %q, want a failure without the credentials", res.Err)
	}
}

// A receiver that takes the request's head and hangs up without an
// answer is reported as such, whatever the body's size: not as a timeout
// or as our own stopping of a large request's write.
func TestSendHangUpWithoutAnswer(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1 << 10, 1 << 20, 16 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			addr, _ := newRawServer(t, nil, func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				_ = c.(*net.TCPConn).CloseWrite() // no answer will come
				<-release
			})
			t.Cleanup(func() { close(release) }) // before the server's cleanup, which waits for this handler
			req := testRequest(t, "http://"+addr)
			req.Body = []byte(`{"pad":"` + strings.Repeat("x", size) + `"}`)
			res := newClient(t, webhook.Options{AllowNetworks: allowLoopback, Timeout: 10 * time.Second}).Send(t.Context(), req)
			if res.Status != 0 || !strings.Contains(res.Err, "connection closed") {
				t.Errorf("Result = status %d, err %q; want the connection closed before a response", res.Status, res.Err)
			}
		})
	}
}
