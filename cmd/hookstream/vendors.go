package main

import (
	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/service/normalize"
	"github.com/hookstream/hookstream/service/normalize/clinchpad"
	"github.com/hookstream/hookstream/service/normalize/closer"
	"github.com/hookstream/hookstream/service/normalize/pipedrive"
)

// vendors are the vendor packages this binary is built with: the one place
// they are listed. Config validation, the first-start setup, event
// subjects and the wiring all read the registry; a vendor is removed by
// deleting its package, its line here and its proto payload.
var vendors = mustRegistry(
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

// configVendors is what config validation needs of the registry.
func configVendors(r *normalize.Registry) []config.Vendor {
	var out []config.Vendor
	for _, v := range r.All() {
		out = append(out, config.Vendor{Name: v.Name, Auth: v.Auth})
	}
	return out
}
