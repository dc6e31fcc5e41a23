package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"strconv"
)

const tokenHelp = `Usage: hookstream token new --scope read|admin [--name NAME]

Prints a new random API token (192 bits) and the api.tokens entry that
accepts it, holding its SHA-256 rather than the token itself:

  $ hookstream token new --scope read --name dashboards
  token: 3q2-…
  api.tokens entry:
    - {name: dashboards, scope: read, sha256: 5e88…}

Exit codes: 0 ok, 2 usage error.

Flags:
`

func tokenCmd(args []string, stdout, stderr io.Writer) error {
	var scope, name string
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&scope, "scope", "", "read (events, sources with credentials masked, endpoints and their attempts, /metrics)\nor admin (everything)")
	fs.StringVar(&name, "name", "", "name of the token in api.tokens (default: the scope)")
	fs.Usage = func() { fmt.Fprint(stderr, tokenHelp); fs.PrintDefaults() }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 || fs.Arg(0) != "new" {
		fs.Usage()
		return usagef("usage: hookstream token new --scope read|admin")
	}
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("token new takes no arguments")
	}
	if scope != "read" && scope != "admin" {
		return usagef("--scope must be read or admin")
	}
	if name == "" {
		name = scope
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(tok))
	fmt.Fprintf(stdout, "token: %s\napi.tokens entry:\n  - {name: %s, scope: %s, sha256: %s}\n", tok, strconv.Quote(name), scope, hex.EncodeToString(sum[:]))
	return nil
}
