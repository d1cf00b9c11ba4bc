package sqlconn

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// The suite runs against every backend: SQLite always, PostgreSQL and
// MariaDB when their env variable names a database to use.
const (
	envPostgres = "DUPLEX_TEST_POSTGRES" // e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable
	envMySQL    = "DUPLEX_TEST_MYSQL"    // e.g. root@tcp(127.0.0.1:3306)/test
)

// backend is one database kind the suite runs on.
type backend struct {
	name   string
	driver string // Settings.Driver
	// dsn returns the DSN for this test, or "" to skip (with why).
	dsn func(t testing.TB) (dsn, why string)
	// sqlDriver opens the "other client" the tests use for plain SQL.
	sqlDriver string
	ddl       func(items, comments string) []string
	textIDDDL string              // a table with a text id the database fills in; {t} is its name
	nowSQL    string              // current time as the updated column stores it
	ts        func(time.Time) any // a fixed time as the updated column stores it
	ph        func(n int) string  // n-th placeholder
}

var backends = []backend{
	{
		name: "sqlite", driver: "sqlite", sqlDriver: "sqlite3",
		dsn: func(t testing.TB) (string, string) {
			return filepath.Join(t.TempDir(), "duplex.db"), ""
		},
		ddl: func(items, comments string) []string {
			return []string{
				`CREATE TABLE ` + items + ` (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT, points REAL,
					estimate INTEGER, done INTEGER, due TEXT, labels TEXT, note TEXT DEFAULT 'ro', updated_at TEXT)`,
				`CREATE INDEX ` + items + `_upd ON ` + items + ` (updated_at, id)`,
				`CREATE TABLE ` + comments + ` (id INTEGER PRIMARY KEY AUTOINCREMENT,
					item_id INTEGER NOT NULL REFERENCES ` + items + `(id), author TEXT, body TEXT, created_at TEXT)`,
				`CREATE INDEX ` + comments + `_cr ON ` + comments + ` (created_at, id)`,
				`CREATE INDEX ` + comments + `_ent ON ` + comments + ` (item_id, created_at)`,
			}
		},
		textIDDDL: `CREATE TABLE {t} (id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(8)))), title TEXT, updated_at TEXT)`,
		nowSQL:    `strftime('%Y-%m-%dT%H:%M:%fZ','now')`,
		ts:        func(t time.Time) any { return t.UTC().Format(sqliteTime) },
		ph:        func(int) string { return "?" },
	},
	{
		name: "postgres", driver: "postgres", sqlDriver: "pgx",
		dsn: func(testing.TB) (string, string) {
			if v := os.Getenv(envPostgres); v != "" {
				return v, ""
			}
			return "", envPostgres + " is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable): skipping the PostgreSQL suite"
		},
		ddl: func(items, comments string) []string {
			return []string{
				`CREATE TABLE ` + items + ` (id BIGSERIAL PRIMARY KEY, title TEXT, points DOUBLE PRECISION,
					estimate BIGINT, done BOOLEAN, due TIMESTAMPTZ, labels TEXT, note TEXT DEFAULT 'ro', updated_at TIMESTAMPTZ)`,
				`CREATE INDEX ` + items + `_upd ON ` + items + ` (updated_at, id)`,
				`CREATE TABLE ` + comments + ` (id BIGSERIAL PRIMARY KEY,
					item_id BIGINT NOT NULL REFERENCES ` + items + `(id), author TEXT, body TEXT, created_at TIMESTAMPTZ)`,
				`CREATE INDEX ` + comments + `_cr ON ` + comments + ` (created_at, id)`,
				`CREATE INDEX ` + comments + `_ent ON ` + comments + ` (item_id, created_at)`,
			}
		},
		textIDDDL: `CREATE TABLE {t} (id TEXT PRIMARY KEY DEFAULT md5(random()::text), title TEXT, updated_at TIMESTAMPTZ)`,
		nowSQL:    `now()`,
		ts:        func(t time.Time) any { return t.UTC() },
		ph:        func(n int) string { return "$" + strconv.Itoa(n) },
	},
	{
		name: "mariadb", driver: "mysql", sqlDriver: "mysql",
		dsn: func(testing.TB) (string, string) {
			if v := os.Getenv(envMySQL); v != "" {
				return v, ""
			}
			return "", envMySQL + " is not set (e.g. root@tcp(127.0.0.1:3306)/test): skipping the MariaDB suite"
		},
		ddl: func(items, comments string) []string {
			return []string{
				`CREATE TABLE ` + items + ` (id BIGINT AUTO_INCREMENT PRIMARY KEY, title TEXT, points DOUBLE,
					estimate BIGINT, done BOOLEAN, due DATETIME(6), labels TEXT, note VARCHAR(50) DEFAULT 'ro',
					updated_at DATETIME(6), INDEX (updated_at, id))`,
				`CREATE TABLE ` + comments + ` (id BIGINT AUTO_INCREMENT PRIMARY KEY,
					item_id BIGINT NOT NULL, author TEXT, body TEXT, created_at DATETIME(6),
					INDEX (created_at, id), FOREIGN KEY (item_id) REFERENCES ` + items + `(id))`,
			}
		},
		textIDDDL: `CREATE TABLE {t} (id VARCHAR(36) PRIMARY KEY DEFAULT (uuid()), title TEXT, updated_at DATETIME(6))`,
		nowSQL:    `UTC_TIMESTAMP(6)`,
		ts:        func(t time.Time) any { return t.UTC() },
		ph:        func(int) string { return "?" },
	},
}

