// Package hookstream holds repository-level assets: the generated OpenAPI
// document, embedded so the binary can serve it.
package hookstream

import _ "embed"

// OpenAPI is the OpenAPI v2 document generated from the protos.
//
//go:embed gen/openapiv2/hookstream.swagger.json
var OpenAPI []byte
