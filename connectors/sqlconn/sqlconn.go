// Package sqlconn is the "sql" connector kind: one table of a SQLite,
// PostgreSQL or MariaDB database is one system, each row one entity, and an
// optional second table holds the rows' comments.
//
// Lifecycle: New validates the settings, opens the pool, pings, checks that
// the configured table and columns exist, and prepares every statement once.
// The returned connector is immutable and safe for concurrent use; Close
// releases the statements and the pool.
//
// Change tracking relies on an "updated" column that every write moves to
// the current UTC time: the connector's own Create and Update set it, and
// writes from elsewhere must set it too (by hand or by a trigger). Rows whose
// updated column is NULL are never reported by Changes. In SQLite the
// updated and created columns are TEXT in the form 2006-01-02T15:04:05.000Z,
// which is what strftime('%Y-%m-%dT%H:%M:%fZ','now') produces; in
// PostgreSQL they are timestamptz and in MariaDB DATETIME(6) holding UTC.
//
// Create writes every declared, writable field: one missing from the map is
// stored as NULL, so a column default applies only to columns that are not
// declared or are declared read-only.
package sqlconn

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// Kind is the connector kind this package implements, for the registry.
const Kind = "sql"

// Settings is the JSON in connectors.Config.Settings.
type Settings struct {
	// Driver is "sqlite", "postgres" or "mysql" (MariaDB).
	Driver string `json:"driver" spec:"required"`
	// DSN is the driver's data source name. Config.Secrets["dsn"] takes
	// precedence: put it there when the DSN holds a password.
	DSN string `json:"dsn"`
	// Table holds the entities, one per row.
	Table string `json:"table" spec:"required"`
	// IDColumn is the primary key, integer (autoincrement, serial) or
	// text. Default "id".
	IDColumn string `json:"id_column" spec:"default=id"`
	// UpdatedColumn is the last-change time of the row. Default "updated_at".
	UpdatedColumn string `json:"updated_column" spec:"default=updated_at"`
	// KeyPrefix makes Entity.Key: prefix + id, such as "T-12".
	KeyPrefix string `json:"key_prefix"`
	// URLTemplate makes Entity.URL with "{id}" replaced. Optional.
	URLTemplate string `json:"url_template"`
	// Fields are the columns exposed as entity fields: objects with name,
	// column (default the name), type (string, number, bool, time, list;
	// default string) and read_only.
	Fields []Field `json:"fields" spec:"required"`
	// Comments, when set, names the table of the rows' comments: an object
	// with table, entity_column, and optionally id_column, author_column,
	// body_column, created_column.
	Comments *CommentTable `json:"comments,omitempty"`
	// CorrelationColumn, when set, is a text column where Duplex stores the
	// key of an entity it created, to find it again after a crash instead of
	// creating it twice. Not a field.
	CorrelationColumn string `json:"correlation_column,omitempty"`
	// DeletedColumn, when set, is a nullable timestamp column: a row where
	// it is not NULL is deleted (soft delete). Changes reports such rows
	// with Entity.Deleted, and Delete sets it instead of removing the row.
	DeletedColumn string `json:"deleted_column,omitempty"`
	// SettleMS is how old a change must be before Changes reports it
	// (default 20). A write in the same millisecond as a change already read
	// would otherwise share its cursor position and be skipped; waiting a
	// moment lets such writes land first. Assumes the database's clock and
	// Duplex's agree within that margin. 0 keeps the default; -1 turns it off.
	SettleMS int `json:"settle_ms,omitempty" spec:"default=20"`
}

// Field maps one entity field to a column.
type Field struct {
	Name     string               `json:"name"`
	Column   string               `json:"column,omitempty"`    // default Name
	Type     connectors.FieldType `json:"type,omitempty"`      // default string
	ReadOnly bool                 `json:"read_only,omitempty"` // never written by Create or Update
}

