package sqlconn

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // also registers the "pgx" database/sql driver

	"github.com/duplexsync/duplex/connectors"
)

// sqliteTime is how SQLite stores the updated and created columns: UTC,
// millisecond precision, ordered as text. strftime('%Y-%m-%dT%H:%M:%fZ',
// 'now') produces the same form.
const sqliteTime = "2006-01-02T15:04:05.000Z"

// dialect holds what differs between the three databases.
type dialect int

const (
	sqlite dialect = iota
	postgres
	mariadb
)

func dialectFor(driver string) (dialect, error) {
	switch strings.ToLower(driver) {
	case "sqlite", "sqlite3":
		return sqlite, nil
	case "postgres", "postgresql", "pgx":
		return postgres, nil
	case "mysql", "mariadb":
		return mariadb, nil
	}
	return 0, fmt.Errorf("driver %q: want sqlite, postgres or mysql", driver)
}

func (d dialect) quote(ident string) string {
	// Identifiers are validated against identRe, so no escaping is needed.
	if d == mariadb {
		return "`" + ident + "`"
	}
	return `"` + ident + `"`
}

// rebind turns ? placeholders into $1, $2, ... for PostgreSQL. The SQL it is
// given has no string literals and only validated identifiers.
func (d dialect) rebind(q string) string {
	if d != postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// timeExpr selects a time column so that its value comes back in a form
// positionOf reads: SQLite returns its text as is (mattn would otherwise turn
// DATETIME-declared columns into time.Time and zero what it cannot parse).
func (d dialect) timeExpr(col string) string {
	if d == sqlite {
		return "CAST(" + d.quote(col) + " AS TEXT)"
	}
	return d.quote(col)
}

// now returns the current time as the value to store in an updated or
// created column, and as the time.Time that value stands for.
func (d dialect) now() (any, time.Time) {
	t := time.Now().UTC()
	if d == sqlite {
		t = t.Truncate(time.Millisecond)
		return t.Format(sqliteTime), t
	}
	t = t.Truncate(time.Microsecond)
	return t, t
}

// Connections of a PostgreSQL or MariaDB pool kept open between uses, and
// for how long an unused one stays. database/sql keeps 2 and closes the
// rest as soon as they are put back, so a batch of concurrent writes opened
// new server connections every time (a process each on PostgreSQL). Few:
// the database is the team's own, and every system on it has a pool in
// every Duplex process (its max_connections, 100 or 151 by default, is
// shared with everything else that uses it).
const (
	serverIdleConns = 4
	serverIdleTime  = time.Minute
)

// open opens the pool with the DSN adjusted for the connector's needs;
// dial, when set, makes every connection of a PostgreSQL or MariaDB pool
// (the outbound policy's dialer).
func (d dialect) open(dsn string, dial connectors.DialFunc) (*sql.DB, error) {
	db, err := d.openPool(dsn, dial)
	if err == nil && d != sqlite {
		db.SetMaxIdleConns(serverIdleConns)
		db.SetConnMaxIdleTime(serverIdleTime)
	}
	return db, err
}

func (d dialect) openPool(dsn string, dial connectors.DialFunc) (*sql.DB, error) {
	switch d {
	case sqlite:
		return sql.Open("sqlite3", sqliteDSN(dsn))
	case postgres:
		if dial == nil {
			return sql.Open("pgx", dsn)
		}
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, err
		}
		cfg.DialFunc = pgconn.DialFunc(dial)
		return stdlib.OpenDB(*cfg), nil
	default:
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		if dial != nil {
			cfg.DialFunc = dial
		}
		// DATETIME columns hold UTC; read them as time.Time in UTC and
		// send time.Time arguments as UTC.
		cfg.ParseTime = true
		cfg.Loc = time.UTC
		// RowsAffected counts matched rows, so an Update that changes
		// nothing is not taken for a missing row.
		cfg.ClientFoundRows = true
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		if _, ok := cfg.Params["time_zone"]; !ok {
			cfg.Params["time_zone"] = "'+00:00'"
		}
		connector, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, err
		}
		return sql.OpenDB(connector), nil
	}
}

