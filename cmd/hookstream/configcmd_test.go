package main

import (
	"strings"
	"testing"

	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/internal/vendors"
)

// TestMaskedTelemetryHeaders: a tracing backend's credentials, under
// header names of its own, never show in config check.
func TestMaskedTelemetryHeaders(t *testing.T) {
	cfg, err := config.Parse([]byte(`
sources: [{name: c, vendor: closer, auth: none}]
telemetry: {otlp_endpoint: "https://api.example.com", headers: {x-honeycomb-team: hc-secret-123}}
`), func(string) (string, bool) { return "", false }, vendors.Config())
	if err != nil {
		t.Fatal(err)
	}
	out, err := maskedYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "hc-secret-123") || !strings.Contains(string(out), "x-honeycomb-team: '[MASKED]'") {
		t.Errorf("config check output:\n%s", out)
	}
}
