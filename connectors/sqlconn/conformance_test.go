package sqlconn

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/conntest"
)

// TestConformance runs the shared suite against SQLite tables of its own.
func TestConformance(t *testing.T) {
	var db *sql.DB
	var dsn string
	conntest.Run(t, conntest.Harness{
		Spec: Spec(),
		Open: func(t *testing.T) connectors.Connector {
			dsn = "file:" + filepath.Join(t.TempDir(), "c.db")
			var err error
			if db, err = sql.Open("sqlite3", dsn); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			for _, q := range []string{
				`CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT, owner TEXT, updated_at TEXT, dx_key TEXT, deleted_at TEXT)`,
				`CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, item_id INTEGER, author TEXT, body TEXT, created_at TEXT)`,
			} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			raw, _ := json.Marshal(map[string]any{"driver": "sqlite", "dsn": dsn, "table": "items", "settle_ms": -1,
				"fields": []map[string]any{{"name": "title"}, {"name": "owner"}}, "correlation_column": "dx_key",
				"deleted_column": "deleted_at", "comments": map[string]any{"table": "notes", "entity_column": "item_id"}})
			c, err := New(context.Background(), connectors.Config{Name: "conformance", Settings: raw})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		},
		Fields:      func(n int) map[string]any { return map[string]any{"title": fmt.Sprintf("item %d", n), "owner": "ann"} },
		UpdateField: "title", UpdateValue: "renamed", KeepField: "owner",
		TieStamps: func(t *testing.T, ids []string) {
			if _, err := db.Exec(`UPDATE items SET updated_at = '2026-01-01T00:00:00.000Z'`); err != nil {
				t.Fatal(err)
			}
		},
		MissingID: "999999",
		FindField: "owner",
	})
}