// CommentTable describes a table of comments, one per row, each pointing at
// its entity's id.
type CommentTable struct {
	Table         string `json:"table"`
	EntityColumn  string `json:"entity_column"`
	IDColumn      string `json:"id_column,omitempty"`      // default "id"
	AuthorColumn  string `json:"author_column,omitempty"`  // default "author"
	BodyColumn    string `json:"body_column,omitempty"`    // default "body"
	CreatedColumn string `json:"created_column,omitempty"` // default "created_at"
}

// defaultLimit is the page size Changes uses when given limit <= 0.
const defaultLimit = 100

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

type field struct {
	name     string
	col      string
	typ      connectors.FieldType
	readOnly bool
	slot     int // index in writable, -1 if read-only
}

// conn is the connector. Everything in it is set in New and never changed.
type conn struct {
	name      string
	db        *sql.DB
	d         dialect
	table     string
	keyPrefix string
	urlTpl    string
	fields    []field
	byName    map[string]int
	writable  []int // indexes into fields, in statement order
	idInt     bool  // the id column holds integers
	comments  bool
	cIDInt    bool // the comment id column holds integers
	cEntInt   bool // the comment entity column holds integers
	q         queries
	st        stmts
	tableQ    string // quoted table, id and updated column, for the rare per-call INSERT
	idQ, updQ string
	corrQ     string // quoted correlation column, "" if none
	delQ      string // quoted soft-delete column, "" if none
	// notFoundHint is the advice a missing row's error carries.
	notFoundHint string
	settle       time.Duration
}

// New builds a "sql" connector from cfg; it is a connectors.Factory.
func New(ctx context.Context, cfg connectors.Config) (connectors.Connector, error) {
	s, err := parseSettings(cfg.Settings)
	if err != nil {
		return nil, fmt.Errorf("sqlconn %s: %w: %w", cfg.Name, connectors.ErrBadConfig, err)
	}
	if dsn := cfg.Secrets["dsn"]; dsn != "" {
		s.DSN = dsn
	}
	if s.DSN == "" {
		return nil, fmt.Errorf("sqlconn %s: %w: no dsn in settings or secrets", cfg.Name, connectors.ErrBadConfig)
	}
	c, err := newConn(cfg.Name, s)
	if err != nil {
		return nil, fmt.Errorf("sqlconn %s: %w: %w", cfg.Name, connectors.ErrBadConfig, err)
	}
	var dial connectors.DialFunc
	if cfg.Guard != nil {
		// Checked again at every open: the settings check at save time
		// saw the file and addresses of then.
		if err := checkTarget(ctx, cfg.Guard, c.d, s.DSN); err != nil {
			return nil, fmt.Errorf("sqlconn %s: %w", cfg.Name, err)
		}
		dial = cfg.Guard.DialContext
	}
	db, err := c.d.open(s.DSN, dial)
	if err != nil {
		return nil, fmt.Errorf("sqlconn %s: %w: open: %w", cfg.Name, connectors.ErrBadConfig, err)
	}
	c.db = db
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		if errors.Is(err, connectors.ErrRefused) {
			return nil, fmt.Errorf("sqlconn %s: %w", cfg.Name, err)
		}
		kind := classify(err)
		if kind == nil {
			kind = connectors.ErrUnavailable
		}
		return nil, fmt.Errorf("sqlconn %s: ping: %w: %w", cfg.Name, kind, err)
	}
	if cfg.Guard != nil && c.d == sqlite {
		if err := checkOpened(ctx, cfg.Guard, db); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("sqlconn %s: %w", cfg.Name, err)
		}
	}
	if err := c.prepare(ctx, s); err != nil {
		_ = c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("sqlconn %s: %w", cfg.Name, err)
		}
		kind := classify(err)
		if kind == nil || kind == connectors.ErrInvalid {
			kind = connectors.ErrBadConfig
		}
		return nil, fmt.Errorf("sqlconn %s: %w: %w", cfg.Name, kind, err)
	}
	return c, nil
}

