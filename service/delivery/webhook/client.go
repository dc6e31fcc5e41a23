package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/hookstream/hookstream/service/tracing"
)

// Client defaults and limits.
const (
	// DefaultTimeout bounds one attempt; Standard Webhooks recommends 15 to
	// 30 s, long enough for a receiver that does its work before answering.
	DefaultTimeout = 15 * time.Second
	// DefaultMaxIdlePerHost keeps enough connections open to one receiver
	// for a busy endpoint's concurrent deliveries to reuse them.
	DefaultMaxIdlePerHost = 64
	// DefaultIdleTimeout is how long an unused connection stays open: past
	// most receivers' own keep-alive timeouts, which close it first.
	DefaultIdleTimeout = 90 * time.Second
	// UserAgent identifies our requests in receivers' logs and firewalls.
	UserAgent = "hookstream-webhooks/1"
	// MaxResponseBody is how much of a response is kept: enough to show an
	// error page's message in the attempt log, little enough to store.
	MaxResponseBody = 4 << 10

	// drainLimit is how much more of a response is read, and thrown away,
	// so the connection can be reused; past it, closing is cheaper.
	drainLimit = 64 << 10
	// maxRetryAfter caps a receiver's Retry-After, so a typo on their side
	// cannot park an endpoint for years.
	maxRetryAfter = 24 * time.Hour
	// maxHeaderBytes limits response headers; receivers are untrusted.
	maxHeaderBytes = 64 << 10
	// maxShownRedirect keeps a redirect target readable in the attempt log.
	maxShownRedirect = 256
)

// Options configure a Client. The zero value is usable.
type Options struct {
	// AllowNetworks are addresses a webhook may reach although the address
	// policy (Blocked) refuses them: a deployment's own receivers on a
	// private network, or 127.0.0.0/8 in tests.
	AllowNetworks []netip.Prefix
	// Timeout bounds one attempt, from dialing to reading the response body.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxIdlePerHost is how many idle connections to one host are kept for
	// reuse. Zero means DefaultMaxIdlePerHost.
	MaxIdlePerHost int
	// IdleTimeout is how long an unused connection to a receiver stays
	// open. Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// RootCAs verify receivers' certificates; nil means the system's.
	RootCAs *x509.CertPool
}

// Client sends webhooks: one HTTP/1.1 request per attempt, signed, with
// redirects refused and the address policy enforced on every connection.
// It is safe for concurrent use.
type Client struct {
	dialer  *net.Dialer
	tls     *tls.Config
	timeout time.Duration
	targets targets
	pool    pool
}

// NewClient returns a Client. It connects directly, never through a proxy
// (a proxy would connect on our behalf, past the address check), and
// checks each address in net.Dialer.Control, which sees the IP the socket
// really connects to: a name that resolved to a public address at
// validation time and to 169.254.169.254 now is still refused.
func NewClient(o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxIdlePerHost <= 0 {
		o.MaxIdlePerHost = DefaultMaxIdlePerHost
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	allow := slices.Clone(o.AllowNetworks)
	return &Client{
		dialer: &net.Dialer{
			Timeout:   o.Timeout,
			KeepAlive: 30 * time.Second,
			Control: func(_, address string, _ syscall.RawConn) error {
				return checkDial(address, allow)
			},
		},
		tls:     &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs, NextProtos: []string{"http/1.1"}},
		timeout: o.Timeout,
		pool:    pool{max: o.MaxIdlePerHost, timeout: o.IdleTimeout},
	}
}

// Close closes idle connections. In-flight requests are not interrupted;
// cancel their contexts for that.
func (c *Client) Close() {
	c.pool.close()
}

