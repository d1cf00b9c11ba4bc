package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/duplexsync/duplex/scripting"
)

func TestLimitHitClassifies(t *testing.T) {
	se := func(kind, msg string) error { return &scripting.Error{Script: "s", Kind: kind, Message: msg} }
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		want string // "" = not a limit
	}{
		{"timeout", context.Background(), se(scripting.ErrorTimeout, "script deadline exceeded"), "timeout"},
		{"memory", context.Background(), se(scripting.ErrorMemory, "script used too much memory"), "memory"},
		{"a killed sandbox worker", context.Background(), se("crash", "the worker died"), "crash"},
		{"wrapped", context.Background(), fmt.Errorf("apply: %w", se(scripting.ErrorTimeout, "x")), "timeout"},
		{"expr memory budget", context.Background(), se(scripting.ErrorRuntime, "memory budget exceeded (1:5)"), "memory"},
		{"a rule over the budget", context.Background(), &RuleError{Failed: []scripting.RuleResult{{Error: "memory budget exceeded"}}}, "memory"},
		{"a rule past its deadline", context.Background(), &RuleError{Failed: []scripting.RuleResult{{Error: "script deadline exceeded"}}}, "timeout"},
		{"a rule stopped in its worker", context.Background(), &RuleError{Failed: []scripting.RuleResult{{Error: "script ran past its 1 s deadline"}}}, "timeout"},
		{"a rule killed in its worker", context.Background(), &RuleError{Failed: []scripting.RuleResult{{Error: "script exceeded its memory limit"}}}, "memory"},
		{"a rule naming a field deadline", context.Background(), &RuleError{Failed: []scripting.RuleResult{{Error: "invalid operation: deadline > 3"}}}, ""},
		{"an ordinary rule failure", context.Background(), &RuleError{Failed: []scripting.RuleResult{{Message: "must be an email"}}}, ""},
		{"runtime error", context.Background(), se(scripting.ErrorRuntime, "ReferenceError: x is not defined"), ""},
		{"compile error", context.Background(), se(scripting.ErrorCompile, "unexpected token"), ""},
		{"not a script", context.Background(), errors.New("connection refused"), ""},
		{"cut short by shutdown", cancelled, se(scripting.ErrorTimeout, "context canceled"), ""},
		{"no error", context.Background(), nil, ""},
	} {
		got, ok := limitHit(c.ctx, c.err)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%s: limitHit = %q, %v; want %q", c.name, got, ok, c.want)
		}
	}
}
