package webhook

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/idna"
)

// The Client speaks HTTP/1.1 itself, over connections it keeps per
// receiver, instead of going through net/http's Transport. A webhook is one
// small POST and one small answer; Transport runs each exchange on three
// goroutines (the caller's, a writer and a reader per connection), and on
// a loaded machine those hand-overs, the request's header map and the
// context plumbing cost more CPU than the exchange's own system calls
// (docs/performance.md, "A transport of our own"). Here the goroutine that
// sends reads the answer: one write, one read, no hand-over. Parsing the
// answer — status line, headers, chunked or sized or close-delimited bodies
// — is net/http's own (http.ReadResponse), so receivers see and are read as
// they were. HTTPS offers only http/1.1 in ALPN.

// target is what one webhook URL needs to be sent to, parsed once.
type target struct {
	tls        bool
	addr       string // host:port to dial
	host       string // the Host header
	serverName string // TLS server name
	uri        string // the request-target: path and query
	key        string // which idle connections it may use
}

func parseTarget(raw string) (*target, error) {
	if err := CheckURL(raw, true); err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("URL does not parse") // CheckURL parsed it already
	}
	hostname := u.Hostname()
	if !isASCII(hostname) {
		// As net/http does: an internationalized name goes out, and is
		// resolved, in its ASCII (punycode) form.
		if hostname, err = idna.Lookup.ToASCII(hostname); err != nil {
			return nil, fmt.Errorf("URL host is not a valid domain name: %v", err)
		}
	}
	port := u.Port()
	t := &target{tls: u.Scheme == "https", serverName: hostname, uri: escapeTarget(u.RequestURI())}
	t.host = hostname
	if strings.Contains(hostname, ":") {
		t.host = "[" + hostname + "]"
	}
	if port != "" {
		t.host += ":" + port
	} else if t.tls {
		port = "443"
	} else {
		port = "80"
	}
	t.addr = net.JoinHostPort(hostname, port)
	t.key = u.Scheme + "://" + t.addr
	return t, nil
}

// escapeTarget percent-encodes what may not appear in a request line:
// url.Parse keeps a query as typed, spaces and all, and a space would end
// the request-target early.
func escapeTarget(uri string) string {
	var b []byte
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c <= ' ' || c >= 0x7f {
			if b == nil {
				b = append(make([]byte, 0, len(uri)+8), uri[:i]...)
			}
			b = append(b, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
		} else if b != nil {
			b = append(b, c)
		}
	}
	if b == nil {
		return uri
	}
	return string(b)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// maxTargets bounds the parsed-URL cache; past it the cache starts over.
const maxTargets = 4096

// targets caches parsed URLs: an endpoint's URL is parsed once, not per
// attempt.
type targets struct {
	mu sync.Mutex
	m  map[string]*target
}

func (ts *targets) get(raw string) (*target, error) {
	ts.mu.Lock()
	t := ts.m[raw]
	ts.mu.Unlock()
	if t != nil {
		return t, nil
	}
	t, err := parseTarget(raw)
	if err != nil {
		return nil, err
	}
	ts.mu.Lock()
	if ts.m == nil || len(ts.m) >= maxTargets {
		ts.m = make(map[string]*target)
	}
	ts.m[raw] = t
	ts.mu.Unlock()
	return t, nil
}

// conn is one connection to a receiver.
type conn struct {
	net.Conn                 // what requests are written to: TCP, or TLS over it
	raw      net.Conn        // the TCP connection
	tcp      syscall.RawConn // its socket, to look at while idle
	tls      *tls.Conn       // nil for http
	in       *limitedReader
	br       *bufio.Reader
	buf      []byte // the request being written, kept for the next one
	idle     time.Time
	key      string
}

// close closes the TCP connection under c. Closing a TLS connection would
// first send a close_notify alert, with a write deadline of its own, which
// a receiver that stopped reading holds up for seconds; an exchange that
// is given up needs no farewell.
func (c *conn) close() { _ = c.raw.Close() }

// quiet reports whether an idle connection holds nothing to read: the
// socket (see open) and, for TLS, the records tls.Conn already took off
// the socket, where a receiver's unasked answer may wait. That check reads
// with a deadline in the past: it returns what is buffered without a
// system call, and a timeout leaves a tls.Conn usable.
func (c *conn) quiet() bool {
	if !c.open() {
		return false
	}
	if c.tls == nil {
		return true
	}
	_ = c.tls.SetReadDeadline(past)
	var b [1]byte
	n, err := c.tls.Read(b[:])
	return n == 0 && errors.Is(err, os.ErrDeadlineExceeded)
}

// limitedReader is the connection as the response parser reads it: while
// headers are read it refuses to go past maxHeaderBytes, so a receiver
// cannot make us buffer headers without end, and it counts what arrived.
type limitedReader struct {
	c    net.Conn
	left int64
	read int64
}

var errHeadersTooLarge = fmt.Errorf("response headers larger than %d KiB", maxHeaderBytes>>10)

func (r *limitedReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, errHeadersTooLarge
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.c.Read(p)
	r.left -= int64(n)
	r.read += int64(n)
	return n, err
}

// maxKeptBuffer is the largest request buffer a connection keeps between
// requests; a bigger body's buffer is left to the garbage collector.
const maxKeptBuffer = 64 << 10

// pool holds idle connections per target key, the most recently used
// first, so a quiet period lets the oldest ones expire.
type pool struct {
	mu      sync.Mutex
	idle    map[string][]*conn
	max     int           // per key
	timeout time.Duration // how long a connection may stay idle
	sweep   *time.Timer   // closes expired connections; nil when none idle
	closed  bool
}

// take returns an idle connection for key that is still open, or nil.
func (p *pool) take(key string) *conn {
	for {
		p.mu.Lock()
		list := p.idle[key]
		if len(list) == 0 {
			p.mu.Unlock()
			return nil
		}
		c := list[len(list)-1]
		list[len(list)-1] = nil
		p.idle[key] = list[:len(list)-1]
		p.mu.Unlock()
		if time.Since(c.idle) < p.timeout && c.quiet() {
			return c
		}
		c.close()
	}
}

// put makes c available again, or closes it when the pool is full or
// closed.
func (p *pool) put(c *conn) {
	if cap(c.buf) > maxKeptBuffer {
		c.buf = nil
	}
	c.idle = time.Now()
	// The exchange's deadline passes while c is idle; the checks in take
	// must not find it expired.
	_ = c.SetDeadline(time.Time{})
	p.mu.Lock()
	if p.closed || len(p.idle[c.key]) >= p.max {
		p.mu.Unlock()
		c.close()
		return
	}
	if p.idle == nil {
		p.idle = make(map[string][]*conn)
	}
	p.idle[c.key] = append(p.idle[c.key], c)
	if p.sweep == nil {
		p.sweep = time.AfterFunc(p.timeout, p.expire)
	}
	p.mu.Unlock()
}

// expire closes connections idle longer than the timeout, and comes back
// while any remain idle.
func (p *pool) expire() {
	var old []*conn
	p.mu.Lock()
	for key, list := range p.idle {
		n := 0
		for _, c := range list {
			if time.Since(c.idle) >= p.timeout {
				old = append(old, c)
				continue
			}
			list[n] = c
			n++
		}
		clear(list[n:])
		if n == 0 {
			delete(p.idle, key)
		} else {
			p.idle[key] = list[:n]
		}
	}
	if len(p.idle) > 0 && !p.closed {
		p.sweep = time.AfterFunc(p.timeout/2, p.expire)
	} else {
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, c := range old {
		c.close()
	}
}

// close closes the idle connections; connections in use are closed when
// their exchange ends.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.close()
		}
	}
}

