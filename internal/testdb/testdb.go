// Package testdb gives tests a fresh Duplex store on every database the
// machine offers: always SQLite, and PostgreSQL when DUPLEX_TEST_POSTGRES
// holds a URL (each test gets its own schema, dropped afterwards).
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/duplexsync/duplex/engine/store"
)

// PostgresEnv names the variable that enables PostgreSQL tests.
const PostgresEnv = "DUPLEX_TEST_POSTGRES"

// Backend is one database to run a test against.
type Backend struct {
	Name string
	Open func(t testing.TB) *store.Store
}

// Backends lists SQLite and, if configured, PostgreSQL.
func Backends(t testing.TB) []Backend {
	out := []Backend{{Name: "sqlite", Open: SQLite}}
	if os.Getenv(PostgresEnv) != "" {
		out = append(out, Backend{Name: "postgres", Open: Postgres})
	} else {
		t.Logf("PostgreSQL store tests skipped: set %s (for example postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", PostgresEnv)
	}
	return out
}

// SQLite opens a store on a new file in the test's temp dir.
func SQLite(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "duplex.db"))
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// Postgres opens a store in a new schema of the configured database.
func Postgres(t testing.TB) *store.Store {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skipf("set %s to run PostgreSQL tests", PostgresEnv)
	}
	dsn, drop := Schema(t, base)
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close(); drop() })
	return st
}

// Schema creates a uniquely named schema and returns a DSN whose search_path
// points at it, and a function that drops it.
func Schema(t testing.TB, base string) (string, func()) {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "duplex_test_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		_ = admin.Close()
	}
}

// Name makes a lowercase identifier unique to this run.
func Name(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return strings.ToLower(prefix) + "_" + hex.EncodeToString(b)
}