// fixture is one test's pair of fresh tables and a connector on them.
type fixture struct {
	b        backend
	raw      *sql.DB // another client, for plain SQL
	conn     connectors.Connector
	items    string
	comments string
	dsn      string
}

func randomSuffix(t testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func testSettings(b backend, dsn, items, comments string) Settings {
	return Settings{
		Driver: b.driver, DSN: dsn, Table: items, KeyPrefix: "T-", URLTemplate: "https://tickets.example/{id}",
		Fields: []Field{
			{Name: "title"},
			{Name: "points", Type: connectors.TypeNumber},
			{Name: "estimate", Type: connectors.TypeNumber},
			{Name: "done", Type: connectors.TypeBool},
			{Name: "due", Type: connectors.TypeTime},
			{Name: "tags", Column: "labels", Type: connectors.TypeList},
			{Name: "note", ReadOnly: true},
		},
		Comments: &CommentTable{Table: comments, EntityColumn: "item_id"},
		SettleMS: -1, // these tests read right after writing; TestSettle covers the wait
	}
}

func newFixture(t testing.TB, b backend) *fixture {
	t.Helper()
	dsn, why := b.dsn(t)
	if dsn == "" {
		t.Skip(why)
	}
	raw, err := sql.Open(b.sqlDriver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	suffix := randomSuffix(t)
	f := &fixture{b: b, raw: raw, items: "dx_items_" + suffix, comments: "dx_comments_" + suffix, dsn: dsn}
	for _, q := range b.ddl(f.items, f.comments) {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		for _, tab := range []string{f.comments, f.items} {
			if _, err := raw.Exec("DROP TABLE IF EXISTS " + tab); err != nil {
				t.Errorf("drop %s: %v", tab, err)
			}
		}
	})
	settings, err := json.Marshal(testSettings(b, "", f.items, f.comments))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := New(context.Background(), connectors.Config{
		Name: "test", Settings: settings, Secrets: map[string]string{"dsn": dsn},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	f.conn = conn
	return f
}

// exec runs plain SQL as another client would; ? become the backend's
// placeholders.
func (f *fixture) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	n := 0
	q = strings.ReplaceAll(q, "{items}", f.items)
	q = strings.ReplaceAll(q, "{comments}", f.comments)
	q = strings.ReplaceAll(q, "{now}", f.b.nowSQL)
	var sb strings.Builder
	for _, r := range q {
		if r == '?' {
			n++
			sb.WriteString(f.b.ph(n))
			continue
		}
		sb.WriteRune(r)
	}
	if _, err := f.raw.Exec(sb.String(), args...); err != nil {
		t.Fatalf("%s: %v", sb.String(), err)
	}
}

func (f *fixture) create(t testing.TB, title string) connectors.Entity {
	t.Helper()
	e, err := f.conn.Create(context.Background(), map[string]any{"title": title})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return e
}

// drain reads Changes from cursor with limit until no more are ready.
func (f *fixture) drain(t testing.TB, cursor string, limit int) ([]connectors.Entity, string) {
	t.Helper()
	var all []connectors.Entity
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("Changes never stopped reporting More")
		}
		p, err := f.conn.Changes(context.Background(), cursor, limit)
		if err != nil {
			t.Fatalf("Changes(%q, %d): %v", cursor, limit, err)
		}
		if len(p.Entities) > limit {
			t.Fatalf("Changes returned %d entities, limit %d", len(p.Entities), limit)
		}
		all = append(all, p.Entities...)
		if p.Cursor == "" && len(p.Entities) > 0 {
			t.Fatal("Changes returned entities but no cursor")
		}
		cursor = p.Cursor
		if !p.More {
			return all, cursor
		}
	}
}

func ids(es []connectors.Entity) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// settle waits until the clock has moved past the last write's timestamp,
// as the time between two polls of the engine does.
func settle() { time.Sleep(3 * time.Millisecond) }

