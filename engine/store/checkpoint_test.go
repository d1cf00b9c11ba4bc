package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
)

// The log reaches the database file without the writer's doing: a commit
// well under SQLite's own checkpoint threshold (1,000 pages) is copied into
// the file by the checkpointer. Without it the pages stay in the log until
// the store closes.
func TestCheckpointerCopiesTheLogBesideTheWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "duplex.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	before := fileSize(t, path)
	detail := strings.Repeat("x", 3000) // about a page a row
	if err := st.Tx(ctx, func(tx *store.Store) error {
		for i := 0; i < 300; i++ {
			if err := tx.DB().Exec(`INSERT INTO audit_log (at, actor, action, detail) VALUES (?, 'test', 'fill', ?)`,
				time.Now(), detail).Error; err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fileSize(t, path) < before+800_000 {
		if time.Now().After(deadline) {
			t.Fatalf("the database file stayed at %d bytes (%d before the commit): the log was not copied", fileSize(t, path), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The writer checkpoints by itself only past the fallback: its commits
	// no longer stop for SQLite's default 1,000 pages.
	var pages int
	if err := st.DB().Raw("PRAGMA wal_autocheckpoint").Scan(&pages).Error; err != nil {
		t.Fatal(err)
	}
	if pages <= 1000 {
		t.Fatalf("the writer checkpoints at %d pages, as SQLite's default", pages)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
