package scripting

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/internal/loadscale"
)

var guardEnv = map[string]any{"subject": "", "labels": []string{}, "priority": 0.0}

// withExprTimeout sets the expression deadline for the rest of the test.
func withExprTimeout(t *testing.T, d time.Duration) {
	old := exprTimeout
	exprTimeout = d
	t.Cleanup(func() { exprTimeout = old })
}

// Hostile triggers end with an error naming the limit they hit, instead of
// running for minutes or allocating gigabytes (the process would die).
// Each case's limit counts work (steps, list items, bytes), so the same
// limit trips on every run however loaded the machine; the deadline, the
// one limit that measures wall time, is pushed out of their way (a minute:
// a count limit that stopped working fails the case on the deadline's
// message instead of hanging) and tested on its own below.
func TestHostileTriggers(t *testing.T) {
	withExprTimeout(t, time.Minute)
	for _, tc := range []struct{ name, src, msg string }{
		{"nested loops over a bound range", "let r = 1..1000; all(r, {all(r, {all(r, {true})})})", "over 1000000 steps"},
		{"nested loops over ranges", "all(1..100000, {all(1..100000, {true})})", "memory budget"},
		{"huge range", "len(1..100000000) > 0", "memory budget"},
		{"repeat of repeat", "len(repeat(repeat(subject, 30000), 1000000)) > 0", "repeat: result over"},
		{"doubling concatenation", "let a = subject + subject; let b = a + a; let c = b + b; let d = c + c; let e = d + d; let f = e + e; let g = f + f; let h = g + g; let i = h + h; let j = i + i; let k = j + j; let l = k + k; len(l + l) > 0", "over"},
		{"replace amplification", `len(replace(repeat("a", 100000), "a", repeat("b", 1000))) > 0`, "replace: result over"},
		{"values built add up", `len(map(1..10000, {repeat("x", 10000)})) > 0`, "add up"},
		{"toJSON of shared strings", `len(toJSON(map(1..1000, {subject}))) > 0`, "toJSON: result over"},
		{"split into characters", `len(split(repeat(subject, 10), "")) > 0`, "split:"},
		{"join", `len(join(map(1..200, {subject}), ",")) > 0`, "join: result over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			tr, err := CompileTrigger(tc.src, guardEnv)
			if err != nil {
				t.Fatal(err)
			}
			subject := strings.Repeat("s", 200_000)
			_, err = tr.Match(map[string]any{"subject": subject})
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("want an error with %q, got %v", tc.msg, err)
			}
			t.Logf("%v in %v", err, time.Since(start))
		})
	}
}

// The deadline stops an evaluation that no count limit stops: 737,190
// steps run to the end under a minute's deadline and are stopped under a
// nanosecond's, which the first time check (after 1,024 steps) finds
// passed on any machine.
func TestExprDeadline(t *testing.T) {
	tr, err := CompileTrigger("let r = 1..90; all(r, {all(r, {all(r, {true})})})", guardEnv)
	if err != nil {
		t.Fatal(err)
	}
	withExprTimeout(t, time.Minute)
	if ok, err := tr.Match(nil); err != nil || !ok {
		t.Fatalf("within the count limits: %v %v", ok, err)
	}
	withExprTimeout(t, time.Nanosecond)
	if _, err := tr.Match(nil); !errors.Is(err, ErrExprLimit) || !strings.Contains(err.Error(), "ran past its 1ns deadline") {
		t.Fatalf("want the deadline's ErrExprLimit, got %v", err)
	}
	// Rules go through the same guard.
	rs, err := CompileRules([]Rule{{Kind: "expr", Expr: "let r = 1..90; all(r, {all(r, {all(r, {true})})})"}})
	if err != nil {
		t.Fatal(err)
	}
	if res := rs.Check(map[string]any{}); len(res) != 1 || res[0].Passed || !strings.Contains(res[0].Error, "ran past its 1ns deadline") {
		t.Fatalf("rules: %+v", res)
	}
}

