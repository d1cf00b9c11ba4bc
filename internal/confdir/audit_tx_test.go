package confdir

import (
	"context"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// apply writes each change with its audit entry, through internal/service
// for teams, systems and connections, in its one transaction: when the
// audit log refuses one kind of create, the apply fails and the store
// keeps nothing of it, not even what was created (and audited) before it
// (issue 18).
func TestApplyWithoutAuditKeepsNothing(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			src, srcBox := b.Open(t), newBox(t)
			seed(t, src, srcBox)
			tpl := store.TeamTemplate{TeamID: store.DefaultTeamID, Name: "esc", Title: "Esc", Visibility: store.VisibilityPrivate}
			if _, err := src.CreateTemplate(context.Background(), &tpl, tplBody(t, "replica.x = 1;"), "test", ""); err != nil {
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
					creates, audited := 0, 0
					for _, c := range p.Changes {
						if c.action == action {
							creates++
							if c.audited {
								audited++
							}
						}
					}
					if creates == 0 {
						t.Fatalf("the plan makes no %s: %+v", action, p.Changes)
					}
					if action != "template.publish" && audited != creates {
						t.Fatalf("%d of %d %s changes go through the service", audited, creates, action)
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
