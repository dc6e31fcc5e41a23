package webhook_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/hookstream/hookstream/service/delivery/webhook"
)

func TestBlocked(t *testing.T) {
	t.Parallel()
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	private10 := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		addr   string
		allow  []netip.Prefix
		reason string // "" means allowed
	}{
		{"127.0.0.1", nil, "loopback"},
		{"127.255.0.9", nil, "loopback"},
		{"::1", nil, "loopback"},
		{"10.1.2.3", nil, "private"},
		{"172.16.0.1", nil, "private"},
		{"172.31.255.255", nil, "private"},
		{"192.168.1.1", nil, "private"},
		{"169.254.169.254", nil, "link-local"},
		{"fe80::1", nil, "link-local"},
		{"fe80::1%eth0", nil, "link-local"},
		{"fd00:ec2::254", nil, "private"},
		{"fc00::1", nil, "private"},
		{"::ffff:10.0.0.1", nil, "private"},
		{"::ffff:127.0.0.1", nil, "loopback"},
		{"::ffff:169.254.169.254", nil, "link-local"},
		{"100.64.0.1", nil, "CGNAT"},
		{"0.0.0.0", nil, "unspecified"},
		{"0.1.2.3", nil, "this network"},
		{"::", nil, "unspecified"},
		{"192.0.0.8", nil, "IETF"},
		{"198.18.0.1", nil, "benchmarking"},
		{"198.19.255.255", nil, "benchmarking"},
		{"240.0.0.1", nil, "reserved"},
		{"255.255.255.255", nil, "broadcast"},
		{"224.0.0.1", nil, "multicast"},
		{"ff02::1", nil, "multicast"},
		{"192.0.2.1", nil, "documentation"},
		{"2001:db8::1", nil, "documentation"},
		{"::a00:1", nil, "reserved"}, // IPv4-compatible, deprecated
		{"64:ff9b::a00:1", nil, "private, via 10.0.0.1"},
		{"64:ff9b::a9fe:a9fe", nil, "link-local, via 169.254.169.254"},
		{"64:ff9b:1::a00:1", nil, "reserved"}, // local-use NAT64
		{"2002:a00:1::1", nil, "private, via 10.0.0.1"},
		// Public addresses.
		{"8.8.8.8", nil, ""},
		{"1.1.1.1", nil, ""},
		{"172.32.0.1", nil, ""},
		{"100.128.0.1", nil, ""},
		{"2606:4700::1111", nil, ""},
		{"::ffff:8.8.8.8", nil, ""},
		{"64:ff9b::808:808", nil, ""}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", nil, ""},  // 6to4 of 8.8.8.8
		// AllowNetworks.
		{"127.0.0.1", loopback, ""},
		{"::ffff:127.0.0.1", loopback, ""},
		{"64:ff9b::7f00:1", loopback, ""},
		{"::1", loopback, "loopback"},
		{"10.1.2.3", loopback, "private"},
		{"10.1.2.3", private10, ""},
		{"169.254.169.254", private10, "link-local"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			reason, blocked := webhook.Blocked(netip.MustParseAddr(tt.addr), tt.allow)
			switch {
			case tt.reason == "" && blocked:
				t.Errorf("Blocked(%s, %v) = blocked (%s), want allowed", tt.addr, tt.allow, reason)
			case tt.reason != "" && !blocked:
				t.Errorf("Blocked(%s, %v) = allowed, want blocked (%s)", tt.addr, tt.allow, tt.reason)
			case tt.reason != "" && !strings.Contains(reason, tt.reason):
				t.Errorf("Blocked(%s, %v) reason = %q, want %q", tt.addr, tt.allow, reason, tt.reason)
			}
		})
	}
	if _, blocked := webhook.Blocked(netip.Addr{}, nil); !blocked {
		t.Error("the zero Addr is allowed")
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url       string
		allowHTTP bool
		wantErr   string // "" means valid
	}{
		{"https://example.com/hooks", false, ""},
		{"https://example.com:8443/hooks?token=abc", false, ""},
		{"https://[2606:4700::1111]/x", false, ""},
		{"https://10.0.0.1/x", false, ""}, // the address policy applies when connecting
		{"http://example.com/hooks", true, ""},
		{"http://example.com/hooks", false, "https"},
		{"ftp://example.com/x", false, "scheme"},
		{"ftp://example.com/x", true, "https or http"},
		{"", false, "empty"},
		{" https://example.com/", false, "spaces"},
		{"example.com/hooks", false, "not absolute"},
		{"/hooks", false, "not absolute"},
		{"https:example.com", false, "//"},
		{"https://", false, "no host"},
		{"https:///path", false, "no host"},
		{"https://:443/path", false, "no host"},
		{"https://user:hunter2@example.com/", false, "user name or password"},
		{"https://user@example.com/", false, "user name or password"},
		{"https://example.com/#frag", false, "fragment"},
		{"https://example.com/#", false, "fragment"},
		{"https://example.com:0/", false, "port"},
		{"https://example.com:65536/", false, "port"},
		{"https://example.com:http/", false, "parse"},
		{"https://exa mple.com/", false, "parse"},
		{"https://example.com/\x7f", false, "parse"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			err := webhook.CheckURL(tt.url, tt.allowHTTP)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want valid", tt.url, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckURL(%q) = nil, want an error mentioning %q", tt.url, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("CheckURL(%q) = %q, want it to mention %q", tt.url, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("CheckURL(%q) = %q quotes the password", tt.url, err)
			}
		})
	}
}
