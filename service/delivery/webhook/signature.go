// Package webhook signs, encodes and sends outbound webhooks the Standard Webhooks way.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Standard Webhooks (https://www.standardwebhooks.com) fixes the secret
// format, the header names and the signed content; receivers verify with any
// of its libraries, so none of these may change.
const (
	// SecretPrefix marks a symmetric signing secret, so a person or a
	// library can tell it from other keys at a glance.
	SecretPrefix = "whsec_"

	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"

	// signatureVersion identifies HMAC-SHA256 signatures; asymmetric ones
	// (v1a) are neither made nor checked here.
	signatureVersion = "v1"

	// The spec's bounds on a symmetric secret: at least 192 bits so it cannot
	// be guessed, at most 512 bits (HMAC-SHA256's block size; longer keys are
	// hashed first and gain nothing).
	minSecretBytes = 24
	maxSecretBytes = 64

	// newSecretBytes is what NewSecret draws: 256 bits, the HMAC-SHA256
	// output size.
	newSecretBytes = 32
)

// Errors Verify wraps, for callers that answer differently per cause.
var (
	ErrMissingHeader    = errors.New("missing header")
	ErrInvalidTimestamp = errors.New("invalid webhook-timestamp")
	ErrNoMatch          = errors.New("no matching signature")
)

// NewSecret returns a fresh signing secret, "whsec_" and the standard base64
// of 32 random bytes, the form every Standard Webhooks library accepts.
func NewSecret() (string, error) {
	b := make([]byte, newSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhook secret: reading random bytes: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// ParseSecret returns the key bytes of a secret, with or without its
// "whsec_" prefix. Errors describe the problem but never quote the secret.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimPrefix(s, SecretPrefix)
	if s == "" {
		return nil, errors.New("webhook secret is empty")
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// The decoder's message quotes an offset only, but say it plainly.
		return nil, errors.New("webhook secret is not standard base64 (A-Z, a-z, 0-9, + and /, padded with =)")
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, fmt.Errorf("webhook secret decodes to %d bytes; it must have %d to %d", len(key), minSecretBytes, maxSecretBytes)
	}
	return key, nil
}

// Sign returns the webhook-signature header value for one message: a "v1,"
// signature per key, in key order, separated by spaces. Signing with the old
// and the new key during a rotation lets receivers switch secrets at any
// moment without rejecting a delivery. With no keys it returns "".
func Sign(keys [][]byte, id string, ts time.Time, body []byte) string {
	return string(appendSignature(nil, keys, id, ts, body))
}

// appendSignature appends Sign's value to b.
func appendSignature(b []byte, keys [][]byte, id string, ts time.Time, body []byte) []byte {
	if len(keys) == 0 {
		return b
	}
	prefix := signedPrefix(id, ts.Unix())
	var sum [sha256.Size]byte
	for i, key := range keys {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, signatureVersion+","...)
		b = base64.StdEncoding.AppendEncode(b, appendMAC(sum[:0], key, prefix, body))
	}
	return b
}

// signedPrefix is the part of the signed content before the body:
// "<id>.<unix seconds>.".
func signedPrefix(id string, unix int64) []byte {
	p := make([]byte, 0, len(id)+22)
	p = append(p, id...)
	p = append(p, '.')
	p = strconv.AppendInt(p, unix, 10)
	return append(p, '.')
}

// appendMAC appends the HMAC-SHA256 of prefix and body under key to dst.
// It is HMAC spelled out (RFC 2104) with one pooled SHA-256 state, which
// allocates nothing: hmac.New allocated two hash states and two pads per
// signature, 4 KB of garbage per event with ten endpoints. The body is
// hashed where it is, never copied. TestAppendMACIsHMAC compares it with
// crypto/hmac.
func appendMAC(dst, key, prefix, body []byte) []byte {
	m := macStates.Get().(*macState)
	pad := m.pad[:]
	clear(pad)
	if len(key) > sha256.BlockSize {
		m.h.Reset()
		m.h.Write(key)
		m.h.Sum(m.sum[:0])
		copy(pad, m.sum[:])
	} else {
		copy(pad, key)
	}
	for i := range pad {
		pad[i] ^= 0x36
	}
	m.h.Reset()
	m.h.Write(pad)
	m.h.Write(prefix)
	m.h.Write(body)
	m.h.Sum(m.sum[:0])
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
	m.h.Reset()
	m.h.Write(pad)
	m.h.Write(m.sum[:])
	dst = append(dst, m.h.Sum(m.sum[:0])...)
	// Nothing derived from the key stays in the pool.
	m.h.Reset()
	clear(pad)
	clear(m.sum[:])
	macStates.Put(m)
	return dst
}

// macState is appendMAC's pooled SHA-256 state and scratch (kept off the
// stack: what goes through the hash.Hash interface escapes).
type macState struct {
	h   hash.Hash
	pad [sha256.BlockSize]byte
	sum [sha256.Size]byte
}

var macStates = sync.Pool{New: func() any { return &macState{h: sha256.New()} }}

// Verify checks a delivery the way a receiver does: the webhook-id,
// webhook-timestamp and webhook-signature headers must be present, the
// timestamp within tolerance of now (a replayed old delivery fails), and one
// of the v1 signatures must be the HMAC of "<id>.<timestamp>.<body>" under
// the secret. Hookstream does not receive its own webhooks; Verify is the
// reference for docs/verifying-webhooks.md and for tests.
func Verify(secret string, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	for _, p := range [...]struct{ name, value string }{{HeaderID, id}, {HeaderTimestamp, tsText}, {HeaderSignature, sigs}} {
		if p.value == "" {
			return fmt.Errorf("%w %s", ErrMissingHeader, p.name)
		}
	}
	unix, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: not a whole number of seconds", ErrInvalidTimestamp)
	}
	sent := time.Unix(unix, 0)
	if age := now.Sub(sent); age > tolerance {
		return fmt.Errorf("%w: %s old, more than the %s tolerance", ErrInvalidTimestamp, age.Truncate(time.Second), tolerance)
	} else if -age > tolerance {
		return fmt.Errorf("%w: %s in the future, more than the %s tolerance", ErrInvalidTimestamp, (-age).Truncate(time.Second), tolerance)
	}
	// Sign the number as parsed, not the header text: that is how the
	// signature was made, and what the reference libraries do.
	want := appendMAC(nil, key, signedPrefix(id, unix), body)
	sawV1 := false
	for _, s := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != signatureVersion {
			continue // v1a and future schemes are someone else's to check
		}
		sawV1 = true
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	if !sawV1 {
		return fmt.Errorf("%w: no v1 signature in %s", ErrNoMatch, HeaderSignature)
	}
	return ErrNoMatch
}
