package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/duplexsync/duplex/migrations"
)

// Claim says who takes work and until when: several processes may share a
// PostgreSQL store, and each row of work (a sync event, a webhook delivery, a
// backfill job, a system's poller) is worked by one of them at a time. The
// holder's id is recorded with a lease; when the holder dies its claims lapse
// with the lease and another process takes them over. Leases compare times
// from the processes' clocks, so those must agree to well within a lease.
type Claim struct {
	By    string    // the process id (host-pid-random)
	Now   time.Time // the claimer's clock
	Until time.Time // when the claim lapses unless renewed or released
}

// Shared reports whether several processes may use this store at once
// (PostgreSQL). A SQLite store belongs to one process: claims left by an
// earlier run of it are its own and are cleared at start (ClearClaims).
func (s *Store) Shared() bool { return s.dialect == migrations.Postgres }

// skipLocked is the row-lock clause that lets concurrent claimers pass each
// other's rows instead of waiting for them. SQLite has no row locks: its
// write transactions (immediate) are serialised, which is enough there.
func (s *Store) skipLocked(table string) string {
	if s.dialect == migrations.Postgres {
		return " FOR UPDATE OF " + table + " SKIP LOCKED"
	}
	return ""
}

// ClaimEvents takes up to limit due sync events for c.By, after releasing
// the events listed in release (its earlier batch, recorded since). An event
// is taken only when it is due, its connection is active, no other process
// holds a live claim on it, and it is its twin's earliest queued event while
// no other event of its twin is claimed: so a twin's events are applied one
// at a time and in order, across every process. It also returns how many of
// the events it took had been claimed by another process whose lease lapsed
// (takeovers). The events come oldest first.
func (s *Store) ClaimEvents(ctx context.Context, c Claim, limit int, release []int64) ([]SyncEvent, int, error) {
	return s.ClaimEventsExcept(ctx, c, limit, release, Busy{})
}

// Busy is what a worker still has in hand when it claims more: the events
// it claimed and has not recorded (on SQLite nothing marks them claimed in
// the store, and their twins' later events must wait for them), and the
// connections whose share of its work is full.
type Busy struct {
	Events      []int64
	Connections []int64
}

// ClaimEventsExcept is ClaimEvents leaving out busy's events and connections.
func (s *Store) ClaimEventsExcept(ctx context.Context, c Claim, limit int, release []int64, busy Busy) ([]SyncEvent, int, error) {
	var (
		out       []SyncEvent
		takeovers int
	)
	if !s.Shared() {
		// One process per SQLite store, and its worker claims one batch at a
		// time: nothing to exclude, and a claim written there would cost a
		// second commit (an fsync) per batch, half the worker's throughput
		// (make bench-cluster). The same query picks the events.
		release = nil
	}
	err := s.Tx(ctx, func(tx *Store) error {
		if err := tx.claimSettings(ctx); err != nil {
			return err
		}
		if len(release) > 0 {
			if err := tx.setEventClaims(ctx, release, c.By, nil); err != nil {
				return wrap("release events", err)
			}
		}
		rows, err := tx.dueEvents(ctx, c.Now.UTC(), limit, busy)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		if !tx.Shared() {
			for _, r := range rows {
				out = append(out, r.SyncEvent)
			}
			return nil
		}
		ids := make([]int64, len(rows))
		out = make([]SyncEvent, len(rows))
		for i, r := range rows {
			ids[i], out[i] = r.ID, r.SyncEvent
			if r.ClaimedBy != nil && *r.ClaimedBy != c.By {
				takeovers++
			}
		}
		return wrap("claim events", tx.q(ctx).Exec(`UPDATE sync_events SET claimed_by = ?, lease_until = ? WHERE id IN ?`,
			c.By, c.Until.UTC(), ids).Error)
	})
	if err != nil {
		return nil, 0, err
	}
	return out, takeovers, nil
}

// claimRow is a due event and its claimer, if any (a lapsed lease).
type claimRow struct {
	SyncEvent
	ClaimedBy *string
}