// Request is one delivery attempt.
type Request struct {
	// URL is the endpoint's URL; it must pass CheckURL (http allowed).
	URL string
	// Method defaults to POST.
	Method string
	// ID is sent as webhook-id: the same for every attempt of one event, so
	// receivers can deduplicate. It must be visible ASCII without '.', the
	// separator of the signed content.
	ID string
	// Timestamp is sent as webhook-timestamp, in unix seconds: the time of
	// this attempt, not of the event. Zero means now.
	Timestamp time.Time
	// Body is sent as is, and signed.
	Body []byte
	// ContentType defaults to application/json.
	ContentType string
	// Keys sign the request, one signature each (see Sign), each 24 to 64
	// bytes as ParseSecret returns them. At least one is required: an
	// unsigned webhook cannot be told from a forged one.
	Keys [][]byte
	// Headers are the endpoint owner's extra headers. They cannot replace
	// the ones set here (webhook-*, Content-Type, User-Agent, and
	// Authorization when BasicUser is set).
	Headers map[string]string
	// BasicUser and BasicPassword are sent as Basic authentication when
	// BasicUser is not empty.
	BasicUser, BasicPassword string
	// Trace, when set, is sent as the W3C traceparent (and tracestate)
	// header, replacing an extra header of the same name: the receiver
	// continues the event's trace. The signature covers only the body, so
	// it stays valid whatever headers are added.
	Trace tracing.Context
}

// Result is what one attempt came to.
type Result struct {
	// Status is the HTTP status, 0 when no response came.
	Status int
	// Latency runs from sending the request to the response headers, or to
	// the failure.
	Latency time.Duration
	// Body is the start of the response body, at most MaxResponseBody bytes,
	// with the Basic auth password (plain or base64) replaced by [redacted].
	Body []byte
	// Err says why the attempt failed when no status explains it (timeout,
	// refused or dropped connection, blocked address, TLS), or that a
	// redirect was not followed; else empty. It never contains the basic
	// auth password or the URL's query.
	Err string
	// RetryAfter is the receiver's Retry-After on a 429 or 503, clamped to
	// [0, 24h]; zero when absent or on another status.
	RetryAfter time.Duration
	// Gone is set on 410: the receiver asks never to be sent to again.
	Gone bool
}

// OK reports whether the receiver accepted the webhook (a 2xx status).
func (r Result) OK() bool { return r.Status >= 200 && r.Status <= 299 }

// Send makes one attempt. It never retries a delivered request:
// scheduling, backoff and Retry-After are the caller's. (A request whose
// write fails on a reused connection, so the receiver cannot have seen it,
// goes once more on a new connection.) The attempt is bounded by
// Options.Timeout as well as ctx.
func (c *Client) Send(ctx context.Context, r Request) Result {
	t, method, err := c.check(r)
	if err != nil {
		return Result{Err: redact(err.Error(), r)}
	}
	ts := r.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	start := time.Now()
	a := attempt{deadline: start.Add(c.timeout), start: start}
	if d, ok := ctx.Deadline(); ok && !d.After(a.deadline) {
		a.deadline, a.callersDeadline = d, true
	}
	if err := ctx.Err(); err != nil {
		return Result{Err: redact(c.describe(ctx, err, false), r)}
	}
	for again := false; ; again = true {
		cn := c.pool.take(t.key)
		reused := cn != nil
		if cn == nil {
			if cn, err = c.dial(ctx, t, a.deadline); err != nil {
				return Result{Latency: time.Since(start), Err: redact(c.describe(ctx, err, a.callersDeadline), r)}
			}
		}
		res, unseen := c.exchange(ctx, cn, t, method, r, ts, a)
		if unseen && reused && !again {
			continue
		}
		return res
	}
}

// attempt is when an attempt started and must end.
type attempt struct {
	start, deadline time.Time
	// callersDeadline says the deadline is the caller's context's, which
	// is sooner than Options.Timeout.
	callersDeadline bool
}

// writeAlongside is the request size from which the request is written
// while the answer is awaited: a receiver may answer a large body early
// (413, 401) and stop reading it, and that answer must not wait behind a
// write that cannot finish. Smaller requests fit the socket's buffer and
// are written, then read, on one goroutine.
const writeAlongside = 64 << 10

