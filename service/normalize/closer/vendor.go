package closer

import (
	"buf.build/go/protovalidate"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize"
)

// Vendor describes Closer to the vendor registry. Closer signs nothing and
// sends no credentials of its own, so a source checks a token in the URL.
var Vendor = normalize.Vendor{
	Name:  "closer",
	Title: "Closer",
	Enum:  hookstreamv1.Vendor_VENDOR_CLOSER,
	New:   func(v protovalidate.Validator) normalize.Normalizer { return New(v) },
	Auth:  []string{normalize.AuthToken},
	Where: "Admin > Webhooks, both events",
}