// dial opens a connection to t, checking the address it connects to, and
// completes the TLS handshake for https.
func (c *Client) dial(ctx context.Context, t *target, deadline time.Time) (*conn, error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	raw, err := c.dialer.DialContext(dctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	rc, err := raw.(syscall.Conn).SyscallConn()
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	cn := &conn{Conn: raw, raw: raw, tcp: rc, key: t.key}
	if t.tls {
		cfg := c.tls.Clone()
		cfg.ServerName = t.serverName
		tc := tls.Client(raw, cfg)
		hsDeadline := time.Now().Add(tlsHandshakeTimeout)
		if deadline.Before(hsDeadline) {
			hsDeadline = deadline
		}
		hctx, hcancel := context.WithDeadline(ctx, hsDeadline)
		err := tc.HandshakeContext(hctx)
		hcancel()
		if err != nil {
			_ = raw.Close()
			var rhe tls.RecordHeaderError
			switch {
			case errors.As(err, &rhe) && string(rhe.RecordHeader[:]) == "HTTP/":
				return nil, errors.New("server gave HTTP response to HTTPS client")
			case ctx.Err() == nil && hsDeadline.Before(deadline) && errors.Is(err, context.DeadlineExceeded):
				return nil, errors.New("TLS handshake timeout")
			}
			return nil, err
		}
		cn.Conn, cn.tls = tc, tc
	}
	cn.in = &limitedReader{c: cn.Conn}
	cn.br = bufio.NewReaderSize(cn.in, 4<<10)
	return cn, nil
}

// tlsHandshakeTimeout bounds the handshake within an attempt's timeout.
const tlsHandshakeTimeout = 10 * time.Second

// past is a deadline that has passed: setting it stops a connection's
// reads and writes at once.
var past = time.Unix(1, 0)

// startHeaders resets the reader's budget for a response's headers.
func (c *conn) startHeaders() {
	c.in.left = maxHeaderBytes
	c.in.read = 0
}

// endHeaders lifts the budget for the body, which is bounded by what the
// caller reads of it.
func (c *conn) endHeaders() { c.in.left = math.MaxInt64 }

// reusable reports whether c is between exchanges with nothing unread.
func (c *conn) reusable() bool { return c.br.Buffered() == 0 }
