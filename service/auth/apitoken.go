package auth

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// APIScope is what an API token may do. Admin includes read.
type APIScope int

// The API scopes, weakest first.
const (
	ScopeNone APIScope = iota
	ScopeRead
	ScopeAdmin
)

func (s APIScope) String() string {
	switch s {
	case ScopeRead:
		return "read"
	case ScopeAdmin:
		return "admin"
	}
	return "none"
}

// ParseScope reads "read" or "admin".
func ParseScope(s string) (APIScope, error) {
	switch s {
	case "read":
		return ScopeRead, nil
	case "admin":
		return ScopeAdmin, nil
	}
	return ScopeNone, fmt.Errorf("unknown scope %q", s)
}

// APIToken is one configured bearer token, kept only as its SHA-256.
type APIToken struct {
	Name  string
	Scope APIScope
	hash  secret
}

// NewAPIToken keeps the token's digest.
func NewAPIToken(name string, scope APIScope, token string) APIToken {
	return APIToken{Name: name, Scope: scope, hash: newSecret(token)}
}

// NewAPITokenHash takes a hex SHA-256 digest from the config.
func NewAPITokenHash(name string, scope APIScope, sha256Hex string) (APIToken, error) {
	b, err := hex.DecodeString(sha256Hex)
	if err != nil || len(b) != len(secret{}) {
		return APIToken{}, errors.New("sha256 must be 64 hex digits")
	}
	t := APIToken{Name: name, Scope: scope}
	copy(t.hash[:], b)
	return t, nil
}

// APITokens checks bearer tokens against the configured set.
type APITokens struct{ tokens []APIToken }

// NewAPITokens returns a checker; with no tokens it rejects everything.
func NewAPITokens(tokens ...APIToken) *APITokens { return &APITokens{tokens: tokens} }

// Len is the number of configured tokens.
func (a *APITokens) Len() int { return len(a.tokens) }

// Check reads an `Authorization: Bearer <token>` value and returns the
// matching token. It compares against every configured token in constant
// time, so timing reveals neither which token matched nor how much of one.
func (a *APITokens) Check(authorization string) (APIToken, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return APIToken{}, false
	}
	g := newSecret(strings.TrimSpace(tok))
	found := -1
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(a.tokens[i].hash[:], g[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return APIToken{}, false
	}
	return a.tokens[found], true
}
