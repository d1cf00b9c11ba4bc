package mapping_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/scripts"
	"github.com/duplexsync/duplex/scripts/mapping"
)

var update = flag.Bool("update", false, "rewrite the built-in templates' mapping directions from their mappings")

// param stands for a template parameter in a value map: Render writes the
// map as JSON, and the sentinel's JSON is then replaced by {{name}}, which
// the template fills in with the parameter's JSON-encoded value (the same
// encoding), so a connection made from the template parses back.
func param(name string) map[string]string { return map[string]string{"\x00": name} }

// templateMappings are the built-in templates' directions that are plain
// mappings, kept as mappings: go test ./scripts/mapping -update writes them.
var templateMappings = []struct {
	template, source, target string
	m                        mapping.Mapping
}{
	{"support-escalation", "b", "a", mapping.Mapping{
		From: "engineering", To: "support",
		Rows:     []mapping.Row{{Target: "status", Kind: mapping.Map, Source: "state", Map: param("status_map")}},
		Comments: mapping.Comments{Sync: true, Prefix: "[engineering] "},
	}},
	{"rt-redmine-escalation", "b", "a", mapping.Mapping{
		From: "Redmine", To: "RT",
		Rows: []mapping.Row{
			{Target: "status", Kind: mapping.Map, Source: "status", Map: param("status_map")},
			{Target: "Engineering URL", Kind: mapping.Field, Source: "url"},
		},
		Comments: mapping.Comments{Sync: true, Prefix: "[engineering] ", Private: true, PublicOnly: true},
	}},
}

func withParams(src string, m mapping.Mapping) string {
	for _, r := range m.Rows {
		if name, ok := r.Map["\x00"]; ok {
			src = strings.ReplaceAll(src, `{"\u0000":"`+name+`"}`, "{{"+name+"}}")
		}
	}
	return src
}

// TestTemplateMappings: the templates' mapping directions are what their
// mappings render (run with -update after changing Render or a mapping),
// and a connection made from the template, with the default parameters,
// opens as a mapping.
func TestTemplateMappings(t *testing.T) {
	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range templateMappings {
		t.Run(tm.template+"/"+tm.source+"_to_"+tm.target, func(t *testing.T) {
			out, err := mapping.Render(tm.m)
			if err != nil {
				t.Fatal(err)
			}
			files := map[string]string{
				tm.source + ".outgoing.js": withParams(out.Outgoing, tm.m),
				tm.target + ".incoming.js": withParams(out.Incoming, tm.m),
			}
			for name, want := range files {
				path := filepath.Join("..", tm.template, name)
				if *update {
					if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != want {
					t.Errorf("%s is not what its mapping renders (go test ./scripts/mapping -update)", path)
				}
			}
			if *update {
				return
			}
			tpl, err := lib.Get(tm.template)
			if err != nil {
				t.Fatal(err)
			}
			src, err := tpl.Render(nil)
			if err != nil {
				t.Fatal(err)
			}
			m, err := mapping.Parse(src[tm.source]["outgoing"], src[tm.target]["incoming"], src[tm.source]["trigger"])
			if err != nil {
				t.Fatalf("a connection made from the template does not open as a mapping: %v", err)
			}
			if m.Rows[0].Map["\x00"] != "" || len(m.Rows[0].Map) == 0 {
				t.Fatalf("the status map is not the parameter's default: %v", m.Rows[0].Map)
			}
		})
	}
}