func parseSettings(raw json.RawMessage) (Settings, error) {
	var s Settings
	if len(bytes.TrimSpace(raw)) == 0 {
		return s, &connectors.SettingError{Kind: Kind, Msg: "no settings"}
	}
	if err := Spec().DecodeSettings(raw, &s); err != nil {
		return s, err
	}
	if s.IDColumn == "" {
		s.IDColumn = "id"
	}
	if s.UpdatedColumn == "" {
		s.UpdatedColumn = "updated_at"
	}
	if ct := s.Comments; ct != nil {
		if ct.IDColumn == "" {
			ct.IDColumn = "id"
		}
		if ct.AuthorColumn == "" {
			ct.AuthorColumn = "author"
		}
		if ct.BodyColumn == "" {
			ct.BodyColumn = "body"
		}
		if ct.CreatedColumn == "" {
			ct.CreatedColumn = "created_at"
		}
	}
	return s, nil
}

// newConn validates s and builds every SQL string; it opens nothing.
func newConn(name string, s Settings) (*conn, error) {
	d, err := dialectFor(s.Driver)
	if err != nil {
		return nil, err
	}
	idents := []struct{ what, v string }{
		{"table", s.Table}, {"id_column", s.IDColumn}, {"updated_column", s.UpdatedColumn},
	}
	if ct := s.Comments; ct != nil {
		idents = append(idents,
			struct{ what, v string }{"comments.table", ct.Table},
			struct{ what, v string }{"comments.entity_column", ct.EntityColumn},
			struct{ what, v string }{"comments.id_column", ct.IDColumn},
			struct{ what, v string }{"comments.author_column", ct.AuthorColumn},
			struct{ what, v string }{"comments.body_column", ct.BodyColumn},
			struct{ what, v string }{"comments.created_column", ct.CreatedColumn},
		)
	}
	if s.IDColumn == s.UpdatedColumn {
		return nil, errors.New("id_column and updated_column are the same column")
	}
	c := &conn{
		name: name, d: d, table: s.Table, keyPrefix: s.KeyPrefix, urlTpl: s.URLTemplate,
		byName: map[string]int{}, comments: s.Comments != nil,
	}
	if len(s.Fields) == 0 {
		return nil, errors.New("no fields declared")
	}
	for i, f := range s.Fields {
		if f.Name == "" {
			return nil, fmt.Errorf("field %d has no name", i)
		}
		if _, dup := c.byName[f.Name]; dup {
			return nil, fmt.Errorf("field %q declared twice", f.Name)
		}
		if f.Column == "" {
			f.Column = f.Name
		}
		if f.Type == "" {
			f.Type = connectors.TypeString
		}
		switch f.Type {
		case connectors.TypeString, connectors.TypeNumber, connectors.TypeBool, connectors.TypeTime, connectors.TypeList:
		default:
			return nil, fmt.Errorf("field %q: unknown type %q", f.Name, f.Type)
		}
		idents = append(idents, struct{ what, v string }{"field " + strconv.Quote(f.Name) + " column", f.Column})
		if !f.ReadOnly && (f.Column == s.IDColumn || f.Column == s.UpdatedColumn) {
			return nil, fmt.Errorf("field %q maps to column %q, which the connector manages: declare it read_only", f.Name, f.Column)
		}
		fl := field{name: f.Name, col: f.Column, typ: f.Type, readOnly: f.ReadOnly, slot: -1}
		if !f.ReadOnly {
			if slices.ContainsFunc(c.writable, func(j int) bool { return c.fields[j].col == f.Column }) {
				return nil, fmt.Errorf("column %q is written by two fields", f.Column)
			}
			fl.slot = len(c.writable)
			c.writable = append(c.writable, i)
		}
		c.byName[f.Name] = i
		c.fields = append(c.fields, fl)
	}
	for _, id := range idents {
		if !identRe.MatchString(id.v) {
			return nil, fmt.Errorf("%s %q is not a plain identifier (letters, digits, _; not starting with a digit)", id.what, id.v)
		}
	}
	c.q = buildQueries(d, s)
	c.tableQ, c.idQ, c.updQ = d.quote(s.Table), d.quote(s.IDColumn), d.quote(s.UpdatedColumn)
	switch {
	case s.SettleMS == 0:
		c.settle = 20 * time.Millisecond
	case s.SettleMS > 0:
		c.settle = time.Duration(s.SettleMS) * time.Millisecond
	}
	if s.DeletedColumn != "" {
		if !identRe.MatchString(s.DeletedColumn) {
			return nil, fmt.Errorf("deleted_column %q is not a plain identifier", s.DeletedColumn)
		}
		c.delQ = d.quote(s.DeletedColumn)
	}
	c.notFoundHint = missingRowHint(s.Table, s.DeletedColumn)
	if s.CorrelationColumn != "" {
		if !identRe.MatchString(s.CorrelationColumn) {
			return nil, fmt.Errorf("correlation_column %q is not a plain identifier", s.CorrelationColumn)
		}
		c.corrQ = d.quote(s.CorrelationColumn)
	}
	return c, nil
}

