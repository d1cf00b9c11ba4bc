package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/duplexsync/duplex/migrations"
	"gorm.io/gorm"
)

// Raw SQL for the few statements that run per change (webhook deliveries,
// twins and events on the hot path): gorm builds every statement through
// reflection and callbacks, which cost about a quarter of the database time
// under load. These go straight to the connection or transaction gorm holds,
// so they take part in Tx like any other write. Queries are written with ?
// placeholders; PostgreSQL's $n are substituted once per query text.

// exec runs a raw statement.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s.stats.Statements.Add(1)
	if _, inTx := s.db.Statement.ConnPool.(gorm.TxCommitter); !inTx {
		s.stats.Commits.Add(1) // a write of its own: one commit
	}
	return s.db.Statement.ConnPool.ExecContext(ctx, s.bind(query), args...)
}

// query runs a raw query returning rows.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s.stats.Statements.Add(1)
	if _, inTx := s.db.Statement.ConnPool.(gorm.TxCommitter); !inTx && strings.HasPrefix(query, "INSERT") {
		s.stats.Commits.Add(1)
	}
	return s.db.Statement.ConnPool.QueryContext(ctx, s.bind(query), args...)
}

// readQuery runs a raw read: on the read pool when the store has one and
// is not bound to a transaction (Store.reads), else as query does.
func (s *Store) readQuery(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s.reads == nil {
		return s.query(ctx, query, args...)
	}
	s.stats.Statements.Add(1)
	return s.reads.QueryContext(ctx, query, args...) // SQLite: ? placeholders as written
}

// queryRow runs a raw query returning at most one row.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) row {
	s.stats.Statements.Add(1)
	if _, inTx := s.db.Statement.ConnPool.(gorm.TxCommitter); !inTx && !strings.HasPrefix(query, "SELECT") {
		s.stats.Commits.Add(1) // a write of its own (INSERT … RETURNING): one commit
	}
	rows, err := s.db.Statement.ConnPool.QueryContext(ctx, s.bind(query), args...)
	return row{rows: rows, err: err}
}

// row is queryRow's answer, scanned like *sql.Row. Not *sql.Row itself:
// in a transaction on PostgreSQL (with gorm's prepared statements, which
// the store used then) a statement that cannot be prepared, as when
// shutdown cancels the context, came back from QueryRowContext as an empty
// sql.Row whose Scan dereferences nil; a process stopped mid-poll panicked
// there instead of releasing its claims.
type row struct {
	rows *sql.Rows
	err  error
}

// Scan copies the first row into dest; sql.ErrNoRows when there is none.
func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	if r.rows == nil {
		return errNoRowsObject
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	return r.rows.Close()
}

var errNoRowsObject = errors.New("store: the driver answered a query with neither rows nor an error")

var pgQueries sync.Map // query with ? → query with $n

func (s *Store) bind(query string) string {
	if s.dialect != migrations.Postgres {
		return query
	}
	if q, ok := pgQueries.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	pgQueries.Store(query, b.String())
	return b.String()
}
