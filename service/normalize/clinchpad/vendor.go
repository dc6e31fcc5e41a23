package clinchpad

import (
	"buf.build/go/protovalidate"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize"
)

// Vendor describes ClinchPad to the vendor registry. ClinchPad sends the
// handshake key it was given in every body; a token in the URL works too.
var Vendor = normalize.Vendor{
	Name:  "clinchpad",
	Title: "ClinchPad",
	Enum:  hookstreamv1.Vendor_VENDOR_CLINCHPAD,
	New:   func(v protovalidate.Validator) normalize.Normalizer { return New(v) },
	Auth:  []string{normalize.AuthHandshakeKey, normalize.AuthToken},
	Where: "Settings > Integrations > Manage Interactions (Webhooks)",
}
