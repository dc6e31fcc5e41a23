package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// termSafe returns s with every character a terminal would act on rather
// than show (escape sequences, other control characters, bidirectional
// overrides) written as a Go escape (\x1b, \u202e): vendor data shown on a
// terminal can neither set its title, clear it nor hide what it shows.
func termSafe(s string) string { return escapeUnprintable(s, false) }

// termSafeText is termSafe for multi-line text (a request body): line
// breaks and tabs are kept.
func termSafeText(s string) string { return escapeUnprintable(s, true) }

// shown reports whether a terminal shows the rune r (size bytes of
// UTF-8) as itself; with text, line breaks and tabs count as shown.
func shown(r rune, size int, text bool) bool {
	if r == utf8.RuneError && size < 2 { // a byte that is not UTF-8 (0x9b is a CSI to some terminals)
		return false
	}
	return r == ' ' || unicode.IsPrint(r) || text && (r == '\n' || r == '\t')
}

func escapeUnprintable(s string, text bool) string {
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !shown(r, size, text) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case shown(r, size, text):
			b.WriteString(s[i : i+size])
		case size < 2 && r == utf8.RuneError:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		default:
			q := strconv.QuoteRuneToASCII(r) // '\x1b'
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// jsonTermSafe escapes as \uXXXX every character of the JSON text b that
// a terminal would not show as itself (a right-to-left override, U+202E,
// turns what follows around). JSON has such characters only inside
// strings, where the escape means the same character, so the text reads
// the same to a JSON reader.
func jsonTermSafe(b []byte) []byte {
	i := 0
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		if !shown(r, size, true) {
			break
		}
		i += size
	}
	if i == len(b) {
		return b
	}
	out := append([]byte(nil), b[:i]...)
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		i += size
		switch {
		case shown(r, size, true):
			out = utf8.AppendRune(out, r)
		case r == utf8.RuneError && size < 2:
			out = append(out, `\ufffd`...)
		case r > 0xffff:
			hi, lo := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
	}
	return out
}