// sqliteDSN adds a busy timeout, WAL, foreign keys and a statement cache to a mattn DSN that
// does not set them, so another client editing the file does not make the
// connector fail at once.
func sqliteDSN(dsn string) string {
	_, query, hasQuery := strings.Cut(dsn, "?")
	vals, err := url.ParseQuery(query)
	if err != nil {
		vals = url.Values{}
	}
	var extra []string
	for _, p := range []struct {
		keys []string
		add  string
	}{
		{[]string{"_busy_timeout", "_timeout"}, "_busy_timeout=5000"},
		{[]string{"_journal_mode", "_journal"}, "_journal_mode=WAL"},
		{[]string{"_foreign_keys", "_fk"}, "_foreign_keys=on"},
		// The statements built per call (FindCorrelated, a create that
		// leaves columns to their defaults) are prepared once per
		// connection instead of on every call.
		{[]string{"_stmt_cache_size", "_stmt_cache_size"}, "_stmt_cache_size=64"},
	} {
		if !vals.Has(p.keys[0]) && !vals.Has(p.keys[1]) {
			extra = append(extra, p.add)
		}
	}
	if len(extra) == 0 {
		return dsn
	}
	sep := "&"
	switch {
	case !hasQuery:
		sep = "?"
	case query == "" || strings.HasSuffix(query, "&"):
		sep = ""
	}
	return dsn + sep + strings.Join(extra, "&")
}

// queries are the SQL strings, built once in New.
type queries struct {
	probe, cProbe     string // select every configured column, no rows
	get, exists       string
	first, after      string // changed rows, from the start / after a position
	insert, update    string
	comments, addComm string
	cFirst, cAfter    string // new comments, from the start / after a position
	selectAll         string // "SELECT <entity columns> FROM <table>", not rebound: FindBy adds its WHERE
	// GetMany's, not rebound: "(?, …)" and the ORDER BY are added per call.
	getIn, commentsIn string
	commentsOrder     string
}

func buildQueries(d dialect, s Settings) queries {
	q := d.quote
	t, id, u := q(s.Table), q(s.IDColumn), q(s.UpdatedColumn)

	sel := []string{id, d.timeExpr(s.UpdatedColumn)}
	raw := []string{id, u}
	var wcols, wvals, sets []string
	for _, f := range s.Fields {
		col := f.Column
		if col == "" {
			col = f.Name
		}
		expr := q(col)
		if d == sqlite && f.Type == "time" {
			expr = d.timeExpr(col)
		}
		sel = append(sel, expr)
		raw = append(raw, q(col))
		if !f.ReadOnly {
			wcols = append(wcols, q(col))
			wvals = append(wvals, "?")
			// One statement for any subset of fields: a flag per column
			// says whether to write the value or keep the column.
			sets = append(sets, q(col)+" = CASE WHEN ? THEN ? ELSE "+q(col)+" END")
		}
	}
	if s.DeletedColumn != "" {
		sel = append(sel, q(s.DeletedColumn))
		raw = append(raw, q(s.DeletedColumn))
	}
	cols := strings.Join(sel, ", ")
	order := " ORDER BY " + u + ", " + id + " LIMIT ?"

	var out queries
	out.probe = "SELECT " + strings.Join(raw, ", ") + " FROM " + t + " WHERE 1 = 0"
	out.selectAll = "SELECT " + cols + " FROM " + t
	out.get = "SELECT " + cols + " FROM " + t + " WHERE " + id + " = ?"
	out.getIn = "SELECT " + cols + " FROM " + t + " WHERE " + id + " IN "
	out.exists = "SELECT 1 FROM " + t + " WHERE " + id + " = ?"
	out.first = "SELECT " + cols + " FROM " + t + " WHERE " + u + " IS NOT NULL" + order
	// "u >= a AND (u > a OR id > b)", not the equal "u > a OR (u = a AND
	// id > b)": planners seek an index on (u, id) to a for the first but
	// read it from its start for the second (SQLite: SCAN instead of
	// SEARCH), a read of every row before the cursor on each page.
	out.after = "SELECT " + cols + " FROM " + t + " WHERE " + u + " >= ? AND (" + u + " > ? OR " + id + " > ?)" + order
	out.insert = "INSERT INTO " + t + " (" + strings.Join(append(wcols, u), ", ") + ") VALUES (" +
		strings.Join(append(wvals, "?"), ", ") + ") RETURNING " + id
	out.update = "UPDATE " + t + " SET " + strings.Join(append(sets, u+" = ?"), ", ") + " WHERE " + id + " = ?"

	if ct := s.Comments; ct != nil {
		ctab, cid, ent := q(ct.Table), q(ct.IDColumn), q(ct.EntityColumn)
		auth, body, cr := q(ct.AuthorColumn), q(ct.BodyColumn), q(ct.CreatedColumn)
		corder := " ORDER BY " + cr + ", " + cid + " LIMIT ?"
		out.cProbe = "SELECT " + strings.Join([]string{cid, ent, auth, body, cr}, ", ") + " FROM " + ctab + " WHERE 1 = 0"
		out.comments = "SELECT " + cid + ", " + auth + ", " + body + ", " + d.timeExpr(ct.CreatedColumn) +
			" FROM " + ctab + " WHERE " + ent + " = ? ORDER BY " + cr + ", " + cid
		out.commentsIn = "SELECT " + ent + ", " + cid + ", " + auth + ", " + body + ", " + d.timeExpr(ct.CreatedColumn) +
			" FROM " + ctab + " WHERE " + ent + " IN "
		out.commentsOrder = " ORDER BY " + cr + ", " + cid
		out.addComm = "INSERT INTO " + ctab + " (" + ent + ", " + auth + ", " + body + ", " + cr + ") VALUES (?, ?, ?, ?) RETURNING " + cid
		csel := "SELECT " + d.timeExpr(ct.CreatedColumn) + ", " + cid + ", " + ent + " FROM " + ctab
		out.cFirst = csel + " WHERE " + cr + " IS NOT NULL" + corder
		out.cAfter = csel + " WHERE " + cr + " >= ? AND (" + cr + " > ? OR " + cid + " > ?)" + corder
	}
	for _, p := range []*string{&out.probe, &out.cProbe, &out.get, &out.exists, &out.first, &out.after,
		&out.insert, &out.update, &out.comments, &out.addComm, &out.cFirst, &out.cAfter} {
		*p = d.rebind(*p)
	}
	return out
}

