package webhook

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// CheckURL reports whether raw may be a webhook URL: absolute http(s), with
// a host, without credentials or a fragment, and plain http only when
// allowHTTP. It checks the form only; where the host leads is judged when
// connecting (see Blocked), since DNS can change after the check. Errors say
// what is wrong without quoting the URL, which may carry a token.
func CheckURL(raw string, allowHTTP bool) error {
	if raw == "" {
		return errors.New("URL is empty")
	}
	if strings.TrimSpace(raw) != raw {
		return errors.New("URL has leading or trailing spaces")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("URL does not parse: %v", err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP {
			return errors.New("URL must use https (plain http needs delivery.allow_http)")
		}
	case "":
		return errors.New("URL is not absolute: it needs https:// and a host")
	default:
		if allowHTTP {
			return fmt.Errorf("URL scheme must be https or http, not %q", u.Scheme)
		}
		return fmt.Errorf("URL scheme must be https, not %q", u.Scheme)
	}
	if u.Opaque != "" {
		return errors.New("URL needs // after the scheme")
	}
	if u.User != nil {
		// Credentials in the URL end up in logs and error messages; basic
		// auth has its own, write-only, endpoint fields.
		return errors.New("URL must not contain a user name or password; use the endpoint's basic auth instead")
	}
	if u.Hostname() == "" {
		return errors.New("URL has no host")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return errors.New("URL port must be between 1 and 65535")
		}
	}
	// url.Parse drops an empty fragment ("https://x/#"), so look at the text.
	if strings.Contains(raw, "#") {
		return errors.New("URL must not have a fragment (#...): it is never sent to the server")
	}
	return nil
}

// CheckAddress refuses a URL whose host is an IP literal Blocked refuses,
// so that the endpoint is refused when it is made instead of failing
// every attempt. A name is judged when it is resolved, at each attempt.
func CheckAddress(raw string, allow []netip.Prefix) error {
	u, err := url.Parse(raw)
	if err != nil {
		return nil // CheckURL says what is wrong with it
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return nil // a name
	}
	if reason, blocked := Blocked(ip, allow); blocked {
		return fmt.Errorf("address %s is blocked (%s): hookstream delivers there only when delivery.allow_networks allows it", u.Hostname(), reason)
	}
	return nil
}
