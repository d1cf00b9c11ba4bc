package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/migrations"
)

// runBackup writes a consistent copy of a SQLite store while Duplex runs:
// VACUUM INTO reads one snapshot (WAL readers do not block the writer) and
// writes a compact file, so the copy never holds half a transaction.
func runBackup(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ExitOnError)
	var c common
	c.register(fs, "duplex-data")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		return errors.New("backup: give the file to write (it must not exist)")
	}
	dst, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("backup: %s exists; choose a new file", dst)
	}
	// Only the file must exist: a schema behind this binary backs up as is.
	if ok, err := storeExists(c); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("no store at %s: %s", redactDSN(c.dsn()), noStoreHint)
		}
		return fmt.Errorf("backup: %w", err)
	}
	st, err := store.Connect(ctx, c.dsn())
	if err != nil {
		return err
	}
	defer st.Close()
	if st.Dialect() != migrations.SQLite {
		return errors.New("backup: for PostgreSQL use pg_dump (docs/operations.md)")
	}
	start := time.Now()
	if err := st.DB().WithContext(ctx).Exec("VACUUM INTO ?", dst).Error; err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	info, err := os.Stat(dst)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "backup written to %s (%d bytes in %s); keep the secret key with it (%s or DUPLEX_SECRET_KEY)\n",
		dst, info.Size(), time.Since(start).Round(time.Millisecond), filepath.Join(c.dataDir, "secret.key"))
	return nil
}