// queuedConnsSQL lists the connections with queued events, each with its
// oldest: a loose index scan, one seek each, through sync_events_conn_queue.
const queuedConnsSQL = `WITH RECURSIVE s(c) AS (
			SELECT MIN(connection_id) FROM sync_events WHERE status = ` + queuedSQL + `
			UNION ALL
			SELECT (SELECT MIN(w.connection_id) FROM sync_events w WHERE w.status = ` + queuedSQL + ` AND w.connection_id > s.c)
			FROM s WHERE s.c IS NOT NULL)
		SELECT s.c AS queue_key,
		       (SELECT MIN(w.id) FROM sync_events w WHERE w.status = ` + queuedSQL + ` AND w.connection_id = s.c) AS first_id
		FROM s WHERE s.c IS NOT NULL`

// dueEvents reads up to limit due events but busy's, oldest first: one
// query, or with busy connections one per other connection (as
// pendingDeliveries): "connection_id NOT IN (busy)" walked every queued
// event of a busy connection, its whole backlog, on each claim.
func (s *Store) dueEvents(ctx context.Context, now time.Time, limit int, busy Busy) ([]claimRow, error) {
	if len(busy.Connections) == 0 {
		return s.dueEventsOf(ctx, now, limit, busy.Events, 0)
	}
	var conns []queueHead
	if err := s.q(ctx).Raw(queuedConnsSQL).Scan(&conns).Error; err != nil {
		return nil, wrap("claim events", err)
	}
	skip := make(map[int64]bool, len(busy.Connections))
	for _, id := range busy.Connections {
		skip[id] = true
	}
	sort.Slice(conns, func(i, j int) bool { return conns[i].FirstID < conns[j].FirstID })
	var out []claimRow
	for _, c := range conns {
		if skip[c.QueueKey] {
			continue
		}
		if len(out) >= limit && c.FirstID > out[limit-1].ID {
			break
		}
		got, err := s.dueEventsOf(ctx, now, limit, busy.Events, c.QueueKey)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		if len(out) > limit {
			out = out[:limit]
		}
	}
	return out, nil
}

// dueEventsOf reads up to limit due events but those in except, oldest
// first, of connection conn (0: of every connection).
func (s *Store) dueEventsOf(ctx context.Context, now time.Time, limit int, except []int64, conn int64) ([]claimRow, error) {
	q, args := s.dueQuery(now, limit, except, conn)
	return s.queryClaimRows(ctx, q, args...)
}

// dueQuery is dueEventsOf's statement and its arguments.
func (s *Store) dueQuery(now time.Time, limit int, except []int64, conn int64) (string, []any) {
	// In id order through sync_events_queue, as DueEvents (SQLite's
	// planner must be told; PostgreSQL's, see claimSettings), or through
	// sync_events_conn_queue for one connection.
	from := "sync_events e"
	if s.dialect == migrations.SQLite {
		from += " INDEXED BY sync_events_queue"
		if conn != 0 {
			from = "sync_events e INDEXED BY sync_events_conn_queue"
		}
	}
	// Only non-empty lists: "NOT IN ()" is invalid.
	where, args := "", []any(nil)
	if len(except) > 0 {
		where += " AND e.id NOT IN (" + placeholders(len(except)) + ")"
		for _, id := range except {
			args = append(args, id)
		}
	}
	if conn != 0 {
		where += " AND e.connection_id = ?"
		args = append(args, conn)
	}
	return `SELECT ` + eventColumns + ` FROM ` + from + `
		WHERE e.status = ` + queuedSQL + ` AND e.next_attempt_at <= ?
		  AND (e.lease_until IS NULL OR e.lease_until <= ?)
		  AND EXISTS (SELECT 1 FROM connections c WHERE c.id = e.connection_id AND c.active)
		  AND NOT EXISTS (SELECT 1 FROM sync_events p
		                  WHERE p.twin_id = e.twin_id AND p.status = ?
		                    AND (p.id < e.id OR p.lease_until > ?))` + where + `
		ORDER BY e.id LIMIT ?` + s.skipLocked("e"),
		append(append([]any{now, now, StatusQueued, now}, args...), limit)
}

// ExplainClaim returns the database's plan for a claim of limit events
// of any connection at now, as a claim transaction plans it (PostgreSQL:
// EXPLAIN, one line per row; SQLite: EXPLAIN QUERY PLAN). For diagnosing a
// slow queue, and for the test that the claim reads the queue in order.
func (s *Store) ExplainClaim(ctx context.Context, now time.Time, limit int) (string, error) {
	q, args := s.dueQuery(now.UTC(), limit, nil, 0)
	return s.explain(ctx, "", q, args...)
}

