// Package auth authenticates webhook deliveries per source: HTTP Basic
// (Pipedrive), a handshake key (ClinchPad), a URL token (Closer), or none.
package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/valyala/fastjson"
)

// Request is what an authenticator may look at: the auth-relevant headers
// (lower-case names), query parameters, and the raw body.
type Request struct {
	Headers map[string]string
	Params  map[string]string
	Body    []byte
	// BodyCredentials, when set, are the credentials already read from
	// Body (BodyReader.Read), so the body is not parsed again.
	BodyCredentials *BodyCredentials
}

// Scheme names an authentication scheme.
type Scheme string

// The schemes a source can use.
const (
	SchemeNone      Scheme = "none"
	SchemeBasic     Scheme = "basic"
	SchemeHandshake Scheme = "handshake_key"
	SchemeToken     Scheme = "token"
)

// Failure is why a request was not authenticated. It never holds the
// credentials that were sent.
type Failure struct {
	Scheme  Scheme
	Missing bool // no credentials at all, as opposed to wrong ones
	// Conflict: the credential was sent more than once (URL and body, URL
	// and header, or a repeated JSON member) with different values.
	Conflict bool
}

// Error implements error.
func (f *Failure) Error() string {
	switch {
	case f.Missing:
		return "missing " + string(f.Scheme) + " credentials"
	case f.Conflict:
		return "conflicting " + string(f.Scheme) + " credentials: every copy sent must be the same"
	}
	return "wrong " + string(f.Scheme) + " credentials"
}

// Authenticator checks one source's credentials. Implementations compare
// secrets in constant time.
type Authenticator interface {
	// Scheme names the scheme.
	Scheme() Scheme
	// Authenticate returns nil or a *Failure.
	Authenticate(r Request) error
	// Secrets returns the secret values, so stored copies of requests can
	// be scrubbed of them.
	Secrets() []string
}

// secret is a credential kept only as its SHA-256 digest, so comparisons
// take the same time whatever the length of the guess.
type secret [sha256.Size]byte

func newSecret(s string) secret { return sha256.Sum256([]byte(s)) }

func (s secret) matches(guess string) bool {
	g := sha256.Sum256([]byte(guess))
	return subtle.ConstantTimeCompare(s[:], g[:]) == 1
}

// None accepts every request. Use only where the config says `auth: none`.
func None() Authenticator { return none{} }

type none struct{}

func (none) Scheme() Scheme             { return SchemeNone }
func (none) Authenticate(Request) error { return nil }
func (none) Secrets() []string          { return nil }

// Basic checks HTTP Basic credentials, as Pipedrive sends them when a
// webhook has http_auth_user and http_auth_password.
func Basic(user, password string) (Authenticator, error) {
	if user == "" || password == "" {
		return nil, errors.New("basic auth needs a username and a password")
	}
	if strings.Contains(user, ":") {
		return nil, errors.New("basic auth username must not contain ':'")
	}
	return &basic{user: newSecret(user), password: newSecret(password), raw: []string{password}}, nil
}

type basic struct {
	user, password secret
	raw            []string
}

func (b *basic) Scheme() Scheme    { return SchemeBasic }
func (b *basic) Secrets() []string { return b.raw }

func (b *basic) Authenticate(r Request) error {
	h := r.Headers["authorization"]
	scheme, enc, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "basic") {
		return &Failure{Scheme: SchemeBasic, Missing: true}
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return &Failure{Scheme: SchemeBasic}
	}
	user, pass, ok := strings.Cut(string(dec), ":")
	// Evaluate both compares, so timing does not tell which one failed.
	userOK, passOK := b.user.matches(user), b.password.matches(pass)
	if !ok || !userOK || !passOK {
		return &Failure{Scheme: SchemeBasic}
	}
	return nil
}

// HandshakeKey checks ClinchPad's handshake key: the `handshake_key` member
// of the JSON body, or the `handshake_key` query parameter (ClinchPad's
// documentation calls it a parameter). Every copy sent (parameter, body
// member, a repeated member) must be the same and match.
func HandshakeKey(key string) (Authenticator, error) {
	if key == "" {
		return nil, errors.New("handshake key is empty")
	}
	return &handshake{key: newSecret(key), raw: []string{key}}, nil
}