func TestConnector(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, f *fixture)
	}{
		{"round trip of every field type", func(t *testing.T, f *fixture) {
			before := time.Now().Add(-time.Second)
			e, err := f.conn.Create(ctx, map[string]any{
				"title": "hello", "points": 2.5, "estimate": float64(7), "done": true,
				"due": "2024-05-06T09:08:09.123456+02:00", "tags": []any{"todev", " urgent ", ""},
				"note": "ignored: read-only",
			})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			want := map[string]any{
				"title": "hello", "points": 2.5, "estimate": int64(7), "done": true,
				"due": "2024-05-06T07:08:09.123456Z", "tags": []any{"todev", "urgent"}, "note": "ro",
			}
			if !reflect.DeepEqual(e.Fields, want) {
				t.Fatalf("created fields\n got %#v\nwant %#v", e.Fields, want)
			}
			if e.Key != "T-"+e.ID || e.URL != "https://tickets.example/"+e.ID || e.Type != f.items {
				t.Errorf("key/url/type = %q %q %q", e.Key, e.URL, e.Type)
			}
			if e.UpdatedAt.Before(before) || e.UpdatedAt.After(time.Now().Add(time.Second)) {
				t.Errorf("UpdatedAt = %v, want about now", e.UpdatedAt)
			}
			got, err := f.conn.Get(ctx, e.ID)
			if err != nil || !reflect.DeepEqual(got, e) {
				t.Fatalf("Get = %+v, %v\nwant %+v", got, err, e)
			}
			var stored string
			if err := f.raw.QueryRow("SELECT labels FROM " + f.items).Scan(&stored); err != nil || stored != "todev,urgent" {
				t.Errorf("labels column = %q, %v; want todev,urgent", stored, err)
			}

			settle()
			u, err := f.conn.Update(ctx, e.ID, map[string]any{"title": "changed", "tags": "a, b,,", "due": nil, "points": float64(4)})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			want["title"], want["tags"], want["due"], want["points"] = "changed", []any{"a", "b"}, nil, float64(4)
			if !reflect.DeepEqual(u.Fields, want) {
				t.Fatalf("updated fields\n got %#v\nwant %#v", u.Fields, want)
			}
			if !u.UpdatedAt.After(e.UpdatedAt) {
				t.Errorf("Update did not move UpdatedAt: %v then %v", e.UpdatedAt, u.UpdatedAt)
			}
			for _, fields := range []map[string]any{{}, {"note": "read-only only"}} {
				same, err := f.conn.Update(ctx, e.ID, fields)
				if err != nil || !reflect.DeepEqual(same, u) {
					t.Errorf("Update(%v) = %+v, %v; want unchanged %+v", fields, same, err, u)
				}
			}
			f.exec(t, "UPDATE {items} SET done = ?, labels = ? WHERE id = ?", false, " todev, urgent ,", e.ID)
			g, err := f.conn.Get(ctx, e.ID)
			if err != nil || g.Fields["done"] != false || !reflect.DeepEqual(g.Fields["tags"], []any{"todev", "urgent"}) {
				t.Errorf("after a plain UPDATE Get = %#v, %v", g.Fields, err)
			}
		}},
		{"describe", func(t *testing.T, f *fixture) {
			s, err := f.conn.Describe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s.EntityType != f.items || !s.Comments || len(s.Fields) != 7 {
				t.Fatalf("Describe = %+v", s)
			}
			if s.Fields[5] != (connectors.FieldSpec{Name: "tags", Type: connectors.TypeList, Description: "column labels"}) ||
				!s.Fields[6].ReadOnly || s.Fields[0].Type != connectors.TypeString {
				t.Errorf("fields = %+v", s.Fields)
			}
		}},
		{"unknown field or bad value is ErrInvalid", func(t *testing.T, f *fixture) {
			e := f.create(t, "x")
			for _, fields := range []map[string]any{
				{"title": "y", "nope": 1},
				{"estimate": "many"},
				{"done": "perhaps"},
				{"tags": []any{"a,b"}},
				{"due": "yesterday"},
				{"title": map[string]any{}},
			} {
				_, err := f.conn.Update(ctx, e.ID, fields)
				if !errors.Is(err, connectors.ErrInvalid) {
					t.Errorf("Update(%v) error = %v, want ErrInvalid", fields, err)
				}
				if _, err := f.conn.Create(ctx, fields); !errors.Is(err, connectors.ErrInvalid) {
					t.Errorf("Create(%v) error = %v, want ErrInvalid", fields, err)
				}
			}
			_, err := f.conn.Update(ctx, e.ID, map[string]any{"nope": 1})
			if err == nil || !strings.Contains(err.Error(), `unknown field "nope"`) {
				t.Errorf("message does not name the field: %v", err)
			}
			if g, _ := f.conn.Get(ctx, e.ID); g.Fields["title"] != "x" {
				t.Errorf("a rejected update wrote: %v", g.Fields)
			}
			if _, err := f.conn.Changes(ctx, "not a cursor", 10); !errors.Is(err, connectors.ErrInvalid) {
				t.Errorf("bad cursor error = %v, want ErrInvalid", err)
			}
		}},
		{"missing id is ErrNotFound", func(t *testing.T, f *fixture) {
			f.create(t, "x")
			for _, id := range []string{"999999", "abc", ""} {
				if _, err := f.conn.Get(ctx, id); !errors.Is(err, connectors.ErrNotFound) {
					t.Errorf("Get(%q) error = %v", id, err)
				}
				if _, err := f.conn.Update(ctx, id, map[string]any{"title": "y"}); !errors.Is(err, connectors.ErrNotFound) {
					t.Errorf("Update(%q) error = %v", id, err)
				}
				if _, err := f.conn.AddComment(ctx, id, connectors.Comment{Body: "b"}); !errors.Is(err, connectors.ErrNotFound) {
					t.Errorf("AddComment(%q) error = %v", id, err)
				}
			}
		}},
		{"comments come back in the order added", func(t *testing.T, f *fixture) {
			e := f.create(t, "x")
			other := f.create(t, "other")
			var added []connectors.Comment
			for i := range 4 {
				c, err := f.conn.AddComment(ctx, e.ID, connectors.Comment{Author: "ann", Body: fmt.Sprint("body ", i)})
				if err != nil {
					t.Fatal(err)
				}
				if c.ID == "" || c.CreatedAt.IsZero() || time.Since(c.CreatedAt) > time.Minute {
					t.Fatalf("AddComment returned %+v", c)
				}
				added = append(added, c)
			}
			if _, err := f.conn.AddComment(ctx, other.ID, connectors.Comment{Body: "elsewhere"}); err != nil {
				t.Fatal(err)
			}
			g, err := f.conn.Get(ctx, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g.Comments, added) {
				t.Fatalf("comments\n got %+v\nwant %+v", g.Comments, added)
			}
		}},
		{"a page of changed rows comes with each row's own comments", func(t *testing.T, f *fixture) {
			var rows []connectors.Entity
			for i := range 4 {
				rows = append(rows, f.create(t, fmt.Sprint("row ", i)))
			}
			for _, at := range []int{0, 2, 0} { // two on the first row, one on the third, none on the others
				if _, err := f.conn.AddComment(ctx, rows[at].ID, connectors.Comment{Author: "ann", Body: "on " + rows[at].ID}); err != nil {
					t.Fatal(err)
				}
			}
			all, _ := f.drain(t, "", 10)
			if len(all) != len(rows) {
				t.Fatalf("%d entities, want %d", len(all), len(rows))
			}
			for _, e := range all {
				g, err := f.conn.Get(ctx, e.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(e.Comments, g.Comments) {
					t.Errorf("entity %s: comments from Changes %+v, from Get %+v", e.ID, e.Comments, g.Comments)
				}
			}
			if n := len(all[0].Comments) + len(all[2].Comments); n != 3 || len(all[1].Comments)+len(all[3].Comments) != 0 {
				t.Errorf("comments per row: %d %d %d %d; want 2 0 1 0", len(all[0].Comments), len(all[1].Comments), len(all[2].Comments), len(all[3].Comments))
			}
		}},
		{"paging over five rows with the same timestamp", func(t *testing.T, f *fixture) {
			at := f.b.ts(time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC))
			for i := range 5 {
				f.exec(t, "INSERT INTO {items} (title, updated_at) VALUES (?, ?)", fmt.Sprint("row ", i), at)
			}
			var got []string
			cursor := ""
			for page := 0; ; page++ {
				p, err := f.conn.Changes(ctx, cursor, 2)
				if err != nil {
					t.Fatal(err)
				}
				if page < 2 && (len(p.Entities) != 2 || !p.More) {
					t.Fatalf("page %d: %d entities, More %v", page, len(p.Entities), p.More)
				}
				got = append(got, ids(p.Entities)...)
				cursor = p.Cursor
				if !p.More {
					break
				}
			}
			if want := []string{"1", "2", "3", "4", "5"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("ids over pages = %v, want %v", got, want)
			}
			p, err := f.conn.Changes(ctx, cursor, 2)
			if err != nil || len(p.Entities) != 0 || p.More || p.Cursor != cursor {
				t.Errorf("after the end: %+v, %v", p, err)
			}
		}},
		{"integer ids compare as numbers", func(t *testing.T, f *fixture) {
			at := f.b.ts(time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC))
			for _, id := range []int{10, 9, 100} {
				f.exec(t, "INSERT INTO {items} (id, title, updated_at) VALUES (?, ?, ?)", id, "r", at)
			}
			var got []string
			cursor := ""
			for range 4 {
				p, err := f.conn.Changes(ctx, cursor, 1)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ids(p.Entities)...)
				cursor = p.Cursor
			}
			if want := []string{"9", "10", "100"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("ids = %v, want %v", got, want)
			}
		}},
		{"a new comment makes its entity changed", func(t *testing.T, f *fixture) {
			a, b := f.create(t, "a"), f.create(t, "b")
			all, cursor := f.drain(t, "", 10)
			if !reflect.DeepEqual(ids(all), []string{a.ID, b.ID}) {
				t.Fatalf("first drain = %v", ids(all))
			}
			settle()
			c, err := f.conn.AddComment(ctx, a.ID, connectors.Comment{Author: "bob", Body: "ping"})
			if err != nil {
				t.Fatal(err)
			}
			got, cursor := f.drain(t, cursor, 10)
			if len(got) != 1 || got[0].ID != a.ID || len(got[0].Comments) != 1 || got[0].Comments[0] != c {
				t.Fatalf("after a comment: %+v", got)
			}
			if got[0].Fields["title"] != "a" {
				t.Errorf("entity not loaded: %+v", got[0])
			}
			if again, _ := f.drain(t, cursor, 10); len(again) != 0 {
				t.Errorf("comment reported twice: %v", ids(again))
			}
			// A comment and an update of the same entity in one page: once.
			settle()
			if _, err := f.conn.AddComment(ctx, b.ID, connectors.Comment{Body: "x"}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.conn.Update(ctx, b.ID, map[string]any{"title": "b2"}); err != nil {
				t.Fatal(err)
			}
			got, _ = f.drain(t, cursor, 10)
			if len(got) != 1 || got[0].ID != b.ID || got[0].Fields["title"] != "b2" || len(got[0].Comments) != 1 {
				t.Fatalf("comment + update: %+v", got)
			}
		}},
		{"a saved cursor continues after the last change seen", func(t *testing.T, f *fixture) {
			var created []connectors.Entity
			for i := range 3 {
				created = append(created, f.create(t, fmt.Sprint("r", i)))
			}
			all, saved := f.drain(t, "", 2)
			if len(all) != 3 {
				t.Fatalf("drain = %v", ids(all))
			}
			// The cursor is stored and the process restarted later.
			stored, _ := json.Marshal(saved)
			var reloaded string
			if err := json.Unmarshal(stored, &reloaded); err != nil {
				t.Fatal(err)
			}
			settle()
			if _, err := f.conn.Update(ctx, created[0].ID, map[string]any{"done": true}); err != nil {
				t.Fatal(err)
			}
			fourth := f.create(t, "r3")
			got, next := f.drain(t, reloaded, 1)
			if want := []string{created[0].ID, fourth.ID}; !reflect.DeepEqual(ids(got), want) {
				t.Fatalf("after the saved cursor = %v, want %v", ids(got), want)
			}
			if got[0].Fields["done"] != true {
				t.Errorf("update not in the entity: %v", got[0].Fields)
			}
			if rest, _ := f.drain(t, next, 10); len(rest) != 0 {
				t.Errorf("repeated: %v", ids(rest))
			}
		}},
		{"an external UPDATE that sets the updated column shows up", func(t *testing.T, f *fixture) {
			a, b := f.create(t, "a"), f.create(t, "b")
			_, cursor := f.drain(t, "", 10)
			settle()
			f.exec(t, "UPDATE {items} SET title = ?, labels = ?, updated_at = {now} WHERE id = ?", "typed by hand", "todev,urgent", a.ID)
			f.exec(t, "UPDATE {items} SET title = ? WHERE id = ?", "no timestamp", b.ID)
			got, _ := f.drain(t, cursor, 10)
			if len(got) != 1 || got[0].ID != a.ID {
				t.Fatalf("after external update: %v", ids(got))
			}
			if got[0].Fields["title"] != "typed by hand" || !reflect.DeepEqual(got[0].Fields["tags"], []any{"todev", "urgent"}) {
				t.Errorf("fields = %v", got[0].Fields)
			}
		}},
		{"changes come oldest first with comments loaded", func(t *testing.T, f *fixture) {
			a := f.create(t, "a")
			if _, err := f.conn.AddComment(ctx, a.ID, connectors.Comment{Body: "c1"}); err != nil {
				t.Fatal(err)
			}
			settle()
			b := f.create(t, "b")
			settle()
			if _, err := f.conn.Update(ctx, a.ID, map[string]any{"title": "a2"}); err != nil {
				t.Fatal(err)
			}
			got, _ := f.drain(t, "", 100)
			if want := []string{a.ID, b.ID}; !reflect.DeepEqual(ids(got), want) {
				t.Fatalf("ids = %v, want %v (each once)", ids(got), want)
			}
			if len(got[0].Comments) != 1 || got[0].Fields["title"] != "a2" {
				t.Errorf("first = %+v", got[0])
			}
			var prev time.Time
			for _, e := range got[1:] {
				if e.UpdatedAt.Before(prev) {
					t.Errorf("not oldest first: %v", ids(got))
				}
				prev = e.UpdatedAt
			}
		}},
		{"a cancelled context stops the query", func(t *testing.T, f *fixture) {
			f.create(t, "a")
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := f.conn.Changes(cctx, "", 10); !errors.Is(err, context.Canceled) {
				t.Errorf("Changes with a cancelled context: %v", err)
			}
			if _, err := f.conn.Get(cctx, "1"); !errors.Is(err, context.Canceled) {
				t.Errorf("Get with a cancelled context: %v", err)
			}
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if dsn, why := b.dsn(t); dsn == "" {
				t.Skip(why)
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, newFixture(t, b))
				})
			}
		})
	}
}

