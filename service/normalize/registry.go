package normalize

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"buf.build/go/protovalidate"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// Auth schemes a source can use (the config's `auth:` keys). Every vendor
// may also run with `auth: none`, when the config says so explicitly.
const (
	AuthBasic        = "basic"
	AuthToken        = "token"
	AuthHandshakeKey = "handshake_key"
)

// Vendor is everything the rest of hookstream knows of one vendor. Each
// vendor package describes itself with one; the binary lists the vendor
// packages once (see NewRegistry), and config validation, event subjects,
// the first-start setup text and the wiring all read it. Adding a vendor
// is adding a package, its line in main and its proto payload.
type Vendor struct {
	// Name is how configs name the vendor, and its event subject token:
	// the enum value's name without "VENDOR_", in lower case.
	Name string
	// Title is the vendor's name for people ("ClinchPad").
	Title string
	// Enum is the vendor's value in the canonical Event.
	Enum hookstreamv1.Vendor
	// New builds the vendor's normalizer.
	New func(protovalidate.Validator) Normalizer
	// Auth lists the auth schemes the vendor can send, the one a first
	// start generates first.
	Auth []string
	// Where says where at the vendor webhooks are set up ("Settings >
	// Webhooks"), for the first-start text and the inspector.
	Where string
	// RetryKey, when set, gives a body without what the vendor changes
	// from one retry of a delivery to the next (an attempt counter), so
	// that every retry of a request that cannot be normalized keys the
	// same quarantine entry. Without it the whole body is the key.
	RetryKey func(body []byte) []byte
}

// Setup tells a new user what to enter at the vendor for a source: where,
// and which URL and credentials (it is printed once, on a first start, and
// may hold secrets).
func (v Vendor) Setup(url string, c Credentials) string {
	return "  " + v.Title + " (" + v.Where + "):\n" + SetupLines(url, c)
}

// Credentials are a source's secrets, as the setup text shows them.
type Credentials struct {
	Username, Password string // basic
	Token              string // token
	HandshakeKey       string // handshake_key
}

// Registry is the set of vendors a binary is built with, in the order
// given.
type Registry struct {
	vendors []Vendor
}

// NewRegistry checks and records vendors: names, enum values and subject
// tokens must be unique, and every field set.
func NewRegistry(vendors ...Vendor) (*Registry, error) {
	var errs []error
	names, enums := map[string]bool{}, map[hookstreamv1.Vendor]bool{}
	for _, v := range vendors {
		switch {
		case v.Name == "" || v.Title == "" || v.New == nil || v.Where == "" || len(v.Auth) == 0:
			errs = append(errs, fmt.Errorf("normalize: vendor %q is missing a field", v.Name))
		case v.Enum == hookstreamv1.Vendor_VENDOR_UNSPECIFIED || names[v.Name] || enums[v.Enum]:
			errs = append(errs, fmt.Errorf("normalize: vendor %q: enum value or name unset or taken twice", v.Name))
		case v.Name != Token(v.Enum):
			errs = append(errs, fmt.Errorf("normalize: vendor name %q must be the enum's subject token %q", v.Name, Token(v.Enum)))
		}
		for _, a := range v.Auth {
			if a != AuthBasic && a != AuthToken && a != AuthHandshakeKey {
				errs = append(errs, fmt.Errorf("normalize: vendor %q: unknown auth scheme %q", v.Name, a))
			}
		}
		names[v.Name], enums[v.Enum] = true, true
	}
	if len(vendors) == 0 {
		errs = append(errs, errors.New("normalize: no vendors"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Registry{vendors: slices.Clone(vendors)}, nil
}

// All returns the vendors in registration order.
func (r *Registry) All() []Vendor { return slices.Clone(r.vendors) }

// Lookup returns the vendor of that config name.
func (r *Registry) Lookup(name string) (Vendor, bool) {
	for _, v := range r.vendors {
		if v.Name == name {
			return v, true
		}
	}
	return Vendor{}, false
}

// Names lists the vendors' config names.
func (r *Registry) Names() []string {
	out := make([]string, len(r.vendors))
	for i, v := range r.vendors {
		out[i] = v.Name
	}
	return out
}

// tokens caches Token: it is on every append's path.
var tokens = func() map[hookstreamv1.Vendor]string {
	m := make(map[hookstreamv1.Vendor]string, len(hookstreamv1.Vendor_name))
	for n, name := range hookstreamv1.Vendor_name {
		m[hookstreamv1.Vendor(n)] = strings.ToLower(strings.TrimPrefix(name, "VENDOR_"))
	}
	return m
}()

// Token is a vendor's subject token, derived from its enum value's name
// (VENDOR_CLINCHPAD → "clinchpad"), so no list of vendors is needed to
// write or filter subjects; "unknown" for unset or unknown values.
func Token(v hookstreamv1.Vendor) string {
	if t, ok := tokens[v]; ok && v != hookstreamv1.Vendor_VENDOR_UNSPECIFIED {
		return t
	}
	return "unknown"
}

// SetupField is one value to enter at a vendor.
type SetupField struct {
	Label, Value string
	// Secret: the value holds a credential. Masked is then the value with
	// the credential replaced by "[MASKED]" when the rest of it is worth
	// reading (a URL with a token), else empty.
	Secret bool
	Masked string
}

// SetupFields lists the URL and credentials to enter at a vendor, in the
// order its forms ask for them: the URL carries a token source's token.
func SetupFields(url string, c Credentials) []SetupField {
	fields := []SetupField{{Label: "URL", Value: url}}
	if c.Token != "" {
		fields[0] = SetupField{Label: "URL", Value: url + "?token=" + c.Token, Secret: true, Masked: url + "?token=[MASKED]"}
	}
	if c.Username != "" || c.Password != "" {
		fields = append(fields, SetupField{Label: "HTTP auth username", Value: c.Username},
			SetupField{Label: "HTTP auth password", Value: c.Password, Secret: true})
	}
	if c.HandshakeKey != "" {
		fields = append(fields, SetupField{Label: "Handshake Key", Value: c.HandshakeKey, Secret: true})
	}
	return fields
}

// SetupLines renders SetupFields, one indented line each.
func SetupLines(url string, c Credentials) string {
	var b strings.Builder
	for _, f := range SetupFields(url, c) {
		fmt.Fprintf(&b, "    %s: %s\n", f.Label, f.Value)
	}
	return b.String()
}
