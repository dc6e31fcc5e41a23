package hookstream

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

// TestOpenAPI checks what the generator cannot write: the header, the
// bearer token, and the webhook route and /healthz with their real answers.
func TestOpenAPI(t *testing.T) {
	var doc struct {
		Info                struct{ Title, Version, Description string }
		SecurityDefinitions map[string]struct{ Type, In, Name string }
		Security            []map[string][]string
		Paths               map[string]map[string]struct {
			Security   []map[string][]string
			Parameters []struct{ Name, In string }
			Responses  map[string]struct {
				Schema struct {
					Ref string `json:"$ref"`
				}
			}
		}
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Info.Title != "hookstream" || doc.Info.Version != "v1" || doc.Info.Description == "" {
		t.Errorf("info = %+v", doc.Info)
	}
	if b := doc.SecurityDefinitions["bearer"]; b.Type != "apiKey" || b.In != "header" || b.Name != "Authorization" {
		t.Errorf("securityDefinitions.bearer = %+v", b)
	}
	if len(doc.Security) != 1 || doc.Security[0]["bearer"] == nil {
		t.Errorf("security = %v, want bearer for the whole API", doc.Security)
	}
	wh := doc.Paths["/v1/webhooks/{source}"]["post"]
	var codes []string
	for c := range wh.Responses {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	if want := []string{"200", "202", "400", "401", "404", "408", "413", "415", "429", "503"}; !slices.Equal(codes, want) {
		t.Errorf("webhook responses %v, want %v", codes, want)
	}
	if wh.Security == nil || len(wh.Security) != 0 {
		t.Errorf("webhook security = %v, want none (the source's credentials)", wh.Security)
	}
	if wh.Responses["200"].Schema.Ref != "#/definitions/hookstreamWebhookAccepted" || wh.Responses["401"].Schema.Ref != "#/definitions/hookstreamError" {
		t.Errorf("webhook schemas: %+v", wh.Responses)
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if r, ok := op.Responses["default"]; ok && r.Schema.Ref != "#/definitions/hookstreamError" {
				t.Errorf("%s %s: default error schema %q, want hookstreamError", method, path, r.Schema.Ref)
			}
		}
	}
	if bytes.Contains(OpenAPI, []byte("rpcStatus")) {
		t.Error("the document still names rpcStatus, a body the gateway never answers")
	}
	// The generator hides a PATCH's mask unless told not to (buf.gen.yaml):
	// a client made from the document could not name the fields to change.
	var params []string
	for _, p := range doc.Paths["/v1/endpoints/{endpoint.id}"]["patch"].Parameters {
		params = append(params, p.In+":"+p.Name)
	}
	if !slices.Contains(params, "query:updateMask") {
		t.Errorf("PATCH /v1/endpoints/{endpoint.id} parameters %v, want the update mask in the query", params)
	}
	hz := doc.Paths["/healthz"]["get"]
	if _, ok := hz.Responses["503"]; !ok || len(hz.Security) != 0 {
		t.Errorf("/healthz = %+v", hz)
	}
}
