// Package store persists Duplex's state (systems, connections, script
// versions, twins, the sync event queue, the audit log) through gorm, on an
// embedded SQLite file or a shared PostgreSQL database. The schema comes only
// from the versioned SQL in migrations/; gorm never migrates it.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/duplexsync/duplex/internal/dberr"
	"github.com/duplexsync/duplex/internal/sqlitewal"
	"github.com/duplexsync/duplex/migrations"
)

// ErrNotFound is returned when a row does not exist (dberr's, shared by
// every store package over the handle).
var ErrNotFound = dberr.ErrNotFound

// ErrConflict is returned when a unique constraint is violated.
var ErrConflict = dberr.ErrConflict

// Store is the persistence of one Duplex deployment. A Store made by Tx is
// bound to that transaction.
type Store struct {
	db      *gorm.DB
	dialect migrations.Dialect
	now     func() time.Time
	hooks   *deliveryCommitter // nil in a Store bound to a transaction
	intents *intentCommitter   // nil in a Store bound to a transaction
	stats   *Stats             // shared with the Stores bound to its transactions
	// reads is a pool of read-only connections to a SQLite file, for the
	// twin reads that run per event outside a transaction (readQuery): the
	// store's one writing connection serves every write of every
	// goroutine, and a read queued behind them waited for all of them. In
	// WAL mode a reader sees every commit made before its statement and
	// does not block the writer. nil on PostgreSQL (its pool is already
	// many connections), for an in-memory SQLite, and in a Store bound to
	// a transaction (which reads through the transaction).
	reads *sql.DB
	ckpt  *sqlitewal.Checkpointer // SQLite file: the WAL checkpoints, off the writing connection
}

// PostgreSQL connections kept open between uses, and for how long an unused
// one stays: enough for the engine's goroutines that use the store at once
// (intake, hook loop, worker flows, committers, leases) in one process.
const (
	pgIdleConns = 16
	pgIdleTime  = 5 * time.Minute
)

// Stats counts the round trips a store makes: statements (gorm's and the
// raw ones of raw.go) and committed transactions. Benchmarks divide them by
// the changes applied (statements per change); the counters are two atomic
// adds per statement, cheap enough to keep always on.
type Stats struct {
	Statements atomic.Int64
	Commits    atomic.Int64 // transactions (Tx) and writes outside one, each its own commit
}

// Stats returns the store's counters.
func (s *Store) Stats() *Stats { return s.stats }

// PoolWait is how long callers waited for a connection of the store's pool
// in all, and how many waited: on SQLite (one connection) the figure that
// says whether the store is what the engine waits on.
func (s *Store) PoolWait() (time.Duration, int64) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return 0, 0
	}
	st := sqlDB.Stats()
	return st.WaitDuration, st.WaitCount
}