func TestTextIDs(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b)
			tab := "dx_text_" + randomSuffix(t)
			f.exec(t, strings.ReplaceAll(b.textIDDDL, "{t}", tab))
			t.Cleanup(func() { f.raw.Exec("DROP TABLE " + tab) })
			settings, _ := json.Marshal(Settings{Driver: b.driver, DSN: f.dsn, Table: tab, Fields: []Field{{Name: "title"}}, SettleMS: -1})
			c, err := New(ctx, connectors.Config{Settings: settings})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			e, err := c.Create(ctx, map[string]any{"title": "made"})
			if err != nil || e.ID == "" || e.Fields["title"] != "made" {
				t.Fatalf("Create = %+v, %v", e, err)
			}
			if u, err := c.Update(ctx, e.ID, map[string]any{"title": "changed"}); err != nil || u.Fields["title"] != "changed" {
				t.Fatalf("Update = %+v, %v", u, err)
			}
			if _, err := c.Get(ctx, e.ID+"-nope"); !errors.Is(err, connectors.ErrNotFound) {
				t.Errorf("Get(missing) = %v", err)
			}
			f.exec(t, "DELETE FROM "+tab)
			at := b.ts(time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC))
			for _, id := range []string{"b", "a", "c", "10", "9"} {
				f.exec(t, "INSERT INTO "+tab+" (id, title, updated_at) VALUES (?, ?, ?)", id, "t", at)
			}
			var got []string
			cursor := ""
			for range 6 {
				p, err := c.Changes(ctx, cursor, 1)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ids(p.Entities)...)
				cursor = p.Cursor
			}
			if want := []string{"10", "9", "a", "b", "c"}; !reflect.DeepEqual(got, want) {
				t.Errorf("text ids = %v, want %v (as text)", got, want)
			}
		})
	}
}

