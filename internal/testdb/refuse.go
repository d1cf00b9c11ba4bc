package testdb

import (
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/migrations"
)

// RefuseAudits makes inserts into the audit log fail from now on (those of
// one action, or all when action is ""), with a trigger in the store's own
// database (or schema): tests use it to show a change is not kept when its
// audit entry cannot be written.
func RefuseAudits(t testing.TB, st *store.Store, action string) {
	t.Helper()
	when := "1 = 1"
	if action != "" {
		when = "NEW.action = '" + strings.ReplaceAll(action, "'", "''") + "'"
	}
	stmts := []string{`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log WHEN ` + when +
		` BEGIN SELECT RAISE(ABORT, 'audit refused by the test'); END`}
	if st.Dialect() == migrations.Postgres {
		stmts = []string{
			`CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused by the test'; END $$`,
			`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW WHEN (` + when + `) EXECUTE FUNCTION refuse_audit()`,
		}
	}
	for _, q := range stmts {
		if err := st.DB().Exec(q).Error; err != nil {
			t.Fatalf("refuse audits: %v", err)
		}
	}
}
