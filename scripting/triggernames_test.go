package scripting

import (
	"fmt"
	"testing"
)

// A trigger evaluated on only the variables it names (OnlyNames, as a
// sandbox worker is sent them) answers what it answers on every field,
// errors included. It fails when a named variable is dropped or a missing
// one is no longer given its zero value.
func TestTriggerOnlyNamesIsInvisible(t *testing.T) {
	env := map[string]any{"labels": []string{}, "status": "", "priority": "", "title": "", "n": 0.0, "extra1": "", "extra2": 0.0}
	triggers := []string{
		`"todev" in labels`,
		`status != "closed" && priority == "high"`,
		`len(labels) > 1 || n > 3`,
		`all(labels, {# != "x"})`,
		`$env["status"] == "open"`, // reaches any variable: sent everything
		`let s = status; s == "open" && title contains "a"`,
		`upper(title) == "A" ? n > 1 : status == ""`,
		`filter(labels, # startsWith "t") | len() > 0`,
		`status == nil || n / (n - 2) > 1`,
		`extra1 == "" and "x" in labels`,
	}
	varsets := []map[string]any{
		{"labels": []any{"todev", "x"}, "status": "open", "priority": "high", "title": "a", "n": 2.0, "extra1": "e", "extra2": 5.0, "unknown": "u"},
		{"status": "closed", "title": "A", "n": 7.0, "extra2": 1.0},
		{"labels": nil, "status": nil, "priority": "high", "n": nil},
		{},
	}
	dropped := 0
	for _, src := range triggers {
		tr, err := CompileTrigger(src, env)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		all := *tr
		all.names, all.read = nil, all.vars // as before: every variable filled and copied
		for _, vars := range varsets {
			want, wantErr := all.Match(vars)
			for _, got := range []struct {
				name string
				vars map[string]any
			}{{"every field", vars}, {"only named", tr.OnlyNames(vars)}} {
				m, err := tr.Match(got.vars)
				if m != want || fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Errorf("%s on %v (%s): %v %v, want %v %v", src, vars, got.name, m, err, want, wantErr)
				}
			}
		}
		if only := tr.OnlyNames(varsets[0]); len(only) < len(varsets[0]) {
			dropped++
		} else if tr.names != nil {
			t.Errorf("%s: nothing dropped from %v", src, varsets[0])
		}
	}
	if dropped != len(triggers)-1 { // all but $env's
		t.Fatalf("%d of %d triggers were sent fewer variables", dropped, len(triggers))
	}
}
