package webhook

import (
	"net/netip"
)

// blockedRange is one range of addresses a webhook must never reach, with
// the reason shown to the endpoint's owner.
type blockedRange struct {
	prefix netip.Prefix
	reason string
}

// blockedRanges is the address policy: everything that is not a public
// unicast address. Users choose webhook URLs, so without it anyone allowed
// to create an endpoint could make hookstream call the cloud metadata
// service, an admin port on loopback or a service on the private network,
// and read the answer in the attempt log. Order matters only for the reason
// given: the first match wins.
var blockedRanges = func() []blockedRange {
	list := []struct{ cidr, reason string }{
		// IPv4.
		{"0.0.0.0/32", "unspecified"},
		{"0.0.0.0/8", "this network"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "shared address space (CGNAT)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local"}, // includes 169.254.169.254, cloud metadata
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "IETF protocol assignments"},
		{"192.0.2.0/24", "documentation"},
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "benchmarking"},
		{"198.51.100.0/24", "documentation"},
		{"203.0.113.0/24", "documentation"},
		{"224.0.0.0/4", "multicast"},
		{"255.255.255.255/32", "broadcast"},
		{"240.0.0.0/4", "reserved"},
		// IPv6. IPv4-mapped addresses never get here (Blocked unmaps them)
		// and NAT64 and 6to4 are judged by the IPv4 address they carry.
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/8", "reserved"}, // IPv4-compatible (deprecated), local-use NAT64 64:ff9b:1::/48, ...
		{"100::/64", "discard-only"},
		{"2001:2::/48", "benchmarking"},
		{"2001:db8::/32", "documentation"},
		{"fc00::/7", "private"}, // unique local; includes fd00:ec2::254, AWS metadata over IPv6
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local"},
		{"ff00::/8", "multicast"},
	}
	out := make([]blockedRange, len(list))
	for i, r := range list {
		out[i] = blockedRange{netip.MustParsePrefix(r.cidr), r.reason}
	}
	return out
}()

var (
	// nat64 is the well-known NAT64 prefix (RFC 6052): on an IPv6-only host
	// behind DNS64, 64:ff9b::a00:1 is 10.0.0.1 reached through the local
	// NAT64 gateway.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
	// sixToFour (RFC 3056) carries an IPv4 address in bits 16-47; a host with
	// a 6to4 interface sends to it directly.
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// Blocked reports whether a webhook may connect to ip, and if not, why. An
// address inside one of allow is always permitted: that is how a deployment
// delivers to its own network on purpose (and how tests reach loopback).
// It is called with the address actually being connected to, after DNS, so a
// name that resolves to a blocked address is blocked too.
func Blocked(ip netip.Addr, allow []netip.Prefix) (reason string, blocked bool) {
	if !ip.IsValid() {
		return "invalid address", true
	}
	ip = ip.WithZone("")
	mapped := ip
	// ::ffff:10.0.0.1 is 10.0.0.1 to the kernel; judge the IPv4 address.
	ip = ip.Unmap()
	for _, p := range allow {
		if p.Contains(ip) || p.Contains(mapped) {
			return "", false
		}
	}
	if v4, ok := embeddedIPv4(ip); ok {
		if reason, blocked := Blocked(v4, allow); blocked {
			return reason + ", via " + v4.String(), true
		}
		return "", false
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(ip) {
			return r.reason, true
		}
	}
	return "", false
}

// embeddedIPv4 returns the IPv4 address a NAT64 or 6to4 address reaches.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	b := ip.As16()
	switch {
	case !ip.Is6():
		return netip.Addr{}, false
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}
