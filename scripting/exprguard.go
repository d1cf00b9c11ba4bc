package scripting

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// Limits of one trigger or rule evaluation. expr's VM checks no deadline
// and charges only the lists it builds (ranges, map, filter) to its memory
// budget; a closure over a list bound once (`let r = 1..1000; all(r,
// {all(r, {all(r, {true})})})`) runs 10⁹ steps, and `repeat`, `+` or
// `toJSON` build strings of any size. Compiled expressions are therefore
// patched (exprPatcher): every closure body counts a step, every value that
// can grow (string or list `+`, repeat, join, replace, toJSON, ...) is
// charged by size, and the built-ins that amplify check the size of their
// result before building it.
const (
	// ExprMaxSteps is how many closure steps (one per item an all, any,
	// map, filter, ... visits, nested ones multiplied) one evaluation may
	// take.
	ExprMaxSteps = 1_000_000
	// ExprTimeout is how long one evaluation may run.
	ExprTimeout = time.Second
	// ExprMemoryBudget is expr's own budget: list items the VM may create
	// (ranges, map and filter results) in one evaluation.
	ExprMemoryBudget = 1_000_000
	// ExprMaxBytes is what the strings and lists one evaluation builds may
	// add up to (strings in bytes, list items at 16 bytes); one value may
	// not exceed it either.
	ExprMaxBytes = 16 << 20
)

// ErrExprLimit is wrapped by the error of an evaluation stopped by a limit.
var ErrExprLimit = errors.New("expression limit exceeded")

const guardVar = "__guard"

// exprGuard is one evaluation's tally, passed in the environment.
type exprGuard struct {
	start time.Time
	steps int
	bytes int64
}

func newExprGuard() *exprGuard { return &exprGuard{start: time.Now()} }

// exprTimeout is ExprTimeout; only tests change it, so that a test of a
// count limit (steps, memory budget, bytes) does not race the wall clock
// on a loaded machine and a test of the deadline need not wait for it.
var exprTimeout = ExprTimeout

func (g *exprGuard) tick() error {
	if g == nil {
		return nil
	}
	g.steps++
	if g.steps > ExprMaxSteps {
		return fmt.Errorf("%w: over %d steps (nested loops over big lists?)", ErrExprLimit, ExprMaxSteps)
	}
	if g.steps&1023 == 0 && time.Since(g.start) > exprTimeout {
		return fmt.Errorf("%w: ran past its %v deadline", ErrExprLimit, exprTimeout)
	}
	return nil
}

func (g *exprGuard) charge(n int64, what string) error {
	if n > ExprMaxBytes {
		return fmt.Errorf("%w: %s: result of %d bytes, over %d", ErrExprLimit, what, n, ExprMaxBytes)
	}
	if g == nil {
		return nil
	}
	g.bytes += n
	if g.bytes > ExprMaxBytes {
		return fmt.Errorf("%w: %s: values built add up to over %d bytes", ErrExprLimit, what, ExprMaxBytes)
	}
	return nil
}

// sizeOf is the size charged for a value: its bytes for a string, 16 bytes
// an item for a list or map (their items were charged when built).
func sizeOf(v any) int64 {
	switch x := v.(type) {
	case string:
		return int64(len(x))
	case []any:
		return int64(len(x)) * 16
	case nil, bool, int, int64, float64:
		return 0
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return int64(rv.Len())
	case reflect.Slice, reflect.Array, reflect.Map:
		return int64(rv.Len()) * 16
	}
	return 0
}

// estimate is an upper bound of v's size written out (toJSON, string),
// walked until it passes limit.
func estimate(v any, limit int64, depth int) int64 {
	if depth > 64 {
		return limit + 1
	}
	switch x := v.(type) {
	case string:
		return int64(len(x))*6 + 2
	case []any:
		n := int64(2)
		for _, e := range x {
			if n += estimate(e, limit, depth+1) + 1; n > limit {
				return n
			}
		}
		return n
	case map[string]any:
		n := int64(2)
		for k, e := range x {
			if n += int64(len(k))*6 + 4 + estimate(e, limit, depth+1); n > limit {
				return n
			}
		}
		return n
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return int64(rv.Len())*6 + 2
	case reflect.Slice, reflect.Array:
		n := int64(2)
		for i := range rv.Len() {
			if n += estimate(rv.Index(i).Interface(), limit, depth+1) + 1; n > limit {
				return n
			}
		}
		return n
	case reflect.Map:
		n := int64(2)
		for it := rv.MapRange(); it.Next(); {
			if n += estimate(it.Key().Interface(), limit, depth+1) + 2 + estimate(it.Value().Interface(), limit, depth+1); n > limit {
				return n
			}
		}
		return n
	}
	return 32
}

