package config_test

import (
	"strings"
	"testing"

	"github.com/hookstream/hookstream/internal/config"
)

const oneSource = "sources: [{name: c, vendor: closer, auth: none}]\n"

func TestTelemetry(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(oneSource), env(nil), vendors)
	if err != nil {
		t.Fatal(err)
	}
	if tel := cfg.Telemetry; tel.Enabled() || tel.Protocol != "http" || *tel.SamplingRatio != 1 || tel.ServiceName != "hookstream" {
		t.Errorf("defaults: %+v; want off, http, ratio 1, hookstream", tel)
	}
	cfg, err = config.Parse([]byte(oneSource+`telemetry:
  otlp_endpoint: https://otel.example.com:4317
  protocol: grpc
  sampling_ratio: 0.01
  headers: {x-api-key: "${KEY}"}
`), env(map[string]string{"KEY": "secret"}), vendors)
	if err != nil {
		t.Fatal(err)
	}
	if tel := cfg.Telemetry; !tel.Enabled() || tel.Protocol != "grpc" || *tel.SamplingRatio != 0.01 || tel.Headers["x-api-key"] != "secret" {
		t.Errorf("parsed: %+v", tel)
	}

	for _, tc := range []struct{ yaml, want string }{
		{"{otlp_endpoint: otel:4318}", "must be a URL"},
		{"{otlp_endpoint: ftp://otel:4318}", "must be a URL"},
		{`{otlp_endpoint: "http://user:pw@otel:4318"}`, "telemetry.headers"},
		{"{otlp_endpoint: http://otel:4317/v1/traces, protocol: grpc}", "has no path"},
		{"{protocol: thrift}", "http or grpc"},
		{"{sampling_ratio: 1.5}", "between 0 and 1"},
		{"{sampling_ratio: -0.1}", "between 0 and 1"},
		{"{timeout: 1ms}", "telemetry.timeout"},
		{"{otlp_endpoint: http://otel:4318, tls: {ca: ca.pem}}", "needs an https"},
		{"{headers: {'bad name': x}}", "not a header name"},
		{"{sampling_ratio: .nan}", "between 0 and 1"},
		{`{headers: {x-key: "k3y\n"}}`, "the value of x-key holds a line break"},
		{`{otlp_endpoint: "https://user:k3y%zz@otel:4318"}`, "does not parse as a URL"},
		{`{otlp_endpoint: "ftp://user:k3y@otel:4318"}`, "must be a URL"},
	} {
		_, err := config.Parse([]byte(oneSource+"telemetry: "+tc.yaml+"\n"), env(nil), vendors)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("telemetry %s: error %v; want one saying %q", tc.yaml, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "k3y") {
			t.Errorf("telemetry %s: the error shows the header's value: %v", tc.yaml, err)
		}
	}
}
