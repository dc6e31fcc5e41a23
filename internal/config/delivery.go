package config

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/netip"
	"time"
)

// Networks parses AllowNetworks (validated at load).
func (d Delivery) Networks() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(d.AllowNetworks))
	for _, n := range d.AllowNetworks {
		if p, err := netip.ParsePrefix(n); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// Key decodes SecretKey: nil when none is set.
func (d Delivery) Key() []byte {
	if d.SecretKey == "" {
		return nil
	}
	k, err := base64.StdEncoding.DecodeString(d.SecretKey)
	if err != nil || len(k) != sha256.Size {
		return nil
	}
	return k
}

func (d Delivery) validate() []error {
	var errs []error
	if d.Timeout < 100*time.Millisecond || d.Timeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("delivery.timeout %s must be between 100ms and 5m", d.Timeout))
	}
	if len(d.RetrySchedule) > 50 {
		errs = append(errs, fmt.Errorf("delivery.retry_schedule has %d entries; at most 50", len(d.RetrySchedule)))
	}
	for i, w := range d.RetrySchedule {
		if w < 0 || w > 7*24*time.Hour {
			errs = append(errs, fmt.Errorf("delivery.retry_schedule[%d] %s must be between 0s and 168h", i, w))
		}
	}
	if j := *d.Jitter; j < 0 || j > 1 {
		errs = append(errs, fmt.Errorf("delivery.jitter %g must be between 0 and 1", j))
	}
	if d.DisableAfter < time.Second {
		errs = append(errs, fmt.Errorf("delivery.disable_after %s must be at least 1s", d.DisableAfter))
	}
	if d.MaxInFlight < 1 || d.MaxInFlight > 1000 {
		errs = append(errs, fmt.Errorf("delivery.max_in_flight %d must be between 1 and 1000", d.MaxInFlight))
	}
	if d.MaxPending < 1 || d.MaxPending > 1_000_000 {
		errs = append(errs, fmt.Errorf("delivery.max_pending %d must be between 1 and 1000000", d.MaxPending))
	}
	if d.SecretOverlap < 0 {
		errs = append(errs, fmt.Errorf("delivery.secret_overlap %s must not be negative", d.SecretOverlap))
	}
	for i, n := range d.AllowNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			errs = append(errs, fmt.Errorf("delivery.allow_networks[%d] %q is not a CIDR (try 10.0.0.0/8)", i, n))
		}
	}
	if d.SecretKey != "" && d.Key() == nil {
		errs = append(errs, fmt.Errorf("delivery.secret_key must be 32 bytes in standard base64 (try: head -c32 /dev/urandom | base64)"))
	}
	if d.MaxEndpoints < 1 {
		errs = append(errs, fmt.Errorf("delivery.max_endpoints %d must be at least 1", d.MaxEndpoints))
	}
	if d.AttemptsRetention < time.Minute || d.DeadLetterRetention < time.Minute {
		errs = append(errs, fmt.Errorf("delivery.attempts_retention and delivery.dead_letter_retention must be at least 1m"))
	}
	return errs
}