// explain returns the database's plan for q, planned as a claim
// transaction plans it after the statement set (if any), one line per row
// of the plan.
func (s *Store) explain(ctx context.Context, set, q string, args ...any) (string, error) {
	var lines []string
	errDone := errors.New("explained")
	err := s.Tx(ctx, func(tx *Store) error {
		if err := tx.claimSettings(ctx); err != nil {
			return err
		}
		if set != "" {
			if err := tx.q(ctx).Exec(set).Error; err != nil {
				return wrap("explain", err)
			}
		}
		explain := "EXPLAIN "
		if tx.dialect == migrations.SQLite {
			explain = "EXPLAIN QUERY PLAN "
		}
		rows, err := tx.q(ctx).Raw(explain+q, args...).Rows()
		if err != nil {
			return wrap("explain", err)
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			return wrap("explain", err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return wrap("explain", err)
			}
			lines = append(lines, fmt.Sprint(vals[len(vals)-1]))
		}
		if err := rows.Err(); err != nil {
			return wrap("explain", err)
		}
		return errDone // read only: roll back
	})
	if !errors.Is(err, errDone) {
		return "", err
	}
	return strings.Join(lines, "\n"), nil
}

// RenewEvents extends c.By's claims on events still being worked.
func (s *Store) RenewEvents(ctx context.Context, c Claim, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	until := c.Until.UTC()
	return wrap("renew event claims", s.Tx(ctx, func(tx *Store) error {
		if err := tx.relaxCommit(ctx); err != nil {
			return err
		}
		return tx.setEventClaims(ctx, ids, c.By, &until)
	}))
}

// Lock order. On PostgreSQL several processes, and in each the poll, hook,
// worker and renewal transactions, update the same sync_events and twins
// rows. Two transactions that lock two rows in opposite orders deadlock:
// PostgreSQL notices after deadlock_timeout (1 s) and fails one of them
// (SQLSTATE 40P01), a stall that can outlast a renewal of a short lease.
// So every transaction that locks several of these rows locks them in one
// global order: twins before sync_events, each by id ascending.
//   - claims (ClaimEvents, RenewEvents, ReleaseClaims) lock only events, in
//     id order (lockEvents), and take new ones with SKIP LOCKED (no wait);
//   - intake (the poll and hook transactions) locks only twins, in id order
//     (engine.commit sorts its candidates; new twins are inserted last);
//   - the worker's record updates its batch's twins in id order, then its
//     events in id order.
// A transaction that still loses a race (a serialization failure, or a
// deadlock through a path not listed here) is run again (Retryable).

// lockEvents locks the events among ids that by claims, in id order, and
// returns their ids (SQLite: every id, its write transactions are
// serialised). An UPDATE … WHERE id IN (…) locks the rows in the order the
// plan meets them (a bitmap scan: their place in the heap), not in id
// order: hence a locking SELECT first.
func (s *Store) lockEvents(ctx context.Context, ids []int64, by string) ([]int64, error) {
	if s.dialect != migrations.Postgres {
		return ids, nil
	}
	var locked []int64
	err := s.q(ctx).Raw(`SELECT id FROM sync_events WHERE id IN ? AND claimed_by = ? ORDER BY id FOR UPDATE`, ids, by).
		Scan(&locked).Error
	return locked, err
}

// setEventClaims sets the lease of by's claims among ids to until, or
// releases them (until nil), locking them in id order first.
func (s *Store) setEventClaims(ctx context.Context, ids []int64, by string, until *time.Time) error {
	locked, err := s.lockEvents(ctx, ids, by)
	if err != nil || len(locked) == 0 {
		return err
	}
	if until == nil {
		return s.q(ctx).Exec(`UPDATE sync_events SET claimed_by = NULL, lease_until = NULL WHERE id IN ? AND claimed_by = ?`,
			locked, by).Error
	}
	return s.q(ctx).Exec(`UPDATE sync_events SET lease_until = ? WHERE id IN ? AND claimed_by = ?`, *until, locked, by).Error
}

