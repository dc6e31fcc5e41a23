// Package vendors is the one list of the vendor packages hookstream is
// built with. The binary and the system tests read it; config validation,
// the first-start setup, event subjects and the wiring all go through the
// registry it builds. A vendor is removed by deleting its package, its
// line here and its proto payload.
package vendors

import (
	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/normalize/clinchpad"
	"github.com/hookstream/hookstream/service/normalize/closer"
	"github.com/hookstream/hookstream/service/normalize/pipedrive"
)

// Registry holds the vendor packages hookstream is built with.
var Registry = mustRegistry(
	closer.Vendor,
	pipedrive.Vendor,
	clinchpad.Vendor,
)

func mustRegistry(vs ...normalize.Vendor) *normalize.Registry {
	r, err := normalize.NewRegistry(vs...)
	if err != nil {
		panic(err) // a programming error: the list above is wrong
	}
	return r
}

// Config is what config validation and first-start generation need of
// the registry.
func Config() []config.Vendor {
	var out []config.Vendor
	for _, v := range Registry.All() {
		out = append(out, config.Vendor{Name: v.Name, Auth: v.Auth})
	}
	return out
}
