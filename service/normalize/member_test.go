package normalize

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// isMember is a case-insensitive substring test without allocation; it
// must agree with the plain strings.ToLower definition on every name,
// escaped or not, ASCII or not.
func TestIsMemberAgreesWithToLower(t *testing.T) {
	members := [][]string{{"apiKey"}, {"handshake_key", "apikey"}, {"K"}, {"\u212a"}, {"İd"}, {""}}
	names := []string{"apiKey", "APIKEY", "customerApiKey", "apikex", "api", "old_handshake_key", "HANDSHAKE_KEY",
		"api\u212aey", "\u212a", "k", "K", "iD", "İd", "i̇d", "ÄpiKey", "", "key", "value", "x-apikey-y"}
	for _, ms := range members {
		for _, n := range names {
			want := false
			for _, m := range ms {
				if m != "" && n != "" && strings.Contains(strings.ToLower(n), strings.ToLower(m)) {
					want = true
				}
			}
			if got := isMember(n, ms); got != want {
				t.Errorf("isMember(%q, %q) = %v, want %v", n, ms, got, want)
			}
			if got := isMemberBytes([]byte(n), ms); got != want {
				t.Errorf("isMemberBytes(%q, %q) = %v, want %v", n, ms, got, want)
			}
			esc, _ := json.Marshal(n)
			escaped := strings.ReplaceAll(string(esc[1:len(esc)-1]), "e", `\u0065`)
			if got := isMemberBytes([]byte(escaped), ms); got != want {
				t.Errorf("isMemberBytes(%q, %q) = %v, want %v", escaped, ms, got, want)
			}
		}
	}
	for name, want := range map[string]string{"key": "key", "value": "value", `k\u0065y`: "key", `\u0076alue`: "value", "keys": "", `k\u0065ys`: ""} {
		if got := keyIs([]byte(name)); got != want {
			t.Errorf("keyIs(%q) = %q, want %q", name, got, want)
		}
	}
}

// asciiFolders is built from unicode.CaseRanges for speed; it must hold
// every character outside ASCII that unicode.ToLower maps into it.
func TestASCIIFoldersAreEveryOne(t *testing.T) {
	var want []string
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		if unicode.ToLower(r) < utf8.RuneSelf {
			want = append(want, string(r))
		}
	}
	var got []string
	for _, f := range asciiFolders {
		got = append(got, string(f))
	}
	if !slices.Equal(got, want) || len(want) == 0 {
		t.Errorf("asciiFolders = %q, want %q", got, want)
	}
}

// containsFoldFast agrees with containsFoldASCII, also where the first
// character's two cases interleave or one is missing, and reads a
// megabyte of that character in linear time (it was quadratic).
func TestContainsFoldFast(t *testing.T) {
	for _, s := range []string{"", "a", "apikey", "xxAPIKEYxx", "aAaAapIkEy", "AAAA", "aaaa", "apikex", "Ap", "zzzzzzzzapiKeY", "ApIkE"} {
		for _, m := range []string{"apiKey", "a", "handshake_key", "A"} {
			if got, want := containsFoldFast([]byte(s), m), containsFoldASCII(s, m); got != want {
				t.Errorf("containsFoldFast(%q, %q) = %v, want %v", s, m, got, want)
			}
		}
	}
	big := []byte(strings.Repeat("a", 1<<20) + "A")
	if containsFoldFast(big, "apiKey") {
		t.Error("found apiKey in a megabyte of a")
	}
	if !containsFoldFast(append(big, "pikey"...), "apiKey") {
		t.Error("missed apiKey at the end of a megabyte of a")
	}
}
