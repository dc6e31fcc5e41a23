// Package hookstream holds repository-level assets: the OpenAPI document,
// generated from the protos and completed here, embedded so the binary can
// serve it.
package hookstream

import (
	_ "embed"
	"encoding/json"
)

//go:embed gen/openapiv2/hookstream.swagger.json
var generatedOpenAPI []byte

// OpenAPI is the OpenAPI v2 document served at /openapi.json: the one
// protoc-gen-openapiv2 writes from the protos (title, version, the bearer
// security definition: proto/hookstream/v1/ingest_service.proto), with the
// HTTP routes the protos cannot describe written here. The webhook route
// takes the vendor's raw body, not IngestWebhookRequest, answers its own
// JSON and needs the source's credentials, not an API token; /healthz is
// no RPC. Annotations cannot say either (their schemas have no
// properties), so they are replaced after generation.
var OpenAPI = complete(generatedOpenAPI)

func complete(generated []byte) []byte {
	var doc map[string]any
	if err := json.Unmarshal(generated, &doc); err != nil {
		panic("gen/openapiv2/hookstream.swagger.json: " + err.Error())
	}
	paths, _ := doc["paths"].(map[string]any)
	defs, _ := doc["definitions"].(map[string]any)
	if paths == nil || defs == nil {
		panic("gen/openapiv2/hookstream.swagger.json has no paths or definitions")
	}
	for name, def := range extraDefinitions {
		defs[name] = def
	}
	paths["/v1/webhooks/{source}"] = webhookPath
	paths["/healthz"] = healthzPath
	// grpc-gateway documents its own error body (rpcStatus, a numeric gRPC
	// code); the gateway answers the one error shape instead, and a
	// streamed Subscribe ends with it as {"error": …}.
	retarget(paths, "#/definitions/rpcStatus", "#/definitions/hookstreamError", "#/definitions/hookstreamErrorBody")
	delete(defs, "rpcStatus")
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(out, '\n')
}

type obj = map[string]any

// retarget rewrites every $ref to from under v: a response schema gets
// response, anything else (a stream result's error member) member.
func retarget(v any, from, response, member string) {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			if m, ok := c.(map[string]any); ok && m["$ref"] == from {
				if k == "schema" {
					m["$ref"] = response
				} else {
					m["$ref"] = member
				}
				continue
			}
			retarget(c, from, response, member)
		}
	case []any:
		for _, c := range v {
			retarget(c, from, response, member)
		}
	}
}

func ref(name string) obj { return obj{"$ref": "#/definitions/" + name} }

func str(description string) obj { return obj{"type": "string", "description": description} }

// errorAnswer is a response in the one error shape (gateway/errors.go).
func errorAnswer(description string, headers ...string) obj {
	r := obj{"description": description, "schema": ref("hookstreamError")}
	if len(headers) > 0 {
		h := obj{}
		for _, name := range headers {
			h[name] = obj{"type": "string", "description": headerDescriptions[name]}
		}
		r["headers"] = h
	}
	return r
}

var headerDescriptions = map[string]string{
	"Retry-After":      "Seconds to wait before retrying.",
	"WWW-Authenticate": "The scheme the source expects (Basic-auth sources, or every 401 with api.unknown_source: unauthorized).",
	"Accept-Encoding":  "gzip: the one Content-Encoding the route decodes.",
}

var extraDefinitions = obj{
	"hookstreamError": obj{
		"type":        "object",
		"description": "Every HTTP error: the Google JSON error format (AIP-193). The reason is in the google.rpc.ErrorInfo among details.",
		"properties":  obj{"error": ref("hookstreamErrorBody")},
		"required":    []string{"error"},
	},
	"hookstreamErrorBody": obj{
		"type": "object",
		"properties": obj{
			"code":    obj{"type": "integer", "format": "int32", "description": "The HTTP status of the answer."},
			"status":  str("The gRPC code's name, e.g. UNAUTHENTICATED."),
			"message": str("What went wrong, for people."),
			"details": obj{"type": "array", "items": ref("protobufAny")},
		},
		"required": []string{"code", "status", "message"},
	},
	"hookstreamWebhookAccepted": obj{
		"type":        "object",
		"description": "The event is durably in the log (or already was: a retry).",
		"properties": obj{
			"status":    obj{"type": "string", "enum": []string{"accepted"}},
			"event_id":  str("The event's deterministic id."),
			"duplicate": obj{"type": "boolean", "description": "The event was already stored (a retry)."},
		},
	},
	"hookstreamWebhookQuarantined": obj{
		"type":        "object",
		"description": "Authenticated, but the payload could not be normalized: the request, secrets removed, is in quarantine.",
		"properties": obj{
			"status":        obj{"type": "string", "enum": []string{"quarantined"}},
			"quarantine_id": str("The quarantine entry's id."),
			"reason": obj{
				"type": "object",
				"properties": obj{
					"code":    str("A RejectionCode name, e.g. REJECTION_CODE_MALFORMED_JSON."),
					"field":   str("The field at fault, when known."),
					"message": str("What was wrong."),
				},
			},
		},
	},
	"hookstreamHealth": obj{
		"type": "object",
		"properties": obj{
			"status": obj{"type": "string", "enum": []string{"ok", "degraded", "unavailable"}},
			"reason": str("What is wrong, when status is not ok."),
		},
	},
}

