package kinds_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/connectors/kinds"
)

// TestReferenceUpToDate fails when docs/connectors.md's generated settings
// tables differ from the specs: run go generate ./connectors/kinds.
func TestReferenceUpToDate(t *testing.T) {
	doc, err := os.ReadFile("../../docs/connectors.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := kinds.UpdateDoc(doc, kinds.Specs())
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(doc) {
		t.Fatal("docs/connectors.md is stale: run go generate ./connectors/kinds")
	}
}

// TestEveryKindParsesItsOwnExample: every kind has a summary and settings,
// a required setting missing is refused naming it, and the registry is the
// list of kinds.
func TestEveryKindParsesItsOwnExample(t *testing.T) {
	reg, err := kinds.Registry()
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.Kinds()) != len(kinds.All()) {
		t.Fatalf("kinds %v", reg.Kinds())
	}
	for _, s := range kinds.Specs() {
		if s.Summary == "" || len(s.Settings) == 0 {
			t.Errorf("%s: empty spec", s.Kind)
		}
		for _, st := range s.Settings {
			if st.Description == "" {
				t.Errorf("%s.%s: no description (a doc comment on the Settings field)", s.Kind, st.Name)
			}
		}
		err := reg.Validate(s.Kind, json.RawMessage(`{"no_such_key":1}`), nil)
		if err == nil || !strings.Contains(err.Error(), "no_such_key") {
			t.Errorf("%s: unknown key: %v", s.Kind, err)
		}
	}
}
