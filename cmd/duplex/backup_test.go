package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
)

// A backup taken while another connection writes is a consistent, openable
// store: every audit row it holds is whole and the schema is current.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(data, "duplex.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stop := make(chan struct{})
	wrote := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a steady writer, as the engine would be
		defer wg.Done()
		for i := 0; ; i++ {
			if i == 1 {
				close(wrote)
			}
			select {
			case <-stop:
				return
			default:
			}
			_ = st.AddAudit(ctx, &store.AuditEntry{Actor: "w", Action: "write", Detail: strings.Repeat("x", 100)})
		}
	}()
	<-wrote // at least one row before the backup, however loaded the machine
	time.Sleep(50 * time.Millisecond)
	dst := filepath.Join(t.TempDir(), "copy.db")
	var out strings.Builder
	err = runBackup(ctx, []string{"--data", data, dst}, &out)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "backup written to") {
		t.Fatalf("output %q", out.String())
	}
	cp, err := store.Open(ctx, dst)
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer cp.Close()
	if n, err := cp.PendingMigrations(ctx); err != nil || n != 0 {
		t.Fatalf("backup schema: %d pending, %v", n, err)
	}
	// A restore is the same deployment: its creates keep their keys.
	want, err1 := st.Deployment(ctx)
	got, err2 := cp.Deployment(ctx)
	if err1 != nil || err2 != nil || got != want {
		t.Fatalf("the backup's deployment %+v (%v), the store's %+v (%v)", got, err2, want, err1)
	}
	entries, err := cp.ListAudit(ctx, 0, 100000)
	if err != nil || len(entries) == 0 {
		t.Fatalf("backup holds %d audit entries: %v", len(entries), err)
	}
	for _, e := range entries {
		if len(e.Detail) != 100 {
			t.Fatalf("a torn row: %+v", e)
		}
	}
	db, _ := sql.Open("sqlite3", dst)
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
	// Refuses to overwrite.
	if err := runBackup(ctx, []string{"--data", data, dst}, &out); err == nil {
		t.Fatal("a backup over an existing file was written")
	}
}
