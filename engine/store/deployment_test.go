package store_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/migrations"
)

var deploymentID = regexp.MustCompile(`^[0-9a-f]{12}$`)

// Every store has its own deployment id, made once: a reopen (a restart)
// reads the same one, another store has another.
func TestDeploymentIDIsPerStoreAndStable(t *testing.T) {
	ctx := context.Background()
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			one, two := b.Open(t), b.Open(t)
			d1, err := one.Deployment(ctx)
			if err != nil {
				t.Fatal(err)
			}
			d2, err := two.Deployment(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !deploymentID.MatchString(d1.ID) || !deploymentID.MatchString(d2.ID) {
				t.Fatalf("deployment ids %q and %q, want 12 hex digits", d1.ID, d2.ID)
			}
			if d1.ID == d2.ID {
				t.Fatalf("two stores share the deployment id %q", d1.ID)
			}
			if d1.LegacyTwinMax != 0 {
				t.Fatalf("a new store has legacy twins up to %d, want none", d1.LegacyTwinMax)
			}
			// A second row cannot be added: the id is one per store.
			if err := one.DB().Exec("INSERT INTO deployment (one, id, legacy_twin_max) VALUES (2, 'x', 0)").Error; err == nil {
				t.Fatal("a second deployment row was accepted")
			}
		})
	}
	path := filepath.Join(t.TempDir(), "duplex.db")
	var ids []string
	for i := 0; i < 2; i++ {
		st, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		d, err := st.Deployment(ctx)
		_ = st.Close()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	if ids[0] != ids[1] {
		t.Fatalf("the deployment id changed on reopen: %q, then %q", ids[0], ids[1])
	}
}

// A store migrated to 00031 with twins in it keeps their creates' keys:
// legacy_twin_max is the highest twin id there was.
func TestDeploymentMigrationMarksLegacyTwins(t *testing.T) {
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
			if err := migrations.UpTo(ctx, db, st.Dialect(), 26); err != nil {
				t.Fatal(err)
			}
			const at = "'2026-01-01 00:00:00'"
			for _, q := range []string{
				"INSERT INTO systems (id, name, kind, team_id, created_at, updated_at) VALUES (1, 'desk', 'sql', 1, " + at + ", " + at + ")",
				"INSERT INTO systems (id, name, kind, team_id, created_at, updated_at) VALUES (2, 'tracker', 'sql', 1, " + at + ", " + at + ")",
				"INSERT INTO connections (id, name, system_a_id, system_b_id, team_id, created_at, updated_at) VALUES (1, 'sync', 1, 2, 1, " + at + ", " + at + ")",
				"INSERT INTO twins (id, connection_id, a_id, created_at, updated_at) VALUES (7, 1, 'A-7', " + at + ", " + at + ")",
				"INSERT INTO twins (id, connection_id, a_id, created_at, updated_at) VALUES (41, 1, 'A-41', " + at + ", " + at + ")",
			} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if _, err := migrations.Up(ctx, db, st.Dialect()); err != nil {
				t.Fatal(err)
			}
			d, err := st.Deployment(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if d.LegacyTwinMax != 41 || !deploymentID.MatchString(d.ID) {
				t.Fatalf("deployment %+v, want legacy twins up to 41 and a 12-digit id", d)
			}
		})
	}
}

// CreateKey is the key of the newest create recorded for the twin's side;
// updates, other sides and keyless intents do not count.
func TestCreateKey(t *testing.T) {
	ctx := context.Background()
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			st := f.st
			tw, err := st.EnsureTwin(ctx, f.conn.ID, store.SideA, "e1")
			if err != nil {
				t.Fatal(err)
			}
			twin := tw.ID
			if k, err := st.CreateKey(ctx, twin, store.SideB); err != nil || k != "" {
				t.Fatalf("no intent: key %q, %v", k, err)
			}
			for _, in := range []store.Intent{
				{Action: "create", Side: store.SideB, CorrelationKey: "duplex:1:1"},
				{Action: "create", Side: store.SideB, CorrelationKey: "duplex:0123456789ab:1:1"},
				{Action: "create", Side: store.SideB},
				{Action: "update", Side: store.SideB, EntityID: "9", CorrelationKey: "duplex:other"},
				{Action: "create", Side: store.SideA, CorrelationKey: "duplex:side-a"},
			} {
				in.TwinID, in.EventID, in.ConnectionID, in.SystemID, in.Expected = twin, 1, f.conn.ID, f.sys[1], "{}"
				if err := st.AddIntent(ctx, &in); err != nil {
					t.Fatal(err)
				}
			}
			if k, err := st.CreateKey(ctx, twin, store.SideB); err != nil || k != "duplex:0123456789ab:1:1" {
				t.Fatalf("key %q, %v; want the newest create's", k, err)
			}
		})
	}
}