// LostClaims returns the events among ids that by no longer claims (another
// process took them over after by's lease lapsed). Only on a shared store;
// elsewhere nothing is claimed and nothing can be lost.
func (s *Store) LostClaims(ctx context.Context, ids []int64, by string) (map[int64]bool, error) {
	if !s.Shared() || len(ids) == 0 {
		return nil, nil
	}
	var lost []int64
	if err := s.q(ctx).Raw(`SELECT id FROM sync_events WHERE id IN ? AND (claimed_by IS NULL OR claimed_by <> ?)`, ids, by).
		Scan(&lost).Error; err != nil {
		return nil, wrap("claims held", err)
	}
	out := make(map[int64]bool, len(lost))
	for _, id := range lost {
		out[id] = true
	}
	return out, nil
}

// ClaimDeliveries takes up to limit pending webhook deliveries for c.By,
// oldest first, passing those another process holds, after releasing the
// ones listed in release (its earlier round, finished or to be retried).
func (s *Store) ClaimDeliveries(ctx context.Context, c Claim, limit int, release []int64) ([]WebhookDelivery, error) {
	return s.ClaimDeliveriesExcept(ctx, c, limit, release, nil)
}

// ClaimDeliveriesExcept is ClaimDeliveries passing the deliveries of the
// systems in busy (this process is still working on others of theirs): a
// system with a long queue must not fill the page and hold up the others.
//
// It reads per system, not in one "system_id NOT IN (busy) ORDER BY id"
// query: that one walked every pending delivery of a busy system (each row
// read from the table to see its system) on every claim, a quarter of the
// server's CPU under load (docs/performance.md). Through the index
// (status, system_id, id) it finds the systems with pending deliveries and
// each one's oldest, one index seek per system, then reads the non-busy
// systems oldest first, each at most limit rows, and keeps the limit oldest
// of all: the same deliveries the single query took.
func (s *Store) ClaimDeliveriesExcept(ctx context.Context, c Claim, limit int, release, busy []int64) ([]WebhookDelivery, error) {
	var out []WebhookDelivery
	err := s.Tx(ctx, func(tx *Store) error {
		if len(release) > 0 {
			if err := tx.q(ctx).Exec(`UPDATE webhook_deliveries SET claimed_by = NULL, lease_until = NULL
				WHERE id IN ? AND claimed_by = ?`, release, c.By).Error; err != nil {
				return wrap("release deliveries", err)
			}
		}
		var err error
		if out, err = tx.pendingDeliveries(ctx, c.Now.UTC(), limit, busy); err != nil || len(out) == 0 {
			return err
		}
		ids := make([]int64, len(out))
		for i := range out {
			ids[i] = out[i].ID
		}
		return wrap("claim deliveries", tx.q(ctx).Exec(`UPDATE webhook_deliveries SET claimed_by = ?, lease_until = ? WHERE id IN ?`,
			c.By, c.Until.UTC(), ids).Error)
	})
	return out, err
}

// queueHead is a system (or connection) with pending deliveries (queued
// events) and the id of its oldest, claimed by another process or not.
type queueHead struct {
	QueueKey int64
	FirstID  int64
}

// pendingSystemsSQL lists the systems with pending deliveries, each with
// its oldest (as queuedConnsSQL); pendingOfSystemSQL reads one system's.
const (
	pendingSystemsSQL = `WITH RECURSIVE s(sys) AS (
			SELECT MIN(system_id) FROM webhook_deliveries WHERE status = ` + pendingSQL + `
			UNION ALL
			SELECT (SELECT MIN(w.system_id) FROM webhook_deliveries w WHERE w.status = ` + pendingSQL + ` AND w.system_id > s.sys)
			FROM s WHERE s.sys IS NOT NULL)
		SELECT s.sys AS queue_key,
		       (SELECT MIN(w.id) FROM webhook_deliveries w WHERE w.status = ` + pendingSQL + ` AND w.system_id = s.sys) AS first_id
		FROM s WHERE s.sys IS NOT NULL`
	pendingOfSystemSQL = `SELECT d.* FROM webhook_deliveries d
			WHERE d.status = ` + pendingSQL + ` AND d.system_id = ? AND (d.lease_until IS NULL OR d.lease_until <= ?)
			ORDER BY d.id LIMIT ?`
)

