package migrations_test

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// column is one column as both databases can describe it.
type column struct {
	Type    string // normalized: integer, text, real, bool, time, bytes
	NotNull bool
}

// index is one index as a set member: its table, columns in order, and
// whether it is unique or partial. Names differ between the databases
// (SQLite names the indexes of UNIQUE constraints itself).
type index struct {
	Table, Columns  string
	Unique, Partial bool
}

// schema is what the parity test compares.
type schema struct {
	Columns map[string]column // by "table.column"
	Indexes map[index]bool
}

// normType maps a declared type to its family: the migrations of the two
// databases spell the same thing differently (BIGSERIAL and INTEGER
// PRIMARY KEY, TIMESTAMPTZ and DATETIME).
func normType(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	switch {
	case strings.Contains(t, "int"), strings.Contains(t, "serial"):
		return "integer"
	case strings.Contains(t, "char"), strings.Contains(t, "text"), t == "json", t == "jsonb":
		return "text"
	case strings.Contains(t, "real"), strings.Contains(t, "double"), strings.Contains(t, "numeric"), strings.Contains(t, "float"):
		return "real"
	case strings.Contains(t, "bool"):
		return "bool"
	case strings.Contains(t, "time"), strings.Contains(t, "date"):
		return "time"
	case strings.Contains(t, "blob"), t == "bytea":
		return "bytes"
	}
	return t
}

// ignored tables are the migration tool's own.
func ignored(table string) bool {
	return table == "goose_db_version" || strings.HasPrefix(table, "sqlite_")
}

func sqliteSchema(t *testing.T, st *store.Store) schema {
	db := st.DB()
	s := schema{Columns: map[string]column{}, Indexes: map[index]bool{}}
	var tables []string
	if err := db.Raw(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if ignored(tb) {
			continue
		}
		var cols []struct {
			Name    string
			Type    string
			NotNull bool
			PK      int
		}
		if err := db.Raw(`SELECT name, type, "notnull" AS not_null, pk FROM pragma_table_info(?)`, tb).Scan(&cols).Error; err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			// A primary key column is NOT NULL in PostgreSQL whether or
			// not SQLite's declaration says so.
			s.Columns[tb+"."+c.Name] = column{Type: normType(c.Type), NotNull: c.NotNull || c.PK > 0}
		}
		var idxs []struct {
			Name    string
			Unique  bool
			Origin  string
			Partial bool
		}
		if err := db.Raw(`SELECT name, "unique", origin, partial FROM pragma_index_list(?)`, tb).Scan(&idxs).Error; err != nil {
			t.Fatal(err)
		}
		for _, ix := range idxs {
			if ix.Origin == "pk" {
				continue
			}
			var names []string
			if err := db.Raw(`SELECT name FROM pragma_index_info(?) ORDER BY seqno`, ix.Name).Scan(&names).Error; err != nil {
				t.Fatal(err)
			}
			s.Indexes[index{Table: tb, Columns: strings.Join(names, ","), Unique: ix.Unique, Partial: ix.Partial}] = true
		}
	}
	return s
}

// pgIndexColumns reads the column list of CREATE [UNIQUE] INDEX … ON t
// [USING btree] (a, b) [WHERE …].
var pgIndexColumns = regexp.MustCompile(`\((.*?)\)(?: WHERE (.*))?$`)

func postgresSchema(t *testing.T, st *store.Store) schema {
	db := st.DB()
	s := schema{Columns: map[string]column{}, Indexes: map[index]bool{}}
	var cols []struct {
		TableName, ColumnName, DataType, IsNullable string
	}
	if err := db.Raw(`SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
		WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`).Scan(&cols).Error; err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		if ignored(c.TableName) {
			continue
		}
		s.Columns[c.TableName+"."+c.ColumnName] = column{Type: normType(c.DataType), NotNull: c.IsNullable == "NO"}
	}
	var idxs []struct {
		Tablename, Indexname, Indexdef string
		Primary                        bool
	}
	if err := db.Raw(`SELECT i.tablename, i.indexname, i.indexdef, x.indisprimary AS "primary"
		FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = i.schemaname
		JOIN pg_index x ON x.indexrelid = c.oid WHERE i.schemaname = current_schema()`).Scan(&idxs).Error; err != nil {
		t.Fatal(err)
	}
	for _, ix := range idxs {
		if ix.Primary || ignored(ix.Tablename) {
			continue
		}
		m := pgIndexColumns.FindStringSubmatch(ix.Indexdef)
		if m == nil {
			t.Fatalf("index %s: cannot read %q", ix.Indexname, ix.Indexdef)
		}
		var names []string
		for _, c := range strings.Split(m[1], ",") {
			names = append(names, strings.Trim(strings.TrimSpace(c), `"`))
		}
		s.Indexes[index{Table: ix.Tablename, Columns: strings.Join(names, ","), Unique: strings.HasPrefix(ix.Indexdef, "CREATE UNIQUE"),
			Partial: m[2] != ""}] = true
	}
	return s
}

