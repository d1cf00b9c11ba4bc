package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// Quarantine: a connection whose scripts keep hitting a limit (the deadline,
// the memory limit, a sandbox worker killed under it) is paused by the
// engine with a reason instead of running the same script again and again.
// Runs are counted from intake (trigger, outgoing; polls and backfills) and
// from the worker (outgoing on retry, incoming, rules). A quarantined
// connection runs no script at all, so a restart does not run the offending
// one again; activating it (the API's activate, `duplex apply`) lifts the
// quarantine, clears the count and starts a backfill of both sides, which
// picks up the changes made while it was quarantined.

// Defaults of the quarantine threshold: DefaultQuarantineHits runs that hit
// a limit within DefaultQuarantineWindow (counted from the first of them).
const (
	DefaultQuarantineHits   = 3
	DefaultQuarantineWindow = 10 * time.Minute
)

// limitKinds are the scripting.Error kinds that count towards quarantine:
// the run was stopped by a limit, not by a mistake the script reports
// ("crash": the sandbox worker running it died or was killed).
var limitKinds = map[string]bool{scripting.ErrorTimeout: true, scripting.ErrorMemory: true, "crash": true}

// exprBudget is what expr's VM says when an expression (trigger or rule)
// allocates past its memory budget; it comes back as a runtime error.
const exprBudget = "memory budget exceeded"

// limitHit reports whether err is a script run stopped by one of its limits,
// and which: a scripting.Error of a limit kind, expr's memory budget, or a
// validation rule whose expression failed on either. A run cut short
// because ctx ended (shutdown) is not one: the script did nothing wrong.
func limitHit(ctx context.Context, err error) (string, bool) {
	if err == nil || ctx.Err() != nil {
		return "", false
	}
	var se *scripting.Error
	if errors.As(err, &se) {
		switch {
		case limitKinds[se.Kind]:
			return se.Kind, true
		case strings.Contains(se.Message, exprBudget):
			return scripting.ErrorMemory, true
		}
		return "", false
	}
	var re *RuleError
	if errors.As(err, &re) { // a rule's error is text only
		for _, r := range re.Failed {
			for _, m := range ruleLimitMarks {
				if strings.Contains(r.Error, m.text) {
					return m.kind, true
				}
			}
		}
	}
	return "", false
}

// ruleLimitMarks are how a validation rule's error says it hit a limit: in
// the server's runner and in a sandbox worker's words.
var ruleLimitMarks = []struct{ text, kind string }{
	{exprBudget, scripting.ErrorMemory},
	{"expression limit exceeded", scripting.ErrorMemory}, // scripting.ErrExprLimit
	{"allocation) budget", scripting.ErrorMemory},        // the built-ins' budget
	{"too much memory", scripting.ErrorMemory},
	{"memory limit", scripting.ErrorMemory},
	{"deadline exceeded", scripting.ErrorTimeout},
	{"ran past its", scripting.ErrorTimeout},
	{"crashed its sandbox worker", "crash"},
}

// quarantineState remembers the connections this process quarantined, each
// with the updated_at the quarantine gave its row: a plan read before it
// (older updated_at, no reason yet) must not run more scripts, and a row
// updated after it was resumed.
type quarantineState struct {
	mu sync.Mutex
	at map[int64]time.Time
}

func (q *quarantineState) set(id int64, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.at == nil {
		q.at = map[int64]time.Time{}
	}
	q.at[id] = at
}

// stale reports whether a connection row as read (updated at updated) is
// older than a quarantine this process made; a newer row drops the entry.
func (q *quarantineState) stale(id int64, updated time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	at, ok := q.at[id]
	if ok && updated.After(at) {
		delete(q.at, id)
		return false
	}
	return ok
}

// quarantined reports whether a plan's connection is quarantined: paused
// with a reason, or quarantined by this process since the plan was read.
func (e *Engine) quarantined(p *plan) bool {
	return p.conn.PausedReason != "" || e.quarantine.stale(p.conn.ID, p.conn.UpdatedAt)
}

// skipQuarantined is the worker's check before it applies an event: the
// events of a connection quarantined while the batch ran stay queued as
// they are (resuming applies them).
func (e *Engine) skipQuarantined(ctx context.Context, plans *batchPlans, connID int64) bool {
	p, err := plans.get(ctx, e, connID)
	return err == nil && e.quarantined(p)
}

// quarantinePolicy is the threshold of a connection: its options
// (quarantine_hits, quarantine_window_s) over the engine's.
func (e *Engine) quarantinePolicy(o Lifecycle) (int, time.Duration) {
	hits, window := e.opts.QuarantineHits, e.opts.QuarantineWindow
	if o.QuarantineHits != 0 {
		hits = o.QuarantineHits
	}
	if o.QuarantineWindowS > 0 {
		window = time.Duration(o.QuarantineWindowS) * time.Second
	}
	if hits == 0 {
		hits = DefaultQuarantineHits
	}
	if window <= 0 {
		window = DefaultQuarantineWindow
	}
	return hits, window
}

// noteLimit counts a script run of connection connID that failed with err
// if it hit a limit, and quarantines the connection once the count reaches
// its threshold: the connection is paused with a reason, an audit entry
// (connection.quarantine) is written with it, and the alert evaluator
// opens a "quarantined" alert. It never fails the caller: a count that
// cannot be written is logged. late: the connection was quarantined before
// this run's hit was counted (a run started alongside the one that
// quarantined it): its result is not to be taken, as if it had not run.
func (e *Engine) noteLimit(ctx context.Context, connID int64, err error) (late bool) {
	kind, ok := limitHit(ctx, err)
	if !ok {
		return false
	}
	e.mu.Lock()
	p := e.plans[connID]
	e.mu.Unlock()
	var o Lifecycle
	if p != nil {
		o = p.options
	}
	hits, window := e.quarantinePolicy(o)
	if hits < 0 {
		return false // quarantine switched off for this connection
	}
	now := e.opts.Now()
	reason := fmt.Sprintf("quarantined: %d script runs hit a limit within %s; the last one (%s): %s",
		hits, window, kind, clipReason(err.Error()))
	var res store.LimitHit
	terr := e.st.Tx(ctx, func(tx *store.Store) error {
		var err error
		if res, err = tx.RecordLimitHit(ctx, connID, now, window, hits, reason); err != nil || !res.Quarantined {
			return err
		}
		c, err := tx.GetConnection(ctx, connID)
		if err != nil {
			return err
		}
		e.quarantine.set(connID, c.UpdatedAt)
		return tx.AddAudit(ctx, &store.AuditEntry{Actor: "engine", Action: "connection.quarantine", ConnectionID: &connID, Detail: reason})
	})
	switch {
	case terr != nil:
		e.quarantine.mu.Lock() // the quarantine may not have been written: forget it
		delete(e.quarantine.at, connID)
		e.quarantine.mu.Unlock()
		e.log.Error("cannot count a script run that hit a limit", "connection", connID, "err", terr)
	case res.Quarantined:
		e.log.Error("connection quarantined: its scripts keep hitting a limit; fix the script and activate it again",
			"connection", connID, "hits", res.Hits, "window", window, "kind", kind)
		e.Reload(connID)
	case !res.Already:
		e.log.Warn("a script run hit a limit", "connection", connID, "kind", kind, "hits", res.Hits, "threshold", hits)
	}
	return terr == nil && res.Already
}

// clipReason keeps a quarantine reason readable in a list.
func clipReason(s string) string {
	const max = 300
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
