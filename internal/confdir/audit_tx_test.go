package confdir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/migrations"
)

// apply writes each change with its audit entry, through internal/service,
// in its one transaction: when the
// audit log refuses one kind of create, the apply fails and the store
// keeps nothing of it, not even what was created (and audited) before it
// (issue 18).
func TestApplyWithoutAuditKeepsNothing(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			src, srcBox := b.Open(t), newBox(t)
			seed(t, src, srcBox)
			tpl := store.TeamTemplate{TeamID: store.DefaultTeamID, Name: "esc", Title: "Esc", Visibility: store.VisibilityPrivate}
			if _, err := src.Templates().CreateTemplate(context.Background(), &tpl, tplBody(t, "replica.x = 1;"), "test", ""); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			exportTo(t, src, srcBox, dir)

			for _, action := range []string{"team.create", "template.publish", "system.create", "connection.create"} {
				t.Run(action, func(t *testing.T) {
					dst, dstBox := b.Open(t), newBox(t)
					tables := []string{"teams", "templates", "template_versions", "systems", "connections", "script_versions", "audit_log"}
					before := map[string]int64{}
					for _, table := range tables {
						before[table] = count(t, dst, table)
					}
					p := plan(t, dst, dstBox, dir, Options{})
					creates := 0
					for _, c := range p.Changes {
						if c.action == action {
							creates++
						}
					}
					if creates == 0 {
						t.Fatalf("the plan makes no %s: %+v", action, p.Changes)
					}
					testdb.RefuseAudits(t, dst, action)
					if err := p.Apply(context.Background(), dst); err == nil || !strings.Contains(err.Error(), "audit refused by the test") {
						t.Fatalf("apply with the %s audit refused: %v", action, err)
					}
					for _, table := range tables {
						if got := count(t, dst, table); got != before[table] {
							t.Errorf("%s: %d rows after a failed apply, %d before", table, got, before[table])
						}
					}
				})
			}
		})
	}
}

// Template versions and sharing, template links and connection deletes
// also go through internal/service: each is refused whole when its audit
// entry is, and the entries read as the API's (issue 18).
func TestApplyTemplatesLinksDeletesAudited(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st, box := b.Open(t), newBox(t)
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
			var conns []store.Connection
			for _, name := range []string{"oc", "gone"} {
				c := store.Connection{Name: name, SystemAID: a.ID, SystemBID: bb.ID, TeamID: ops.ID}
				if err := st.CreateConnection(ctx, &c, nil, "t"); err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
			}
			dir := t.TempDir()
			if _, err := Export(ctx, st, box, dir, ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			vdir := filepath.Join(dir, "teams/default/templates/esc/versions")
			if err := os.CopyFS(filepath.Join(vdir, "2"), os.DirFS(filepath.Join(vdir, "1"))); err != nil {
				t.Fatal(err)
			}
			writeTest(t, filepath.Join(vdir, "2", "a.outgoing.js"), "replica.p = {{project}}; // 2")
			writeTest(t, filepath.Join(dir, "teams/default/templates/esc/sharing.json"), `{"visibility": "shared", "teams": ["ops"]}`)
			editJSON(t, filepath.Join(dir, "teams/ops/connections/oc/connection.json"), func(m map[string]any) {
				m["team_template"] = map[string]any{"team": "default", "name": "esc", "version": 2, "params": map[string]any{"project": "OPS"}}
				m["template"] = "desk-escalation"
			})
			if err := os.RemoveAll(filepath.Join(dir, "teams/ops/connections/gone")); err != nil {
				t.Fatal(err)
			}
			p := planOf(t, st, dir, Options{Prune: true})
			tables := []string{"templates", "template_versions", "template_shares", "connections", "audit_log"}
			before := map[string]int64{}
			for _, table := range tables {
				before[table] = count(t, st, table)
			}
			for _, action := range []string{"template.publish", "template.share", "connection.template", "connection.delete"} {
				n := 0
				for _, c := range p.Changes {
					if c.action == action {
						n++
					}
				}
				if n == 0 {
					t.Fatalf("the plan makes no %s:\n%s", action, planText(p))
				}
				testdb.RefuseAudits(t, st, action)
				if err := p.Apply(ctx, st); err == nil || !strings.Contains(err.Error(), "audit refused by the test") {
					t.Fatalf("apply with the %s audit refused: %v", action, err)
				}
				for _, table := range tables {
					if got := count(t, st, table); got != before[table] {
						t.Errorf("%s refused: %s has %d rows, %d before", action, table, got, before[table])
					}
				}
				allowAudits(t, st)
			}
			if got, err := st.GetConnection(ctx, conns[0].ID); err != nil || got.TemplateID != 0 || got.Template != "" {
				t.Fatalf("a refused apply linked the connection: %v %+v", err, got)
			}
			if err := p.Apply(ctx, st); err != nil {
				t.Fatal(err)
			}
			got, err := st.GetConnection(ctx, conns[0].ID)
			if err != nil || got.TemplateID != tpl.ID || got.TemplateVersion != 2 || got.TemplateParams != `{"project":"OPS"}` || got.Template != "desk-escalation" {
				t.Fatalf("link after apply: %v %+v", err, got)
			}
			if _, err := st.GetConnection(ctx, conns[1].ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("pruned connection: %v", err)
			}
			// The API's wording: one template.publish per version, the
			// sharing with team ids, the entries under the right team.
			entries, err := st.ListAudit(ctx, 0, 20)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"template.publish":    fmt.Sprintf("template %d %q version 2", tpl.ID, "esc"),
				"template.share":      fmt.Sprintf("template %d %q: shared [%d]", tpl.ID, "esc", ops.ID),
				"connection.delete":   `connection "gone"`,
				"connection.template": `connection "oc": team template (none) → default/esc version 2`,
			}
			for _, e := range entries {
				if w, ok := want[e.Action]; ok && e.Actor == Actor && e.Detail == w {
					delete(want, e.Action)
					wantTeam := ops.ID // the connection's team
					if strings.HasPrefix(e.Action, "template.") {
						wantTeam = store.DefaultTeamID // the template's owner
					}
					if e.TeamID == nil || *e.TeamID != wantTeam {
						t.Errorf("%s filed under team %v, want %d", e.Action, e.TeamID, wantTeam)
					}
				}
			}
			if len(want) > 0 {
				t.Fatalf("audit entries missing %v in %+v", want, entries)
			}
			if p := planOf(t, st, dir, Options{Prune: true}); len(p.Changes) != 0 || len(p.Problems) != 0 {
				t.Fatalf("second plan:\n%s", planText(p))
			}
		})
	}
}

// allowAudits drops RefuseAudits' trigger.
func allowAudits(t *testing.T, st *store.Store) {
	t.Helper()
	stmts := []string{`DROP TRIGGER refuse_audit`}
	if st.Dialect() == migrations.Postgres {
		stmts = []string{`DROP TRIGGER refuse_audit ON audit_log`, `DROP FUNCTION refuse_audit()`}
	}
	for _, q := range stmts {
		if err := st.DB().Exec(q).Error; err != nil {
			t.Fatalf("allow audits: %v", err)
		}
	}
}
