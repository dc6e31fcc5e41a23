package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// Flags may follow the arguments; after "--" everything is an argument.
func TestParseFlagsInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		json bool
		n    int
		want []string
	}{
		{[]string{"ID", "--json"}, true, 3, []string{"ID"}},
		{[]string{"--json", "ID"}, true, 3, []string{"ID"}},
		{[]string{"a", "-n", "7", "b", "--json"}, true, 7, []string{"a", "b"}},
		{[]string{"a", "--", "--json", "-n"}, false, 3, []string{"a", "--json", "-n"}},
		{[]string{"--", "-x"}, false, 3, []string{"-x"}},
		{[]string{"-", "--json"}, true, 3, []string{"-"}},
		{nil, false, 3, nil},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		asJSON := fs.Bool("json", false, "")
		n := fs.Int("n", 3, "")
		if err := parseFlags(fs, tc.args); err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if *asJSON != tc.json || *n != tc.n || !slices.Equal(fs.Args(), tc.want) && len(fs.Args())+len(tc.want) > 0 {
			t.Errorf("%q: json %v n %d args %q; want %v %d %q", tc.args, *asJSON, *n, fs.Args(), tc.json, tc.n, tc.want)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	var u usageError
	if err := parseFlags(fs, []string{"ID", "--nope"}); !errorsAs(err, &u) {
		t.Errorf("an unknown flag after the argument: %v, want a usage error", err)
	}
}

func errorsAs(err error, u *usageError) bool {
	e, ok := err.(usageError)
	if ok {
		*u = e
	}
	return ok
}

// Asked-for help goes to stdout; usage after a mistake to stderr.
func TestHelpOnStdout(t *testing.T) {
	for _, args := range [][]string{{"tail", "--help"}, {"help", "tail"}, {"events", "-h"}, {"send", "--example", "x", "--help"}} {
		var out, errOut bytes.Buffer
		if code := exitCode(run(args, &out, &errOut), &errOut); code != 0 || !strings.Contains(out.String(), "Usage: hookstream") || errOut.Len() > 0 {
			t.Errorf("%q: exit %d, stdout %d bytes, stderr %q", args, code, out.Len(), errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := exitCode(run([]string{"tail", "--nope"}, &out, &errOut), &errOut); code != 2 || out.Len() > 0 || !strings.Contains(errOut.String(), "Usage") {
		t.Errorf("bad flag: exit %d, stdout %q", code, out.String())
	}
}

func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"Anna Kowalska":            "Anna Kowalska",
		"Zoë 李":                    "Zoë 李",
		"Eve\x1b]0;pwned\a\x1b[2J": `Eve\x1b]0;pwned\a\x1b[2J`,
		"e\x1b[31m@x.com":          `e\x1b[31m@x.com`,
		"abc\u202edef":             `abc\u202edef`,
		"line\nbreak\ttab\u009b":   `line\nbreak\ttab\u009b`,
		"8-bit CSI \x9b[2J":        `8-bit CSI \x9b[2J`,
	} {
		if got := termSafe(in); got != want {
			t.Errorf("termSafe(%q) = %q, want %q", in, got, want)
		}
	}
	if got := termSafeText("a\nb\tc\x1b[2J"); got != "a\nb\tc\\x1b[2J" {
		t.Errorf("termSafeText kept or lost the wrong characters: %q", got)
	}
	ev := &hookstreamv1.Event{Source: "closer", Type: "conversation.created",
		Subject: &hookstreamv1.Subject{Kind: "conversation", Id: "c\x1b[2J"},
		Contact: &hookstreamv1.Contact{Name: "Eve\x1b]0;x\a", Email: "e\x1b[31m@x.com"}}
	if line := eventLine(ev); strings.ContainsAny(line, "\x1b\a") {
		t.Errorf("eventLine passes control characters: %q", line)
	}
}

func TestFromFlag(t *testing.T) {
	for _, tc := range []struct {
		from string
		ok   bool
	}{{"now", true}, {"beginning", true}, {"42", true}, {"2026-03-01T09:00:00Z", true}, {"2026-03-01", true}, {"yesterday", false}, {"-1", false}} {
		req, err := streamFlags{from: tc.from}.request()
		var u usageError
		switch {
		case tc.ok && err != nil:
			t.Errorf("--from %s: %v", tc.from, err)
		case !tc.ok && !errorsAs(err, &u):
			t.Errorf("--from %s: %v, want a usage error", tc.from, err)
		case tc.from == "2026-03-01" && !req.GetStartTime().AsTime().Equal(req.GetStartTime().AsTime().Truncate(24*60*60*1e9)):
			t.Errorf("--from a date: %v, want its midnight UTC", req.GetStartTime().AsTime())
		}
	}
}

func TestWithPort(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1": "127.0.0.1:9090", "127.0.0.1:7000": "127.0.0.1:7000", "localhost": "localhost:9090",
		"[::1]": "[::1]:9090", "[::1]:7000": "[::1]:7000", "dns:///svc:7000": "dns:///svc:7000",
	} {
		if got := withPort(in); got != want {
			t.Errorf("withPort(%q) = %q, want %q", in, got, want)
		}
	}
}

// JSON shown on a terminal has every character a terminal would not show
// as itself escaped, and still means the same to a JSON reader.
func TestJSONTermSafe(t *testing.T) {
	in := "{\n  \"name\": \"evil\u202egnp.exe\",\n  \"zw\": \"a\u200bb\",\n  \"emoji\": \"ok 😀\",\n  \"tag\": \"\U000E0041\"\n}"
	out := jsonTermSafe([]byte(in))
	for _, want := range []string{`evil\u202egnp.exe`, `a\u200bb`, "ok 😀", `\udb40\udc41`, "\n  \"zw\""} {
		if !strings.Contains(string(out), want) {
			t.Errorf("jsonTermSafe gave %s, want %s in it", out, want)
		}
	}
	var a, b map[string]string
	if err := json.Unmarshal([]byte(in), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &b); err != nil || !maps.Equal(a, b) {
		t.Errorf("escaped JSON reads %v (%v), want %v", b, err, a)
	}
	if plain := []byte(`{"a": "b"}`); &jsonTermSafe(plain)[0] != &plain[0] {
		t.Error("printable JSON was copied")
	}
}

// The banner's lines to paste name the binary as this shell would run it.
func TestSelfCommand(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(exe, string(filepath.Separator)+"go-build") {
		t.Skipf("the test binary %s is not under go-build", exe)
	}
	// Under go run (a binary in go-build), from the repository's root.
	t.Setenv("PATH", t.TempDir())
	t.Chdir(filepath.Join("..", ".."))
	if got := selfCommand(); got != "go run ./cmd/hookstream" {
		t.Errorf("from the repository's root: %q", got)
	}
	// Found on PATH as hookstream: the bare name.
	bin := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(bin, "hookstream")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	if got := selfCommand(); got != "hookstream" {
		t.Errorf("on PATH: %q", got)
	}
}

// send puts the handshake key into a body without rewriting the rest.
func TestSetMember(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"b": 1.50, "a":"<x>"}`, `{"handshake_key":"k","b": 1.50, "a":"<x>"}`},
		{` { } `, ` {"handshake_key":"k" } `},
		{`{"a":[1,{"handshake_key":"inner"}],"handshake_key": null ,"z":"\u00e9"}`, `{"a":[1,{"handshake_key":"inner"}],"handshake_key": "k" ,"z":"\u00e9"}`},
		{`{"handshake_key":"old","handshake_key":{"x":1}}`, `{"handshake_key":"k","handshake_key":"k"}`},
	} {
		got, err := setMember([]byte(c.in), "handshake_key", "k")
		if err != nil || string(got) != c.want {
			t.Errorf("setMember(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{`[1]`, `"s"`, `{"a":`, `{"a":1} x`} {
		if got, err := setMember([]byte(bad), "handshake_key", "k"); err == nil {
			t.Errorf("setMember(%s) = %s, want an error", bad, got)
		}
	}
}
