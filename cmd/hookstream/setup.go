package main

import (
	"fmt"
	"io"
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
	fmt.Fprintf(w, "Try it: send a sample webhook and watch it arrive:\n"+
		"    hookstream send --data-dir %s --example pipedrive.deal.change\n"+
		"    hookstream tail --data-dir %s --from beginning\n"+
		"or in a browser, logged in with an API token above:\n"+
		"    %s/ui/\n\n", cfg.Log.DataDir, cfg.Log.DataDir, base)
	fmt.Fprintf(w, "Vendors need HTTPS and a public address: put a TLS-terminating proxy in\n"+
		"front of %s and set http.public_url in a config file.\n\n", cfg.HTTP.Addr)
}