// Describe reports the declared fields.
func (c *conn) Describe(ctx context.Context) (connectors.Schema, error) {
	sc := connectors.Schema{EntityType: c.table, Comments: c.comments, Fields: make([]connectors.FieldSpec, len(c.fields))}
	for i, f := range c.fields {
		sc.Fields[i] = connectors.FieldSpec{Name: f.name, Type: f.typ, ReadOnly: f.readOnly, Description: "column " + f.col}
	}
	return sc, nil
}

// Get reads one row and its comments, ordered by (created, id).
func (c *conn) Get(ctx context.Context, id string) (connectors.Entity, error) {
	idv, ok := parseID(id, c.idInt)
	if !ok {
		return connectors.Entity{}, c.notFound(id)
	}
	e, _, err := c.scanEntity(c.st.get.QueryRowContext(ctx, idv))
	if errors.Is(err, sql.ErrNoRows) {
		return connectors.Entity{}, c.notFound(id)
	}
	if err != nil {
		return connectors.Entity{}, c.wrap("get "+id, err)
	}
	if c.comments {
		if e.Comments, err = c.loadComments(ctx, id); err != nil {
			return connectors.Entity{}, err
		}
	}
	return e, nil
}

// getManyChunk bounds the ids of one GetMany query (SQLite allows 32,766
// parameters, PostgreSQL 65,535; a page of the worker is far smaller).
const getManyChunk = 500

// GetMany reads the rows of ids in one IN query and their comments in
// another (connectors.BatchReader), per getManyChunk ids. Rows not found
// (or ids that cannot be one, such as a non-number for an integer column)
// are left out.
func (c *conn) GetMany(ctx context.Context, ids []string) (map[string]connectors.Entity, error) {
	out := make(map[string]connectors.Entity, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), getManyChunk)
		if err := c.getMany(ctx, ids[:n], out); err != nil {
			return nil, err
		}
		ids = ids[n:]
	}
	return out, nil
}

