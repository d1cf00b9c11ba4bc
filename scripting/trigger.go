package scripting

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

const triggerName = "trigger"

// Trigger is a compiled boolean condition over an entity's fields. It is
// immutable and safe for concurrent use.
type Trigger struct {
	src  string
	prog *vm.Program // nil: always matches
	vars []triggerVar
	// guarded: the program counts steps and sizes in a guard it expects
	// in its environment (exprguard.go).
	guarded bool
	// names are the variables the expression names; nil when it may reach
	// any ($env). Only these are copied or sent to a worker, and read (the
	// environment's variables among them) are the only ones given a zero
	// value when missing.
	names map[string]bool
	read  []triggerVar
}

type triggerVar struct {
	name string
	zero any
}

// CompileTrigger compiles src once against a typed environment: env maps
// each variable name to a zero value of its type, e.g.
// {"labels": []string{}, "status": "", "priority": 0.0}. Unknown names and
// type errors are compile errors. An empty src always matches. The error is
// an *Error of kind "compile" with the position in src.
func CompileTrigger(src string, env map[string]any) (*Trigger, error) {
	compilations.Add(1)
	t := &Trigger{src: src}
	if strings.TrimSpace(src) == "" {
		return t, nil
	}
	prog, guarded, err := compileGuarded(src, env, expr.AsBool())
	if err != nil {
		return nil, exprError(ErrorCompile, err)
	}
	t.prog, t.guarded, t.names = prog, guarded, exprNames(src)
	for name, zero := range env {
		t.vars = append(t.vars, triggerVar{name, zero})
		if t.names == nil || t.names[name] {
			t.read = append(t.read, triggerVar{name, zero})
		}
	}
	return t, nil
}

// exprNames returns the identifiers src names, or nil when it may reach
// its environment other than by a name ($env, expr's environment as a
// value). Builtins and closures' variables come along; they match no field.
func exprNames(src string) map[string]bool {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil
	}
	v := &nameScan{names: map[string]bool{}}
	ast.Walk(&tree.Node, v)
	if v.dynamic {
		return nil
	}
	return v.names
}

type nameScan struct {
	names   map[string]bool
	dynamic bool
}

func (v *nameScan) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok {
		v.dynamic = v.dynamic || id.Value == "$env"
		v.names[id.Value] = true
	}
}

// OnlyNames is vars less the variables the trigger does not name, or vars
// itself when it may reach any or names them all. The trigger cannot tell
// the difference; what it cannot read is neither copied for a guarded run
// nor sent to a sandbox worker (an entity's fields are all variables, and
// a tracker's issue may have hundreds).
func (t *Trigger) OnlyNames(vars map[string]any) map[string]any {
	if t.prog == nil || t.names == nil {
		return vars
	}
	n := 0
	for k := range vars {
		if t.names[k] {
			n++
		}
	}
	if n == len(vars) {
		return vars
	}
	out := make(map[string]any, n+1) // +1: a guarded run adds its guard
	for k, v := range vars {
		if t.names[k] {
			out[k] = v
		}
	}
	return out
}

// Source returns the source given to CompileTrigger.
func (t *Trigger) Source() string { return t.src }

// expr VMs keep their stacks between runs; reusing them saves allocations.
var exprVMs = sync.Pool{New: func() any { return new(vm.VM) }}

// Match evaluates the trigger against vars. A variable of the environment
// that is missing from vars or nil takes its zero value ("" for a string,
// an empty list, 0), so `status != "closed"` is true and `"x" in labels`
// false rather than a type error. Lists may be []any at run time even when
// the environment declared []string. Runtime errors come back as an *Error
// of kind "runtime"; expr recovers its own panics.
func (t *Trigger) Match(vars map[string]any) (bool, error) {
	if t.prog == nil {
		return true, nil
	}
	env, owned := vars, false
	if t.guarded { // its run adds the guard to a copy: copy only what it names
		if env = t.OnlyNames(vars); len(env) < len(vars) {
			owned = true
		}
	}
	for _, v := range t.read {
		if x, ok := env[v.name]; !ok || x == nil {
			env, owned = t.fill(env), true
			break
		}
	}
	m := exprVMs.Get().(*vm.VM)
	out, err := runExpr(m, t.prog, t.guarded, env, owned)
	exprVMs.Put(m)
	if err != nil {
		return false, exprError(ErrorRuntime, err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, &Error{Script: triggerName, Kind: ErrorRuntime, Message: fmt.Sprintf("result is %T, not bool", out)}
	}
	return b, nil
}

func (t *Trigger) fill(vars map[string]any) map[string]any {
	env := make(map[string]any, len(vars)+len(t.read))
	for k, v := range vars {
		env[k] = v
	}
	for _, v := range t.read {
		if env[v.name] == nil {
			env[v.name] = v.zero
		}
	}
	return env
}

func exprError(kind string, err error) *Error {
	e := &Error{Script: triggerName, Kind: kind, Message: err.Error(), err: err}
	if kind == ErrorRuntime && errors.Is(err, ErrExprLimit) {
		// A limit, not a mistake: the kind says which, so it survives the
		// trip from a sandbox worker and quarantine counts it.
		e.Kind, e.err = ErrorMemory, errors.Join(ErrMemory, err)
		if msg := err.Error(); strings.Contains(msg, "steps") || strings.Contains(msg, "deadline") {
			e.Kind, e.err = ErrorTimeout, errors.Join(ErrTimeout, err)
		}
	}
	var fe *file.Error
	if errors.As(err, &fe) {
		e.Message = fe.Message
		if fe.Line > 0 {
			// expr counts columns from 0, in code points.
			e.Line, e.Column = fe.Line, fe.Column+1
		}
	}
	if e.Line == 0 && kind == ErrorCompile {
		// e.g. "expected bool": about the whole expression, so point at its start.
		e.Line, e.Column = 1, 1
	}
	return e
}

// CheckTrigger compiles src without knowing the fields it will see, for
// offline checks (`duplex validate`): syntax errors and a result that cannot
// be a bool are caught, with their position; unknown names are allowed
// because the system's schema is not at hand. An empty src is valid.
func CheckTrigger(src string) error {
	if strings.TrimSpace(src) == "" {
		return nil
	}
	if _, _, err := compileGuarded(src, nil, expr.AsBool()); err != nil {
		return exprError(ErrorCompile, err)
	}
	return nil
}
