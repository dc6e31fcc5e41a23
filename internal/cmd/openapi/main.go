// Command openapi prints the OpenAPI document the server serves at
// /openapi.json, for tools and for the validation step in scripts/test.sh.
//
// Usage: go run ./internal/cmd/openapi > hookstream.swagger.json
package main

import (
	"os"

	"github.com/hookstream/hookstream"
)

func main() {
	if _, err := os.Stdout.Write(hookstream.OpenAPI); err != nil {
		os.Exit(1)
	}
}
