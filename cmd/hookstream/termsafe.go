package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
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

func escapeUnprintable(s string, text bool) string {
	keep := func(r rune, size int) bool {
		if r == utf8.RuneError && size < 2 { // a byte that is not UTF-8 (0x9b is a CSI to some terminals)
			return false
		}
		return r == ' ' || unicode.IsPrint(r) || text && (r == '\n' || r == '\t')
	}
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !keep(r, size) {
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
		case keep(r, size):
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
