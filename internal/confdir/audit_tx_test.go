package confdir

import (
	"context"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/internal/testdb"
)

// apply writes each change with its audit entry, through internal/service
// for connections, in its one transaction: when the audit log refuses a
// connection's creation, the apply fails and the store keeps nothing of it,
// not even the systems created (and audited) before (issue 18).
func TestApplyWithoutAuditKeepsNothing(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			src, srcBox := b.Open(t), newBox(t)
			seed(t, src, srcBox)
			dir := t.TempDir()
			exportTo(t, src, srcBox, dir)

			dst, dstBox := b.Open(t), newBox(t)
			before := map[string]int64{}
			for _, table := range []string{"connections", "systems", "script_versions", "audit_log"} {
				before[table] = count(t, dst, table)
			}
			p := plan(t, dst, dstBox, dir, Options{})
			creates := 0
			for _, c := range p.Changes {
				if c.action == "connection.create" && c.audited {
					creates++
				}
			}
			if creates != 2 {
				t.Fatalf("the plan creates %d connection(s) through the service, want 2: %+v", creates, p.Changes)
			}
			testdb.RefuseAudits(t, dst, "connection.create")
			if err := p.Apply(context.Background(), dst); err == nil || !strings.Contains(err.Error(), "audit refused by the test") {
				t.Fatalf("apply with the connection's audit refused: %v", err)
			}
			for table, n := range before {
				if got := count(t, dst, table); got != n {
					t.Errorf("%s: %d rows after a failed apply, %d before", table, got, n)
				}
			}
		})
	}
}
