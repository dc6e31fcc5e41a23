package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/hookstream/hookstream/internal/app"
	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/internal/vendors"
)

// printSetup tells a new user, once, what to enter at each vendor. It goes
// to stdout, not to the log, because it holds the generated secrets.
func printSetup(w io.Writer, cfg *config.Config) {
	base := cfg.HTTP.PublicURL
	if base == "" {
		base = "http://" + cfg.HTTP.Addr
	}
	base = strings.TrimSuffix(base, "/")
	fmt.Fprintf(w, "\nhookstream generated one source per vendor. Enter these at each vendor\n"+
		"(they are shown only now; they are kept in %s/%s):\n\n", cfg.Log.DataDir, config.GeneratedFile)
	for _, s := range cfg.Sources {
		v, ok := vendors.Registry.Lookup(s.Vendor)
		if !ok {
			continue
		}
		fmt.Fprintf(w, "%s\n", v.Setup(base+"/v1/webhooks/"+s.Name, app.SourceCredentials(s)))
	}
	for _, t := range cfg.API.Tokens {
		if t.Token != "" {
			what := "for the event APIs"
			if t.Scope == "admin" {
				what = "for every API, quarantine and endpoints included"
			}
			fmt.Fprintf(w, "  API token %q (scope %s), %s:\n    authorization: Bearer %s\n\n", t.Name, t.Scope, what, t.Token)
		}
	}
	self := selfCommand()
	fmt.Fprintf(w, "Try it: send a sample webhook and watch it arrive:\n"+
		"    %s send --data-dir %s --example pipedrive.deal.change\n"+
		"    %s tail --data-dir %s --from beginning\n"+
		"or in a browser, logged in with an API token above:\n"+
		"    %s/ui/\n\n", self, cfg.Log.DataDir, self, cfg.Log.DataDir, base)
	fmt.Fprintf(w, "Vendors need HTTPS and a public address: put a TLS-terminating proxy in\n"+
		"front of %s and set http.public_url in a config file.\n\n", cfg.HTTP.Addr)
}

// selfCommand is how to run this binary again from the same shell, for
// the lines printed to paste: "hookstream" when that is what PATH finds,
// "go run ./cmd/hookstream" under go run from the repository's root, else
// the path it was started by (./hookstream, /opt/hookstream/bin/hookstream).
func selfCommand() string {
	arg0 := os.Args[0]
	exe, err := os.Executable()
	if err != nil {
		return "hookstream"
	}
	if found, err := exec.LookPath("hookstream"); err == nil && sameFile(found, exe) {
		return "hookstream"
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		if st, err := os.Stat(filepath.Join("cmd", "hookstream")); err == nil && st.IsDir() {
			return "go run ./cmd/hookstream"
		}
		return "hookstream" // go run from elsewhere: the installed name is the best guess
	}
	if !strings.ContainsRune(arg0, filepath.Separator) {
		return arg0 // found on PATH under another name
	}
	if strings.ContainsAny(arg0, " \t'\"$`\\*?[]{}()<>|&;#~!") {
		return "'" + strings.ReplaceAll(arg0, "'", `'\''`) + "'" // for a POSIX shell
	}
	return arg0
}

func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}
