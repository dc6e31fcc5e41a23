// Package auth authenticates webhook deliveries per source: HTTP Basic
// (Pipedrive), a handshake key (ClinchPad), a URL token (Closer), or none.
package auth

import (
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
}

// Error implements error.
func (f *Failure) Error() string {
	if f.Missing {
		return "missing " + string(f.Scheme) + " credentials"
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
// documentation calls it a parameter). Every copy sent must match.
func HandshakeKey(key string) (Authenticator, error) {
	if key == "" {
		return nil, errors.New("handshake key is empty")
	}
	return &handshake{key: newSecret(key), raw: []string{key}}, nil
}

type handshake struct {
	key     secret
	raw     []string
	parsers fastjson.ParserPool
}

func (h *handshake) Scheme() Scheme    { return SchemeHandshake }
func (h *handshake) Secrets() []string { return h.raw }

func (h *handshake) Authenticate(r Request) error {
	var sent []string
	if q, ok := r.Params["handshake_key"]; ok {
		sent = append(sent, q)
	}
	if k, ok := h.fromBody(r.Body); ok {
		sent = append(sent, k)
	}
	if len(sent) == 0 {
		return &Failure{Scheme: SchemeHandshake, Missing: true}
	}
	good := true
	for _, s := range sent {
		good = h.key.matches(s) && good
	}
	if !good {
		return &Failure{Scheme: SchemeHandshake}
	}
	return nil
}

// fromBody reads the top-level handshake_key string of a JSON body.
func (h *handshake) fromBody(body []byte) (string, bool) {
	p := h.parsers.Get()
	defer h.parsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		return "", false
	}
	k := v.Get("handshake_key")
	if k == nil || k.Type() != fastjson.TypeString {
		return "", false
	}
	b, _ := k.StringBytes()
	return string(b), true
}

// Token checks a secret token in the webhook URL (`?token=`), for vendors
// that send no credentials of their own (Closer), or in the
// X-Hookstream-Token header.
func Token(token string) (Authenticator, error) {
	if len(token) < 16 {
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

func (t *tokenAuth) Authenticate(r Request) error {
	got, ok := r.Params["token"]
	if !ok {
		got, ok = r.Headers["x-hookstream-token"]
	}
	if !ok || got == "" {
		return &Failure{Scheme: SchemeToken, Missing: true}
	}
	if !t.token.matches(got) {
		return &Failure{Scheme: SchemeToken}
	}
	return nil
}