// exchange writes the request on cn and reads the answer. unseen reports
// a failure before the receiver can have read the request: the write
// failed and nothing came back. cn goes back to the pool only after a
// response that was read to its end and leaves the connection open.
func (c *Client) exchange(ctx context.Context, cn *conn, t *target, method string, r Request, ts time.Time, a attempt) (res Result, unseen bool) {
	keep := false
	_ = cn.SetDeadline(a.deadline)
	stop := context.AfterFunc(ctx, func() { _ = cn.SetDeadline(past) })
	defer func() {
		// A stop that comes too late means the deadline may be moved
		// after we return: such a connection is not given out again.
		if stop() && keep {
			c.pool.put(cn)
		} else {
			cn.close()
		}
	}()
	cn.buf = appendRequest(cn.buf[:0], t, method, r, ts)
	var (
		werr    error
		resp    *http.Response
		err     error
		aborted bool // we stopped the write ourselves
	)
	if len(cn.buf) < writeAlongside {
		_, werr = cn.Write(cn.buf)
		// Read even after a failed write: a receiver may answer and close
		// before taking the whole body.
		cn.startHeaders()
		resp, err = readResponse(cn, method)
	} else {
		wrote := make(chan error, 1)
		go func() {
			_, err := cn.Write(cn.buf)
			wrote <- err
		}()
		cn.startHeaders()
		resp, err = readResponse(cn, method)
		select {
		case werr = <-wrote:
		default:
			// Answered (or failed) before the request was taken in: the
			// rest of it is not sent, and the connection not reused.
			_ = cn.SetWriteDeadline(past)
			if werr = <-wrote; werr == nil {
				werr = errors.New("request not written to its end")
			}
			aborted = true
		}
	}
	if err != nil {
		if werr != nil && !aborted && cn.in.read == 0 {
			// A failed write says more than the read after it; one we
			// stopped ourselves says nothing. A write that timed out used
			// the attempt's time up.
			err, unseen = werr, ctx.Err() == nil && !errors.Is(werr, os.ErrDeadlineExceeded)
		}
		return Result{Latency: time.Since(a.start), Err: redact(c.describe(ctx, err, a.callersDeadline), r)}, unseen
	}
	cn.endHeaders()
	res = Result{Status: resp.StatusCode, Latency: time.Since(a.start)}
	// A failed or slow body does not undo the status the receiver already
	// gave; what was read is kept and the rest ignored.
	// The Basic credentials are redacted before the body is cut to
	// MaxResponseBody, so an echo of them straddling the cut is not kept
	// half.
	var body []byte
	var rerr error
	if resp.ContentLength != 0 { // most answers have no body: nothing to make room for
		body, rerr = io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+redactSlack))
	}
	// The rest is read, up to drainLimit, so the connection can carry the
	// next request; resp.Body.Close is not called, as it would read on
	// without a limit.
	_, derr := io.CopyN(io.Discard, resp.Body, drainLimit)
	keep = rerr == nil && derr == io.EOF && werr == nil && !resp.Close && cn.reusable()
	res.Body = redactBody(body, r)
	res.Body = res.Body[:min(len(res.Body), MaxResponseBody)]

	switch code := resp.StatusCode; {
	case code >= 300 && code <= 399:
		res.Err = redact(fmt.Sprintf("redirect not followed (%d to %s)", code, redirectTarget(r.URL, resp.Header.Get("Location"))), r)
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		res.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case code == http.StatusGone:
		res.Gone = true
	}
	return res, false
}

// max1xx is how many informational (1xx) answers may come before the
// final one, as net/http allows.
const max1xx = 5

// postRequest tells http.ReadResponse what the answer is to; the method is
// all it reads.
var postRequest = &http.Request{Method: http.MethodPost}

// readResponse reads the final answer on cn, skipping informational ones.
func readResponse(cn *conn, method string) (*http.Response, error) {
	req := postRequest
	if method != http.MethodPost {
		req = &http.Request{Method: method}
	}
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(cn.br, req)
		if err != nil {
			return nil, err
		}
		switch code := resp.StatusCode; {
		case code == http.StatusSwitchingProtocols:
			return nil, errors.New("receiver switched protocols (101) instead of answering")
		case code < 100 || code > 199:
			return resp, nil
		case n >= max1xx:
			return nil, errors.New("too many informational (1xx) answers")
		}
	}
}

