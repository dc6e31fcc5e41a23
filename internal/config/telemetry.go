package config

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Telemetry configures OpenTelemetry tracing. It is off unless
// OTLPEndpoint is set.
type Telemetry struct {
	// OTLPEndpoint is the OTLP receiver traces are sent to, as a URL:
	// http://collector:4318 (OTLP/HTTP; a URL without a path gets
	// /v1/traces) or http://collector:4317 with protocol grpc. https
	// uses TLS, http does not. Empty (the default) turns tracing off.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Protocol is http (OTLP/HTTP with protobuf, the default) or grpc.
	Protocol string `yaml:"protocol"`
	// SamplingRatio is the share of new traces (webhooks, API calls
	// without a sampled parent) that are recorded, from 0 to 1 (default
	// 1). Deliveries follow their webhook's decision.
	SamplingRatio *float64 `yaml:"sampling_ratio"`
	// ServiceName is the service.name resource attribute (default
	// hookstream).
	ServiceName string `yaml:"service_name"`
	// Headers are sent with every export, e.g. an API key of a hosted
	// tracing backend.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one export (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// TLS to an https endpoint: a CA bundle, and a client certificate.
	TLS struct {
		CA   string `yaml:"ca"`
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
}

// Telemetry defaults.
const (
	DefaultTelemetryProtocol    = "http"
	DefaultSamplingRatio        = 1.0
	DefaultTelemetryServiceName = "hookstream"
	DefaultTelemetryTimeout     = 10 * time.Second
)

// Enabled reports whether traces are exported.
func (t Telemetry) Enabled() bool { return t.OTLPEndpoint != "" }

func (t *Telemetry) setDefaults() {
	if t.Protocol == "" {
		t.Protocol = DefaultTelemetryProtocol
	}
	if t.SamplingRatio == nil {
		r := DefaultSamplingRatio
		t.SamplingRatio = &r
	}
	if t.ServiceName == "" {
		t.ServiceName = DefaultTelemetryServiceName
	}
	if t.Timeout == 0 {
		t.Timeout = DefaultTelemetryTimeout
	}
}

func (t Telemetry) validate() []error {
	var errs []error
	if t.Protocol != "http" && t.Protocol != "grpc" {
		errs = append(errs, fmt.Errorf("telemetry.protocol must be http or grpc, not %q", t.Protocol))
	}
	if r := *t.SamplingRatio; !(r >= 0 && r <= 1) { // NaN too
		errs = append(errs, fmt.Errorf("telemetry.sampling_ratio %g must be between 0 and 1", r))
	}
	if t.Timeout < 100*time.Millisecond || t.Timeout > time.Minute {
		errs = append(errs, fmt.Errorf("telemetry.timeout %s must be between 100ms and 1m", t.Timeout))
	}
	if t.OTLPEndpoint != "" {
		u, err := url.Parse(t.OTLPEndpoint)
		switch {
		case err != nil:
			// Not echoed: it may hold credentials the parser could not
			// separate.
			errs = append(errs, errors.New("telemetry.otlp_endpoint does not parse as a URL: http://host:port or https://host:port"))
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Errorf("telemetry.otlp_endpoint %q must be a URL: http://host:port or https://host:port", u.Redacted()))
		case u.User != nil || u.RawQuery != "" || u.Fragment != "":
			errs = append(errs, fmt.Errorf("telemetry.otlp_endpoint: put credentials in telemetry.headers, not in the URL"))
		case t.Protocol == "grpc" && strings.Trim(u.Path, "/") != "":
			errs = append(errs, fmt.Errorf("telemetry.otlp_endpoint %q: an OTLP/gRPC endpoint has no path", u.Redacted()))
		}
		if (t.TLS.CA != "" || t.TLS.Cert != "") && u != nil && u.Scheme != "https" {
			errs = append(errs, fmt.Errorf("telemetry.tls needs an https otlp_endpoint"))
		}
	}
	if (t.TLS.Cert == "") != (t.TLS.Key == "") {
		errs = append(errs, fmt.Errorf("telemetry.tls: set both cert and key"))
	}
	for _, k := range slices.Sorted(maps.Keys(t.Headers)) {
		switch {
		case !httpguts.ValidHeaderFieldName(k):
			errs = append(errs, fmt.Errorf("telemetry.headers: %q is not a header name", k))
		case !httpguts.ValidHeaderFieldValue(t.Headers[k]):
			// The value is not shown: it is likely a key. A value read
			// from a file or a variable often ends with a newline.
			errs = append(errs, fmt.Errorf("telemetry.headers: the value of %s holds a line break or another control character", k))
		}
	}
	return errs
}
