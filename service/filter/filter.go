// Package filter compiles the CEL filters clients pass to Subscribe and
// ListEvents, and extracts the coarse conditions that can run inside NATS.
package filter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// costLimit bounds the work one evaluation may do, so a filter cannot make
// a stream spin (a comprehension over a long message history, say).
const costLimit = 100_000

// constTimeout bounds the evaluation, at compile time, of each part of a
// filter that does not depend on the event.
const constTimeout = time.Second

// Compiler compiles filters against the Event type. Building the CEL
// environment is costly, so make one and share it; it is safe for
// concurrent use.
type Compiler struct {
	env *cel.Env
}

// NewCompiler builds the CEL environment: one variable, `event`, of type
// hookstream.v1.Event, plus the standard library and its string extensions.
func NewCompiler() (*Compiler, error) {
	env, err := cel.NewEnv(
		cel.Types(&hookstreamv1.Event{}),
		cel.Variable("event", cel.ObjectType("hookstream.v1.Event")),
	)
	if err != nil {
		return nil, fmt.Errorf("filter: CEL environment: %w", err)
	}
	return &Compiler{env: env}, nil
}

// Filter is a compiled, type-checked filter.
type Filter struct {
	expr string
	prg  cel.Program
	// Pushdown holds the conditions every matching event meets that the
	// log can check by subject.
	Pushdown Pushdown
}

// Pushdown is a set of equalities on subject tokens; empty means any.
type Pushdown struct {
	Source         string
	Vendor         hookstreamv1.Vendor
	Entity, Action string
}

// Compile parses and type-checks expr; it must yield a bool. An empty expr
// matches everything. Errors describe the problem for the client.
func (c *Compiler) Compile(expr string) (*Filter, error) {
	if strings.TrimSpace(expr) == "" {
		return &Filter{}, nil
	}
	checked, iss := c.env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("invalid filter: %s", iss.Err())
	}
	if !checked.OutputType().IsExactType(types.BoolType) {
		return nil, fmt.Errorf("invalid filter: it yields %s, it must yield bool", checked.OutputType())
	}
	// OptOptimize folds constants and compiles constant regular
	// expressions now, so `event.id.matches("(")` fails here and not on
	// every event.
	prg, err := c.env.Program(checked, cel.CostLimit(costLimit), cel.InterruptCheckFrequency(100),
		cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("invalid filter: %w", err)
	}
	if err := c.checkClosed(checked); err != nil {
		return nil, fmt.Errorf("invalid filter: %w", err)
	}
	f := &Filter{expr: expr, prg: prg}
	native := checked.NativeRep()
	collect(native, native.Expr(), &f.Pushdown)
	return f, nil
}

// Empty reports whether the filter matches everything.
func (f *Filter) Empty() bool { return f.prg == nil }

// String returns the filter's source text.
func (f *Filter) String() string { return f.expr }

// Match evaluates the filter on ev. An evaluation error (say, the cost
// limit) is returned so the caller can end the stream with a reason.
func (f *Filter) Match(ev *hookstreamv1.Event) (bool, error) {
	return f.MatchWithin(context.Background(), ev, nil)
}

// ErrBudgetSpent is returned (wrapped) by MatchWithin once a request's
// evaluation budget is used up.
var ErrBudgetSpent = errors.New("the request's filter evaluation budget is spent")

// Budget is what one request may spend evaluating a filter over many
// events, in CEL cost units, on top of each evaluation's own limit. It is
// not safe for concurrent use.
type Budget struct {
	left uint64
}

// NewBudget returns a budget of cost units.
func NewBudget(cost uint64) *Budget { return &Budget{left: cost} }

// MatchWithin evaluates the filter on ev, charging its cost to b (nil for
// none). It stops early, with ctx's error wrapped, when ctx ends, even in
// the middle of one evaluation; and it returns ErrBudgetSpent once b is
// used up.
func (f *Filter) MatchWithin(ctx context.Context, ev *hookstreamv1.Event, budget *Budget) (bool, error) {
	if f.prg == nil {
		return true, nil
	}
	if budget != nil && budget.left == 0 {
		return false, ErrBudgetSpent
	}
	if ctx.Err() != nil {
		return false, fmt.Errorf("filter evaluation stopped: %w", context.Cause(ctx))
	}
	out, det, err := f.prg.ContextEval(ctx, map[string]any{"event": ev})
	if budget != nil && det != nil && det.ActualCost() != nil {
		budget.left -= min(budget.left, *det.ActualCost())
	}
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("filter evaluation stopped: %w", context.Cause(ctx))
		}
		return false, fmt.Errorf("filter %q failed on event %s: %w", f.expr, ev.GetId(), err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, errors.New("filter did not yield a bool")
	}
	return b, nil
}

