package scripting

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

var triggerEnv = map[string]any{"labels": []string{}, "status": "", "priority": 0.0, "id": ""}

func TestTriggerMatch(t *testing.T) {
	for _, tc := range []struct {
		src  string
		vars map[string]any
		want bool
	}{
		{`"todev" in labels`, map[string]any{"labels": []any{"bug", "todev"}}, true},
		{`"todev" in labels`, map[string]any{"labels": []any{"bug"}}, false},
		{`"todev" in labels`, map[string]any{"labels": []string{"todev"}}, true},
		{`status != "closed"`, map[string]any{"status": "open"}, true},
		{`status != "closed"`, map[string]any{"status": "closed"}, false},
		{`status == "open" && priority >= 2`, map[string]any{"status": "open", "priority": int64(3)}, true},
		{`status == "open" && priority >= 2`, map[string]any{"status": "open", "priority": 1.5}, false},
		{`"todev" in labels and id startsWith "BUG-"`, map[string]any{"labels": []any{"todev"}, "id": "BUG-1"}, true},
		// Missing or nil variables take their zero value instead of failing.
		{`status != "closed"`, map[string]any{}, true},
		{`status != "closed"`, map[string]any{"status": nil}, true},
		{`"todev" in labels`, map[string]any{}, false},
		{`priority > 2 || len(labels) > 0`, nil, false},
		{``, nil, true},
		{"  \n", nil, true},
	} {
		tr, err := CompileTrigger(tc.src, triggerEnv)
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		got, err := tr.Match(tc.vars)
		if err != nil || got != tc.want {
			t.Errorf("%q on %v: got %v %v, want %v", tc.src, tc.vars, got, err, tc.want)
		}
		if tr.Source() != tc.src {
			t.Errorf("Source() = %q", tr.Source())
		}
	}
}

func TestTriggerCompileError(t *testing.T) {
	for _, tc := range []struct {
		src       string
		line, col int
		msg       string
	}{
		{`status ==`, 1, 9, "unexpected token EOF"},
		{`"x" in`, 1, 6, "unexpected token EOF"},
		{"status == \"open\" &&\n  owner == \"ann\"", 2, 3, "unknown name owner"},
		{`status`, 1, 1, "expected bool"},
		{`priority + "x" > 1`, 1, 10, "invalid operation"},
	} {
		_, err := CompileTrigger(tc.src, triggerEnv)
		se := asError(t, err)
		if se.Kind != ErrorCompile || se.Script != "trigger" || se.Line != tc.line || se.Column != tc.col || !strings.Contains(se.Message, tc.msg) {
			t.Errorf("%q: got %s %d:%d %q, want %d:%d %q", tc.src, se.Kind, se.Line, se.Column, se.Message, tc.line, tc.col, tc.msg)
		}
	}
}

func TestTriggerRuntimeError(t *testing.T) {
	tr, err := CompileTrigger(`status == "open"`, triggerEnv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Match(map[string]any{"status": 42})
	se := asError(t, err)
	if se.Kind != ErrorRuntime || se.Line != 1 || se.Column == 0 {
		t.Fatalf("got %+v", se)
	}
}

func TestTriggerConcurrent(t *testing.T) {
	tr, err := CompileTrigger(`"todev" in labels && status != "closed"`, triggerEnv)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				status := "open"
				if (g+i)%2 == 0 {
					status = "closed"
				}
				got, err := tr.Match(map[string]any{"labels": []any{"todev"}, "status": status})
				if err != nil || got != (status == "open") {
					t.Errorf("%s: %v %v", status, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestCheckTrigger(t *testing.T) {
	for _, ok := range []string{"", `"todev" in labels`, `status != "closed" && priority > 2`} {
		if err := CheckTrigger(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	var se *Error
	err := CheckTrigger(`"todev" in labels &&`)
	if !errors.As(err, &se) || se.Line != 1 || se.Column != 20 {
		t.Fatalf("syntax error: %#v", err)
	}
	if err := CheckTrigger(`"just a string"`); !errors.As(err, &se) || se.Line != 1 {
		t.Fatalf("non-bool result: %v", err)
	}
}
