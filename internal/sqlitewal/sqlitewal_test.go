package sqlitewal

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

// The checkpointer backs off only when a checkpoint found nothing to copy:
// after a commit it reports work until the log is copied, then none.
func TestCheckpointReportsWorkOnlyWhileTheLogGrows(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "x.db") + "?_journal_mode=WAL"
	w, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Exec(`CREATE TABLE t (v TEXT)`); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := &Checkpointer{db: db, ctx: ctx} // not started: this test runs its checkpoints
	settle := func() {
		t.Helper()
		for i := 0; c.checkpoint(); i++ {
			if i == 10 {
				t.Fatal("the checkpoint still reports work with nothing written")
			}
		}
	}
	settle()
	if _, err := w.Exec(`INSERT INTO t VALUES ('x')`); err != nil {
		t.Fatal(err)
	}
	if !c.checkpoint() {
		t.Fatal("a commit's log pages were not reported as work")
	}
	settle()
}