var webhookPath = obj{
	"post": obj{
		"summary": "Receives one webhook from a vendor, as it sent it.",
		"description": "The body is stored byte for byte (gzip is decoded) and normalized into an event. " +
			"The answer comes only after the durable append. Authenticated requests that cannot be normalized are quarantined (202), " +
			"so the vendor does not retry or ban the endpoint. The source's own credentials authenticate the request " +
			"(Basic auth, a token in the X-Hookstream-Token header or the token parameter, or ClinchPad's handshake_key); API tokens play no part.",
		"operationId": "IngestService_IngestWebhook",
		"tags":        []string{"IngestService"},
		"security":    []any{},
		"consumes":    []string{"application/json"},
		"parameters": []any{
			obj{"name": "source", "in": "path", "required": true, "type": "string", "description": "The configured source's name."},
			obj{"name": "body", "in": "body", "required": true, "schema": obj{"type": "object", "description": "The vendor's payload, stored as sent."}},
			obj{"name": "Authorization", "in": "header", "required": false, "type": "string", "description": "Basic credentials, for sources with basic auth."},
			obj{"name": "X-Hookstream-Token", "in": "header", "required": false, "type": "string", "description": "The source's token, for sources with token auth."},
			obj{"name": "token", "in": "query", "required": false, "type": "string", "description": "The source's token, for sources with token auth."},
			obj{"name": "handshake_key", "in": "query", "required": false, "type": "string", "description": "ClinchPad's handshake key (also accepted in the body)."},
			obj{"name": "Content-Encoding", "in": "header", "required": false, "type": "string", "enum": []string{"gzip", "identity"}, "description": "Only gzip is decoded."},
		},
		"responses": obj{
			"200": obj{"description": "Stored, or already stored.", "schema": ref("hookstreamWebhookAccepted")},
			"202": obj{"description": "Quarantined.", "schema": ref("hookstreamWebhookQuarantined")},
			"400": errorAnswer("CONFLICTING_CREDENTIALS (a credential repeated with different values) or BODY_UNREADABLE (not valid gzip)."),
			"401": errorAnswer("UNAUTHENTICATED: missing, wrong or conflicting credentials; nothing stored.", "WWW-Authenticate"),
			"404": errorAnswer("UNKNOWN_SOURCE: no such source (401 instead with api.unknown_source: unauthorized)."),
			"408": errorAnswer("BODY_TIMEOUT: the body did not arrive within http.read_timeout."),
			"413": errorAnswer("BODY_TOO_LARGE: the body, also once gzip is decoded, is above http.body_limit."),
			"415": errorAnswer("UNSUPPORTED_CONTENT_ENCODING: a Content-Encoding other than gzip or identity.", "Accept-Encoding"),
			"429": errorAnswer("RATE_LIMITED: the source is over its rate_limit.", "Retry-After"),
			"503": errorAnswer("LOG_UNAVAILABLE (the log cannot take the write) or QUARANTINE_FULL: nothing stored, the vendor retries.", "Retry-After"),
		},
	},
}

var healthzPath = obj{
	"get": obj{
		"summary":     "Reports whether the event log can take writes.",
		"operationId": "Health",
		"tags":        []string{"Health"},
		"security":    []any{},
		"responses": obj{
			"200": obj{"description": "ok, or degraded with the reason (the log works but something is wrong with it).", "schema": ref("hookstreamHealth")},
			"503": obj{"description": "unavailable: the event log is not reachable.", "schema": ref("hookstreamHealth")},
		},
	},
}
