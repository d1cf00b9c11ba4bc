// Package demo builds the self-contained demo: two SQLite databases (a
// support desk's tickets and an engineering tracker's issues, with sample
// rows) and, in a Duplex store, the two systems and a connection made from
// the support-escalation template. `duplex demo` and the end-to-end tests
// use it, so the demo a user runs is the one the tests prove.
package demo

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	_ "github.com/mattn/go-sqlite3" // database/sql driver "sqlite3"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripts"
)

// now is SQLite's expression for the connector's timestamp format.
const now = `strftime('%Y-%m-%dT%H:%M:%fZ','now')`

// The demo tables touch updated_at on every UPDATE that does not set it, so a
// person editing rows in any SQLite client is seen by the poller.
var supportSchema = []string{
	`CREATE TABLE IF NOT EXISTS tickets (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		subject TEXT NOT NULL DEFAULT '',
		description TEXT NOT NULL DEFAULT '',
		status TEXT NOT NULL DEFAULT 'open',
		priority TEXT NOT NULL DEFAULT 'normal',
		labels TEXT NOT NULL DEFAULT '',
		requester TEXT NOT NULL DEFAULT '',
		duplex_ref TEXT,
		deleted_at TEXT,
		updated_at TEXT NOT NULL DEFAULT (` + now + `))`,
	`CREATE TRIGGER IF NOT EXISTS tickets_touch AFTER UPDATE ON tickets
		FOR EACH ROW WHEN NEW.updated_at = OLD.updated_at
		BEGIN UPDATE tickets SET updated_at = ` + now + ` WHERE id = NEW.id; END`,
	`CREATE TABLE IF NOT EXISTS ticket_comments (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		ticket_id INTEGER NOT NULL REFERENCES tickets (id),
		author TEXT NOT NULL DEFAULT '',
		body TEXT NOT NULL,
		created_at TEXT NOT NULL DEFAULT (` + now + `))`,
	// The indexes a help desk has for what the sql connector asks: changes
	// by update time, a row by its correlation key (each create), a
	// ticket's comments. Without them each poll page and each batch of
	// creates read the whole table.
	`CREATE INDEX IF NOT EXISTS tickets_updated ON tickets (updated_at, id)`,
	`CREATE INDEX IF NOT EXISTS tickets_duplex_ref ON tickets (duplex_ref)`,
	`CREATE INDEX IF NOT EXISTS ticket_comments_ticket ON ticket_comments (ticket_id)`,
	`CREATE INDEX IF NOT EXISTS ticket_comments_created ON ticket_comments (created_at, id)`,
}

var engineeringSchema = []string{
	`CREATE TABLE IF NOT EXISTS issues (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		title TEXT NOT NULL DEFAULT '',
		body TEXT NOT NULL DEFAULT '',
		state TEXT NOT NULL DEFAULT 'new',
		priority TEXT NOT NULL DEFAULT 'normal',
		ticket_ref TEXT NOT NULL DEFAULT '',
		duplex_ref TEXT,
		deleted_at TEXT,
		updated_at TEXT NOT NULL DEFAULT (` + now + `))`,
	`CREATE TRIGGER IF NOT EXISTS issues_touch AFTER UPDATE ON issues
		FOR EACH ROW WHEN NEW.updated_at = OLD.updated_at
		BEGIN UPDATE issues SET updated_at = ` + now + ` WHERE id = NEW.id; END`,
	`CREATE TABLE IF NOT EXISTS issue_comments (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		issue_id INTEGER NOT NULL REFERENCES issues (id),
		author TEXT NOT NULL DEFAULT '',
		body TEXT NOT NULL,
		created_at TEXT NOT NULL DEFAULT (` + now + `))`,
	`CREATE INDEX IF NOT EXISTS issues_updated ON issues (updated_at, id)`,
	`CREATE INDEX IF NOT EXISTS issues_duplex_ref ON issues (duplex_ref)`,
	`CREATE INDEX IF NOT EXISTS issue_comments_issue ON issue_comments (issue_id)`,
	`CREATE INDEX IF NOT EXISTS issue_comments_created ON issue_comments (created_at, id)`,
}

var supportRows = []string{
	`INSERT INTO tickets (subject, description, priority, labels, requester) VALUES
		('Checkout fails with a 500', 'Customers cannot pay since this morning.', 'urgent', 'billing,todev', 'ana@example.com'),
		('How do I reset my password?', 'The reset mail never arrives.', 'normal', 'account', 'ben@example.com'),
		('Export to CSV drops accents', 'Names like José come out as Jos?.', 'high', 'export', 'chloe@example.com')`,
	`INSERT INTO ticket_comments (ticket_id, author, body) VALUES (1, 'ana@example.com', 'It happens with every card type.')`,
}

var engineeringRows = []string{
	`INSERT INTO issues (title, body, state, priority) VALUES
		('Upgrade the payment SDK', 'Internal chore, not from support.', 'in_progress', 'normal')`,
}

