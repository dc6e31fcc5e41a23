package normalize

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// NothingToScrub reports, cheaply, that b holds nothing ScrubBody or
// ScrubEvent would change: b is a request body, or the protobuf encoding of
// an event (whose strings, map keys included, are stored unescaped and
// contiguous). It looks at b's bytes as a whole rather than at its strings,
// so it may answer false for a b that is in fact clean (then the caller
// scrubs, as it would without it), but never true for one that is not:
//
//   - every secret and member name is made of URL-unreserved ASCII
//     characters (`A-Z a-z 0-9 - . _ ~`), which neither percent- nor
//     JSON-encoding changes; otherwise it answers false;
//   - b holds no `%` and no `\u` followed by two and four hex digits, the
//     only ways left to spell such a character otherwise (a `%` alone is
//     common in an encoding: it is also the byte 37);
//   - b holds no secret verbatim, and no member name ignoring ASCII case;
//   - b holds no non-ASCII character that lower-cases to an ASCII one (the
//     Kelvin sign is a k to isMember's Unicode folding).
//
// A webhook whose body and event pass it skips the scrubbers' walk, which
// costs about as much as normalizing it.
func NothingToScrub(b []byte, members, secrets []string) bool {
	if hasEscape(b, "%", 2) || hasEscape(b, `\u`, 4) {
		return false
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if !unreserved(s) || containsString(b, s) {
			return false
		}
	}
	for _, m := range members {
		if m == "" {
			continue
		}
		if !unreserved(m) || containsFoldFast(b, m) {
			return false
		}
	}
	return !foldsToASCII(b)
}

// hasEscape reports whether b holds prefix followed by n hex digits.
func hasEscape(b []byte, prefix string, n int) bool {
	for {
		i := bytes.Index(b, []byte(prefix))
		if i < 0 {
			return false
		}
		b = b[i+len(prefix):]
		if len(b) >= n && allHex(b[:n]) {
			return true
		}
	}
}

func allHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// unreserved reports whether s is made of URL-unreserved ASCII characters
// only (RFC 3986), which no encoding ScrubBody decodes rewrites.
func unreserved(s string) bool {
	for i := range len(s) {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// containsString is bytes.Contains(b, []byte(s)) without the conversion.
func containsString(b []byte, s string) bool {
	for len(b) >= len(s) {
		i := bytes.IndexByte(b, s[0])
		if i < 0 || len(b)-i < len(s) {
			return false
		}
		if string(b[i:i+len(s)]) == s {
			return true
		}
		b = b[i+1:]
	}
	return false
}

// containsFoldFast reports whether b contains m (non-empty) ignoring ASCII
// case: containsFoldASCII, visiting only the places where m's first
// character is, found with IndexByte. Each case of that character keeps
// its next place and looks again only once it is passed, so the whole is
// linear in len(b) (looking again for both at every place was quadratic:
// a megabyte of "a" took seconds).
func containsFoldFast(b []byte, m string) bool {
	end := len(b) - len(m) + 1 // where a match may start: before end
	if end <= 0 {
		return false
	}
	next := func(c byte, from int) int {
		if i := bytes.IndexByte(b[from:end], c); i >= 0 {
			return from + i
		}
		return end // none
	}
	lo, up := lowerASCII(m[0]), upperASCII(m[0])
	nextLo, nextUp := next(lo, 0), end
	if up != lo {
		nextUp = next(up, 0)
	}
	for {
		i := min(nextLo, nextUp)
		if i >= end {
			return false
		}
		if equalFoldASCII(b[i:i+len(m)], m) {
			return true
		}
		if nextLo == i {
			nextLo = next(lo, i+1)
		}
		if nextUp == i {
			nextUp = next(up, i+1)
		}
	}
}

func equalFoldASCII(b []byte, s string) bool {
	for i := range len(s) {
		if lowerASCII(b[i]) != lowerASCII(s[i]) {
			return false
		}
	}
	return true
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// asciiFolders are the UTF-8 encodings of the non-ASCII characters that
// unicode.ToLower maps to ASCII ones (the Kelvin sign, the dotted capital
// I), found from the Unicode tables rather than listed by hand: only the
// characters of unicode.CaseRanges have a lower case of another.
var asciiFolders = func() [][]byte {
	var out [][]byte
	for _, cr := range unicode.CaseRanges {
		for r := max(rune(cr.Lo), utf8.RuneSelf); r <= rune(cr.Hi); r++ {
			if unicode.ToLower(r) < utf8.RuneSelf {
				out = append(out, utf8.AppendRune(nil, r))
			}
		}
	}
	return out
}()

// foldsToASCII reports whether b holds one of asciiFolders.
func foldsToASCII(b []byte) bool {
	if isASCII(b) {
		return false
	}
	for _, f := range asciiFolders {
		if bytes.Contains(b, f) {
			return true
		}
	}
	return false
}
