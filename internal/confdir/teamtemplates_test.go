package confdir

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripts"
)

func tplBody(t *testing.T, outgoing string) string {
	t.Helper()
	b := scripts.Body{Title: "Esc", Params: []scripts.Param{{Name: "project", Type: "string", Default: "ENG"}},
		Sources: scripts.Sources{"a": {"trigger": "", "outgoing": outgoing, "incoming": ""}, "b": {"trigger": "", "outgoing": "", "incoming": ""}}}
	enc, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(enc)
}

// planOf reads dir and plans it against st.
func planOf(t *testing.T, st *store.Store, dir string, opts Options) *Plan {
	t.Helper()
	f, probs, err := Read(dir)
	if err != nil || len(probs) > 0 {
		t.Fatalf("read: %v %v", err, probs)
	}
	p, err := MakePlan(context.Background(), st, newBox(t), f, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func planText(p *Plan) string {
	var b strings.Builder
	p.Print(&b)
	return b.String()
}

// Team templates and links through a folder: new versions are published,
// a changed old version is refused, sharing follows the folder, a link the
// connection's team could not use is refused by name, and a folder without
// a link keeps the store's unless --prune.
func TestTeamTemplatePlans(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			box := newBox(t)
			ops := store.Team{Name: "ops"}
			if err := st.Identity().CreateTeam(ctx, &ops); err != nil {
				t.Fatal(err)
			}
			tpl := store.TeamTemplate{TeamID: store.DefaultTeamID, Name: "esc", Title: "Esc"}
			if _, err := st.Templates().CreateTemplate(ctx, &tpl, tplBody(t, "replica.p = {{project}};"), "t", ""); err != nil {
				t.Fatal(err)
			}
			a := store.System{Name: "oa", Kind: "sql", Settings: `{}`, TeamID: ops.ID}
			bb := store.System{Name: "ob", Kind: "sql", Settings: `{}`, TeamID: ops.ID}
			for _, s := range []*store.System{&a, &bb} {
				if err := st.CreateSystem(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			conn := store.Connection{Name: "oc", SystemAID: a.ID, SystemBID: bb.ID, TeamID: ops.ID}
			if err := st.CreateConnection(ctx, &conn, nil, "t"); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if _, err := Export(ctx, st, box, dir, ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			connFile := filepath.Join(dir, "teams/ops/connections/oc/connection.json")
			setLink := func(link string) {
				raw, err := os.ReadFile(connFile)
				if err != nil {
					t.Fatal(err)
				}
				var m map[string]any
				if err := json.Unmarshal(raw, &m); err != nil {
					t.Fatal(err)
				}
				delete(m, "team_template")
				if link != "" {
					m["team_template"] = json.RawMessage(link)
				}
				out, _ := json.Marshal(m)
				if err := os.WriteFile(connFile, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			vdir := filepath.Join(dir, "teams/default/templates/esc/versions")
			// A second version in the folder, and the link: ops does not see
			// the private template, so the link is refused by name.
			if err := os.CopyFS(filepath.Join(vdir, "2"), os.DirFS(filepath.Join(vdir, "1"))); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(vdir, "2", "a.outgoing.js"), []byte("replica.p = {{project}}; // 2"), 0o644); err != nil {
				t.Fatal(err)
			}
			setLink(`{"team": "default", "name": "esc", "version": 2, "params": {"project": "OPS"}}`)
			p := planOf(t, st, dir, Options{})
			if !strings.Contains(planText(p), `team_template default/esc version 2: the template is not shared with team "ops"`) {
				t.Fatalf("plan:\n%s", planText(p))
			}
			// Shared with ops in the folder: version 2 is published, the
			// sharing set and the link made, in that order.
			if err := os.WriteFile(filepath.Join(dir, "teams/default/templates/esc/sharing.json"), []byte(`{"visibility": "shared", "teams": ["ops"]}`), 0o644); err != nil {
				t.Fatal(err)
			}
			p = planOf(t, st, dir, Options{})
			text := planText(p)
			for _, want := range []string{"~ [default] template esc: publish versions 2 to 2", "~ [default] template esc: visibility private → shared with ops",
				"~ [ops] connection oc: team template (none) → default/esc version 2"} {
				if !strings.Contains(text, want) {
					t.Fatalf("plan lacks %q:\n%s", want, text)
				}
			}
			if err := p.Apply(ctx, st); err != nil {
				t.Fatal(err)
			}
			got, err := st.GetConnection(ctx, conn.ID)
			if err != nil || got.TemplateID != tpl.ID || got.TemplateVersion != 2 || got.TemplateParams != `{"project":"OPS"}` {
				t.Fatalf("link after apply: %v %+v", err, got)
			}
			if p := planOf(t, st, dir, Options{}); len(p.Changes) != 0 || len(p.Problems) != 0 {
				t.Fatalf("second plan:\n%s", planText(p))
			}
			// A published version changed in the folder: refused.
			if err := os.WriteFile(filepath.Join(vdir, "1", "a.outgoing.js"), []byte("replica.p = 1;"), 0o644); err != nil {
				t.Fatal(err)
			}
			if text := planText(planOf(t, st, dir, Options{})); !strings.Contains(text, "teams/default/templates/esc/versions/1: differs from version 1") {
				t.Fatalf("changed version:\n%s", text)
			}
			if err := os.WriteFile(filepath.Join(vdir, "1", "a.outgoing.js"), []byte("replica.p = {{project}};"), 0o644); err != nil {
				t.Fatal(err)
			}
			// No link in the folder: kept, unless --prune.
			setLink("")
			if p := planOf(t, st, dir, Options{}); len(p.Changes) != 0 {
				t.Fatalf("a folder without the link changes it:\n%s", planText(p))
			}
			if text := planText(planOf(t, st, dir, Options{Prune: true})); !strings.Contains(text, "team template default/esc version 2 → (none)") {
				t.Fatalf("prune:\n%s", text)
			}
			// A version gap is a problem of the folder.
			if err := os.Rename(filepath.Join(vdir, "2"), filepath.Join(vdir, "3")); err != nil {
				t.Fatal(err)
			}
			if _, probs, err := Read(dir); err != nil || len(probs) != 1 || !strings.Contains(probs[0].Msg, "2 is missing") {
				t.Fatalf("gap: %v %v", err, probs)
			}
		})
	}
}
