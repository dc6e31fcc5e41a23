package pipedrive

import (
	"buf.build/go/protovalidate"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize"
)

// Vendor describes Pipedrive to the vendor registry. A webhook
// subscription carries HTTP Basic credentials (http_auth_user and
// http_auth_password); a token in the subscription URL works too.
var Vendor = normalize.Vendor{
	Name:  "pipedrive",
	Title: "Pipedrive",
	Enum:  hookstreamv1.Vendor_VENDOR_PIPEDRIVE,
	New:   func(v protovalidate.Validator) normalize.Normalizer { return New(v) },
	Auth:  []string{normalize.AuthBasic, normalize.AuthToken},
	Where: "Settings > Webhooks, or POST /v1/webhooks with version \"2.0\"",
}