// TestMigrationsParity migrates SQLite and PostgreSQL to the latest version
// and compares their tables, columns (normalized types, NOT NULL) and
// indexes (columns, unique, partial): a migration written for one database
// only, or differently for each, fails here.
func TestMigrationsParity(t *testing.T) {
	if os.Getenv(testdb.PostgresEnv) == "" {
		t.Skipf("set %s to compare the SQLite and PostgreSQL schemas", testdb.PostgresEnv)
	}
	lite := sqliteSchema(t, testdb.SQLite(t))
	pg := postgresSchema(t, testdb.Postgres(t))
	if len(lite.Columns) == 0 || len(lite.Indexes) == 0 {
		t.Fatalf("the SQLite schema reads empty: %d columns, %d indexes", len(lite.Columns), len(lite.Indexes))
	}
	t.Logf("SQLite: %d columns, %d indexes; PostgreSQL: %d columns, %d indexes", len(lite.Columns), len(lite.Indexes), len(pg.Columns), len(pg.Indexes))
	for _, d := range diff(lite, pg) {
		t.Error(d)
	}
}

// The comparison sees drift: a column and an index one database lacks, and
// a type that differs.
func TestMigrationsParityFindsDrift(t *testing.T) {
	if os.Getenv(testdb.PostgresEnv) == "" {
		t.Skipf("set %s to compare the SQLite and PostgreSQL schemas", testdb.PostgresEnv)
	}
	st := testdb.SQLite(t)
	for _, q := range []string{`ALTER TABLE systems ADD COLUMN drift TEXT`, `CREATE INDEX drift_idx ON systems (drift)`} {
		if err := st.DB().Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	pgStore := testdb.Postgres(t)
	if err := pgStore.DB().Exec(`ALTER TABLE teams ALTER COLUMN name TYPE bytea USING name::bytea`).Error; err != nil {
		t.Fatal(err)
	}
	got := strings.Join(diff(sqliteSchema(t, st), postgresSchema(t, pgStore)), "\n")
	for _, want := range []string{"column systems.drift only in SQLite", "index only in SQLite: {Table:systems Columns:drift", "column teams.name: SQLite {Type:text"} {
		if !strings.Contains(got, want) {
			t.Errorf("drift not reported: %q\nin:\n%s", want, got)
		}
	}
}

// diff lists every difference between the two schemas, sorted.
func diff(lite, pg schema) []string {
	var drift []string
	for _, k := range sortedKeys(lite.Columns, pg.Columns) {
		l, inLite := lite.Columns[k]
		p, inPG := pg.Columns[k]
		switch {
		case !inPG:
			drift = append(drift, fmt.Sprintf("column %s only in SQLite (%+v)", k, l))
		case !inLite:
			drift = append(drift, fmt.Sprintf("column %s only in PostgreSQL (%+v)", k, p))
		case l != p:
			drift = append(drift, fmt.Sprintf("column %s: SQLite %+v, PostgreSQL %+v", k, l, p))
		}
	}
	for ix := range lite.Indexes {
		if !pg.Indexes[ix] {
			drift = append(drift, fmt.Sprintf("index only in SQLite: %+v", ix))
		}
	}
	for ix := range pg.Indexes {
		if !lite.Indexes[ix] {
			drift = append(drift, fmt.Sprintf("index only in PostgreSQL: %+v", ix))
		}
	}
	sort.Strings(drift)
	return drift
}

func sortedKeys(a, b map[string]column) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
