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

// rt-redmine-escalation's rt_status_map (off by default) sends a support
// decision to Redmine, but never undoes a status Redmine itself sent.
func TestRTStatusMap(t *testing.T) {
	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := lib.Get("rt-redmine-escalation")
	if err != nil {
		t.Fatal(err)
	}
	runner := scripting.NewRunner(scripting.Options{})
	fixture := func(rtStatus, redmineStatus, wantPatch string) string {
		return `{"side": "a",
  "entity": {"id": "12", "key": "#12", "url": "https://rt.example/Ticket/Display.html?id=12",
    "fields": {"subject": "VPN", "description": "d", "status": "` + rtStatus + `", "priority": 45, "Escalation": "todev"}, "comments": []},
  "target": {"id": "40", "key": "#40",
    "fields": {"subject": "VPN", "description": "d\n\nEscalated from RT ticket #12: https://rt.example/Ticket/Display.html?id=12", "priority": "High", "status": "` + redmineStatus + `"}},
  "want": {"matched": true,
    "replica": {"subject": "VPN", "description": "d", "priority": 45, "ticket": "#12", "ticket_url": "https://rt.example/Ticket/Display.html?id=12", "comments": [], "status": "` + rtStatus + `"},
    "patch": ` + wantPatch + `}}`
	}
	for _, tc := range []struct {
		name, rt, redmine, patch string
	}{
		{"a rejection reaches Redmine", "rejected", "In Progress", `{"status": "Rejected"}`},
		{"a status Redmine sent is left alone", "resolved", "Closed", `{}`},
		{"an unlisted RT status is left alone", "stalled", "In Progress", `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := tpl.Render(map[string]any{"rt_status_map": map[string]any{"rejected": "Rejected", "resolved": "Resolved"}})
			if err != nil {
				t.Fatal(err)
			}
			var fx engine.Fixture
			if err := json.Unmarshal([]byte(fixture(tc.rt, tc.redmine, tc.patch)), &fx); err != nil {
				t.Fatal(err)
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
}