func (c *conn) getMany(ctx context.Context, ids []string, out map[string]connectors.Entity) error {
	asked := make(map[string][]string, len(ids)) // the row's id as scanned → the ids as asked
	args := make([]any, 0, len(ids))
	for _, id := range ids {
		v, ok := parseID(id, c.idInt)
		if !ok {
			continue
		}
		key := idString(v)
		if _, dup := asked[key]; !dup {
			args = append(args, v)
		}
		asked[key] = append(asked[key], id)
	}
	if len(args) == 0 {
		return nil
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ") + ")"
	rows, err := c.db.QueryContext(ctx, c.d.rebind(c.q.getIn+in), args...)
	if err != nil {
		return c.wrap("get many", err)
	}
	found := map[string]*connectors.Entity{}
	var order []string
	for rows.Next() {
		e, _, err := c.scanEntity(rows)
		if err != nil {
			rows.Close()
			return c.wrap("get many", err)
		}
		found[e.ID] = &e
		order = append(order, e.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return c.wrap("get many", err)
	}
	if c.comments && len(order) > 0 {
		if err := c.commentsOfMany(ctx, order, found); err != nil {
			return err
		}
	}
	for key, e := range found {
		for _, id := range asked[key] {
			out[id] = *e
		}
	}
	return nil
}

// commentsOfMany loads the comments of the found rows in one query, each
// row's in the order Get gives them.
func (c *conn) commentsOfMany(ctx context.Context, ids []string, found map[string]*connectors.Entity) error {
	args := make([]any, 0, len(ids))
	for _, id := range ids {
		if v, ok := parseID(id, c.cEntInt); ok {
			args = append(args, v)
		}
	}
	if len(args) == 0 {
		return nil
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ") + ")"
	rows, err := c.db.QueryContext(ctx, c.d.rebind(c.q.commentsIn+in+c.q.commentsOrder), args...)
	if err != nil {
		return c.wrap("comments of many", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ent, cid, author, body, created any
		if err := rows.Scan(&ent, &cid, &author, &body, &created); err != nil {
			return c.wrap("comments of many", err)
		}
		e := found[idString(ent)]
		if e == nil {
			continue
		}
		_, _, at := positionOf(created)
		e.Comments = append(e.Comments, connectors.Comment{ID: idString(cid), Author: textOf(author), Body: textOf(body), CreatedAt: at})
	}
	if err := rows.Err(); err != nil {
		return c.wrap("comments of many", err)
	}
	return nil
}

// Create inserts a row from fields, sets its updated column to now, and
// returns it as stored.
func (c *conn) Create(ctx context.Context, fields map[string]any) (connectors.Entity, error) {
	return c.create(ctx, "", fields)
}

// CreateCorrelated creates the entity and stores key in the correlation
// column (plain Create when none is configured).
func (c *conn) CreateCorrelated(ctx context.Context, key string, fields map[string]any) (connectors.Entity, error) {
	if c.corrQ == "" {
		key = ""
	}
	return c.create(ctx, key, fields)
}

// FindCorrelated looks an entity up by the key CreateCorrelated stored.
func (c *conn) FindCorrelated(ctx context.Context, key string) (connectors.Entity, bool, error) {
	if c.corrQ == "" || key == "" {
		return connectors.Entity{}, false, nil
	}
	var id any
	q := c.d.rebind("SELECT " + c.idQ + " FROM " + c.tableQ + " WHERE " + c.corrQ + " = ?")
	err := c.db.QueryRowContext(ctx, q, key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return connectors.Entity{}, false, nil
	}
	if err != nil {
		return connectors.Entity{}, false, c.wrap("find correlated", err)
	}
	e, err := c.Get(ctx, idString(id))
	return e, err == nil, err
}

// FindBy returns the rows whose column mapped to field equals value (converted
// to the field's type), soft-deleted rows excluded, ordered by id, without
// comments. The column comes from the validated settings; value is a bound
// parameter.
func (c *conn) FindBy(ctx context.Context, field, value string, limit int) ([]connectors.Entity, error) {
	i, ok := c.byName[field]
	if !ok {
		return nil, fmt.Errorf("sqlconn %s: %w: cannot search unknown field %q", c.name, connectors.ErrInvalid, field)
	}
	f := c.fields[i]
	if f.typ == connectors.TypeList {
		return nil, fmt.Errorf("sqlconn %s: %w: cannot search list field %q", c.name, connectors.ErrInvalid, field)
	}
	arg, err := c.d.writeValue(f.typ, value)
	if err != nil {
		// No row can hold a value of the wrong type.
		return nil, nil
	}
	if limit <= 0 {
		limit = defaultLimit
	}
	q := c.q.selectAll + " WHERE " + c.d.quote(f.col) + " = ?"
	if c.delQ != "" {
		q += " AND " + c.delQ + " IS NULL"
	}
	q = c.d.rebind(q + " ORDER BY " + c.idQ + " LIMIT ?")
	rows, err := c.db.QueryContext(ctx, q, arg, limit)
	if err != nil {
		return nil, c.wrap("find by "+field, err)
	}
	defer rows.Close()
	var out []connectors.Entity
	for rows.Next() {
		e, _, err := c.scanEntity(rows)
		if err != nil {
			return nil, c.wrap("find by "+field, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, c.wrap("find by "+field, err)
	}
	return out, nil
}

func (c *conn) create(ctx context.Context, corr string, fields map[string]any) (connectors.Entity, error) {
	id, err := c.insertRow(ctx, nil, corr, fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	return c.Get(ctx, id)
}

// insertRow inserts a row from fields (with corr in the correlation
// column, unless "") and returns its id; in tx when not nil.
func (c *conn) insertRow(ctx context.Context, tx *sql.Tx, corr string, fields map[string]any) (string, error) {
	vals, set, err := c.writeArgs(fields)
	if err != nil {
		return "", err
	}
	now, _ := c.d.now()
	row := func() *sql.Row { return c.stmt(ctx, tx, c.st.insert).QueryRowContext(ctx, append(vals, now)...) }
	if slices.Contains(set, false) || corr != "" {
		// Columns the caller did not give are left out so their defaults
		// apply (a NOT NULL DEFAULT '' column must not receive NULL). Creates
		// are rare, so building this statement per call costs nothing.
		cols, args := make([]string, 0, len(vals)+1), make([]any, 0, len(vals)+1)
		for slot, fi := range c.writable {
			if set[slot] {
				cols, args = append(cols, c.d.quote(c.fields[fi].col)), append(args, vals[slot])
			}
		}
		cols, args = append(cols, c.updQ), append(args, now)
		if corr != "" {
			cols, args = append(cols, c.corrQ), append(args, corr)
		}
		q := c.d.rebind("INSERT INTO " + c.tableQ + " (" + strings.Join(cols, ", ") + ") VALUES (" +
			strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ") RETURNING " + c.idQ)
		row = func() *sql.Row {
			if tx != nil {
				return tx.QueryRowContext(ctx, q, args...)
			}
			return c.db.QueryRowContext(ctx, q, args...)
		}
	}
	var newID any
	if err := row().Scan(&newID); err != nil {
		return "", c.wrap("create", err)
	}
	return idString(newID), nil
}

// stmt is st as used in tx, or st itself when tx is nil.
func (c *conn) stmt(ctx context.Context, tx *sql.Tx, st *sql.Stmt) *sql.Stmt {
	if tx == nil {
		return st
	}
	return tx.StmtContext(ctx, st)
}

// Update writes only the given declared, writable fields and the updated
// column. Read-only fields are ignored; if nothing is left it writes nothing.
func (c *conn) Update(ctx context.Context, id string, fields map[string]any) (connectors.Entity, error) {
	if _, set, err := c.writeArgs(fields); err != nil {
		return connectors.Entity{}, err
	} else if !slices.Contains(set, true) {
		return c.Get(ctx, id)
	}
	// The update and the read of the row share a transaction, so the entity
	// returned is exactly what this update left: the engine hashes it to
	// recognise its own write, and a person's edit slipping in between must
	// not be taken for part of it.
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return connectors.Entity{}, c.wrap("update "+id, err)
	}
	defer func() { _ = tx.Rollback() }()
	e, err := c.updateRow(ctx, tx, id, fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	if err := tx.Commit(); err != nil {
		return connectors.Entity{}, c.wrap("update "+id, err)
	}
	if c.comments {
		if e.Comments, err = c.loadComments(ctx, id); err != nil {
			return connectors.Entity{}, err
		}
	}
	return e, nil
}

// updateRow updates a row in tx and reads it back there, without its
// comments. Nothing to write: the row as it is.
func (c *conn) updateRow(ctx context.Context, tx *sql.Tx, id string, fields map[string]any) (connectors.Entity, error) {
	vals, set, err := c.writeArgs(fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	idv, ok := parseID(id, c.idInt)
	if !ok {
		return connectors.Entity{}, c.notFound(id)
	}
	if slices.Contains(set, true) {
		now, _ := c.d.now()
		args := make([]any, 0, 2*len(vals)+2)
		for i, v := range vals {
			args = append(args, set[i], v)
		}
		args = append(args, now, idv)
		res, err := tx.StmtContext(ctx, c.st.update).ExecContext(ctx, args...)
		if err != nil {
			return connectors.Entity{}, c.wrap("update "+id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return connectors.Entity{}, c.wrap("update "+id, err)
		}
		if n == 0 {
			return connectors.Entity{}, c.notFound(id)
		}
	}
	return c.readRow(ctx, tx, id, idv)
}

// readRow reads a row in tx, without its comments.
func (c *conn) readRow(ctx context.Context, tx *sql.Tx, id string, idv any) (connectors.Entity, error) {
	e, _, err := c.scanEntity(tx.StmtContext(ctx, c.st.get).QueryRowContext(ctx, idv))
	if errors.Is(err, sql.ErrNoRows) {
		return connectors.Entity{}, c.notFound(id)
	}
	if err != nil {
		return connectors.Entity{}, c.wrap("read "+id, err)
	}
	return e, nil
}

// writeArgs converts fields into one value per writable column, with
// set[i] telling whether fields gave it. Unknown names are ErrInvalid.
func (c *conn) writeArgs(fields map[string]any) (vals []any, set []bool, err error) {
	vals = make([]any, len(c.writable))
	set = make([]bool, len(c.writable))
	var unknown []string
	for name, v := range fields {
		i, ok := c.byName[name]
		if !ok {
			unknown = append(unknown, strconv.Quote(name))
			continue
		}
		f := c.fields[i]
		if f.readOnly {
			continue
		}
		w, err := c.d.writeValue(f.typ, v)
		if err != nil {
			return nil, nil, fmt.Errorf("sqlconn %s: field %q: %w: %w", c.name, name, connectors.ErrInvalid, err)
		}
		vals[f.slot], set[f.slot] = w, true
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		known := make([]string, len(c.fields))
		for i, f := range c.fields {
			known[i] = f.name
		}
		return nil, nil, fmt.Errorf("sqlconn %s: %w: unknown field %s (table %s declares: %s)",
			c.name, connectors.ErrInvalid, strings.Join(unknown, ", "), c.table, strings.Join(known, ", "))
	}
	return vals, set, nil
}

// AddComment appends a comment with created = now and returns it with its
// new id.
func (c *conn) AddComment(ctx context.Context, id string, cm connectors.Comment) (connectors.Comment, error) {
	if !c.comments {
		return connectors.Comment{}, fmt.Errorf("sqlconn %s: %w: no comments table configured", c.name, connectors.ErrInvalid)
	}
	if cm.Private {
		// A comments table has no notion of internal notes: storing one
		// would publish it.
		return connectors.Comment{}, fmt.Errorf("sqlconn %s: %w: a comments table has no private comments", c.name, connectors.ErrInvalid)
	}
	idv, ok := parseID(id, c.idInt)
	if !ok {
		return connectors.Comment{}, c.notFound(id)
	}
	var one int
	if err := c.st.exists.QueryRowContext(ctx, idv).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return connectors.Comment{}, c.notFound(id)
	} else if err != nil {
		return connectors.Comment{}, c.wrap("add comment to "+id, err)
	}
	entv, ok := parseID(id, c.cEntInt)
	if !ok {
		return connectors.Comment{}, fmt.Errorf("sqlconn %s: %w: id %q does not fit the comments' entity column", c.name, connectors.ErrInvalid, id)
	}
	now, at := c.d.now()
	var newID any
	if err := c.st.addComm.QueryRowContext(ctx, entv, cm.Author, cm.Body, now).Scan(&newID); err != nil {
		return connectors.Comment{}, c.wrap("add comment to "+id, err)
	}
	cm.ID = idString(newID)
	cm.CreatedAt = at
	return cm, nil
}

func (c *conn) loadComments(ctx context.Context, id string) ([]connectors.Comment, error) {
	entv, ok := parseID(id, c.cEntInt)
	if !ok {
		return nil, nil
	}
	rows, err := c.st.comments.QueryContext(ctx, entv)
	if err != nil {
		return nil, c.wrap("comments of "+id, err)
	}
	defer rows.Close()
	var out []connectors.Comment
	for rows.Next() {
		var cid, author, body, created any
		if err := rows.Scan(&cid, &author, &body, &created); err != nil {
			return nil, c.wrap("comments of "+id, err)
		}
		_, _, at := positionOf(created)
		out = append(out, connectors.Comment{
			ID: idString(cid), Author: textOf(author), Body: textOf(body), CreatedAt: at,
		})
	}
	if err := rows.Err(); err != nil {
		return nil, c.wrap("comments of "+id, err)
	}
	return out, nil
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// scanEntity reads one row of the entity queries: id, updated, fields.
func (c *conn) scanEntity(r rowScanner) (connectors.Entity, position, error) {
	n := 2 + len(c.fields)
	if c.delQ != "" {
		n++ // the soft-delete column comes last
	}
	vals := make([]any, n)
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := r.Scan(ptrs...); err != nil {
		return connectors.Entity{}, position{}, err
	}
	id := idString(vals[0])
	at, text, t := positionOf(vals[1])
	e := connectors.Entity{
		ID:        id,
		Key:       c.keyPrefix + id,
		Type:      c.table,
		Fields:    make(map[string]any, len(c.fields)),
		UpdatedAt: t,
	}
	if c.urlTpl != "" {
		e.URL = strings.ReplaceAll(c.urlTpl, "{id}", id)
	}
	for i, f := range c.fields {
		e.Fields[f.name] = readValue(f.typ, vals[2+i])
	}
	if c.delQ != "" {
		e.Deleted = vals[n-1] != nil
	}
	return e, position{At: at, Text: text, ID: id}, nil
}

// notFound says what to do as well: a row removed outside Duplex (a hard
// delete) is never seen by Changes, so the pair still points at it and the
// next change from the other side fails here.
func (c *conn) notFound(id string) error {
	return fmt.Errorf("sqlconn %s: %s %q: %w: %s", c.name, c.table, id, connectors.ErrNotFound, c.notFoundHint)
}

// missingRowHint builds the advice notFound adds for a table.
func missingRowHint(table, deletedColumn string) string {
	fix := "make the table soft-delete (set deleted_column and set that column instead of deleting rows) so deletes sync"
	if deletedColumn != "" {
		fix = "delete rows by setting " + deletedColumn + ", never with DELETE, so deletes sync"
	}
	return "the row is not in " + table + " (a row deleted outside Duplex is never noticed); restore it, or skip the event and unlink the pair " +
		"(DELETE /api/twins/:id); then " + fix + " (docs/connectors.md, the sql connector)"
}

// wrap adds context to a database error and, when it recognises one, the
// connectors sentinel that tells the engine what to do.
func (c *conn) wrap(op string, err error) error {
	if kind := classify(err); kind != nil {
		return fmt.Errorf("sqlconn %s: %s: %w: %w", c.name, op, kind, err)
	}
	return fmt.Errorf("sqlconn %s: %s: %w", c.name, op, err)
}

// Delete sets the soft-delete column when there is one, else removes the row.
func (c *conn) Delete(ctx context.Context, id string) error {
	idv, ok := parseID(id, c.idInt)
	if !ok {
		return c.notFound(id)
	}
	now, _ := c.d.now()
	q := "DELETE FROM " + c.tableQ + " WHERE " + c.idQ + " = ?"
	args := []any{idv}
	if c.delQ != "" {
		q = "UPDATE " + c.tableQ + " SET " + c.delQ + " = ?, " + c.updQ + " = ? WHERE " + c.idQ + " = ?"
		args = []any{now, now, idv}
	}
	res, err := c.db.ExecContext(ctx, c.d.rebind(q), args...)
	if err != nil {
		return c.wrap("delete "+id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return c.notFound(id)
	}
	return nil
}

// Close releases the statements and the pool.
func (c *conn) Close() error {
	c.st.close()
	if c.db == nil {
		return nil
	}
	return c.db.Close()
}

// parseID converts an entity id to the column's Go type; ok is false for a
// non-integer id of an integer column (no such row can exist).
func parseID(id string, isInt bool) (any, bool) {
	if !isInt {
		return id, true
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil, false
	}
	return n, true
}

// idString renders a scanned id.
func idString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case []byte:
		return string(x)
	case string:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(x)
	}
}