// Ordinary expressions keep their types and results.
func TestGuardedTriggersStillWork(t *testing.T) {
	for _, src := range []string{
		`all(labels, {# != "x"}) && "bug" in labels`,
		`map(labels, {upper(#)})[0] == "BUG"`,
		`sum(map([1, 2, 3], {# * 2})) == 12`,
		`split("a,b", ",")[1] == "b" && split("a,b,c", ",", 2)[1] == "b,c"`,
		`join(["a", "b"], "-") == "a-b" && join(labels) == "bug,ui"`,
		`repeat("ab", 2) == "abab" && replace("aXb", "X", "-") == "a-b"`,
		`toJSON({"a": 1}) != "" && string(1) == "1"`,
		`subject + "!" == "hi!" && len(filter(labels, {# startsWith "b"})) == 1`,
		`priority + 1 > 2`,
		`count(1..10, {# > 5}) == 5 && any(1..3, {# == 2})`,
	} {
		tr, err := CompileTrigger(src, guardEnv)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		ok, err := tr.Match(map[string]any{"subject": "hi", "labels": []any{"bug", "ui"}, "priority": 2.0})
		if err != nil || !ok {
			t.Errorf("%s: %v %v", src, ok, err)
		}
	}
	// A type error keeps its position.
	if _, err := CompileTrigger(`len(labels + 1) > 0`, guardEnv); err == nil {
		t.Fatal("want a compile error")
	}
}

// Rules go through the same guards.
func TestHostileRules(t *testing.T) {
	rs, err := CompileRules([]Rule{{Kind: "expr", Expr: "let r = 1..1000; all(r, {all(r, {all(r, {true})})})"}, {Kind: "required", Field: "title"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := rs.Check(map[string]any{"title": "x"})
	if len(res) != 2 || res[0].Passed || !strings.Contains(res[0].Error, "expression limit exceeded") || !res[1].Passed {
		t.Fatalf("got %+v", res)
	}
	if d := time.Since(start); d > loadscale.Duration(5*time.Second) {
		t.Fatalf("took %v", d)
	}
}

// TestExprSourceLimit: an expression over MaxExprBytes is a compile error
// before expr parses it, for triggers (with and without their fields),
// rules and a unique rule's where; at the limit the deepest nestings and
// longest chains compile or fail to compile without overflowing the stack
// (400,000 nested brackets did, a fatal error no recover catches).
func TestExprSourceLimit(t *testing.T) {
	n := MaxExprBytes
	atLimit := map[string]string{
		"arrays": strings.Repeat("[", n/2) + strings.Repeat("]", n/2),
		"parens": strings.Repeat("(", n/2-2) + "true" + strings.Repeat(")", n/2-2),
		"not":    strings.Repeat("!", n-4) + "true",
		"neg":    strings.Repeat("-", n-1) + "1",
		"and":    strings.Repeat("true && ", n/8-1) + "true",
	}
	for name, src := range atLimit {
		if len(src) > n {
			t.Fatalf("%s: %d bytes, over the limit", name, len(src))
		}
		_, err := CompileTrigger(src, guardEnv)
		if errors.Is(err, ErrExprTooLarge) {
			t.Fatalf("%s at the limit: %v", name, err)
		}
	}
	over := "[" + strings.Repeat(" ", n) + "]"
	checks := map[string]func() error{
		"trigger":       func() error { _, err := CompileTrigger(over, guardEnv); return err },
		"offline check": func() error { return CheckTrigger(over) },
		"rule":          func() error { _, err := CompileRules([]Rule{{Kind: "expr", Expr: over}}); return err },
		"unique where": func() error {
			_, err := CompileRules([]Rule{{Field: "email", Kind: "unique", Where: over}})
			return err
		},
	}
	for name, check := range checks {
		err := check()
		var se *Error
		if !errors.Is(err, ErrExprTooLarge) || !errors.As(err, &se) || se.Kind != ErrorCompile || !strings.Contains(se.Message, "16 KiB") {
			t.Fatalf("%s over the limit: %v; want a compile error naming the 16 KiB limit", name, err)
		}
	}
	// A ready-made rule's generated expression is flat and not limited: a
	// oneOf of 5,000 values (about 45 KB of source) compiles, as before.
	values := make([]any, 5000)
	for i := range values {
		values[i] = fmt.Sprintf("SKU-%04d", i)
	}
	rs, err := CompileRules([]Rule{{Field: "sku", Kind: "oneOf", Values: values}})
	if err != nil {
		t.Fatalf("a oneOf of 5,000 values: %v", err)
	}
	if res := rs.Check(map[string]any{"sku": "SKU-4999"}); len(res) != 1 || !res[0].Passed {
		t.Fatalf("oneOf: %+v", res)
	}
}
