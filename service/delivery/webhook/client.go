package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

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
}

// Client sends webhooks: one HTTP request per attempt, signed, with
// redirects refused and the address policy enforced on every connection.
// It is safe for concurrent use.
type Client struct {
	http      *http.Client
	transport *http.Transport
	timeout   time.Duration
}

// NewClient returns a Client. Its transport ignores proxy environment
// variables (a proxy would connect on our behalf, past the address check)
// and checks each address in net.Dialer.Control, which sees the IP the
// socket really connects to: a name that resolved to a public address at
// validation time and to 169.254.169.254 now is still refused.
func NewClient(o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxIdlePerHost <= 0 {
		o.MaxIdlePerHost = DefaultMaxIdlePerHost
	}
	allow := slices.Clone(o.AllowNetworks)
	dialer := &net.Dialer{
		Timeout:   o.Timeout,
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			return checkDial(address, allow)
		},
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConnsPerHost:    o.MaxIdlePerHost,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: maxHeaderBytes,
		// Without Accept-Encoding receivers answer uncompressed, so the
		// kept 4 KiB are the bytes they sent and no decompression runs.
		DisableCompression: true,
	}
	return &Client{
		http: &http.Client{
			Transport: tr,
			// Following a redirect would send the signed body somewhere the
			// endpoint's owner never configured (and past CheckURL); the
			// spec says to treat 3xx as a failure.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		transport: tr,
		timeout:   o.Timeout,
	}
}

// Close closes idle connections. In-flight requests are not interrupted;
// cancel their contexts for that.
func (c *Client) Close() {
	c.transport.CloseIdleConnections()
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

// Send makes one attempt. It never retries: scheduling, backoff and
// Retry-After are the caller's. The attempt is bounded by Options.Timeout as
// well as ctx.
func (c *Client) Send(ctx context.Context, r Request) Result {
	attemptCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := newHTTPRequest(attemptCtx, r)
	if err != nil {
		return Result{Err: redact(err.Error(), r)}
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	latency := time.Since(start)
	if err != nil {
		return Result{Latency: latency, Err: redact(c.describe(ctx, err), r)}
	}
	// A close error says nothing about the delivery; the status is in.
	defer func() { _ = resp.Body.Close() }()
	res := Result{Status: resp.StatusCode, Latency: latency}
	// A failed or slow body does not undo the status the receiver already
	// gave; what was read is kept and the rest ignored.
	// The Basic credentials are redacted before the body is cut to
	// MaxResponseBody, so an echo of them straddling the cut is not kept
	// half.
	res.Body, _ = io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+redactSlack))
	_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	res.Body = redactBody(res.Body, r)
	res.Body = res.Body[:min(len(res.Body), MaxResponseBody)]

	switch code := resp.StatusCode; {
	case code >= 300 && code <= 399:
		res.Err = redact(fmt.Sprintf("redirect not followed (%d to %s)", code, redirectTarget(req.URL, resp.Header.Get("Location"))), r)
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		res.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case code == http.StatusGone:
		res.Gone = true
	}
	return res
}

// newHTTPRequest builds the signed request. Our headers are set after the
// owner's, so an extra header can never replace a signature or the id.
func newHTTPRequest(ctx context.Context, r Request) (*http.Request, error) {
	if err := CheckURL(r.URL, true); err != nil {
		return nil, err
	}
	if err := checkID(r.ID); err != nil {
		return nil, err
	}
	if len(r.Keys) == 0 {
		return nil, errors.New("no signing key: refusing to send an unsigned webhook")
	}
	for i, key := range r.Keys {
		// An empty or short key makes a signature anyone can forge; keys
		// come from ParseSecret, so this is a bug upstream, caught here.
		if len(key) < minSecretBytes || len(key) > maxSecretBytes {
			return nil, fmt.Errorf("signing key %d has %d bytes; it must have %d to %d", i, len(key), minSecretBytes, maxSecretBytes)
		}
	}
	method := r.Method
	if method == "" {
		method = http.MethodPost
	}
	ts := r.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	contentType := r.ContentType
	if contentType == "" {
		contentType = ContentTypeJSON
	}
	req, err := http.NewRequestWithContext(ctx, method, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("building the request: %w", err)
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderID, r.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(r.Keys, r.ID, ts, r.Body))
	if r.BasicUser != "" {
		req.SetBasicAuth(r.BasicUser, r.BasicPassword)
	}
	if r.Trace.Parent != "" {
		req.Header.Set(tracing.HeaderParent, r.Trace.Parent)
		req.Header.Del(tracing.HeaderState)
		if r.Trace.State != "" {
			req.Header.Set(tracing.HeaderState, r.Trace.State)
		}
	}
	return req, nil
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
func (c *Client) describe(parent context.Context, err error) string {
	var blocked *blockedError
	if errors.As(err, &blocked) {
		return blocked.Error()
	}
	if parent.Err() != nil {
		// Not the receiver's fault: we are shutting down or the caller gave up.
		return "canceled before a response (" + parent.Err().Error() + ")"
	}
	var (
		dnsErr     *net.DNSError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalid    x509.CertificateInvalidError
		notTLS     tls.RecordHeaderError
		alert      tls.AlertError
		timeoutErr interface{ Timeout() bool }
	)
	switch {
	case strings.Contains(err.Error(), "TLS handshake timeout"):
		return "TLS handshake timeout"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &timeoutErr) && timeoutErr.Timeout():
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

// redact is a last line of defence: whatever an error says, the password
// and the URL's query do not reach the attempt log.
func redact(msg string, r Request) string {
	if r.BasicPassword != "" {
		msg = strings.ReplaceAll(msg, r.BasicPassword, "[redacted]")
	}
	if _, query, ok := strings.Cut(r.URL, "?"); ok && query != "" {
		msg = strings.ReplaceAll(msg, query, "[redacted]")
	}
	return msg
}

// redactBody keeps the Basic auth credentials out of the stored response:
// a receiver that echoes the request (a debugging endpoint, an error page
// quoting its headers) would otherwise put the password, plain or as the
// Authorization header's base64, into the attempt log.
// redactSlack is read past MaxResponseBody for redactBody: more than the
// base64 of the longest user:password an endpoint may have.
const redactSlack = 1024

func redactBody(body []byte, r Request) []byte {
	if r.BasicUser == "" || len(body) == 0 {
		return body
	}
	for _, s := range []string{
		base64.StdEncoding.EncodeToString([]byte(r.BasicUser + ":" + r.BasicPassword)),
		r.BasicPassword,
	} {
		if s != "" && bytes.Contains(body, []byte(s)) {
			body = bytes.ReplaceAll(body, []byte(s), []byte("[redacted]"))
		}
	}
	return body
}

// redirectTarget shows where a redirect pointed, without userinfo, query or
// fragment, which may carry credentials.
func redirectTarget(base *url.URL, location string) string {
	if location == "" {
		return "no Location"
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
