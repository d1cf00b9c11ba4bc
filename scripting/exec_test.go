package scripting

import (
	"runtime"
	"testing"
)

// Compiling happens in the server: if expr's optimizer built a constant
// range such as `1..1000000000` (8 GB), it would do so right there.
func TestCompileRunsNothing(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, src := range []string{
		`len(1..1000000000) > 0`,
		`sum(1..1000000000) > 0`,
		`1000000000 in 1..1000000000`,
		`len(repeat("x", 1000000000)) > 0`,
		`len(map(1..100000000, {# * 2})) > 0`,
	} {
		if _, err := CompileTrigger(src, map[string]any{}); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if _, err := CompileRules([]Rule{{Kind: "expr", Expr: src}}); err != nil {
			t.Fatalf("rule %s: %v", src, err)
		}
		if _, err := CompileRules([]Rule{{Kind: "unique", Field: "f", Where: src}}); err != nil {
			t.Fatalf("where %s: %v", src, err)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 64<<20 {
		t.Fatalf("compiling allocated %d MiB", d>>20)
	}
}
