package normalize

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// EventID derives the deterministic event id: the first 128 bits of
// SHA-256 over the source name, the vendor and the vendor's dedup key
// parts, as 32 hex digits. Parts are length-prefixed so that no two
// different keys hash the same input. The same delivery to the same source
// always gets the same id; the same payload sent to two sources does not.
func EventID(source string, vendor hookstreamv1.Vendor, parts ...string) string {
	var stack [256]byte
	b := stack[:0]
	b = appendPart(b, source)
	b = append(b, byte(vendor))
	for _, p := range parts {
		b = appendPart(b, p)
	}
	sum := sha256.Sum256(b)
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return string(out[:])
}

func appendPart(b []byte, p string) []byte {
	n := len(p)
	b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(b, p...)
}

// Snake converts a vendor identifier to lower snake case: `activityType`
// → `activity_type`, `ThreadClosed` → `thread_closed`, `deal-product` →
// `deal_product`. Runs of capitals stay one word (`HTMLPage` →
// `html_page`); characters other than letters and digits become `_`.
func Snake(s string) string {
	if isSnake(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	prevLowerOrDigit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			nextLower := i+1 < len(s) && s[i+1] >= 'a' && s[i+1] <= 'z'
			upperRunEnd := i > 0 && s[i-1] >= 'A' && s[i-1] <= 'Z' && nextLower
			if b.Len() > 0 && (prevLowerOrDigit || upperRunEnd) && !strings.HasSuffix(b.String(), "_") {
				b.WriteByte('_')
			}
			b.WriteByte(c + 'a' - 'A')
			prevLowerOrDigit = false
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteByte(c)
			prevLowerOrDigit = true
		default:
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "_") {
				b.WriteByte('_')
			}
			prevLowerOrDigit = false
		}
	}
	return strings.Trim(b.String(), "_")
}

func isSnake(s string) bool {
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') || c == '_' && s[i-1] == '_' {
			return false
		}
	}
	return true
}

// Type joins an entity and an action into the canonical `<entity>.<action>`
// type. Both parts are snake-cased; a part that starts with a digit (or is
// empty after cleaning) gets a prefix so the type always matches
// `^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$`.
func Type(entity, action string) string {
	return word(Snake(entity), "entity") + "." + word(Snake(action), "action")
}

func word(w, fallback string) string {
	if w == "" {
		return fallback
	}
	if w[0] >= '0' && w[0] <= '9' {
		return "x" + w
	}
	return w
}
