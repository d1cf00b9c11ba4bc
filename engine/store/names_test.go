package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/migrations"
)

// TestNamesPerTeamMigration fills a store of schema 00018 (names unique
// across the organisation), migrates it to 00019 and checks that nothing
// was lost: the rows that reference systems and connections (some ON
// DELETE CASCADE, which SQLite's table rebuild would have fired) are all
// there, foreign keys are enforced again, a deleted system's id is not
// given out again, and two teams may now use one name while one team may
// not use it twice.
func TestNamesPerTeamMigration(t *testing.T) {
	dsns := map[string]string{"sqlite": filepath.Join(t.TempDir(), "duplex.db")}
	if base := os.Getenv(testdb.PostgresEnv); base != "" {
		dsn, drop := testdb.Schema(t, base)
		t.Cleanup(drop)
		dsns["postgres"] = dsn
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			db, err := st.DB().DB()
			if err != nil {
				t.Fatal(err)
			}
			if err := migrations.UpTo(ctx, db, st.Dialect(), 18); err != nil {
				t.Fatal(err)
			}
			const at = "'2026-01-01 00:00:00'"
			for _, q := range []string{
				"INSERT INTO teams (id, name, created_at) VALUES (2, 'beta', " + at + ")",
				"INSERT INTO systems (id, name, kind, team_id, created_at, updated_at) VALUES (1, 'desk', 'sql', 1, " + at + ", " + at + ")",
				"INSERT INTO systems (id, name, kind, team_id, created_at, updated_at) VALUES (2, 'tracker', 'sql', 1, " + at + ", " + at + ")",
				"INSERT INTO systems (id, name, kind, team_id, created_at, updated_at) VALUES (3, 'gone', 'sql', 1, " + at + ", " + at + ")",
				"DELETE FROM systems WHERE id = 3",
				"INSERT INTO connections (id, name, system_a_id, system_b_id, team_id, created_at, updated_at) VALUES (1, 'sync', 1, 2, 1, " + at + ", " + at + ")",
				"INSERT INTO script_versions (connection_id, side, kind, version, source, created_at) VALUES (1, 'a', 'outgoing', 1, 'x', " + at + ")",
				"INSERT INTO twins (id, connection_id, a_id, created_at, updated_at) VALUES (1, 1, 'A-1', " + at + ", " + at + ")",
				"INSERT INTO sync_events (connection_id, twin_id, direction, source_id, replica, next_attempt_at, created_at, updated_at) VALUES (1, 1, 'a_to_b', 'A-1', '{}', " + at + ", " + at + ", " + at + ")",
			} {
				if name == "postgres" && q == "DELETE FROM systems WHERE id = 3" {
					// Explicit ids do not move a sequence: as if made by inserts.
					if _, err := db.ExecContext(ctx, "SELECT setval('systems_id_seq', 3)"); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if name == "postgres" {
				for _, q := range []string{"SELECT setval('connections_id_seq', 1)", "SELECT setval('twins_id_seq', 1)"} {
					if _, err := db.ExecContext(ctx, q); err != nil {
						t.Fatal(err)
					}
				}
			}
			if _, err := migrations.Up(ctx, db, st.Dialect()); err != nil {
				t.Fatal(err)
			}
			count := func(table string) int {
				var n int
				if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			for _, table := range []string{"systems", "connections", "script_versions", "twins", "sync_events"} {
				want := 1
				if table == "systems" {
					want = 2
				}
				if n := count(table); n != want {
					t.Fatalf("%s: %d rows after the migration, want %d", table, n, want)
				}
			}
			if name == "sqlite" {
				var on int
				if err := db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&on); err != nil || on != 1 {
					t.Fatalf("foreign keys after the migration: %d %v", on, err)
				}
			}

			// Two teams, one name; one team, one name once.
			other := store.System{Name: "desk", Kind: "sql", TeamID: 2}
			if err := st.CreateSystem(ctx, &other); err != nil {
				t.Fatalf("team 2's desk: %v", err)
			}
			if other.ID <= 3 {
				t.Fatalf("new system got id %d: a deleted system's id (3) was given out again", other.ID)
			}
			if err := st.CreateSystem(ctx, &store.System{Name: "desk", Kind: "sql", TeamID: 1}); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("team 1's second desk: %v, want ErrConflict", err)
			}
			conn := store.Connection{Name: "sync", SystemAID: other.ID, SystemBID: other.ID, TeamID: 2}
			if err := st.CreateConnection(ctx, &conn, nil, "test"); err != nil {
				t.Fatalf("team 2's connection sync: %v", err)
			}
			dup := store.Connection{Name: "sync", SystemAID: 1, SystemBID: 2, TeamID: 1}
			if err := st.CreateConnection(ctx, &dup, nil, "test"); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("team 1's second sync: %v, want ErrConflict", err)
			}
			// Foreign keys hold: a system in use cannot go, a connection's
			// delete still takes its twins and events.
			if _, err := db.ExecContext(ctx, "DELETE FROM systems WHERE id = 1"); err == nil {
				t.Fatal("deleted a system a connection uses: foreign keys are off")
			}
			if err := st.DeleteConnection(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if n := count("twins") + count("sync_events"); n != 0 {
				t.Fatalf("%d twins and events left after their connection's delete", n)
			}
		})
	}
}
