package scripting

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Compiling a trigger or rule happens in the server's process, which must
// never run anything a user wrote. expr's optimizer folds constants at
// compile time; in expr 1.17 it folds ranges arithmetically (sum, in) and
// never builds them, so it stays on: TestCompileRunsNothing checks that
// compiling `len(1..1000000000)` and the like allocates nothing much.

// ErrorCrash is the Error.Kind of a run whose sandbox worker process died
// for a reason other than its memory limit (a bug, a signal); the script
// may be the cause, so it counts like a limit.
const ErrorCrash = "crash"

// ErrCrash is wrapped by every *Error of kind "crash".
var ErrCrash = errors.New("script crashed its sandbox worker")

// NewError builds an *Error, e.g. from what a sandbox worker reported; it
// wraps ErrTimeout, ErrMemory or ErrCrash by kind, like the Runner's own.
func NewError(script, kind string, line, col, rule int, msg string) *Error {
	e := &Error{Script: script, Kind: kind, Line: line, Column: col, Rule: rule, Message: msg}
	switch kind {
	case ErrorTimeout:
		e.err = ErrTimeout
	case ErrorMemory:
		e.err = ErrMemory
	case ErrorCrash:
		e.err = ErrCrash
	}
	return e
}

// DeadlineMessage is the message of a run stopped at its deadline d.
func DeadlineMessage(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("script ran past its %d ms deadline", d.Milliseconds())
	}
	return "script ran past its " + strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s deadline"
}

// MemoryMessage is the message of a run stopped by a memory limit.
const MemoryMessage = "script exceeded its memory limit"

// Env returns the typed environment the trigger was compiled with (a zero
// value per variable); nil for an empty trigger.
func (t *Trigger) Env() map[string]any {
	if t.prog == nil {
		return nil
	}
	env := make(map[string]any, len(t.vars))
	for _, v := range t.vars {
		env[v.name] = v.zero
	}
	return env
}

// Source returns the rules as compiled (kinds filled in), from which
// CompileRules builds the same list again.
func (rs *Rules) Source() []Rule {
	if rs == nil {
		return nil
	}
	out := make([]Rule, len(rs.rules))
	for i, r := range rs.rules {
		out[i] = r.Rule
	}
	return out
}

// Lookup is one search a unique rule needs in the target.
type Lookup struct{ Field, Value string }

// UniqueLookups lists the searches CheckUnique would make for replica, so
// that a caller can make them (in the server) before the rules' where
// expressions run (in a sandbox worker) with FoundIn.
func (rs *Rules) UniqueLookups(replica map[string]any) []Lookup {
	var out []Lookup
	for _, r := range rs.rules {
		if r.Kind != "unique" {
			continue
		}
		value, ok, err := uniqueText(replica[r.Field])
		if err != nil || !ok {
			continue
		}
		field := r.TargetField
		if field == "" {
			field = r.Field
		}
		out = append(out, Lookup{field, value})
	}
	return out
}

// FoundIn is a FindFunc over lookups made beforehand (see UniqueLookups).
func FoundIn(found map[Lookup][]Found) FindFunc {
	return func(field, value string) ([]Found, error) {
		f, ok := found[Lookup{field, value}]
		if !ok {
			return nil, fmt.Errorf("scripting: no lookup of %s %q was made", field, value)
		}
		return f, nil
	}
}

// The methods below make the Runner one of the engine's script executors
// (engine.Scripts), the in-process one: for unit tests and the command
// line. The server runs scripts in sandbox workers (scripting/sandbox).

// Match evaluates a trigger (meta only names the connection).
func (r *Runner) Match(ctx context.Context, t *Trigger, vars map[string]any, meta Meta) (bool, error) {
	return t.Match(vars)
}

// Check evaluates the rules but the unique ones on a replica.
func (r *Runner) Check(ctx context.Context, rs *Rules, replica map[string]any, meta Meta) ([]RuleResult, error) {
	return rs.Check(replica), nil
}

// CheckUnique evaluates the unique rules on a replica, find searching the
// target.
func (r *Runner) CheckUnique(ctx context.Context, rs *Rules, replica map[string]any, meta Meta, find FindFunc) ([]RuleResult, error) {
	return rs.CheckUnique(replica, find)
}
