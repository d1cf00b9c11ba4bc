package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// The checkpointer backs off only when a checkpoint found nothing to copy:
// after a commit it reports work until the log is copied, then none.
func TestCheckpointReportsWorkOnlyWhileTheLogGrows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "duplex.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.ckpt.close() // this test's checkpointer is the only one
	db, err := sql.Open("sqlite3", SQLiteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := &checkpointer{db: db, ctx: ctx}
	settle := func() {
		t.Helper()
		for i := 0; c.checkpoint(); i++ {
			if i == 10 {
				t.Fatal("the checkpoint still reports work with nothing written")
			}
		}
	}
	settle()
	if err := st.AddAudit(ctx, &AuditEntry{Actor: "test", Action: "fill"}); err != nil {
		t.Fatal(err)
	}
	if !c.checkpoint() {
		t.Fatal("a commit's log pages were not reported as work")
	}
	settle()
}