type handshake struct {
	key    secret
	raw    []string
	bodies BodyReader
}

func (h *handshake) Scheme() Scheme    { return SchemeHandshake }
func (h *handshake) Secrets() []string { return h.raw }

func (h *handshake) Authenticate(r Request) error {
	body := r.BodyCredentials
	if body == nil {
		c := h.bodies.Read(r.Body)
		body = &c
	}
	var sent []string
	if q, ok := r.Params["handshake_key"]; ok {
		sent = append(sent, q)
	}
	sent = append(sent, body.HandshakeKeys...)
	if len(sent) == 0 && !body.NotString {
		return &Failure{Scheme: SchemeHandshake, Missing: true}
	}
	good := !body.NotString
	for _, s := range sent {
		good = h.key.matches(s) && good
	}
	if !good {
		return &Failure{Scheme: SchemeHandshake, Conflict: !allSame(sent)}
	}
	return nil
}

// allSame reports whether every copy of a credential is the same (it
// compares what was sent, never the secret).
func allSame(copies []string) bool {
	for _, c := range copies[min(1, len(copies)):] {
		if c != copies[0] {
			return false
		}
	}
	return true
}

// BodyCredentials are the credentials a webhook body carries: every
// top-level `handshake_key` member of a JSON object, in order, matched
// after JSON unescaping (`"handshake\u005fkey"` is the same member).
type BodyCredentials struct {
	HandshakeKeys []string
	// NotString: a handshake_key member is neither a string nor null.
	NotString bool
}

// BodyReader reads the credentials of webhook bodies. Its cost depends on
// the body alone, never on the source the body was sent to, so a caller
// can read every body the same way before knowing whether its source
// exists. The zero value is ready to use; it is safe for concurrent use.
type BodyReader struct{ parsers fastjson.ParserPool }

// Read parses body as JSON and collects its credential members. A body
// that is not a JSON object carries none.
func (b *BodyReader) Read(body []byte) BodyCredentials {
	var c BodyCredentials
	p := b.parsers.Get()
	defer b.parsers.Put(p)
	// A byte order mark is no error (RFC 8259 §8.1), as for the normalizers.
	v, err := p.ParseBytes(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
	if err != nil || v.Type() != fastjson.TypeObject {
		return c
	}
	o, _ := v.Object()
	o.Visit(func(k []byte, m *fastjson.Value) {
		if string(k) != "handshake_key" {
			return
		}
		switch m.Type() {
		case fastjson.TypeString:
			s, _ := m.StringBytes()
			c.HandshakeKeys = append(c.HandshakeKeys, string(s))
		case fastjson.TypeNull:
		default:
			c.NotString = true
		}
	})
	return c
}

// Token checks a secret token in the webhook URL (`?token=`), for vendors
// that send no credentials of their own (Closer), or in the
// X-Hookstream-Token header.
func Token(token string) (Authenticator, error) {
	if len(token) < 16 { // config.MinTokenLength, checked first when a config is loaded
		return nil, errors.New("URL token must be at least 16 characters")
	}
	return &tokenAuth{token: newSecret(token), raw: []string{token}}, nil
}

type tokenAuth struct {
	token secret
	raw   []string
}

func (t *tokenAuth) Scheme() Scheme    { return SchemeToken }
func (t *tokenAuth) Secrets() []string { return t.raw }

// Authenticate checks the URL token and the header; when both are sent,
// both must match.
func (t *tokenAuth) Authenticate(r Request) error {
	var sent []string
	if got, ok := r.Params["token"]; ok && got != "" {
		sent = append(sent, got)
	}
	if got, ok := r.Headers["x-hookstream-token"]; ok && got != "" {
		sent = append(sent, got)
	}
	if len(sent) == 0 {
		return &Failure{Scheme: SchemeToken, Missing: true}
	}
	good := true
	for _, s := range sent {
		good = t.token.matches(s) && good
	}
	if !good {
		return &Failure{Scheme: SchemeToken, Conflict: !allSame(sent)}
	}
	return nil
}