// pendingDeliveries reads up to limit unclaimed pending deliveries of the
// systems not in busy, oldest first (see ClaimDeliveriesExcept).
func (s *Store) pendingDeliveries(ctx context.Context, now time.Time, limit int, busy []int64) ([]WebhookDelivery, error) {
	var systems []queueHead
	if err := s.q(ctx).Raw(pendingSystemsSQL).Scan(&systems).Error; err != nil {
		return nil, wrap("claim deliveries", err)
	}
	skip := make(map[int64]bool, len(busy))
	for _, id := range busy {
		skip[id] = true
	}
	sort.Slice(systems, func(i, j int) bool { return systems[i].FirstID < systems[j].FirstID })
	var out []WebhookDelivery
	for _, p := range systems {
		if skip[p.QueueKey] {
			continue
		}
		// A system whose oldest is younger than the limit oldest taken so
		// far has none to add.
		if len(out) >= limit && p.FirstID > out[limit-1].ID {
			break
		}
		var got []WebhookDelivery
		if err := s.q(ctx).Raw(pendingOfSystemSQL+s.skipLocked("d"), p.QueueKey, now, limit).Scan(&got).Error; err != nil {
			return nil, wrap("claim deliveries", err)
		}
		out = append(out, got...)
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		if len(out) > limit {
			out = out[:limit]
		}
	}
	return out, nil
}

// ClaimBackfills takes (or renews) the running backfill jobs that no other
// process holds, oldest first. A job stays with its holder from page to
// page while the holder renews it each round.
func (s *Store) ClaimBackfills(ctx context.Context, c Claim) ([]Backfill, error) {
	var out []Backfill
	err := s.Tx(ctx, func(tx *Store) error {
		now := c.Now.UTC()
		if err := tx.q(ctx).Raw(`SELECT b.* FROM backfills b
			WHERE b.status = ? AND (b.claimed_by = ? OR b.lease_until IS NULL OR b.lease_until <= ?)
			ORDER BY b.id`+tx.skipLocked("b"), "running", c.By, now).Scan(&out).Error; err != nil {
			return wrap("claim backfills", err)
		}
		if len(out) == 0 {
			return nil
		}
		ids := make([]int64, len(out))
		for i := range out {
			ids[i] = out[i].ID
		}
		return wrap("claim backfills", tx.q(ctx).Exec(`UPDATE backfills SET claimed_by = ?, lease_until = ? WHERE id IN ?`,
			c.By, c.Until.UTC(), ids).Error)
	})
	return out, err
}

// LeasePoller takes or renews the poller lease of a system for c.By: true
// when c.By holds it until c.Until. prev is the holder it took over from
// (a process whose lease lapsed), "" when it was free or c.By's already.
func (s *Store) LeasePoller(ctx context.Context, systemID int64, c Claim) (held bool, prev string, err error) {
	now := c.Now.UTC()
	type lease struct {
		PollerID    *string
		PollerUntil *time.Time
	}
	if s.Shared() {
		// A lease another process holds and that has not lapsed is answered
		// from a plain read. The locking read below waits for the holder's
		// poll transaction, which updates the same row (its cursor), and
		// the holder's next poll then waited for this transaction: in make
		// bench-cluster with 3 processes that wait was the store's largest
		// (8 ms a lease check, 454 checks). A lease only moves forward while
		// held, so an older version that shows it held is still right.
		var cur lease
		if err := s.q(ctx).Raw(`SELECT poller_id, poller_until FROM systems WHERE id = ?`, systemID).Scan(&cur).Error; err != nil {
			return false, "", wrap("poller lease", err)
		}
		if cur.PollerID != nil && *cur.PollerID != c.By && cur.PollerUntil != nil && cur.PollerUntil.After(now) {
			return false, "", nil
		}
	}
	err = s.Tx(ctx, func(tx *Store) error {
		var cur lease
		if err := tx.q(ctx).Raw(`SELECT poller_id, poller_until FROM systems WHERE id = ?`+tx.forUpdate(), systemID).
			Scan(&cur).Error; err != nil {
			return wrap("poller lease", err)
		}
		res := tx.q(ctx).Exec(`UPDATE systems SET poller_id = ?, poller_until = ?
			WHERE id = ? AND (poller_id = ? OR poller_id IS NULL OR poller_until IS NULL OR poller_until <= ?)`,
			c.By, c.Until.UTC(), systemID, c.By, now)
		if res.Error != nil {
			return wrap("poller lease", res.Error)
		}
		held = res.RowsAffected == 1
		if held && cur.PollerID != nil && *cur.PollerID != c.By {
			prev = *cur.PollerID
		}
		return nil
	})
	return held, prev, err
}

