package system

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// throttle is a loopback TCP proxy that passes the server's bytes to the
// client at a set rate (0 pauses them), like a client on a slow link or
// one that reads slowly. Client bytes pass at once.
type throttle struct {
	t      testing.TB
	ln     net.Listener
	target string
	rate   atomic.Int64 // bytes a second, server to client
	passed atomic.Int64 // bytes passed to clients
	mu     sync.Mutex
	conns  []net.Conn
}

func newThrottle(t testing.TB, target string, rate int64) *throttle {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &throttle{t: t, ln: ln, target: target}
	p.rate.Store(rate)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *throttle) addr() string { return p.ln.Addr().String() }

func (p *throttle) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

func (p *throttle) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		// Small kernel buffers, so the rate (not the buffers) decides what
		// the server can hand over.
		_ = up.(*net.TCPConn).SetReadBuffer(32 << 10)
		_ = c.(*net.TCPConn).SetWriteBuffer(32 << 10)
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
		go p.down(up, c)
	}
}

// down copies server bytes to the client at the current rate.
func (p *throttle) down(up, c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		rate := p.rate.Load()
		if rate == 0 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		_ = up.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		got, err := up.Read(buf[:min(rate/10+1, int64(len(buf)))])
		if got > 0 {
			if _, werr := c.Write(buf[:got]); werr != nil {
				return
			}
			p.passed.Add(int64(got))
			time.Sleep(time.Duration(int64(got) * int64(time.Second) / rate))
		}
		if err != nil && !isTimeout(err) {
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return err != nil && errors.As(err, &ne) && ne.Timeout()
}

// slowStream subscribes through a throttle with small, fixed flow-control
// windows (no growth), so the server can only send as fast as the
// throttle lets the client read.
func slowStream(t *testing.T, s *server, p *throttle, req *hookstreamv1.SubscribeRequest) (grpc.ServerStreamingClient[hookstreamv1.SubscribeResponse], context.CancelFunc) {
	t.Helper()
	conn := dialAddr(t, p.addr(), grpc.WithPerRPCCredentials(bearer(readToken)),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := hookstreamv1.NewEventServiceClient(conn).Subscribe(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	return stream, cancel
}

// recvResult is one Recv, run in the background.
type recvResult struct {
	m   *hookstreamv1.SubscribeResponse
	err error
}

func recvAll(stream grpc.ServerStreamingClient[hookstreamv1.SubscribeResponse]) <-chan recvResult {
	ch := make(chan recvResult, 1024)
	go func() {
		for {
			m, err := stream.Recv()
			ch <- recvResult{m, err}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// A client that keeps accepting bytes, however slowly, is not stalled: a
// 300 KB event at 50 KB/s takes 6 s, far longer than the 1 s stall
// timeout, and the stream must deliver it and stay open.
func TestSlowReaderOfLargeEventIsNotStalled(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "")
	cfg.Subscribe.StallTimeout = time.Second
	s := startServer(t, cfg)
	p := newThrottle(t, s.app.GRPCAddr(), 50_000)
	stream, _ := slowStream(t, s, p, &hookstreamv1.SubscribeRequest{})
	msgs := recvAll(stream)
	client := &http.Client{Timeout: 10 * time.Second}
	if code := postNote(client, s.base, "big-slow", 300_000); code != http.StatusOK {
		t.Fatalf("ingest: HTTP %d", code)
	}
	began := time.Now()
	waitDelivery := func(id string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case r := <-msgs:
				if r.err != nil {
					t.Fatalf("stream ended after %s with %d bytes passed: %v", time.Since(began).Round(time.Millisecond), p.passed.Load(), r.err)
				}
				if d := r.m.GetDelivery(); d != nil {
					if got := d.GetEvent().GetClinchpad().GetActivity().GetId(); got != id {
						t.Fatalf("got %s, want %s", got, id)
					}
					return
				}
			case <-deadline:
				t.Fatalf("no delivery of %s within 30s", id)
			}
		}
	}
	waitDelivery("big-slow")
	took := time.Since(began)
	if took < 3*cfg.Subscribe.StallTimeout {
		t.Fatalf("the event arrived in %s: the throttle did not slow the reader down", took)
	}
	// Still open, and still delivering.
	if code := postNote(client, s.base, "small-after", 100); code != http.StatusOK {
		t.Fatalf("ingest: HTTP %d", code)
	}
	waitDelivery("small-after")
	if strings.Contains(s.logs.String(), "dropping stalled subscriber") {
		t.Fatal("a slow but reading subscriber was dropped as stalled")
	}
	t.Logf("300 KB event delivered in %s at 50 KB/s with a 1 s stall timeout", took.Round(time.Millisecond))
}

// A client that accepts nothing is dropped after the stall timeout, and
// when it reads again it receives what was already on its way and then
// RESOURCE_EXHAUSTED naming its cursor: the status is never lost.
func TestStalledReaderGetsItsStatus(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "")
	cfg.Subscribe.StallTimeout = time.Second
	s := startServer(t, cfg)
	p := newThrottle(t, s.app.GRPCAddr(), 1<<30)
	stream, _ := slowStream(t, s, p, &hookstreamv1.SubscribeRequest{})
	msgs := recvAll(stream)
	client := &http.Client{Timeout: 10 * time.Second}
	// One event arrives normally, then the client stops reading.
	if code := postNote(client, s.base, "first", 100); code != http.StatusOK {
		t.Fatalf("ingest: HTTP %d", code)
	}
	var first *hookstreamv1.EventDelivery
	for first == nil {
		r := <-msgs
		if r.err != nil {
			t.Fatal(r.err)
		}
		first = r.m.GetDelivery()
	}
	p.rate.Store(0)
	for i, size := range []int{300_000, 300_000, 100} {
		if code := postNote(client, s.base, "stalled-"+string(rune('a'+i)), size); code != http.StatusOK {
			t.Fatalf("ingest: HTTP %d", code)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.logs.String(), "dropping stalled subscriber") {
		if time.Now().After(deadline) {
			t.Fatal("the stalled stream was not dropped within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.rate.Store(1 << 30)
	timeout := time.After(20 * time.Second)
	delivered := 0
	for {
		select {
		case r := <-msgs:
			if r.err == nil {
				if r.m.GetDelivery() != nil {
					delivered++
				}
				continue
			}
			st := status.Convert(r.err)
			if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "after_cursor") {
				t.Fatalf("stalled stream ended with %v, want RESOURCE_EXHAUSTED naming after_cursor", r.err)
			}
			t.Logf("after resuming: %d more deliveries, then %v", delivered, r.err)
			return
		case <-timeout:
			t.Fatalf("after resuming, the stream neither ended nor delivered (%d deliveries)", delivered)
		}
	}
}

// A client that pings (gRPC keepalive, every 10 s: the least gRPC clients
// allow) and stops reading its stream must still get the stream's status
// when it reads again. gRPC servers by default cut such a client off after
// its third ping within 5 minutes ("too_many_pings"), so it saw neither its
// events nor RESOURCE_EXHAUSTED. Takes about 45 s.
func TestStalledReaderWithKeepaliveGetsItsStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for four keepalive pings")
	}
	cfg := testConfig(t, t.TempDir(), "")
	cfg.Subscribe.StallTimeout = time.Second
	s := startServer(t, cfg)
	conn := dialAddr(t, s.app.GRPCAddr(), grpc.WithPerRPCCredentials(bearer(readToken)),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := hookstreamv1.NewEventServiceClient(conn).Subscribe(ctx, &hookstreamv1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing while three large events are stored.
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 3 {
		if code := postNote(client, s.base, fmt.Sprintf("keepalive-%d", i), 300_000); code != http.StatusOK {
			t.Fatalf("ingest: HTTP %d", code)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.logs.String(), "dropping stalled subscriber") {
		if time.Now().After(deadline) {
			t.Fatal("the stalled stream was not dropped within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(42 * time.Second) // four pings
	delivered := 0
	for {
		m, err := stream.Recv()
		if err == nil {
			if m.GetDelivery() != nil {
				delivered++
			}
			continue
		}
		st := status.Convert(err)
		if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "after_cursor") {
			t.Fatalf("after %d deliveries the stream ended with %v, want RESOURCE_EXHAUSTED naming after_cursor", delivered, err)
		}
		if delivered == 0 {
			t.Fatal("the event already on its way was not delivered")
		}
		return
	}
}

// The same over HTTP (NDJSON through the gateway): a stalled HTTP client
// is dropped, and when it reads again its body ends with the error.
func TestStalledHTTPReaderGetsItsStatus(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "")
	cfg.Subscribe.StallTimeout = time.Second
	s := startServer(t, cfg)
	p := newThrottle(t, s.app.HTTPAddr(), 1<<30)
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.addr()+"/v1/events:subscribe", nil)
	req.Header.Set("Authorization", "Bearer "+readToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 4<<20), 4<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	client := &http.Client{Timeout: 10 * time.Second}
	time.Sleep(300 * time.Millisecond) // the stream is open
	p.rate.Store(0)
	// HTTP/1.1 has no flow control: the kernel's socket buffers (up to a
	// few MB on loopback) take in events until they are full, so keep
	// storing events until the server gives the stream up (at most 40).
	posted := 0
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.logs.String(), "dropping stalled subscriber") {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled HTTP stream was not dropped within 30s (%d events of 300 KB stored)", posted)
		}
		if posted < 40 {
			if code := postNote(client, s.base, fmt.Sprintf("http-stalled-%02d", posted), 300_000); code != http.StatusOK {
				t.Fatalf("ingest: HTTP %d", code)
			}
			posted++
			continue
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.rate.Store(1 << 30)
	timeout := time.After(20 * time.Second)
	var last string
	results := 0
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				var body struct {
					Error struct {
						Status  string `json:"status"`
						Message string `json:"message"`
					} `json:"error"`
				}
				if err := json.Unmarshal([]byte(last), &body); err != nil || body.Error.Status != "RESOURCE_EXHAUSTED" ||
					!strings.Contains(body.Error.Message, "after_cursor") {
					t.Fatalf("HTTP stream ended after %d results with %.300q, want a RESOURCE_EXHAUSTED error naming after_cursor", results, last)
				}
				t.Logf("after resuming: %d results, then %s", results, body.Error.Message)
				return
			}
			if strings.HasPrefix(line, `{"result"`) {
				results++
			}
			last = line
		case <-timeout:
			t.Fatalf("after resuming, the HTTP stream did not end (%d results)", results)
		}
	}
}