// grows lists the built-ins whose result is charged by size.
var grows = map[string]bool{
	"repeat": true, "join": true, "replace": true, "split": true, "splitAfter": true, "toJSON": true,
	"string": true, "upper": true, "lower": true, "trim": true, "trimPrefix": true, "trimSuffix": true,
	"concat": true, "flatten": true, "toBase64": true, "fromBase64": true, "fromJSON": true, "map": true,
	"filter": true, "sort": true, "sortBy": true, "reverse": true, "uniq": true, "keys": true, "values": true,
	"toPairs": true, "groupBy": true, "take": true,
}

// exprPatcher counts a step in every closure and charges every value that
// can grow; see the limits above. used records whether it patched anything
// (else the expression needs no guard in its environment).
type exprPatcher struct{ used bool }

func guardIdent() ast.Node { return &ast.IdentifierNode{Value: guardVar} }

func (p *exprPatcher) Visit(node *ast.Node) {
	before := *node
	defer func() { p.used = p.used || *node != before }()
	switch n := (*node).(type) {
	case *ast.PredicateNode:
		// `__tick(__guard) ? body : nil` keeps the body's type for the checker.
		p.used = true
		n.Node = &ast.ConditionalNode{
			Cond: &ast.CallNode{Callee: &ast.IdentifierNode{Value: "__tick"}, Arguments: []ast.Node{guardIdent()}},
			Exp1: n.Node,
			Exp2: &ast.NilNode{},
		}
	case *ast.BinaryNode:
		if n.Operator != "+" || !mayGrow(n.Type()) {
			return
		}
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: "__size"}, Arguments: []ast.Node{guardIdent(), n}})
	case *ast.BuiltinNode:
		if grows[n.Name] {
			ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: "__size"}, Arguments: []ast.Node{guardIdent(), n}})
		}
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && grows[id.Value] {
			ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: "__size"}, Arguments: []ast.Node{guardIdent(), n}})
		}
	}
}

func mayGrow(t reflect.Type) bool {
	if t == nil { // a type error: leave it to the checker's message
		return false
	}
	switch t.Kind() {
	case reflect.String, reflect.Slice, reflect.Array, reflect.Interface:
		return true
	}
	return false
}

// exprGuardOptions are added to every trigger and rule compilation: the
// patcher, its helpers and the built-ins replaced by ones that check the
// size of their result before building it. After the compilation, the
// patcher tells whether the guard is used.
func exprGuardOptions() ([]expr.Option, *exprPatcher) {
	patcher := &exprPatcher{}
	sizeFn := func(p ...any) (any, error) {
		g, _ := p[0].(*exprGuard)
		return p[1], g.charge(sizeOf(p[1]), "value")
	}
	return []expr.Option{
		expr.Patch(patcher),
		expr.Function("__tick", func(p ...any) (any, error) {
			g, _ := p[0].(*exprGuard)
			return true, g.tick()
		}, new(func(*exprGuard) bool)),
		// Typed overloads keep the wrapped value's type for the checker.
		expr.Function("__size", sizeFn,
			new(func(*exprGuard, string) string), new(func(*exprGuard, []any) []any),
			new(func(*exprGuard, []string) []string), new(func(*exprGuard, map[string]any) map[string]any),
			new(func(*exprGuard, any) any)),
		expr.Function("repeat", func(p ...any) (any, error) {
			s, _ := p[0].(string)
			n, ok := toInt(p[1])
			if !ok || n < 0 {
				return nil, fmt.Errorf("invalid argument for repeat (expected positive integer, got %v)", p[1])
			}
			if n > 0 && int64(len(s)) > ExprMaxBytes/int64(n) {
				return nil, fmt.Errorf("%w: repeat: result over %d bytes", ErrExprLimit, ExprMaxBytes)
			}
			return strings.Repeat(s, n), nil
		}, new(func(string, int) string)),
		expr.Function("replace", func(p ...any) (any, error) {
			s, _ := p[0].(string)
			old, _ := p[1].(string)
			repl, _ := p[2].(string)
			n := int64(strings.Count(s, old))
			if int64(len(s))+n*int64(len(repl)) > ExprMaxBytes {
				return nil, fmt.Errorf("%w: replace: result over %d bytes", ErrExprLimit, ExprMaxBytes)
			}
			return strings.ReplaceAll(s, old, repl), nil
		}, new(func(string, string, string) string)),
		expr.Function("join", func(p ...any) (any, error) {
			sep := ","
			if len(p) > 1 {
				sep, _ = p[1].(string)
			}
			parts, err := stringList(p[0])
			if err != nil {
				return nil, err
			}
			n := int64(len(sep)) * int64(max(0, len(parts)-1))
			for _, s := range parts {
				if n += int64(len(s)); n > ExprMaxBytes {
					return nil, fmt.Errorf("%w: join: result over %d bytes", ErrExprLimit, ExprMaxBytes)
				}
			}
			return strings.Join(parts, sep), nil
		}, new(func([]any, string) string), new(func([]string, string) string), new(func([]any) string), new(func([]string) string)),
		expr.Function("split", func(p ...any) (any, error) { return splitGuarded(p, false) },
			new(func(string, string) []string), new(func(string, string, int) []string)),
		expr.Function("splitAfter", func(p ...any) (any, error) { return splitGuarded(p, true) },
			new(func(string, string) []string), new(func(string, string, int) []string)),
		expr.Function("toJSON", func(p ...any) (any, error) {
			if estimate(p[0], ExprMaxBytes, 0) > ExprMaxBytes {
				return nil, fmt.Errorf("%w: toJSON: result over %d bytes", ErrExprLimit, ExprMaxBytes)
			}
			b, err := json.MarshalIndent(p[0], "", "  ")
			return string(b), err
		}, new(func(any) string)),
		expr.Function("string", func(p ...any) (any, error) {
			if estimate(p[0], ExprMaxBytes, 0) > ExprMaxBytes {
				return nil, fmt.Errorf("%w: string: result over %d bytes", ErrExprLimit, ExprMaxBytes)
			}
			return fmt.Sprintf("%v", p[0]), nil
		}, new(func(any) string)),
	}, patcher
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case float64:
		return int(x), x == float64(int(x))
	}
	return 0, false
}