// check validates r before anything is sent and returns where it goes and
// with which method.
func (c *Client) check(r Request) (*target, string, error) {
	if err := checkID(r.ID); err != nil {
		return nil, "", err
	}
	if len(r.Keys) == 0 {
		return nil, "", errors.New("no signing key: refusing to send an unsigned webhook")
	}
	for i, key := range r.Keys {
		// An empty or short key makes a signature anyone can forge; keys
		// come from ParseSecret, so this is a bug upstream, caught here.
		if len(key) < minSecretBytes || len(key) > maxSecretBytes {
			return nil, "", fmt.Errorf("signing key %d has %d bytes; it must have %d to %d", i, len(key), minSecretBytes, maxSecretBytes)
		}
	}
	method := r.Method
	if method == "" {
		method = http.MethodPost
	} else if !httpguts.ValidHeaderFieldName(method) { // a method is a token, as a header name is
		return nil, "", fmt.Errorf("invalid method %q", method)
	}
	if r.ContentType != "" && !httpguts.ValidHeaderFieldValue(r.ContentType) {
		return nil, "", errors.New("invalid content type")
	}
	for k, v := range r.Headers {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, "", fmt.Errorf("invalid header name %q", k)
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			// The value may be a token: it is not quoted.
			return nil, "", fmt.Errorf("header %s has an invalid value (control characters?)", k)
		}
	}
	if r.Trace.Parent != "" && (!httpguts.ValidHeaderFieldValue(r.Trace.Parent) || !httpguts.ValidHeaderFieldValue(r.Trace.State)) {
		return nil, "", errors.New("invalid trace context")
	}
	if r.BasicUser != "" && (!httpguts.ValidHeaderFieldValue(r.BasicUser) || strings.Contains(r.BasicUser, ":")) {
		return nil, "", errors.New("invalid basic auth user name")
	}
	t, err := c.targets.get(r.URL)
	if err != nil {
		return nil, "", err
	}
	return t, method, nil
}

// Header names as they are written.
var (
	canonicalID        = textproto.CanonicalMIMEHeaderKey(HeaderID)
	canonicalTimestamp = textproto.CanonicalMIMEHeaderKey(HeaderTimestamp)
	canonicalSignature = textproto.CanonicalMIMEHeaderKey(HeaderSignature)
	canonicalParent    = textproto.CanonicalMIMEHeaderKey(tracing.HeaderParent)
	canonicalState     = textproto.CanonicalMIMEHeaderKey(tracing.HeaderState)
)

// appendRequest appends the signed request to b: our headers, then the
// owner's where they do not name one of ours (or one the message framing
// owns), then the body.
func appendRequest(b []byte, t *target, method string, r Request, ts time.Time) []byte {
	contentType := r.ContentType
	if contentType == "" {
		contentType = ContentTypeJSON
	}
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, t.uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, t.host...)
	b = append(b, "\r\nUser-Agent: "+UserAgent+"\r\nContent-Type: "...)
	b = append(b, contentType...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(r.Body)), 10)
	b = appendHeader(b, canonicalID, r.ID)
	b = strconv.AppendInt(appendName(b, canonicalTimestamp), ts.Unix(), 10)
	b = appendSignature(appendName(b, canonicalSignature), r.Keys, r.ID, ts, r.Body)
	basic := r.BasicUser != ""
	if basic {
		b = append(appendName(b, "Authorization"), "Basic "...)
		b = base64.StdEncoding.AppendEncode(b, []byte(r.BasicUser+":"+r.BasicPassword))
	}
	traced := r.Trace.Parent != ""
	if traced {
		b = appendHeader(b, canonicalParent, r.Trace.Parent)
		if r.Trace.State != "" {
			b = appendHeader(b, canonicalState, r.Trace.State)
		}
	}
	if len(r.Headers) > 0 {
		for _, h := range ownersHeaders(r.Headers) {
			switch h.name {
			case "Host", "Content-Length", "Transfer-Encoding", "Trailer", "User-Agent", "Content-Type",
				canonicalID, canonicalTimestamp, canonicalSignature:
				continue
			case "Authorization":
				if basic {
					continue
				}
			case canonicalParent, canonicalState:
				if traced {
					continue
				}
			}
			b = appendHeader(b, h.name, textproto.TrimString(h.value))
		}
	}
	b = append(b, "\r\n\r\n"...)
	return append(b, r.Body...)
}