// stmts are the prepared statements, one per query.
type stmts struct {
	get, exists, first, after, insert, update *sql.Stmt
	comments, addComm, cFirst, cAfter         *sql.Stmt
}

func (s *stmts) all() []**sql.Stmt {
	return []**sql.Stmt{&s.get, &s.exists, &s.first, &s.after, &s.insert, &s.update,
		&s.comments, &s.addComm, &s.cFirst, &s.cAfter}
}

func (s *stmts) close() {
	for _, p := range s.all() {
		if *p != nil {
			_ = (*p).Close()
			*p = nil
		}
	}
}

// prepare checks that the configured tables and columns exist, learns
// whether the id columns hold integers, and prepares every statement.
func (c *conn) prepare(ctx context.Context, s Settings) error {
	types, err := columnTypes(ctx, c.db, c.q.probe)
	if err != nil {
		return fmt.Errorf("table %s: %w", s.Table, err)
	}
	c.idInt = isIntType(types[0])
	if c.comments {
		ctypes, err := columnTypes(ctx, c.db, c.q.cProbe)
		if err != nil {
			return fmt.Errorf("comments table %s: %w", s.Comments.Table, err)
		}
		c.cIDInt, c.cEntInt = isIntType(ctypes[0]), isIntType(ctypes[1])
	}
	list := []struct {
		st **sql.Stmt
		q  string
	}{
		{&c.st.get, c.q.get}, {&c.st.exists, c.q.exists}, {&c.st.first, c.q.first},
		{&c.st.after, c.q.after}, {&c.st.insert, c.q.insert}, {&c.st.update, c.q.update},
	}
	if c.comments {
		list = append(list, []struct {
			st **sql.Stmt
			q  string
		}{{&c.st.comments, c.q.comments}, {&c.st.addComm, c.q.addComm}, {&c.st.cFirst, c.q.cFirst}, {&c.st.cAfter, c.q.cAfter}}...)
	}
	for _, p := range list {
		st, err := c.db.PrepareContext(ctx, p.q)
		if err != nil {
			return fmt.Errorf("prepare %s: %w", p.q, err)
		}
		*p.st = st
	}
	return nil
}

func columnTypes(ctx context.Context, db *sql.DB, q string) ([]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(cts))
	for i, ct := range cts {
		out[i] = strings.ToUpper(ct.DatabaseTypeName())
	}
	return out, rows.Err()
}

// isIntType tells integer column types apart: SQLite's declared type
// (INTEGER, BIGINT, ...), PostgreSQL's INT2/INT4/INT8 and MariaDB's INT,
// BIGINT, UNSIGNED INT, ...
func isIntType(t string) bool {
	return strings.Contains(t, "INT") && !strings.Contains(t, "POINT") || strings.Contains(t, "SERIAL")
}
