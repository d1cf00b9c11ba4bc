package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// A SQLite store in WAL mode copies its log back into the database file at
// checkpoints. By default the connection whose commit takes the log past
// 1,000 pages does it, inside that commit: the store's one writing
// connection then held every writer of the engine for the copy and its two
// fsyncs (8–10 ms here, every 70–90 ms at 1,000 changes/s), and the changes
// behind it waited together. The checkpointer copies the log from a
// connection of its own, beside the writer (a PASSIVE checkpoint takes no
// lock a writer needs), on the machine's other cores. The writer still
// checkpoints by itself once the log passes ckptFallback pages, which bounds
// the log if the checkpointer falls behind or fails, and completes what the
// checkpointer could not (a PASSIVE checkpoint never waits for the writer,
// so under a steady stream of commits it rarely copies the last frames,
// and the log starts over only after a complete one).
type checkpointer struct {
	db   *sql.DB
	ctx  context.Context // ends at close: a checkpoint under way is interrupted
	stop context.CancelFunc
	done sync.WaitGroup
	last int // log pages copied, as the last checkpoint reported them
}

const (
	ckptEvery    = 50 * time.Millisecond // while the log grows
	ckptIdle     = time.Second           // the longest wait, when nothing was committed
	ckptFallback = 8000                  // pages (about 33 MB of log with 4 KB pages): the writer's wal_autocheckpoint
)

// startCheckpointer moves the checkpoints of the SQLite file at dsn off the
// writing connection w (the store's one connection: the pragma is set for
// it; a connection database/sql might open in its place would checkpoint as
// SQLite does by default, which is only slower).
func startCheckpointer(ctx context.Context, w *sql.DB, dsn string) (*checkpointer, error) {
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	if _, err := w.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", ckptFallback)); err != nil {
		_ = db.Close()
		return nil, err
	}
	c := &checkpointer{db: db}
	c.ctx, c.stop = context.WithCancel(context.Background())
	c.done.Add(1)
	go c.run()
	return c, nil
}

// run checkpoints every ckptEvery while there is log to copy, backing off
// to ckptIdle while there is none (an idle store wakes once a second).
func (c *checkpointer) run() {
	defer c.done.Done()
	wait := ckptEvery
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if c.checkpoint() {
			wait = ckptEvery
		} else {
			wait = min(2*wait, ckptIdle)
		}
		t.Reset(wait)
	}
}

// checkpoint runs one PASSIVE checkpoint and reports whether it found log
// to copy. A failed one (the file locked by a backup, a full disk) counts
// as work: it is tried again soon, and the writer's fallback bounds the log
// meanwhile.
func (c *checkpointer) checkpoint() bool {
	var busy, logPages, copied int
	err := c.db.QueryRowContext(c.ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logPages, &copied)
	if err != nil {
		return true
	}
	work := copied != c.last || logPages > copied // copied some (or the log started over), or some is left
	c.last = copied
	return work
}

// close stops the checkpointer; a second call (Store.Close twice, as
// server's TestHealthz does) is a no-op.
func (c *checkpointer) close() {
	if c == nil {
		return
	}
	c.stop()
	c.done.Wait()
	_ = c.db.Close() // sql.DB.Close is safe to repeat
}