// ownersHeaders are an endpoint's extra headers by canonical name, in
// order, one value per name: of names that differ only in case ("x-team",
// "X-Team"), the first in byte order.
func ownersHeaders(m map[string]string) []header {
	hs := make([]header, 0, len(m))
	for k, v := range m {
		hs = append(hs, header{textproto.CanonicalMIMEHeaderKey(k), k, v})
	}
	slices.SortFunc(hs, func(a, b header) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	return slices.CompactFunc(hs, func(a, b header) bool { return a.name == b.name })
}

type header struct{ name, key, value string }

// appendHeader appends a header line, after the previous line's end.
func appendHeader(b []byte, name, value string) []byte {
	return append(appendName(b, name), value...)
}

// appendName starts a header line, after the previous line's end: the
// value follows.
func appendName(b []byte, name string) []byte {
	b = append(b, "\r\n"...)
	b = append(b, name...)
	return append(b, ": "...)
}

// basicCredentials is what Basic authentication sends: the base64 of
// user:password.
func basicCredentials(r Request) string {
	return base64.StdEncoding.EncodeToString([]byte(r.BasicUser + ":" + r.BasicPassword))
}

// checkID refuses ids that would make the signed content ambiguous ('.')
// or the header invalid.
func checkID(id string) error {
	if id == "" {
		return errors.New("no webhook id")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '.' {
			return errors.New("webhook id must be visible ASCII without '.'")
		}
	}
	return nil
}

// blockedError is the address policy refusing a connection.
type blockedError struct {
	addr   string
	reason string
}

func (e *blockedError) Error() string {
	return fmt.Sprintf("address %s is blocked (%s)", e.addr, e.reason)
}

// checkDial applies the address policy to the "ip:port" a socket is about
// to connect to.
func checkDial(address string, allow []netip.Prefix) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Control is always given a numeric address; anything else is
		// refused rather than guessed at.
		return &blockedError{addr: address, reason: "not an IP address"}
	}
	if reason, blocked := Blocked(ap.Addr(), allow); blocked {
		return &blockedError{addr: ap.Addr().String(), reason: reason}
	}
	return nil
}

// describe turns a transport error into the short, secret-free sentence
// stored with the attempt. The error's own text is the last resort: a
// url.Error quotes the whole URL, query and all, so it is always unwrapped.
func (c *Client) describe(parent context.Context, err error, callersDeadline bool) string {
	var blocked *blockedError
	if errors.As(err, &blocked) {
		return blocked.Error()
	}
	var timeoutErr interface{ Timeout() bool }
	timedOut := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &timeoutErr) && timeoutErr.Timeout()
	cause := parent.Err()
	if cause == nil && timedOut && callersDeadline {
		// The socket's timer can fire before the context's own.
		cause = context.DeadlineExceeded
	}
	if cause != nil {
		// Not the receiver's fault: we are shutting down or the caller gave up.
		return "canceled before a response (" + cause.Error() + ")"
	}
	var (
		dnsErr    *net.DNSError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		notTLS    tls.RecordHeaderError
		alert     tls.AlertError
	)
	switch {
	case strings.Contains(err.Error(), "TLS handshake timeout"):
		return "TLS handshake timeout"
	case timedOut:
		return "timeout after " + c.timeout.String()
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "host " + dnsErr.Name + " not found (DNS)"
		}
		return "DNS lookup of " + dnsErr.Name + " failed: " + dnsErr.Err
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset before a response"
	case errors.Is(err, syscall.EPIPE):
		return "connection closed while the request was sent"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a response"
	case errors.As(err, &unknownCA):
		return "TLS: certificate signed by an unknown authority"
	case errors.As(err, &hostErr):
		return "TLS: certificate is not valid for " + hostErr.Host
	case errors.As(err, &invalid):
		return "TLS: " + invalid.Error()
	case errors.As(err, &notTLS):
		return "TLS handshake failed: the server did not answer with TLS (plain http on an https URL?)"
	case errors.As(err, &alert):
		return "TLS handshake failed: " + alert.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// redact is a last line of defence: whatever an error says, the password,
