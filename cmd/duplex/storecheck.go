package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
)

// Commands that only read or change an existing store (export, apply
// --dry-run, backup, secrets rotate, template) open it with openExisting and
// existingBox: a mistyped --data must be an error naming the path, never a
// new empty store and key that a later export or apply --prune would treat
// as the truth. Only serve, demo, migrate and apply --create make a store.

// noStoreHint ends every "does not exist" message.
const noStoreHint = "check --data / --db (DUPLEX_DATA, DUPLEX_DB); only serve, demo, migrate and apply --create make a new store"

// sqlitePath is the file a SQLite DSN names; "" for PostgreSQL and
// in-memory databases, which have no file to look for.
func sqlitePath(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return ""
	}
	p := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		if strings.Contains(p[i:], "mode=memory") {
			return ""
		}
		p = p[:i]
	}
	if p == "" || p == ":memory:" {
		return ""
	}
	return p
}

// storeExists reports whether the store of c is there: its SQLite file
// exists. A PostgreSQL database always "exists" here; openExisting then
// checks that it holds Duplex's schema.
func storeExists(c common) (bool, error) {
	p := sqlitePath(c.dsn())
	if p == "" {
		return true, nil
	}
	_, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// openExisting opens a store that must exist and hold Duplex's schema. With
// migrate, pending migrations are applied (commands that write anyway);
// without, a store behind this binary is refused, so a read writes nothing.
func openExisting(ctx context.Context, c common, migrate bool) (*store.Store, error) {
	ok, err := storeExists(c)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("no store at %s: %s", redactDSN(c.dsn()), noStoreHint)
	}
	st, err := store.Connect(ctx, c.dsn())
	if err != nil {
		return nil, err
	}
	if !schemaIn(ctx, st) {
		_ = st.Close()
		return nil, fmt.Errorf("the database %s holds no Duplex store: %s", redactDSN(c.dsn()), noStoreHint)
	}
	if migrate {
		_ = st.Close()
		return store.Open(ctx, c.dsn())
	}
	n, err := st.PendingMigrations(ctx)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	if n > 0 {
		_ = st.Close()
		return nil, fmt.Errorf("the store %s is %d migration(s) behind this binary: run duplex migrate first (this command writes nothing)", redactDSN(c.dsn()), n)
	}
	return st, nil
}

// redactDSN drops a PostgreSQL URL's password before it is printed.
func redactDSN(dsn string) string {
	if p := sqlitePath(dsn); p != "" {
		return p
	}
	if i, j := strings.Index(dsn, "://"), strings.LastIndex(dsn, "@"); i >= 0 && j > i {
		if k := strings.Index(dsn[i+3:j], ":"); k >= 0 {
			return dsn[:i+3+k] + ":***" + dsn[j:]
		}
	}
	return dsn
}

// keyAvailable reports whether a secret key is available without creating one:
// DUPLEX_SECRET_KEY, or a key file in the data dir.
func keyAvailable(dataDir string) (bool, error) {
	if os.Getenv("DUPLEX_SECRET_KEY") != "" {
		return true, nil
	}
	primary, _, err := fileKeys(dataDir)
	return primary != nil, err
}

// existingBox is loadBox for a store that exists: a missing key is an error
// naming the file, never a new key (which would seal new secrets with a key
// the store's other secrets do not open, or leave a stray file after a
// dry run).
func existingBox(dataDir string) (*secret.Box, error) {
	ok, err := keyAvailable(dataDir)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no secret key at %s (and DUPLEX_SECRET_KEY is not set): %s",
			filepath.Join(dataDir, keyFile), noStoreHint)
	}
	return loadBox(dataDir)
}

// openExistingWithBox opens an existing store and its existing key.
func openExistingWithBox(ctx context.Context, c common, migrate bool) (*store.Store, *secret.Box, error) {
	st, err := openExisting(ctx, c, migrate)
	if err != nil {
		return nil, nil, err
	}
	box, err := existingBox(c.dataDir)
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	return st, box, nil
}

// schemaIn reports whether the database holds Duplex's schema. goose creates
// its version table when asked for the status, so look for the table
// instead: a database without it is not a Duplex store.
func schemaIn(ctx context.Context, st *store.Store) bool {
	return st.DB().WithContext(ctx).Migrator().HasTable("goose_db_version")
}

// hasSchema connects to the store of c and reports whether it holds
// Duplex's schema (a PostgreSQL database that apply --create may migrate).
func hasSchema(ctx context.Context, c common) (bool, error) {
	st, err := store.Connect(ctx, c.dsn())
	if err != nil {
		return false, err
	}
	defer st.Close()
	return schemaIn(ctx, st), nil
}
