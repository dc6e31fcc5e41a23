package pipedrive

import (
	"buf.build/go/protovalidate"
	"github.com/valyala/fastjson"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize"
)

// Vendor describes Pipedrive to the vendor registry. A webhook
// subscription carries HTTP Basic credentials (http_auth_user and
// http_auth_password); a token in the subscription URL works too.
var Vendor = normalize.Vendor{
	Name:     "pipedrive",
	Title:    "Pipedrive",
	Enum:     hookstreamv1.Vendor_VENDOR_PIPEDRIVE,
	New:      func(v protovalidate.Validator) normalize.Normalizer { return New(v) },
	Auth:     []string{normalize.AuthBasic, normalize.AuthToken},
	Where:    "Settings > Webhooks, or POST /v1/webhooks with version \"2.0\"",
	RetryKey: RetryKey,
}

// RetryKey is body without the attempt counter Pipedrive changes on each
// retry of a delivery: v1's top-level `retry` (0–3) and v2's
// `meta.attempt` (1–4). A body that is not a JSON object, or has neither,
// is its own key. The rest is written back as it was sent, members in
// their order, so the retries of one delivery give the same bytes.
func RetryKey(body []byte) []byte {
	var p fastjson.Parser
	root, err := p.ParseBytes(body)
	if err != nil || root.Type() != fastjson.TypeObject {
		return body
	}
	changed := false
	if root.Exists("retry") {
		root.Del("retry")
		changed = true
	}
	if meta := root.Get("meta"); meta != nil && meta.Type() == fastjson.TypeObject && meta.Exists("attempt") {
		meta.Del("attempt")
		changed = true
	}
	if !changed {
		return body
	}
	return root.MarshalTo(nil)
}