// Paths are the demo's database files.
type Paths struct {
	Support     string
	Engineering string
}

// CreateDatabases makes the two demo databases in dir, with sample rows the
// first time (an existing demo is left as it is).
func CreateDatabases(ctx context.Context, dir string) (Paths, error) {
	p := Paths{Support: filepath.Join(dir, "support.db"), Engineering: filepath.Join(dir, "engineering.db")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return p, fmt.Errorf("demo dir: %w", err)
	}
	if err := initDB(ctx, p.Support, supportSchema, supportRows, "tickets"); err != nil {
		return p, err
	}
	if err := initDB(ctx, p.Engineering, engineeringSchema, engineeringRows, "issues"); err != nil {
		return p, err
	}
	return p, nil
}

func initDB(ctx context.Context, path string, schema, rows []string, table string) error {
	db, err := sql.Open("sqlite3", store.SQLiteDSN(path))
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	for _, q := range schema {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if n > 0 {
		return nil
	}
	for _, q := range rows {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

// SupportSettings is the sql connector configuration of the support desk.
func SupportSettings(path string) map[string]any {
	return map[string]any{
		"driver": "sqlite", "dsn": path, "table": "tickets", "key_prefix": "T-",
		"fields": []map[string]any{
			{"name": "subject"}, {"name": "description"}, {"name": "status"},
			{"name": "priority"}, {"name": "labels", "type": "list"}, {"name": "requester"},
		},
		"comments":           map[string]any{"table": "ticket_comments", "entity_column": "ticket_id"},
		"correlation_column": "duplex_ref",
		"deleted_column":     "deleted_at",
	}
}

// EngineeringSettings is the sql connector configuration of the tracker.
func EngineeringSettings(path string) map[string]any {
	return map[string]any{
		"driver": "sqlite", "dsn": path, "table": "issues", "key_prefix": "ENG-",
		"fields": []map[string]any{
			{"name": "title"}, {"name": "body"}, {"name": "state"},
			{"name": "priority"}, {"name": "ticket_ref"},
		},
		"comments":           map[string]any{"table": "issue_comments", "entity_column": "issue_id"},
		"correlation_column": "duplex_ref",
		"deleted_column":     "deleted_at",
	}
}

// Template is the template the demo connection is made from.
const Template = "support-escalation"

// Install creates the demo's systems and its active connection in st, unless a
// connection named "support-escalation" exists already, and allows the
// databases' folder in the outbound policy. It returns the connection.
func Install(ctx context.Context, st *store.Store, box *secret.Box, lib *scripts.Library, p Paths, pollMS int64) (store.Connection, error) {
	for _, dir := range []string{filepath.Dir(p.Support), filepath.Dir(p.Engineering)} {
		if err := AllowFolder(ctx, st, dir); err != nil {
			return store.Connection{}, err
		}
	}
	conns, err := st.ListConnections(ctx)
	if err != nil {
		return store.Connection{}, err
	}
	for _, c := range conns {
		// Names are unique per team (migration 00019): another team's
		// connection of that name is not the demo's.
		if c.Name == Template && c.TeamID == store.DefaultTeamID {
			return c, nil
		}
	}
	tpl, err := lib.Get(Template)
	if err != nil {
		return store.Connection{}, err
	}
	src, err := tpl.Render(nil)
	if err != nil {
		return store.Connection{}, err
	}
	var ids [2]int64
	for i, s := range []struct {
		name     string
		settings map[string]any
	}{{"support-desk", SupportSettings(p.Support)}, {"engineering", EngineeringSettings(p.Engineering)}} {
		raw, err := json.Marshal(s.settings)
		if err != nil {
			return store.Connection{}, err
		}
		sealed, err := box.SealMap(nil)
		if err != nil {
			return store.Connection{}, err
		}
		sys := store.System{Name: s.name, Kind: "sql", Settings: string(raw), Secrets: sealed, PollIntervalMS: pollMS}
		if err := st.CreateSystem(ctx, &sys); err != nil {
			return store.Connection{}, err
		}
		ids[i] = sys.ID
	}
	c := store.Connection{Name: Template, SystemAID: ids[0], SystemBID: ids[1], Active: true, Template: Template}
	scriptsBySide := map[store.Side]map[store.ScriptKind]string{}
	for side, kinds := range src {
		scriptsBySide[store.Side(side)] = map[store.ScriptKind]string{}
		for kind, s := range kinds {
			scriptsBySide[store.Side(side)][store.ScriptKind(kind)] = s
		}
	}
	if err := st.CreateConnection(ctx, &c, scriptsBySide, "demo"); err != nil {
		return store.Connection{}, err
	}
	return c, st.AddAudit(ctx, &store.AuditEntry{Actor: "demo", Action: "connection.create", ConnectionID: &c.ID,
		Detail: "created from template " + Template})
}
