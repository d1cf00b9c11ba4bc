package scripts_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/sqlconn"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
)

// hrSettings is the HR system hr-it-onboarding's docs and hr-schema.sql
// describe.
func hrSettings(dsn string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"driver": "sqlite", "dsn": dsn, "table": "employees", "key_prefix": "E-",
		"fields": []map[string]any{{"name": "name"}, {"name": "email"}, {"name": "start_date"}, {"name": "role"},
			{"name": "manager"}, {"name": "equipment", "type": "list"}, {"name": "onboarding_status"}, {"name": "notes"}},
	})
	return b
}

// TestHROnboardingSeed: the template's HR schema and seed rows load into
// SQLite, the sql connector reads them with the documented settings, and
// the template's scripts turn each into the ticket it should be (the row
// already onboarded into none). What IT writes back (onboarding_status,
// notes) leaves the replica as it was, so it never travels back to RT.
func TestHROnboardingSeed(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "hr.db")
	loadHR(t, "sqlite3", dsn, "hr-schema.sql", "hr-seed.sql")
	checkSeed(t, hrSettings(dsn))
}

// TestHROnboardingSeedPostgres: the same with hr-schema.postgres.sql, whose
// start_date is a DATE (read as a timestamp), in a schema of its own.
func TestHROnboardingSeedPostgres(t *testing.T) {
	base := os.Getenv("DUPLEX_TEST_POSTGRES")
	if base == "" {
		t.Skip("DUPLEX_TEST_POSTGRES is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable): skipping the PostgreSQL case")
	}
	ctx := context.Background()
	schema := fmt.Sprintf("onboarding_hr_%d", time.Now().UnixNano())
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	dsn := base + sep + "search_path=" + schema
	loadHR(t, "pgx", dsn, "hr-schema.postgres.sql", "hr-seed.sql")
	var settings map[string]any
	_ = json.Unmarshal(hrSettings(dsn), &settings)
	settings["driver"] = "postgres"
	checkSeed(t, jsonOf(settings))
}

func jsonOf(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// loadHR runs the template's SQL files, as HR's database administrator would.
func loadHR(t *testing.T, driver, dsn string, files ...string) {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, f := range files {
		ddl, err := os.ReadFile(filepath.Join("hr-it-onboarding", "testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(context.Background(), string(ddl)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

func checkSeed(t *testing.T, settings json.RawMessage) {
	ctx := context.Background()
	c, err := sqlconn.New(ctx, connectors.Config{Name: "hr", Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Changes reports a row once it is 20 ms old (settle_ms): the seed
	// rows were written just now.
	time.Sleep(50 * time.Millisecond)
	page, err := c.Changes(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entities) != 4 {
		t.Fatalf("seed rows read: %d, want 4 (the schema's triggers stamp updated_at on insert)", len(page.Entities))
	}
	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := lib.Get("hr-it-onboarding")
	if err != nil {
		t.Fatal(err)
	}
	src, err := tpl.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	runner := scripting.NewRunner(scripting.Options{})
	check := func(t *testing.T, fx engine.Fixture) {
		t.Helper()
		diffs, err := engine.CheckFixture(ctx, runner, tpl.Name, src, fx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range diffs {
			t.Error(d)
		}
	}
	yes, no := true, false
	replica := func(key, name, email, start, role, manager string, equipment ...any) map[string]any {
		return map[string]any{"employee": key, "name": name, "email": email, "start_date": start, "role": role, "manager": manager, "equipment": equipment}
	}
	want := map[string]engine.FixtureWant{
		"Ana Lima":   {Matched: &yes, Replica: replica("E-1", "Ana Lima", "ana.lima@example.com", "2027-01-04", "engineer", "carla.diaz@example.com", "laptop", "monitor")},
		"Ben Okafor": {Matched: &yes, Replica: replica("E-2", "Ben Okafor", "ben.okafor@example.com", "2027-01-11", "sales", "dana.wu@example.com", "laptop", "phone", "headset")},
		"Chen Rossi": {Matched: &yes, Replica: replica("E-3", "Chen Rossi", "chen.rossi@example.com", "2027-02-01", "designer", "carla.diaz@example.com", "laptop", "drawing tablet"),
			Patch: map[string]any{
				"subject": "Onboarding: Chen Rossi (designer), starts 2027-02-01", "due": "2027-02-01T00:00:00Z", "requestors": []any{"carla.diaz@example.com"},
				"description": "New hire: Chen Rossi <chen.rossi@example.com>\nRole: designer\nManager: carla.diaz@example.com\nStart date: 2027-02-01\nEquipment: laptop, drawing tablet\nHR record: E-3\n\nChecklist:\n" +
					"[ ] Create the directory account and mailbox\n[ ] Add to the team's groups and mailing lists\n[ ] Badge and building access\n[ ] Send first-day instructions to the manager\n" +
					"[ ] Prepare and enrol a laptop\n[ ] Provide: drawing tablet"}},
		"Dora Nilsson": {Matched: &no},
	}
	for _, e := range page.Entities {
		name := e.Fields["name"].(string)
		w, ok := want[name]
		if !ok {
			t.Fatalf("unexpected seed row %q", name)
		}
		t.Run(name, func(t *testing.T) { check(t, engine.Fixture{Side: "a", Entity: e, Want: w}) })
		if name != "Ana Lima" {
			continue
		}
		// IT's answer written into the row: the replica does not move.
		t.Run("written back", func(t *testing.T) {
			back := e
			back.Fields = map[string]any{}
			for k, v := range e.Fields {
				back.Fields[k] = v
			}
			back.Fields["onboarding_status"] = "done"
			back.Fields["notes"] = "Prefers a Linux laptop.\n\n--- IT onboarding #30 ---\nhttps://rt.example/Ticket/Display.html?id=30"
			check(t, engine.Fixture{Side: "a", Entity: back, Target: &connectors.Entity{ID: "30", Fields: map[string]any{}}, Previous: w.Replica,
				Want: engine.FixtureWant{Replica: w.Replica}})
		})
	}
}

// A built-in folder holding testdata/*.sql (hr-it-onboarding's schema and
// seed rows) imports as it is: the SQL files are not part of a version.
func TestBuiltinFoldersImport(t *testing.T) {
	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, tpl := range lib.List() {
		files := map[string][]byte{}
		err := filepath.WalkDir(tpl.Name, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(tpl.Name, p)
			files[filepath.ToSlash(rel)] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		body, err := scripts.FromFiles(files)
		if err != nil {
			t.Errorf("%s: %v", tpl.Name, err)
			continue
		}
		for name := range body.Fixtures {
			if !strings.HasSuffix(name, ".json") {
				t.Errorf("%s: fixture %s kept", tpl.Name, name)
			}
		}
	}
	if _, err := scripts.FromFiles(map[string][]byte{"template.json": []byte(`{}`), "schema.sql": []byte("x")}); err == nil {
		t.Fatal("a .sql file outside testdata/ was taken")
	}
}
