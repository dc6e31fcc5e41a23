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
	out := maskedOf(t, `
sources: [{name: c, vendor: closer, auth: none}]
telemetry: {otlp_endpoint: "https://api.example.com", headers: {x-honeycomb-team: hc-secret-123}}
`)
	if strings.Contains(string(out), "hc-secret-123") || !strings.Contains(string(out), "x-honeycomb-team: '[MASKED]'") {
		t.Errorf("config check output:\n%s", out)
	}
}

// TestMaskedNATSURL: credentials written into log.url (NATS takes
// nats://user:password@host and nats://token@host) never show in config
// check; the hosts do.
func TestMaskedNATSURL(t *testing.T) {
	out := maskedOf(t, `
sources: [{name: c, vendor: closer, auth: none}]
log: {url: "nats://hs:pw-secret-1@n1:4222,nats://tok-secret-2@n2:4222,nats://n3:4222"}
`)
	if strings.Contains(string(out), "pw-secret-1") || strings.Contains(string(out), "tok-secret-2") || !strings.Contains(string(out), "nats://hs:MASKED@n1:4222,nats://MASKED@n2:4222,nats://n3:4222") {
		t.Errorf("config check output:\n%s", out)
	}
}

// maskedOf is what config check prints for the config yaml.
func maskedOf(t *testing.T, yaml string) []byte {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false }, vendors.Config())
	if err != nil {
		t.Fatal(err)
	}
	out, err := maskedYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