// Open connects to dsn and applies pending migrations. dsn is a PostgreSQL
// URL (postgres://...) or a SQLite file path, optionally prefixed "sqlite:".
func Open(ctx context.Context, dsn string) (*Store, error) {
	s, err := Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	sqlDB, err := s.db.DB()
	if err == nil {
		_, err = migrations.Up(ctx, sqlDB, s.dialect)
	}
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Connect opens the database without touching the schema (for `duplex
// migrate status`).
func Connect(ctx context.Context, dsn string) (*Store, error) {
	var (
		dialector gorm.Dialector
		dialect   migrations.Dialect
	)
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		dialector, dialect = postgres.Open(dsn), migrations.Postgres
	default:
		dsn = SQLiteDSN(strings.TrimPrefix(dsn, "sqlite:"))
		dialector, dialect = sqlite.Open(dsn), migrations.SQLite
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 logger.Default.LogMode(logger.Silent),
		SkipDefaultTransaction: true, // we group writes in explicit transactions
		// The queue and twin queries run per event: prepare them once. The
		// drivers' own statement caches do: pgx prepares each statement
		// text once per connection (its default exec mode), and SQLite's
		// driver keeps _stmt_cache_size (SQLiteDSN). gorm's PrepareStmt on
		// top re-prepared inside transactions (database/sql's
		// Tx.StmtContext, where our writes run) and on PostgreSQL added a
		// round trip of its own for every new text: the batched statements
		// have one text per row count. Without it, make bench-cluster's
		// PostgreSQL process applied 673-731 changes/s, against 492-556.
		PrepareStmt: false,
		NowFunc:     func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if dialect == migrations.SQLite {
		// One writer at a time is SQLite's model; a single connection avoids
		// SQLITE_BUSY between our own goroutines and keeps WAL readers cheap.
		sqlDB.SetMaxOpenConns(1)
	} else {
		// database/sql keeps 2 idle connections by default and closes the
		// rest as soon as they are put back: under load each burst of the
		// engine's goroutines then opened new ones, and a PostgreSQL
		// connection is a new server process, its authentication and a new
		// set of prepared statements. Keep enough idle for the engine's
		// concurrent users; the open count stays unbounded (a transaction
		// that reads through the pool must never wait for itself).
		sqlDB.SetMaxIdleConns(pgIdleConns)
		sqlDB.SetConnMaxIdleTime(pgIdleTime)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect store: %w", err)
	}
	s := &Store{db: db, dialect: dialect, now: func() time.Time { return time.Now().UTC() }, stats: &Stats{}}
	if err := s.countStatements(); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.hooks = newDeliveryCommitter(s)
	s.intents = newIntentCommitter(s)
	if dialect == migrations.SQLite && !inMemory(dsn) {
		if s.reads, err = openReads(ctx, dsn); err != nil {
			_ = sqlDB.Close()
			return nil, fmt.Errorf("open store: %w", err)
		}
		// The store's one connection: the pragma holds for it (one that
		// database/sql might open in its place would checkpoint as SQLite
		// does by default, which is only slower).
		if _, err = sqlDB.ExecContext(ctx, sqlitewal.FallbackPragma); err == nil {
			s.ckpt, err = sqlitewal.Start(ctx, dsn)
		}
		if err != nil {
			_ = s.reads.Close()
			_ = sqlDB.Close()
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	return s, nil
}

// readConns bounds the read pool: the engine's concurrent twin reads are
// the worker's starts and the intake of each system.
const readConns = 4

// openReads opens the read pool of a SQLite store file (Store.reads).
func openReads(ctx context.Context, dsn string) (*sql.DB, error) {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	db, err := sql.Open("sqlite3", dsn+sep+"_query_only=true")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(readConns)
	db.SetMaxIdleConns(readConns)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// inMemory: a SQLite DSN whose database lives in the connection (each
// connection would see a database of its own).
func inMemory(dsn string) bool {
	return strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory")
}

// SQLiteDSN adds the pragmas Duplex relies on (WAL, a busy timeout, foreign
// keys) to a SQLite path unless the caller set them.
//
// synchronous=NORMAL is what the driver's build gave the store all along
// (SQLITE_DEFAULT_WAL_SYNCHRONOUS=1), written out so that a driver upgrade
// cannot change it unseen: in WAL mode a commit is not flushed to disk, so
// a kill of the process loses nothing, while a power cut or an OS crash
// can lose the last commits (docs/operations.md, "Durability"). An
// operator who wants every commit flushed sets _synchronous=FULL in --db.
func SQLiteDSN(path string) string {
	params := []string{"_journal_mode=WAL", "_busy_timeout=5000", "_foreign_keys=on", "_txlock=immediate", "_stmt_cache_size=256", "_synchronous=NORMAL"}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var add []string
	for _, p := range params {
		if !strings.Contains(path, strings.SplitN(p, "=", 2)[0]+"=") {
			add = append(add, p)
		}
	}
	if len(add) == 0 {
		return path
	}
	return path + sep + strings.Join(add, "&")
}

// Dialect reports the database flavour.
func (s *Store) Dialect() migrations.Dialect { return s.dialect }

// DB exposes the gorm handle for tests and diagnostics.
func (s *Store) DB() *gorm.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error {
	s.ckpt.Close()
	if s.reads != nil {
		_ = s.reads.Close()
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Ping checks the database answers, for /healthz.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// PendingMigrations counts migrations this binary has that the database
// has not applied.
func (s *Store) PendingMigrations(ctx context.Context) (int, error) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return 0, err
	}
	return migrations.Pending(ctx, sqlDB, s.dialect)
}

// Tx runs fn in one transaction; fn's Store writes through it.
func (s *Store) Tx(ctx context.Context, fn func(tx *Store) error) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(&Store{db: tx, dialect: s.dialect, now: s.now, stats: s.stats})
	})
	if err == nil {
		s.stats.Commits.Add(1)
	}
	return err
}

// countStatements counts every statement gorm runs (the raw ones count
// themselves in raw.go).
func (s *Store) countStatements() error {
	count := func(*gorm.DB) { s.stats.Statements.Add(1) }
	write := func(db *gorm.DB) {
		s.stats.Statements.Add(1)
		if _, inTx := db.Statement.ConnPool.(gorm.TxCommitter); !inTx {
			s.stats.Commits.Add(1)
		}
	}
	cb := s.db.Callback()
	for _, err := range []error{
		cb.Create().After("gorm:create").Register("duplex:count", write),
		cb.Query().After("gorm:query").Register("duplex:count", count),
		cb.Update().After("gorm:update").Register("duplex:count", write),
		cb.Delete().After("gorm:delete").Register("duplex:count", write),
		cb.Row().After("gorm:row").Register("duplex:count", count),
		cb.Raw().After("gorm:raw").Register("duplex:count", write),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) q(ctx context.Context) *gorm.DB { return s.db.WithContext(ctx) }

// wrap turns gorm's errors into the package's sentinels.
func wrap(what string, err error) error { return dberr.Wrap(what, err) }

// Retryable reports an error that only says the transaction lost a race
// with another one (dberr.Retryable): nothing of it was written, and running
// it again may succeed.
func Retryable(err error) bool { return dberr.Retryable(err) }

func isUniqueViolation(err error) bool { return dberr.IsUniqueViolation(err) }