// checkClosed evaluates now every largest part of the filter that does not
// depend on the event (`1/0 == 1`, `[1, 2][5]`, a comprehension over
// constant ranges) and rejects the filter when one fails or exceeds the
// cost limit: it would fail the same way on every event.
func (c *Compiler) checkClosed(checked *cel.Ast) error {
	a := checked.NativeRep()
	var firstErr error
	try := func(e ast.Expr) {
		if firstErr != nil || !worthEvaluating(e) {
			return
		}
		src, err := cel.ExprToString(e, a.SourceInfo())
		if err != nil {
			// Comprehensions have no text form here: name where they start.
			loc := a.SourceInfo().GetStartLocation(e.ID())
			src = fmt.Sprintf("the part at line %d, column %d", loc.Line(), loc.Column()+1)
		}
		pb, err := ast.ToProto(ast.NewCheckedAST(ast.NewAST(e, a.SourceInfo()), a.TypeMap(), a.ReferenceMap()))
		if err != nil {
			return // leave it to run time
		}
		sub := cel.CheckedExprToAst(pb)
		prg, err := c.env.Program(sub, cel.CostLimit(costLimit), cel.InterruptCheckFrequency(100))
		if err != nil {
			firstErr = fmt.Errorf("%s: %w", src, err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), constTimeout)
		defer cancel()
		if _, _, err := prg.ContextEval(ctx, map[string]any{}); err != nil {
			firstErr = fmt.Errorf("%s fails whatever the event: %w", src, err)
		}
	}
	// free reports whether e refers to a variable not bound inside it (the
	// event, or a comprehension variable of an enclosing comprehension),
	// evaluating the closed children of an expression that is not closed.
	var free func(e ast.Expr, bound map[string]bool) bool
	free = func(e ast.Expr, bound map[string]bool) bool {
		if ref, ok := a.ReferenceMap()[e.ID()]; ok && ref.Value != nil {
			return false // a constant the checker resolved, e.g. an enum value
		}
		var kids []ast.Expr
		var scoped []bool // kids[i] sees the comprehension's variables
		switch e.Kind() {
		case ast.IdentKind:
			return true // unresolved: the event or a comprehension variable
		case ast.ComprehensionKind:
			comp := e.AsComprehension()
			kids = []ast.Expr{comp.IterRange(), comp.AccuInit(), comp.LoopCondition(), comp.LoopStep(), comp.Result()}
			scoped = []bool{false, false, true, true, true}
		default:
			for _, n := range ast.NavigateExpr(a, e).Children() {
				kids = append(kids, n)
				scoped = append(scoped, false)
			}
		}
		inner := bound
		if e.Kind() == ast.ComprehensionKind {
			comp := e.AsComprehension()
			inner = map[string]bool{comp.IterVar(): true, comp.AccuVar(): true}
			if comp.HasIterVar2() {
				inner[comp.IterVar2()] = true
			}
			for k := range bound {
				inner[k] = true
			}
		}
		isFree := make([]bool, len(kids))
		anyFree := false
		for i, k := range kids {
			b := bound
			if scoped[i] {
				b = inner
			}
			isFree[i] = freeIn(free, k, b)
			anyFree = anyFree || isFree[i]
		}
		if anyFree && len(bound) == 0 {
			for i, k := range kids {
				if !isFree[i] && !scoped[i] {
					try(k)
				}
			}
		}
		return anyFree
	}
	if !free(a.Expr(), nil) {
		try(a.Expr())
	}
	return firstErr
}

// freeIn is free for e, except that an identifier bound by an enclosing
// comprehension is not free.
func freeIn(free func(ast.Expr, map[string]bool) bool, e ast.Expr, bound map[string]bool) bool {
	if e.Kind() == ast.IdentKind && bound[e.AsIdent()] {
		return false
	}
	return free(e, bound)
}

// worthEvaluating skips literals and bare names, which cannot fail.
func worthEvaluating(e ast.Expr) bool {
	switch e.Kind() {
	case ast.LiteralKind, ast.IdentKind, ast.UnspecifiedExprKind:
		return false
	}
	return true
}

// collect walks the top-level conjunction of e and records equalities the
// log can check by subject: event.source == "x", event.vendor == V,
// event.type == "a.b", and event.type.startsWith("a.") — each only when it
// must hold for every match. Anything else is left to CEL.
func collect(a *ast.AST, e ast.Expr, p *Pushdown) {
	if e.Kind() != ast.CallKind {
		return
	}
	call := e.AsCall()
	switch call.FunctionName() {
	case operators.LogicalAnd:
		for _, arg := range call.Args() {
			collect(a, arg, p)
		}
	case operators.Equals:
		args := call.Args()
		for i := range 2 {
			field, val := eventField(args[i]), args[1-i]
			switch field {
			case "source":
				if s, ok := stringLit(val); ok && validToken(s) {
					p.Source = s
				}
			case "vendor":
				if v, ok := enumValue(a, val); ok && v > 0 {
					p.Vendor = hookstreamv1.Vendor(v)
				}
			case "type":
				if s, ok := stringLit(val); ok {
					if entity, action, ok := strings.Cut(s, "."); ok && validToken(entity) && validToken(action) {
						p.Entity, p.Action = entity, action
					}
				}
			}
		}
	case "startsWith":
		if !call.IsMemberFunction() || eventField(call.Target()) != "type" || len(call.Args()) != 1 {
			return
		}
		if s, ok := stringLit(call.Args()[0]); ok {
			// Only the entity can be pushed down: "deal.up" leaves a partial
			// action, which CEL checks.
			if entity, _, ok := strings.Cut(s, "."); ok && validToken(entity) && p.Entity == "" {
				p.Entity = entity
			}
		}
	}
}

// eventField returns "f" for the expression `event.f`.
func eventField(e ast.Expr) string {
	if e.Kind() != ast.SelectKind {
		return ""
	}
	sel := e.AsSelect()
	if sel.IsTestOnly() || sel.Operand().Kind() != ast.IdentKind || sel.Operand().AsIdent() != "event" {
		return ""
	}
	return sel.FieldName()
}

func stringLit(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().Value().(string)
	return s, ok
}

// enumValue reads an enum constant: an int literal, or a reference the
// checker resolved to a constant (hookstream.v1.Vendor.VENDOR_CLOSER).
func enumValue(a *ast.AST, e ast.Expr) (int64, bool) {
	if e.Kind() == ast.LiteralKind {
		v, ok := e.AsLiteral().Value().(int64)
		return v, ok
	}
	if ref, ok := a.ReferenceMap()[e.ID()]; ok && ref.Value != nil {
		v, ok := ref.Value.Value().(int64)
		return v, ok
	}
	return 0, false
}

// validToken reports whether s can stand as one NATS subject token as we
// write them (source names and snake-case type parts).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
