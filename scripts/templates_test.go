package scripts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
)

// Every built-in template passes its fixtures, and has some.
func TestTemplateFixtures(t *testing.T) {
	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if len(lib.List()) == 0 {
		t.Fatal("no built-in templates")
	}
	runner := scripting.NewRunner(scripting.Options{})
	for _, tpl := range lib.List() {
		t.Run(tpl.Name, func(t *testing.T) {
			src, err := tpl.Render(nil)
			if err != nil {
				t.Fatal(err)
			}
			fixtures, err := scripts.Fixtures(tpl.Name)
			if err != nil {
				t.Fatal(err)
			}
			if len(fixtures) < 2 {
				t.Fatalf("template %s has %d fixtures in testdata/, want at least 2", tpl.Name, len(fixtures))
			}
			for name, raw := range fixtures {
				t.Run(name, func(t *testing.T) {
					var fx engine.Fixture
					dec := json.NewDecoder(bytes.NewReader(raw))
					dec.DisallowUnknownFields()
					if err := dec.Decode(&fx); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					diffs, err := engine.CheckFixture(context.Background(), runner, tpl.Name, src, fx)
					if err != nil {
						t.Fatal(err)
					}
					for _, d := range diffs {
						t.Error(d)
					}
				})
			}
		})
	}
}

// A fixture that expects something else fails, naming the difference.
func TestFixtureMismatchIsReported(t *testing.T) {
	tpl, err := scripts.LoadDir(filepath.Join(".", "support-escalation"))
	if err != nil {
		t.Fatal(err)
	}
	src, _ := tpl.Render(nil)
	raw, err := os.ReadFile(filepath.Join("support-escalation", "testdata", "b-resolved.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx engine.Fixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	fx.Want.Patch["status"] = "closed"
	diffs, err := engine.CheckFixture(context.Background(), scripting.NewRunner(scripting.Options{}), "x", src, fx)
	if err != nil || len(diffs) != 1 || diffs[0] != `patch.status = "solved", want "closed"` {
		t.Fatalf("diffs %q %v", diffs, err)
	}
}
