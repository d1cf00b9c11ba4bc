package store

import (
	"context"
	"database/sql"
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

// queryRow runs a raw query returning at most one row.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	s.stats.Statements.Add(1)
	if _, inTx := s.db.Statement.ConnPool.(gorm.TxCommitter); !inTx && !strings.HasPrefix(query, "SELECT") {
		s.stats.Commits.Add(1) // a write of its own (INSERT … RETURNING): one commit
	}
	return s.db.Statement.ConnPool.QueryRowContext(ctx, s.bind(query), args...)
}

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