// claimSettings is relaxCommit and, for this transaction only, the
// planner told to read the queue in id order through its index rather
// than sort it (enable_sort off), in one round trip. The planner's
// estimates come from statistics that lag a growing queue (autovacuum
// analyses a table after its rows change by a tenth, and at most once a
// minute): estimating a few queued rows, it read every due event, joined
// and sorted them all to take the first 50, 9-30 ms a claim with 1,200
// queued in make bench-cluster. In id order a claim reads about as many
// rows as it takes. SQLite's planner is told the same by INDEXED BY.
func (s *Store) claimSettings(ctx context.Context) error {
	if s.dialect != migrations.Postgres {
		return nil
	}
	return wrap("claim", s.q(ctx).Exec(`SELECT set_config('synchronous_commit', 'off', true), set_config('enable_sort', 'off', true)`).Error)
}

// relaxCommit lets a claim transaction on PostgreSQL commit without
// waiting for its WAL flush (synchronous_commit off, this transaction only):
// a claim is a lease, not data. Only a crash of the database server itself
// within that flush delay can lose a claim (or a release), and then the
// event is free again as if its lease had lapsed.
func (s *Store) relaxCommit(ctx context.Context) error {
	if s.dialect != migrations.Postgres {
		return nil
	}
	return wrap("claim", s.q(ctx).Exec(`SET LOCAL synchronous_commit = off`).Error)
}

func (s *Store) forUpdate() string {
	if s.dialect == migrations.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// ReleaseClaims clears every claim and poller lease of process by: it stops
// gracefully, and what it did not finish is free for the others at once.
// It returns the number of queued events it gave back.
func (s *Store) ReleaseClaims(ctx context.Context, by string) (int64, error) {
	var events int64
	err := s.Tx(ctx, func(tx *Store) error {
		if tx.dialect == migrations.Postgres { // in id order, see lockEvents
			var ids []int64
			if err := tx.q(ctx).Raw(`SELECT id FROM sync_events WHERE claimed_by = ? ORDER BY id FOR UPDATE`, by).Scan(&ids).Error; err != nil {
				return wrap("release events", err)
			}
		}
		res := tx.q(ctx).Exec(`UPDATE sync_events SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = ? AND status = ?`, by, StatusQueued)
		if res.Error != nil {
			return wrap("release events", res.Error)
		}
		events = res.RowsAffected
		for _, q := range []string{
			`UPDATE sync_events SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = ?`,
			`UPDATE webhook_deliveries SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = ?`,
			`UPDATE backfills SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = ?`,
			`UPDATE systems SET poller_id = NULL, poller_until = NULL WHERE poller_id = ?`,
		} {
			if err := tx.q(ctx).Exec(q, by).Error; err != nil {
				return wrap("release claims", err)
			}
		}
		return nil
	})
	return events, err
}

// ClearClaims clears every claim and poller lease, whoever holds them: for
// a store only one process uses (SQLite), whose earlier run left them.
func (s *Store) ClearClaims(ctx context.Context) error {
	return s.Tx(ctx, func(tx *Store) error {
		for _, q := range []string{
			`UPDATE sync_events SET claimed_by = NULL, lease_until = NULL WHERE claimed_by IS NOT NULL`,
			`UPDATE webhook_deliveries SET claimed_by = NULL, lease_until = NULL WHERE claimed_by IS NOT NULL`,
			`UPDATE backfills SET claimed_by = NULL, lease_until = NULL WHERE claimed_by IS NOT NULL`,
			`UPDATE systems SET poller_id = NULL, poller_until = NULL WHERE poller_id IS NOT NULL`,
		} {
			if err := tx.q(ctx).Exec(q).Error; err != nil {
				return wrap("clear claims", err)
			}
		}
		return nil
	})
}
