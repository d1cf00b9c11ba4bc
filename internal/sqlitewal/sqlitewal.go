// Package sqlitewal moves a SQLite file's WAL checkpoints off the
// connections that write it.
//
// In WAL mode SQLite copies its log back into the database file at
// checkpoints. By default the connection whose commit takes the log past
// 1,000 pages does it, inside that commit: the copy and two fsyncs (8–10 ms
// on this project's machines), every 70–90 ms at 1,000 changes/s for the
// store. Everything waiting for that connection waited for it. A
// Checkpointer copies the log from a connection of its own, beside the
// writers (a PASSIVE checkpoint takes no lock a writer needs), on the
// machine's other cores, and the writers' connections checkpoint by
// themselves only past FallbackPages: that bounds the log if the
// checkpointer falls behind or fails, and completes what it could not (a
// PASSIVE checkpoint never waits for a writer, so under a steady stream of
// commits it rarely copies the last frames, and the log starts over only
// after a complete checkpoint).
//
// The store uses it; the sql connector does not (on a target's file it
// measured slower: docs/performance.md, thirteenth session).
package sqlitewal

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // the "sqlite3" driver Start opens
)

// FallbackPages is the writers' own wal_autocheckpoint (about 33 MB of log
// with 4 KB pages; SQLite's default is 1,000).
const FallbackPages = 8000

// FallbackPragma sets a connection's wal_autocheckpoint to FallbackPages.
// It is a setting of the connection, not of the file: other programs'
// connections to the same file keep theirs.
var FallbackPragma = fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", FallbackPages)

const (
	every = 50 * time.Millisecond // while the log grows
	idle  = time.Second           // the longest wait, when nothing was committed
)

// Checkpointer checkpoints one SQLite file from a connection of its own.
type Checkpointer struct {
	db   *sql.DB
	ctx  context.Context // ends at Close: a checkpoint under way is interrupted
	stop context.CancelFunc
	done sync.WaitGroup
	last int // log pages copied, as the last checkpoint reported them
}

// Start opens a connection to the SQLite file at dsn (a mattn DSN) and
// checkpoints it until Close. The caller sets FallbackPragma on the
// connections that write the file.
func Start(ctx context.Context, dsn string) (*Checkpointer, error) {
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	c := &Checkpointer{db: db}
	c.ctx, c.stop = context.WithCancel(context.Background())
	c.done.Add(1)
	go c.run()
	return c, nil
}

// run checkpoints every 50 ms while there is log to copy, backing off to
// once a second while there is none.
func (c *Checkpointer) run() {
	defer c.done.Done()
	wait := every
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if c.checkpoint() {
			wait = every
		} else {
			wait = min(2*wait, idle)
		}
		t.Reset(wait)
	}
}

// checkpoint runs one PASSIVE checkpoint and reports whether it found log
// to copy. A failed one (a full disk, a file the connection cannot write)
// backs off like an idle one: the writers' fallback bounds the log
// meanwhile, and a failure that lasts costs a statement a second.
func (c *Checkpointer) checkpoint() bool {
	var busy, logPages, copied int
	err := c.db.QueryRowContext(c.ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logPages, &copied)
	if err != nil {
		return false
	}
	work := copied != c.last || logPages > copied // copied some (or the log started over), or some is left
	c.last = copied
	return work
}

// Close stops the checkpointer. A nil Checkpointer, or a second Close, is
// a no-op.
func (c *Checkpointer) Close() {
	if c == nil {
		return
	}
	c.stop()
	c.done.Wait()
	_ = c.db.Close() // sql.DB.Close is safe to repeat
}
