package filter_test

import (
	"strings"
	"testing"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/filter"
)

func TestCompileErrors(t *testing.T) {
	c, err := filter.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	for expr, want := range map[string]string{
		`event.vendr == 1`:       "undefined field 'vendr'",
		`event.type`:             "must yield bool",
		`event.type.startsWith(`: "Syntax error",
		`event.subject.id == 42`: "no matching overload",
		`nonsense`:               "undeclared reference",
	} {
		_, err := c.Compile(expr)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Compile(%q) error = %v, want it to mention %q", expr, err, want)
		}
	}
}

func TestMatchAndPushdown(t *testing.T) {
	c, err := filter.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	deal := &hookstreamv1.Event{Source: "pd-eu", Vendor: hookstreamv1.Vendor_VENDOR_PIPEDRIVE, Type: "deal.updated",
		Subject: &hookstreamv1.Subject{Kind: "deal", Id: "4812"}, Contact: &hookstreamv1.Contact{Email: "jane@acme.com"},
		Changes: []*hookstreamv1.Change{{Field: "stage_id"}}}
	lead := &hookstreamv1.Event{Source: "cp", Vendor: hookstreamv1.Vendor_VENDOR_CLINCHPAD, Type: "lead.moved"}
	for _, tc := range []struct {
		expr     string
		deal     bool
		lead     bool
		pushdown filter.Pushdown
	}{
		{``, true, true, filter.Pushdown{}},
		{`event.vendor == hookstream.v1.Vendor.VENDOR_PIPEDRIVE`, true, false, filter.Pushdown{Vendor: hookstreamv1.Vendor_VENDOR_PIPEDRIVE}},
		{`event.source == "cp" && event.type == "lead.moved"`, false, true, filter.Pushdown{Source: "cp", Entity: "lead", Action: "moved"}},
		{`event.type.startsWith("deal.") && event.subject.id == "4812"`, true, false, filter.Pushdown{Entity: "deal"}},
		{`event.type.startsWith("deal.up")`, true, false, filter.Pushdown{Entity: "deal"}},
		// A disjunction cannot be pushed down as one subject; CEL decides.
		{`event.type == "deal.updated" || event.type == "lead.moved"`, true, true, filter.Pushdown{}},
		{`!(event.vendor == hookstream.v1.Vendor.VENDOR_PIPEDRIVE)`, false, true, filter.Pushdown{}},
		{`2 == event.vendor`, true, false, filter.Pushdown{Vendor: hookstreamv1.Vendor_VENDOR_PIPEDRIVE}},
		// Examples from the README.
		{`event.contact.email.endsWith("@acme.com")`, true, false, filter.Pushdown{}},
		{`event.changes.exists(c, c.field == "stage_id")`, true, false, filter.Pushdown{}},
	} {
		f, err := c.Compile(tc.expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tc.expr, err)
		}
		if got := f.Pushdown; got != tc.pushdown {
			t.Errorf("%q: pushdown %+v, want %+v", tc.expr, got, tc.pushdown)
		}
		for _, c := range []struct {
			ev   *hookstreamv1.Event
			want bool
		}{{deal, tc.deal}, {lead, tc.lead}} {
			got, err := f.Match(c.ev)
			if err != nil || got != c.want {
				t.Errorf("%q on %s: %v, %v; want %v", tc.expr, c.ev.GetType(), got, err, c.want)
			}
		}
	}
}
