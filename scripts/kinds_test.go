package scripts_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/scripts"
)

// Each built-in names the connector kinds of its sides.
func TestBuiltinKinds(t *testing.T) {
	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"support-escalation":      {"sql", "sql"},
		"rt-redmine-escalation":   {"rt", "redmine"},
		"github-jira-todev":       {"github", "jira"},
		"zendesk-jira-escalation": {"zendesk", "jira"},
		"servicenow-azuredevops":  {"servicenow", "azuredevops"},
		"hr-it-onboarding":        {"sql", "rt"},
		"crm-erp-customers":       {"sql", "tryton"},
	}
	for _, tpl := range lib.List() {
		w, ok := want[tpl.Name]
		if !ok {
			t.Errorf("built-in %s: add its kinds to this test", tpl.Name)
			continue
		}
		if !slices.Equal(tpl.A, []string{w[0]}) || !slices.Equal(tpl.B, []string{w[1]}) {
			t.Errorf("%s: kinds %v / %v, want %v", tpl.Name, tpl.A, tpl.B, w)
		}
	}
}

func writeTemplate(t *testing.T, manifest string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tpl")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "template.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// kinds_a and kinds_b parse; absent means any kind; an empty or repeated
// name is refused.
func TestManifestKinds(t *testing.T) {
	tpl, err := scripts.LoadDir(writeTemplate(t, `{"title":"x","kinds_a":["rt","sql"],"params":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tpl.A, []string{"rt", "sql"}) || tpl.B != nil {
		t.Fatalf("kinds %v %v", tpl.A, tpl.B)
	}
	if !tpl.Fits("a", "sql") || tpl.Fits("a", "redmine") || !tpl.Fits("b", "anything") {
		t.Fatal("Fits disagrees with the lists")
	}
	err = tpl.Check("x", "a", "jira")
	var km *scripts.KindMismatchError
	if !errors.As(err, &km) || km.Side != "a" || km.Got != "jira" || !slices.Equal(km.Want, []string{"rt", "sql"}) ||
		!strings.Contains(err.Error(), "side a needs a system of kind rt or sql, got jira") {
		t.Fatalf("check: %v", err)
	}
	for _, bad := range []string{`{"kinds_b":[""]}`, `{"kinds_a":["rt","rt"]}`} {
		if _, err := scripts.LoadDir(writeTemplate(t, bad)); err == nil || !strings.Contains(err.Error(), "empty or named twice") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if err := (scripts.Body{SideKinds: scripts.SideKinds{B: []string{" "}}}).Validate(); !errors.Is(err, scripts.ErrInvalid) {
		t.Errorf("body with a blank kind: %v", err)
	}
}

// Kinds travel through an archive, and a body without them stays without.
func TestArchiveKeepsKinds(t *testing.T) {
	for _, k := range []scripts.SideKinds{{A: []string{"rt"}, B: []string{"redmine", "jira"}}, {}} {
		var buf bytes.Buffer
		if err := scripts.ExportArchive(&buf, "k", scripts.Body{Title: "k", SideKinds: k}); err != nil {
			t.Fatal(err)
		}
		_, got, err := scripts.ImportArchive(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.A, k.A) || !slices.Equal(got.B, k.B) {
			t.Fatalf("kinds %+v became %+v", k, got.SideKinds)
		}
	}
}
