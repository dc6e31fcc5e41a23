package normalize_test

import (
	"strings"
	"testing"

	"buf.build/go/protovalidate"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize"
)

func vendor(name string, enum hookstreamv1.Vendor) normalize.Vendor {
	return normalize.Vendor{Name: name, Title: name, Enum: enum, Auth: []string{normalize.AuthToken},
		New:   func(protovalidate.Validator) normalize.Normalizer { return nil },
		Where: "Settings"}
}

func TestRegistryChecksVendors(t *testing.T) {
	t.Parallel()
	closer := vendor("closer", hookstreamv1.Vendor_VENDOR_CLOSER)
	for name, tc := range map[string]struct {
		vendors []normalize.Vendor
		want    string
	}{
		"none":              {nil, "no vendors"},
		"twice":             {[]normalize.Vendor{closer, closer}, "taken twice"},
		"name not token":    {[]normalize.Vendor{vendor("close", hookstreamv1.Vendor_VENDOR_CLOSER)}, `must be the enum's subject token "closer"`},
		"unset enum":        {[]normalize.Vendor{vendor("x", hookstreamv1.Vendor_VENDOR_UNSPECIFIED)}, "enum value"},
		"missing normalize": {[]normalize.Vendor{{Name: "closer", Title: "C", Enum: hookstreamv1.Vendor_VENDOR_CLOSER}}, "missing a field"},
	} {
		if _, err := normalize.NewRegistry(tc.vendors...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	r, err := normalize.NewRegistry(closer, vendor("pipedrive", hookstreamv1.Vendor_VENDOR_PIPEDRIVE))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Names(), ","); got != "closer,pipedrive" {
		t.Errorf("names %s", got)
	}
	if _, ok := r.Lookup("clinchpad"); ok {
		t.Error("a vendor not registered is found")
	}
}

// Subject tokens come from the enum alone, for every value the proto has.
func TestToken(t *testing.T) {
	t.Parallel()
	for n, name := range hookstreamv1.Vendor_name {
		v := hookstreamv1.Vendor(n)
		want := strings.ToLower(strings.TrimPrefix(name, "VENDOR_"))
		if v == hookstreamv1.Vendor_VENDOR_UNSPECIFIED {
			want = "unknown"
		}
		if got := normalize.Token(v); got != want {
			t.Errorf("Token(%s) = %q, want %q", name, got, want)
		}
	}
	if got := normalize.Token(hookstreamv1.Vendor(999)); got != "unknown" {
		t.Errorf("Token(999) = %q", got)
	}
}