func stringList(v any) ([]string, error) {
	switch x := v.(type) {
	case []string:
		return x, nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("join: item %d is %T, not a string", i, e)
			}
			out[i] = s
		}
		return out, nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("join: %T is not a list", v)
}

func splitGuarded(p []any, after bool) (any, error) {
	s, _ := p[0].(string)
	sep, _ := p[1].(string)
	n := -1
	if len(p) > 2 {
		n, _ = toInt(p[2])
	}
	items := int64(strings.Count(s, sep)) + 1
	if sep == "" {
		items = int64(len(s))
	}
	if n >= 0 {
		items = min(items, int64(n))
	}
	if items*16 > ExprMaxBytes {
		return nil, fmt.Errorf("%w: split: %d items, over %d bytes", ErrExprLimit, items, ExprMaxBytes)
	}
	if after {
		return strings.SplitAfterN(s, sep, n), nil
	}
	return strings.SplitN(s, sep, n), nil
}

// compileGuarded compiles src with opts and the guard options; env, when
// not nil, gets the guard's variable declared.
func compileGuarded(src string, env map[string]any, opts ...expr.Option) (*vm.Program, bool, error) {
	if len(src) > MaxExprBytes {
		return nil, false, fmt.Errorf("%w: the expression is %d bytes; the most an expression may have is %d (16 KiB)", ErrExprTooLarge, len(src), MaxExprBytes)
	}
	return compileExpr(src, env, opts...)
}

// compileExpr is compileGuarded without the size limit, for the
// expressions of ready-made rules: generated flat (a call over quoted
// literals: no nesting that grows with the input), bounded by expr's node
// limit, and a oneOf list may hold thousands of values.
func compileExpr(src string, env map[string]any, opts ...expr.Option) (*vm.Program, bool, error) {
	gopts, patcher := exprGuardOptions()
	if env != nil {
		e := make(map[string]any, len(env)+1)
		for k, v := range env {
			e[k] = v
		}
		e[guardVar] = (*exprGuard)(nil)
		opts = append([]expr.Option{expr.Env(e)}, opts...)
	}
	// Unpatched first: its errors point where the user's mistake is (the
	// patch would wrap a mistyped `+` and move the error).
	if _, err := expr.Compile(src, opts...); err != nil {
		return nil, false, err
	}
	prog, err := expr.Compile(src, append(opts, gopts...)...)
	return prog, patcher.used, err
}

// MaxExprBytes bounds a trigger's or a rule's expression (and a unique
// rule's where), checked before expr parses it. expr's parser recurses once
// per level of nesting and counts nodes (its limit of 10,000) only once a
// level is parsed: 400,000 nested brackets, 800 KB within the API's 1 MiB
// body, overflowed the Go stack, a fatal error of the whole server on a
// trigger's save. At 16 KiB the deepest nesting is 8,000 levels, and the
// slowest forms found compile in tens of milliseconds
// (TestExprSourceLimit); the templates' longest trigger is 67 bytes.
const MaxExprBytes = 16 << 10

// ErrExprTooLarge is the cause of a compile error for an expression over
// MaxExprBytes.
var ErrExprTooLarge = errors.New("expression too large")

// runExpr evaluates prog with a fresh guard in env when the program uses
// one; env is copied then (owned is false) or changed (owned).
func runExpr(m *vm.VM, prog *vm.Program, guarded bool, env map[string]any, owned bool) (any, error) {
	m.MemoryBudget = ExprMemoryBudget
	if !guarded {
		return m.Run(prog, env)
	}
	if !owned {
		e := make(map[string]any, len(env)+1)
		for k, v := range env {
			e[k] = v
		}
		env = e
	}
	env[guardVar] = newExprGuard()
	return m.Run(prog, env)
}