// the extra headers' values and the URL's query do not reach the attempt
// log.
func redact(msg string, r Request) string {
	for _, s := range secretsOf(r) {
		for _, f := range spellings(s) {
			msg = strings.ReplaceAll(msg, f, "[redacted]")
		}
	}
	if _, query, ok := strings.Cut(r.URL, "?"); ok && query != "" {
		msg = strings.ReplaceAll(msg, query, "[redacted]")
	}
	return msg
}

// minRedacted is the shortest extra header value redacted: shorter ones
// (a version, "1") are no key, and replacing them would mangle bodies.
const minRedacted = 8

// secretsOf lists what an endpoint sends that may be a credential: the
// Basic password and its Authorization header's base64 (a receiver's
// malformed answer is quoted in errors, and may quote our header), and
// the values of the extra headers and of the URL's query, where
// receivers' API keys go (the ones a read token sees as MASKED).
func secretsOf(r Request) []string {
	var out []string
	if r.BasicUser != "" {
		out = append(out, basicCredentials(r))
		if r.BasicPassword != "" {
			out = append(out, r.BasicPassword)
		}
	}
	for _, v := range r.Headers {
		if len(v) >= minRedacted {
			out = append(out, v)
		}
	}
	if _, query, ok := strings.Cut(r.URL, "?"); ok {
		if q, err := url.ParseQuery(query); err == nil {
			for _, vs := range q {
				for _, v := range vs {
					if len(v) >= minRedacted {
						out = append(out, v)
					}
				}
			}
		}
	}
	return out
}

// spellings are the ways a receiver may echo s: as is, escaped in JSON
// (with "/" as "\/" too, as PHP writes it, and "<>&" as Go writes them),
// and percent-encoded (a URL quoted back).
func spellings(s string) []string {
	out := []string{s}
	add := func(v string) {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if q, err := json.Marshal(s); err == nil {
		j := string(q[1 : len(q)-1])
		add(j)
		add(strings.ReplaceAll(j, "/", `\/`))
	}
	add(url.QueryEscape(s))
	add(url.PathEscape(s))
	return out
}

// redactSlack is read past MaxResponseBody for redactBody: more than the
// base64 of the longest user:password an endpoint may have.
const redactSlack = 1024

// redactBody keeps the credentials secretsOf lists out of the stored
// response, in every spelling: a receiver that echoes the request (a
// debugging endpoint, an error page quoting its headers or its URL) would
// otherwise put them into the attempt log.
func redactBody(body []byte, r Request) []byte {
	if len(body) == 0 {
		return body
	}
	for _, s := range secretsOf(r) {
		for _, f := range spellings(s) {
			if bytes.Contains(body, []byte(f)) {
				body = bytes.ReplaceAll(body, []byte(f), []byte("[redacted]"))
			}
		}
	}
	return body
}

// redirectTarget shows where a redirect pointed, without userinfo, query or
// fragment, which may carry credentials.
func redirectTarget(rawBase, location string) string {
	if location == "" {
		return "no Location"
	}
	base, err := url.Parse(rawBase)
	if err != nil {
		return "an invalid Location"
	}
	u, err := base.Parse(location)
	if err != nil {
		return "an invalid Location"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	s := u.String()
	if len(s) > maxShownRedirect {
		s = s[:maxShownRedirect] + "…"
	}
	return s
}

// parseRetryAfter reads Retry-After as delta-seconds or an HTTP-date
// (RFC 9110, 10.2.3), clamped to [0, maxRetryAfter]. Anything else is 0:
// the caller's own backoff applies.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if strings.Trim(v, "0123456789") == "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter // too many digits for int64 is still "long"
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return min(max(t.Sub(now), 0), maxRetryAfter)
}
