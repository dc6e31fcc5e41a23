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
	return editCounters(body, func(_ *fastjson.Arena, root, meta *fastjson.Value) bool {
		changed := root.Exists("retry")
		root.Del("retry")
		if meta != nil && meta.Exists("attempt") {
			meta.Del("attempt")
			changed = true
		}
		return changed
	})
}

// AsDelivered is a Pipedrive webhook body as one webhook of the
// Pipedrive-compatible API sends it: `meta.webhook_id` names that webhook
// (Pipedrive's receivers tell subscriptions apart by it, and key
// per-subscription work on it with `meta.id`), and the attempt counter
// counts this delivery's attempts (v2 `meta.attempt` from 1, v1 `retry`
// from 0), not those of the request hookstream received. The rest is the
// body as received, members in their order. A body that is not a JSON
// object is sent as it is.
func AsDelivered(body []byte, webhookID string, attempt int) []byte {
	return editCounters(body, func(a *fastjson.Arena, root, meta *fastjson.Value) bool {
		if meta != nil {
			meta.Set("webhook_id", a.NewString(webhookID))
			if meta.Exists("entity") || meta.Exists("attempt") { // v2
				meta.Set("attempt", a.NewNumberInt(attempt))
			}
		}
		if root.Exists("retry") { // v1
			root.Set("retry", a.NewNumberInt(attempt-1))
		}
		return true
	})
}

// counterParsers parse the bodies RetryKey and AsDelivered rewrite.
var counterParsers fastjson.ParserPool

// editCounters is where Pipedrive keeps a delivery's counters, for
// RetryKey and AsDelivered: edit gets the body's root object and its
// `meta` object (nil when there is none), and body is written back, in
// the order it was sent, when edit changed it (true). A body that is not a
// JSON object is returned as it is.
func editCounters(body []byte, edit func(a *fastjson.Arena, root, meta *fastjson.Value) bool) []byte {
	p := counterParsers.Get()
	defer counterParsers.Put(p)
	root, err := p.ParseBytes(body)
	if err != nil || root.Type() != fastjson.TypeObject {
		return body
	}
	meta := root.Get("meta")
	if meta != nil && meta.Type() != fastjson.TypeObject {
		meta = nil
	}
	var a fastjson.Arena
	if !edit(&a, root, meta) {
		return body
	}
	return root.MarshalTo(make([]byte, 0, len(body)+16))
}