func TestSQLitePragmas(t *testing.T) {
	f := newFixture(t, backends[0])
	var mode string
	var fk, busy int
	db := f.conn.(*conn).db
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v", mode, err)
	}
	if err := db.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v", fk, err)
	}
	if err := db.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil || busy != 5000 {
		t.Errorf("busy_timeout = %d, %v", busy, err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, backends[0])
	good := testSettings(f.b, f.dsn, f.items, f.comments)
	cases := []struct {
		name   string
		change func(s *Settings)
		want   error
	}{
		{"unknown driver", func(s *Settings) { s.Driver = "oracle" }, connectors.ErrBadConfig},
		{"identifier with a quote", func(s *Settings) { s.Table = `items"; DROP TABLE x; --` }, connectors.ErrBadConfig},
		{"column starting with a digit", func(s *Settings) { s.Fields[0].Column = "1title" }, connectors.ErrBadConfig},
		{"bad comment column", func(s *Settings) { s.Comments.BodyColumn = "body text" }, connectors.ErrBadConfig},
		{"unknown field type", func(s *Settings) { s.Fields[0].Type = "blob" }, connectors.ErrBadConfig},
		{"duplicate field", func(s *Settings) { s.Fields[1].Name = "title" }, connectors.ErrBadConfig},
		{"writable updated column", func(s *Settings) { s.Fields[0].Column = "updated_at" }, connectors.ErrBadConfig},
		{"no fields", func(s *Settings) { s.Fields = nil }, connectors.ErrBadConfig},
		{"no dsn", func(s *Settings) { s.DSN = "" }, connectors.ErrBadConfig},
		{"missing table", func(s *Settings) { s.Table = "no_such_table" }, connectors.ErrBadConfig},
		{"missing column", func(s *Settings) { s.Fields[0].Column = "no_such_column" }, connectors.ErrBadConfig},
		{"missing comments table", func(s *Settings) { s.Comments.Table = "no_such_table" }, connectors.ErrBadConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := testSettings(f.b, f.dsn, f.items, f.comments)
			tc.change(&s)
			raw, _ := json.Marshal(s)
			c, err := New(ctx, connectors.Config{Name: "bad", Settings: raw})
			if !errors.Is(err, tc.want) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("New error = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("unknown settings key", func(t *testing.T) {
		_, err := New(ctx, connectors.Config{Settings: json.RawMessage(`{"driver":"sqlite","tabel":"x"}`)})
		if !errors.Is(err, connectors.ErrBadConfig) || !strings.Contains(err.Error(), "tabel") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("secret dsn takes precedence", func(t *testing.T) {
		s := good
		s.DSN = filepath.Join(t.TempDir(), "other.db")
		raw, _ := json.Marshal(s)
		c, err := New(ctx, connectors.Config{Settings: raw, Secrets: map[string]string{"dsn": f.dsn}})
		if err != nil {
			t.Fatalf("New with secret dsn: %v", err)
		}
		c.Close()
	})
	t.Run("unreachable server is ErrUnavailable", func(t *testing.T) {
		s := good
		s.Driver, s.DSN = "postgres", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"
		raw, _ := json.Marshal(s)
		if _, err := New(ctx, connectors.Config{Settings: raw}); !errors.Is(err, connectors.ErrUnavailable) {
			t.Errorf("error = %v, want ErrUnavailable", err)
		}
	})
}

func TestSQLiteLockedIsUnavailable(t *testing.T) {
	f := newFixture(t, backends[0])
	e := f.create(t, "x")
	// Another client holds the write lock longer than our busy timeout.
	raw, err := sql.Open("sqlite3", f.dsn+"?_busy_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("UPDATE " + f.items + " SET title = 'locked'"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	settings, _ := json.Marshal(testSettings(f.b, f.dsn+"?_busy_timeout=50", f.items, f.comments))
	c, err := New(ctx, connectors.Config{Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Update(ctx, e.ID, map[string]any{"title": "y"})
	if !errors.Is(err, connectors.ErrUnavailable) {
		t.Fatalf("Update while locked: %v, want ErrUnavailable", err)
	}
}

func TestSQLiteDSN(t *testing.T) {
	for in, want := range map[string]string{
		"a.db":                  "a.db?_busy_timeout=5000&_journal_mode=WAL&_foreign_keys=on&_stmt_cache_size=64",
		"file:a.db?mode=rwc":    "file:a.db?mode=rwc&_busy_timeout=5000&_journal_mode=WAL&_foreign_keys=on&_stmt_cache_size=64",
		"a.db?":                 "a.db?_busy_timeout=5000&_journal_mode=WAL&_foreign_keys=on&_stmt_cache_size=64",
		"a.db?_timeout=1&_fk=0": "a.db?_timeout=1&_fk=0&_journal_mode=WAL&_stmt_cache_size=64",
		"a.db?_busy_timeout=9&_journal_mode=DELETE&_foreign_keys=off&_stmt_cache_size=0": "a.db?_busy_timeout=9&_journal_mode=DELETE&_foreign_keys=off&_stmt_cache_size=0",
	} {
		if got := sqliteDSN(in); got != want {
			t.Errorf("sqliteDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValues(t *testing.T) {
	for in, want := range map[string]string{
		"2024-01-02T03:04:05.678Z":            "2024-01-02T03:04:05.678Z",
		"2024-01-02T03:04:05Z":                "2024-01-02T03:04:05Z",
		"2024-01-02T05:04:05+02:00":           "2024-01-02T03:04:05Z",
		"2024-01-02 03:04:05":                 "2024-01-02T03:04:05Z",
		"2024-01-02 03:04:05.5":               "2024-01-02T03:04:05.5Z",
		"2024-01-02 03:04:05.123456789+00:00": "2024-01-02T03:04:05.123456789Z",
		"2024-01-02 03:04":                    "2024-01-02T03:04:00Z",
		"2024-01-02":                          "2024-01-02T00:00:00Z",
	} {
		got, ok := parseTime(in)
		if !ok || got.Format(time.RFC3339Nano) != want {
			t.Errorf("parseTime(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
	if got := readValue(connectors.TypeList, []byte(" a, ,b ,")); !reflect.DeepEqual(got, []any{"a", "b"}) {
		t.Errorf("list = %#v", got)
	}
	if got := readValue(connectors.TypeNumber, int32(9)); got != int64(9) {
		t.Errorf("int32 = %#v", got)
	}
	if got := readValue(connectors.TypeNumber, []byte("12.50")); got != 12.5 {
		t.Errorf("decimal = %#v", got)
	}
	if got := readValue(connectors.TypeBool, int64(1)); got != true {
		t.Errorf("bool = %#v", got)
	}
	if got := readValue(connectors.TypeTime, "not a time"); got != "not a time" {
		t.Errorf("bad time = %#v", got)
	}
	if got, _ := writeNumber(3.0); got != int64(3) {
		t.Errorf("whole float = %#v", got)
	}
	if got, _ := writeList([]string{" x ", "", "y"}); got != "x,y" {
		t.Errorf("list = %#v", got)
	}
}

// A create that gives only some fields leaves the others to their column
// defaults instead of writing NULL into NOT NULL columns.
func TestCreateKeepsColumnDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT,
		title TEXT NOT NULL DEFAULT '', state TEXT NOT NULL DEFAULT 'new', updated_at TEXT)`); err != nil {
		t.Fatal(err)
	}
	settings := `{"driver":"sqlite","dsn":"` + path + `","table":"items","fields":[{"name":"title"},{"name":"state"}]}`
	c, err := New(context.Background(), connectors.Config{Name: "t", Settings: json.RawMessage(settings)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e, err := c.Create(context.Background(), map[string]any{"title": "only a title"})
	if err != nil {
		t.Fatalf("create with a partial field set: %v", err)
	}
	if e.Fields["state"] != "new" || e.Fields["title"] != "only a title" {
		t.Fatalf("fields %v: want the default state", e.Fields)
	}
}

// With deleted_column, a soft-deleted row shows up in Changes as Deleted and
// Delete sets the column; without it, Delete removes the row.
func TestDeletes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "d.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT, deleted_at TEXT, updated_at TEXT)`); err != nil {
		t.Fatal(err)
	}
	open := func(extra string) connectors.Connector {
		c, err := New(ctx, connectors.Config{Name: "t", Settings: json.RawMessage(
			`{"driver":"sqlite","dsn":"` + path + `","table":"items","settle_ms":-1,"fields":[{"name":"title"}]` + extra + `}`)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	soft := open(`,"deleted_column":"deleted_at"`)
	a, _ := soft.Create(ctx, map[string]any{"title": "a"})
	b, _ := soft.Create(ctx, map[string]any{"title": "b"})
	page, err := soft.Changes(ctx, "", 10)
	if err != nil || len(page.Entities) != 2 || page.Entities[0].Deleted {
		t.Fatalf("before delete: %+v %v", page, err)
	}
	time.Sleep(3 * time.Millisecond)
	if err := soft.(connectors.Deleter).Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	page, err = soft.Changes(ctx, page.Cursor, 10)
	if err != nil || len(page.Entities) != 1 || page.Entities[0].ID != a.ID || !page.Entities[0].Deleted {
		t.Fatalf("soft delete not reported: %+v %v", page, err)
	}
	hard := open(``)
	if err := hard.(connectors.Deleter).Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := hard.Get(ctx, b.ID); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("hard delete left the row: %v", err)
	}
	if err := hard.(connectors.Deleter).Delete(ctx, b.ID); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// The row deleted behind Duplex's back: the change from the other side
	// fails saying what to do, for either kind of table.
	if _, err := hard.Update(ctx, b.ID, map[string]any{"title": "x"}); !errors.Is(err, connectors.ErrNotFound) ||
		!strings.Contains(err.Error(), "DELETE /api/twins/:id") || !strings.Contains(err.Error(), "set deleted_column") {
		t.Fatalf("update of a hard-deleted row: %v", err)
	}
	if _, err := soft.Update(ctx, b.ID, map[string]any{"title": "x"}); !errors.Is(err, connectors.ErrNotFound) ||
		!strings.Contains(err.Error(), "by setting deleted_at, never with DELETE") {
		t.Fatalf("update of a hard-deleted row of a soft-delete table: %v", err)
	}
}

// A change younger than the settle time is reported on a later call, not
// skipped: the cursor does not move past it.
func TestSettle(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT, updated_at TEXT)`); err != nil {
		t.Fatal(err)
	}
	c, err := New(ctx, connectors.Config{Name: "t", Settings: json.RawMessage(
		`{"driver":"sqlite","dsn":"` + path + `","table":"items","settle_ms":300,"fields":[{"name":"title"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Create(ctx, map[string]any{"title": "young"}); err != nil {
		t.Fatal(err)
	}
	page, err := c.Changes(ctx, "", 10)
	if err != nil || len(page.Entities) != 0 || page.More || page.Cursor != "" {
		t.Fatalf("a change younger than 300 ms was reported or passed: %+v %v", page, err)
	}
	time.Sleep(350 * time.Millisecond)
	page, err = c.Changes(ctx, page.Cursor, 10)
	if err != nil || len(page.Entities) != 1 {
		t.Fatalf("after settling: %+v %v", page, err)
	}
}

// FindBy matches the mapped column exactly with a bound parameter (a value
// that looks like SQL is only a value), skips soft-deleted rows, converts
// the text to the field's type and honours the limit.
func TestFindBy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "f.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, ext_ref TEXT, prio INTEGER, tags TEXT, deleted_at TEXT, updated_at TEXT)`); err != nil {
		t.Fatal(err)
	}
	c, err := New(ctx, connectors.Config{Name: "t", Settings: json.RawMessage(`{"driver":"sqlite","dsn":"` + path +
		`","table":"items","settle_ms":-1,"deleted_column":"deleted_at","fields":[{"name":"ref","column":"ext_ref"},{"name":"prio","type":"number"},{"name":"tags","type":"list"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, ok := c.(connectors.Finder)
	if !ok {
		t.Fatal("the sql connector is not a Finder")
	}
	a, _ := c.Create(ctx, map[string]any{"ref": "X-1", "prio": 3})
	b, _ := c.Create(ctx, map[string]any{"ref": "X-1", "prio": 4})
	gone, _ := c.Create(ctx, map[string]any{"ref": "X-1"})
	if _, err := c.Create(ctx, map[string]any{"ref": "' OR 1=1 --"}); err != nil {
		t.Fatal(err)
	}
	if err := c.(connectors.Deleter).Delete(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	got, err := f.FindBy(ctx, "ref", "X-1", 10)
	if err != nil || len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID || got[0].Fields["ref"] != "X-1" {
		t.Fatalf("FindBy ref X-1 = %+v, %v", got, err)
	}
	if got, err := f.FindBy(ctx, "ref", "X-1", 1); err != nil || len(got) != 1 {
		t.Fatalf("limit 1: %+v %v", got, err)
	}
	if got, err := f.FindBy(ctx, "ref", "x' OR '1'='1", 10); err != nil || len(got) != 0 {
		t.Fatalf("an injection attempt matched: %+v %v", got, err)
	}
	if got, err := f.FindBy(ctx, "ref", "' OR 1=1 --", 10); err != nil || len(got) != 1 {
		t.Fatalf("the literal value: %+v %v", got, err)
	}
	if got, err := f.FindBy(ctx, "prio", "4", 10); err != nil || len(got) != 1 || got[0].ID != b.ID {
		t.Fatalf("number field: %+v %v", got, err)
	}
	if got, err := f.FindBy(ctx, "prio", "four", 10); err != nil || len(got) != 0 {
		t.Fatalf("a non-number for a number field: %+v %v", got, err)
	}
	if _, err := f.FindBy(ctx, "nope", "x", 10); !errors.Is(err, connectors.ErrInvalid) {
		t.Fatalf("unknown field: %v", err)
	}
	if _, err := f.FindBy(ctx, "tags", "x", 10); !errors.Is(err, connectors.ErrInvalid) {
		t.Fatalf("list field: %v", err)
	}
}

// GetMany gives each row exactly as Get does (comments in Get's order),
// keyed by the ids as asked, and leaves out what does not exist.
func TestGetMany(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b)
			br, ok := f.conn.(connectors.BatchReader)
			if !ok {
				t.Fatal("the sql connector does not implement connectors.BatchReader")
			}
			var ids []string
			for i := 0; i < 5; i++ {
				e := f.create(t, fmt.Sprint("row ", i))
				ids = append(ids, e.ID)
				for k := 0; k < i%3; k++ { // rows with 0, 1 and 2 comments
					if _, err := f.conn.AddComment(ctx, e.ID, connectors.Comment{Author: "ann", Body: fmt.Sprintf("c%d-%d", i, k)}); err != nil {
						t.Fatal(err)
					}
					settle()
				}
			}
			ask := append(slices.Clone(ids), "999999", "not-a-number", ids[0])
			got, err := br.GetMany(ctx, ask)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(ids) {
				t.Errorf("GetMany returned %d entities, want %d: %v", len(got), len(ids), slices.Collect(maps.Keys(got)))
			}
			for _, id := range ids {
				want, err := f.conn.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got[id], want) {
					t.Errorf("GetMany[%s]\n got %#v\nwant %#v", id, got[id], want)
				}
			}
			if none, err := br.GetMany(ctx, nil); err != nil || len(none) != 0 {
				t.Errorf("GetMany(nil) = %v, %v", none, err)
			}
		})
	}
}

// TestServerPoolKeepsItsConnections: a PostgreSQL or MariaDB pool reuses
// the connections a burst of concurrent users opened, instead of closing
// all but database/sql's default of 2 and opening them again next time.
func TestServerPoolKeepsItsConnections(t *testing.T) {
	for _, b := range backends {
		if b.name == "sqlite" {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			dsn, why := b.dsn(t)
			if dsn == "" {
				t.Skip(why)
			}
			d, err := dialectFor(b.driver)
			if err != nil {
				t.Fatal(err)
			}
			db, err := d.open(dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			const width = serverIdleConns
			for round := 0; round < 3; round++ {
				conns := make([]*sql.Conn, width)
				for i := range conns {
					if conns[i], err = db.Conn(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				for _, c := range conns {
					c.Close()
				}
			}
			if st := db.Stats(); st.MaxIdleClosed != 0 || st.OpenConnections != width {
				t.Fatalf("connections closed after use: %d, open: %d (want 0 closed, %d open)", st.MaxIdleClosed, st.OpenConnections, width)
			}
		})
	}
}

// The cursor reads of Changes seek the (updated, id) and (created, id)
// indexes to the cursor on SQLite. The equal "u > a OR (u = a AND id > b)"
// was planned as a read of the index from its start (SCAN): every row
// before the cursor, on each page of a poll. A sort (TEMP B-TREE) would
// read every row after it.
func TestChangesSeekTheCursor(t *testing.T) {
	f := newFixture(t, backends[0])
	c := f.conn.(*conn)
	for _, q := range []string{c.q.after, c.q.cAfter} {
		var plan []string
		rows, err := f.raw.Query("EXPLAIN QUERY PLAN "+q, "2024-01-01", "2024-01-01", 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, "SEARCH") || strings.Contains(p, "SCAN") || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s\nplanned as %s; want a SEARCH of the index", q, p)
		}
	}
}
