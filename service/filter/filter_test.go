package filter_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/filter"
)

func TestCompileErrors(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

// Filters that fail on every event, whatever it holds, are refused when
// they are compiled instead of failing on each event at run time.
func TestCompileRefusesFiltersThatAlwaysFail(t *testing.T) {
	t.Parallel()
	c, err := filter.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	for expr, want := range map[string]string{
		`event.id.matches("(")`: "missing closing )",
		`1/0 == 1`:              "division by zero",
		`event.type == "deal.updated" && 1/0 == 1`:                    "division by zero",
		`event.type == "x" || [1, 2][5] == 1`:                         "index out of bounds",
		`event.changes.exists(c, c.field == "a") && "x".matches("[")`: "missing closing ]",
		// A constant comprehension over ranges too costly for any event.
		`[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19].all(a, [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19].all(b, [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19].all(c, [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19].all(d, a + b + c + d >= 0)))) && event.type == "never"`: "cost limit",
	} {
		_, err := c.Compile(expr)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Compile(%q) error = %v, want it to mention %q", expr, err, want)
		}
	}
	// Parts that depend on the event, and closed parts that succeed, pass.
	for _, expr := range []string{
		`event.changes.exists(c, c.field == "stage_id")`,
		`event.changes.all(c, [1, 2, 3].exists(x, x == 2))`,
		`event.vendor == hookstream.v1.Vendor.VENDOR_CLOSER && 2 / 1 == 2`,
		`event.id.matches("^[0-9a-f]+$")`,
		`size(event.changes) < 10 / 2`,
	} {
		if _, err := c.Compile(expr); err != nil {
			t.Errorf("Compile(%q): %v", expr, err)
		}
	}
}

// One request's evaluations share a budget: a costly filter stops with
// ErrBudgetSpent after a bounded amount of work, and evaluation stops when
// the request's context ends, even inside one costly evaluation.
func TestBudgetAndCancellation(t *testing.T) {
	t.Parallel()
	c, err := filter.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	// Costly per event (about 1,000 units over these changes), never true.
	f, err := c.Compile(`event.changes.all(a, event.changes.all(b, a.field != b.field || a.field == b.field)) && event.type == "never"`)
	if err != nil {
		t.Fatal(err)
	}
	ev := &hookstreamv1.Event{Type: "deal.updated"}
	for i := range 20 {
		ev.Changes = append(ev.Changes, &hookstreamv1.Change{Field: string(rune('a' + i))})
	}
	budget := filter.NewBudget(50_000)
	n := 0
	for ; n < 10_000; n++ {
		if _, err := f.MatchWithin(context.Background(), ev, budget); err != nil {
			if !errors.Is(err, filter.ErrBudgetSpent) {
				t.Fatalf("after %d events: %v, want ErrBudgetSpent", n, err)
			}
			break
		}
	}
	if n == 0 || n >= 10_000 {
		t.Fatalf("budget spent after %d evaluations, want a bounded number above 0", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.MatchWithin(ctx, ev, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("evaluation under a canceled context: %v, want context.Canceled", err)
	}
}
