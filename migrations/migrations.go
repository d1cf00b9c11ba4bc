// Package migrations holds Duplex's versioned schema, one folder per SQL
// dialect, embedded in the binary and applied with goose's Provider API (no
// goose global state).
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// Dialect names a schema folder.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Up applies every pending migration and returns the resulting version.
// On PostgreSQL a session advisory lock serialises processes that start
// together, so the schema is migrated exactly once.
func Up(ctx context.Context, db *sql.DB, d Dialect) (int64, error) {
	p, err := provider(db, d)
	if err != nil {
		return 0, err
	}
	if _, err := p.Up(ctx); err != nil {
		return 0, fmt.Errorf("apply %s migrations: %w", d, err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// UpTo applies pending migrations up to version, for tests that fill a
// store of an older schema and then migrate it.
func UpTo(ctx context.Context, db *sql.DB, d Dialect, version int64) error {
	p, err := provider(db, d)
	if err != nil {
		return err
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("apply %s migrations up to %d: %w", d, version, err)
	}
	return nil
}

// Status reports the applied and pending migrations, for `duplex migrate status`.
func Status(ctx context.Context, db *sql.DB, d Dialect) ([]*goose.MigrationStatus, error) {
	p, err := provider(db, d)
	if err != nil {
		return nil, err
	}
	return p.Status(ctx)
}

// Pending counts migrations embedded in this binary but not applied, for
// readiness: a process must not serve on a schema older than its code.
func Pending(ctx context.Context, db *sql.DB, d Dialect) (int, error) {
	st, err := Status(ctx, db, d)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range st {
		if m.State == goose.StatePending {
			n++
		}
	}
	return n, nil
}

func provider(db *sql.DB, d Dialect) (*goose.Provider, error) {
	sub, err := fs.Sub(files, string(d))
	if err != nil {
		return nil, fmt.Errorf("migrations for %s: %w", d, err)
	}
	var (
		dialect goose.Dialect
		opts    = []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	)
	switch d {
	case SQLite:
		dialect = goose.DialectSQLite3
	case Postgres:
		dialect = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, fmt.Errorf("postgres migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	default:
		return nil, fmt.Errorf("unknown dialect %q", d)
	}
	p, err := goose.NewProvider(dialect, db, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("migration provider: %w", err)
	}
	return p, nil
}
