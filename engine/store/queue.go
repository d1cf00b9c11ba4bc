package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/duplexsync/duplex/migrations"
)

// TwinBy finds the twin of entity id on side s of a connection.
func (s *Store) TwinBy(ctx context.Context, connID int64, side Side, id string) (Twin, error) {
	return s.twinBy(ctx, connID, side, id) // twinscan.go
}

// EnsureTwin returns the twin of entity id on side s, creating it (with the
// other side still empty) when there is none. Concurrent callers get the same
// row: the unique index decides, the loser re-reads.
func (s *Store) EnsureTwin(ctx context.Context, connID int64, side Side, id string) (Twin, error) {
	t, err := s.TwinBy(ctx, connID, side, id)
	if err == nil {
		return t, nil
	}
	if t, ok, err := s.NewTwin(ctx, connID, side, id, "", nil); err != nil || ok {
		return t, err
	}
	return s.TwinBy(ctx, connID, side, id) // another caller made it meanwhile
}

// NewTwin creates the twin of entity id on side s, with the other side still
// empty and, when sent is not nil, the replica just queued in direction d as
// its last sent (one statement for intake's new entity instead of a lookup,
// an insert, a re-read and an update). ok=false: the twin exists already
// (the unique index decides between concurrent callers), nothing written.
func (s *Store) NewTwin(ctx context.Context, connID int64, side Side, id string, d Direction, sent *string) (Twin, bool, error) {
	now := s.now()
	t := Twin{ConnectionID: connID, CommentLinks: "{}", Origin: side, CreatedAt: now, UpdatedAt: now}
	t.SetEntityID(side, id)
	if sent != nil {
		t.SetSent(d, *sent)
	}
	// Hot path (every new entity at intake): raw SQL, see raw.go.
	err := s.queryRow(ctx, `INSERT INTO twins (connection_id, a_id, b_id, sent_ab, sent_ba, comment_links, origin, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, '{}', ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`,
		connID, t.AID, t.BID, t.SentAB, t.SentBA, string(side), now, now).Scan(&t.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return Twin{}, false, nil
	}
	if err != nil {
		return Twin{}, false, wrap("create twin", err)
	}
	return t, true, nil
}

// TwinsOf reads the twins of several entities of one side of a connection,
// by entity id: one query for a page of changes instead of one per entity.
func (s *Store) TwinsOf(ctx context.Context, connID int64, side Side, ids []string) (map[string]Twin, error) {
	out := make(map[string]Twin, len(ids))
	if s.dialect == migrations.Postgres {
		return out, s.twinsOfPG(ctx, connID, side, ids, out)
	}
	const chunk = 500
	for len(ids) > 0 {
		part := ids[:min(chunk, len(ids))]
		ids = ids[len(part):]
		args := make([]any, 0, len(part)+1)
		args = append(args, connID)
		for _, id := range part {
			args = append(args, id)
		}
		if err := s.queryTwins(ctx, "twins", "WHERE connection_id = ? AND "+string(side)+"_id IN ("+placeholders(len(part))+")",
			func(t *Twin) { out[t.EntityID(side)] = *t }, args...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// twinsOfPG is TwinsOf on PostgreSQL: one look-up in the (connection, id)
// unique index per id, whatever the statistics say. With "IN (…)" the
// planner, on statistics taken when the table was small (a new store
// filling with a backlog, before autovacuum's first ANALYZE), chose to
// read every twin of the connection and filter: 5–20 ms a page and
// growing with the table, the largest share of PostgreSQL's time in
// make bench-cluster. LIMIT 1 keeps the subquery a parameterized index
// scan (the pair is unique, so it changes no result). One array
// parameter also makes it one prepared statement for every page size.
func (s *Store) twinsOfPG(ctx context.Context, connID int64, side Side, ids []string, out map[string]Twin) error {
	return s.queryTwinsSQL(ctx, "twins", twinsOfPGQuery(side), func(t *Twin) { out[t.EntityID(side)] = *t }, ids, connID)
}

// twinsOfPGQuery takes the ids (an array) and the connection.
func twinsOfPGQuery(side Side) string {
	return `SELECT t.* FROM unnest(CAST(? AS TEXT[])) AS v(eid) CROSS JOIN LATERAL (` + twinSelect +
		`WHERE connection_id = ? AND ` + string(side) + `_id = v.eid LIMIT 1) AS t`
}

// TwinsByID reads several twins in one query.
func (s *Store) TwinsByID(ctx context.Context, ids []int64) (map[int64]*Twin, error) {
	out := make(map[int64]*Twin, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	err := s.queryTwins(ctx, "twins", "WHERE id IN ("+placeholders(len(ids))+")", func(t *Twin) { out[t.ID] = t }, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SaveTwin writes a twin, with the echo hash only of the sides listed (the
// ones the caller set), unconditionally. It leaves out the last-sent
// replicas, which only intake moves (SetSent), and the other hashes, which
// intake may have cleared meanwhile (ClearHash): the worker must not put back
// an older copy of them.
func (s *Store) SaveTwin(ctx context.Context, t *Twin, hashes ...Side) error {
	var hs []WrittenHash
	for _, side := range hashes {
		hs = append(hs, WrittenHash{Side: side, Hash: t.Hash(side), Always: true})
	}
	return s.SaveTwinWithSource(ctx, t, hs, nil)
}

// WrittenHash is the echo hash of a side Duplex wrote to (the side as
// Duplex left it). It is set only if no person's change of that side was
// taken in since the worker read the twin, before writing: the side's hash
// is still WasHash and the last replica sent from it still WasSent. Else
// intake accepted a change of the side meanwhile (it clears the hash, and
// moves the last sent replica when the change carries something), and
// setting the reference now would make a later change back to the state
// Duplex left look like Duplex's own echo, and be dropped.
type WrittenHash struct {
	Side    Side
	Hash    string
	WasHash string
	WasSent *string // the last replica sent from Side, nil for none
	Always  bool    // set it without the check
}

// SourceHash is an echo hash to set on a twin's source side only if the
// last replica sent in direction D is still Replica (see SetSourceHash).
type SourceHash struct {
	Side      Side
	Hash      string
	Direction Direction
	Replica   string
}

// SaveTwinWithSource is SaveTwin with the target's hashes checked as
// WrittenHash says and, when src is not nil, SetSourceHash in one
// statement: the worker records both for every applied event. The checks
// are in the statement itself, so on PostgreSQL they see the row as the
// intake transaction that changed it committed it (an UPDATE waits for the
// row's lock and re-evaluates on its newest version).
func (s *Store) SaveTwinWithSource(ctx context.Context, t *Twin, hashes []WrittenHash, src *SourceHash) error {
	t.UpdatedAt = s.now()
	// Hot path (every applied event): raw SQL, see raw.go.
	q := `UPDATE twins SET connection_id = ?, a_id = ?, b_id = ?, comment_links = ?, origin = ?, base_a = ?, base_b = ?,
		a_written_at = ?, b_written_at = ?, scripts_ab = ?, scripts_ba = ?, updated_at = ?`
	args := []any{t.ConnectionID, t.AID, t.BID, t.CommentLinks, string(t.Origin), t.BaseA, t.BaseB, t.AWrittenAt, t.BWrittenAt,
		t.ScriptsAB, t.ScriptsBA, t.UpdatedAt}
	for _, side := range []Side{SideA, SideB} {
		col := string(side) + "_hash"
		i := slices.IndexFunc(hashes, func(h WrittenHash) bool { return h.Side == side })
		switch {
		case i >= 0 && hashes[i].Always:
			q += ", " + col + " = ?"
			args = append(args, hashes[i].Hash)
		case i >= 0:
			h := hashes[i]
			was := ""
			if h.WasSent != nil {
				was = *h.WasSent
			}
			q += ", " + col + " = CASE WHEN " + col + " = ? AND COALESCE(" + sentColumn(DirectionFrom(side)) + ", '') = ? THEN ? ELSE " + col + " END"
			args = append(args, h.WasHash, was, h.Hash)
		case src != nil && src.Side == side:
			q += ", " + col + " = CASE WHEN " + sentColumn(src.Direction) + " = ? THEN ? ELSE " + col + " END"
			args = append(args, src.Replica, src.Hash)
		}
	}
	_, err := s.exec(ctx, q+" WHERE id = ?", append(args, t.ID)...)
	return wrap("save twin", err)
}

// TwinSave is one twin of a batch for SaveTwins: SaveTwinWithSource's
// arguments.
type TwinSave struct {
	Twin   *Twin
	Hashes []WrittenHash
	Src    *SourceHash
}

// LockTwins locks twins in id order (PostgreSQL; SQLite's write
// transaction holds the whole database already). A batch that then writes
// them in one statement, which locks rows in no particular order, keeps
// the global lock order (lockEvents in claims.go).
func (s *Store) LockTwins(ctx context.Context, ids []int64) error {
	if s.dialect != migrations.Postgres || len(ids) == 0 {
		return nil
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	q := "SELECT id FROM twins WHERE id IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ") ORDER BY id FOR UPDATE"
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return wrap("lock twins", err)
	}
	for rows.Next() {
	}
	rows.Close()
	return wrap("lock twins", rows.Err())
}

// SaveTwins is SaveTwinWithSource for a batch of twins in one statement,
// with the same checks per twin and side: each row of the values says which
// of SaveTwinWithSource's cases applies to each side (0 none, 1 always, 2
// checked against what the worker read, 3 the source's hash if its sent
// replica is unchanged). The caller locks the twins first (LockTwins).
func (s *Store) SaveTwins(ctx context.Context, saves []TwinSave) error {
	if len(saves) == 0 {
		return nil
	}
	cast := func(t string) string {
		if s.dialect == migrations.Postgres {
			return "CAST(? AS " + t + ")"
		}
		return "?"
	}
	cols := []string{"id", "connection_id", "a_id", "b_id", "comment_links", "origin", "base_a", "base_b", "a_written_at", "b_written_at",
		"scripts_ab", "scripts_ba", "updated_at", "mode_a", "hash_a", "was_a", "sent_a", "mode_b", "hash_b", "was_b", "sent_b"}
	types := []string{"BIGINT", "BIGINT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TIMESTAMPTZ", "TIMESTAMPTZ",
		"TEXT", "TEXT", "TIMESTAMPTZ", "INTEGER", "TEXT", "TEXT", "TEXT", "INTEGER", "TEXT", "TEXT", "TEXT"}
	ph := make([]string, len(types))
	for i, t := range types {
		ph[i] = cast(t)
	}
	row := "(" + strings.Join(ph, ", ") + ")"
	now := s.now()
	var q strings.Builder
	q.WriteString("WITH v(" + strings.Join(cols, ", ") + ") AS (VALUES ")
	args := make([]any, 0, len(cols)*len(saves))
	for i, sv := range saves {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(row)
		t := sv.Twin
		t.UpdatedAt = now
		args = append(args, t.ID, t.ConnectionID, t.AID, t.BID, t.CommentLinks, string(t.Origin), t.BaseA, t.BaseB, t.AWrittenAt, t.BWrittenAt,
			t.ScriptsAB, t.ScriptsBA, t.UpdatedAt)
		for _, side := range []Side{SideA, SideB} {
			mode, hash, was, sent := 0, "", "", ""
			i := slices.IndexFunc(sv.Hashes, func(h WrittenHash) bool { return h.Side == side })
			switch {
			case i >= 0 && sv.Hashes[i].Always:
				mode, hash = 1, sv.Hashes[i].Hash
			case i >= 0:
				h := sv.Hashes[i]
				mode, hash, was = 2, h.Hash, h.WasHash
				if h.WasSent != nil {
					sent = *h.WasSent
				}
			case sv.Src != nil && sv.Src.Side == side:
				// The source's sent column is its direction's: the one
				// the checked case reads for this side, too.
				mode, hash, sent = 3, sv.Src.Hash, sv.Src.Replica
			}
			args = append(args, mode, hash, was, sent)
		}
	}
	q.WriteString(`) UPDATE twins SET connection_id = v.connection_id, a_id = v.a_id, b_id = v.b_id, comment_links = v.comment_links,
		origin = v.origin, base_a = v.base_a, base_b = v.base_b, a_written_at = v.a_written_at, b_written_at = v.b_written_at,
		scripts_ab = v.scripts_ab, scripts_ba = v.scripts_ba, updated_at = v.updated_at`)
	for _, side := range []Side{SideA, SideB} {
		col, x, sent := string(side)+"_hash", string(side), sentColumn(DirectionFrom(side))
		q.WriteString(", " + col + " = CASE v.mode_" + x +
			" WHEN 1 THEN v.hash_" + x +
			" WHEN 2 THEN CASE WHEN twins." + col + " = v.was_" + x + " AND COALESCE(twins." + sent + ", '') = v.sent_" + x + " THEN v.hash_" + x + " ELSE twins." + col + " END" +
			" WHEN 3 THEN CASE WHEN twins." + sent + " = v.sent_" + x + " THEN v.hash_" + x + " ELSE twins." + col + " END" +
			" ELSE twins." + col + " END")
	}
	q.WriteString(" FROM v WHERE twins.id = v.id")
	_, err := s.exec(ctx, q.String(), args...)
	return wrap("save twins", err)
}

// SetTwinEntityID records the counterpart the worker just created for a
// twin, touching nothing else (the rest is saved with the batch).
func (s *Store) SetTwinEntityID(ctx context.Context, twinID int64, side Side, id string) error {
	_, err := s.exec(ctx, "UPDATE twins SET "+string(side)+"_id = ?, updated_at = ? WHERE id = ?", id, s.now(), twinID)
	return wrap("save twin", err)
}

func sentColumn(d Direction) string {
	if d == BToA {
		return "sent_ba"
	}
	return "sent_ab"
}

// SetSourceHash sets side's echo hash to the hash of the state an applied
// event carried, unless a newer change of that side was queued since (the
// last replica sent in direction d is no longer this event's): then the
// newer change decides, and an older state must not become the echo
// reference again (a person could change back to it).
func (s *Store) SetSourceHash(ctx context.Context, twinID int64, side Side, hash string, d Direction, replica string) error {
	return wrap("set source hash", s.q(ctx).Model(&Twin{}).Where("id = ? AND "+sentColumn(d)+" = ?", twinID, replica).
		Update(string(side)+"_hash", hash).Error)
}

// ClearHash forgets what Duplex last wrote to side: a change of that side
// was accepted as a person's, so the same content seen again later (changed
// away and back) is a person's change too, not an echo. It decides on the
// row as committed, not on a copy read earlier in the transaction: on
// PostgreSQL the worker may have set the hash since (a write skew that left
// an old state as the echo reference, found by the cluster run).
func (s *Store) ClearHash(ctx context.Context, twinID int64, side Side) error {
	col := string(side) + "_hash"
	_, err := s.exec(ctx, "UPDATE twins SET "+col+" = '' WHERE id = ? AND "+col+" <> ''", twinID)
	return wrap("clear hash", err)
}

// SetSent records the last replica queued in direction d, touching nothing
// else of the twin (the worker may be writing its other columns).
func (s *Store) SetSent(ctx context.Context, twinID int64, d Direction, replica string) error {
	col := sentColumn(d)
	return wrap("set sent replica", s.q(ctx).Model(&Twin{}).Where("id = ?", twinID).
		Updates(map[string]any{col: replica, "updated_at": s.now()}).Error)
}

// SetSentIf is SetSent only while the twin's last replica sent that way is
// still was (nil: none): the worker sends a replica it read again, and a
// change intake queued since then (it moved the column) is newer than
// that read. Overwriting it would make the next poll of that newer state
// find it "already sent" and queue nothing (the cluster kill test lost an
// issue's move back to resolved this way). Reports whether it was set.
func (s *Store) SetSentIf(ctx context.Context, twinID int64, d Direction, replica string, was *string) (bool, error) {
	col := sentColumn(d)
	q := "UPDATE twins SET " + col + " = ?, updated_at = ? WHERE id = ? AND " + col + " IS NULL"
	args := []any{replica, s.now(), twinID}
	if was != nil {
		q = "UPDATE twins SET " + col + " = ?, updated_at = ? WHERE id = ? AND " + col + " = ?"
		args = append(args, *was)
	}
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return false, wrap("set sent replica", err)
	}
	n, err := res.RowsAffected()
	return n > 0, wrap("set sent replica", err)
}

// SetSentClearing is SetSent for a person's change of the source side of d
// (intake found it no echo) and ClearHash of that side, in one statement.
func (s *Store) SetSentClearing(ctx context.Context, twinID int64, d Direction, replica string) error {
	_, err := s.exec(ctx, "UPDATE twins SET "+sentColumn(d)+" = ?, "+string(d.Source())+"_hash = '', updated_at = ? WHERE id = ?",
		replica, s.now(), twinID)
	return wrap("set sent replica", err)
}

// SentSet is one twin's part of SetSentMany: its last replica sent becomes
// Replica, or, when Replica is nil, only its source's echo hash is cleared.
type SentSet struct {
	TwinID  int64
	Replica *string
}

// SetSentMany is SetSentClearing and ClearHash for many twins of one
// direction in one statement (two on PostgreSQL, which locks the twins in
// id order first: the update locks rows in no particular order).
func (s *Store) SetSentMany(ctx context.Context, d Direction, sets []SentSet) error {
	switch len(sets) {
	case 0:
		return nil
	case 1:
		if r := sets[0].Replica; r != nil {
			return s.SetSentClearing(ctx, sets[0].TwinID, d, *r)
		}
		return s.ClearHash(ctx, sets[0].TwinID, d.Source())
	}
	ids := make([]int64, len(sets))
	for i, st := range sets {
		ids[i] = st.TwinID
	}
	if err := s.LockTwins(ctx, ids); err != nil {
		return err
	}
	var q strings.Builder
	args := make([]any, 0, 3*len(sets)+1)
	q.WriteString("WITH v(id, sets, sent) AS (VALUES ")
	for i, st := range sets {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(" + s.cast("BIGINT") + ", " + s.cast("INTEGER") + ", " + s.cast("TEXT") + ")")
		sent := ""
		if st.Replica != nil {
			sent = *st.Replica
		}
		args = append(args, st.TwinID, b2i(st.Replica != nil), sent)
	}
	col := sentColumn(d)
	q.WriteString(") UPDATE twins SET " + col + " = CASE WHEN v.sets = 1 THEN v.sent ELSE twins." + col + " END, " +
		string(d.Source()) + "_hash = '', updated_at = CASE WHEN v.sets = 1 THEN ? ELSE twins.updated_at END FROM v WHERE twins.id = v.id")
	_, err := s.exec(ctx, q.String(), append(args, s.now())...)
	return wrap("set sent replicas", err)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ListTwins returns a connection's twins, newest first.
func (s *Store) ListTwins(ctx context.Context, connID int64, limit, offset int) ([]Twin, error) {
	var out []Twin
	err := s.q(ctx).Where("connection_id = ?", connID).Order("id DESC").Limit(limit).Offset(offset).Find(&out).Error
	return out, wrap("list twins", err)
}

// InsertEvents appends events to the queue.
func (s *Store) InsertEvents(ctx context.Context, evs []SyncEvent) error {
	if len(evs) == 0 {
		return nil
	}
	now := s.now()
	for i := range evs {
		if evs[i].Status == "" {
			evs[i].Status = StatusQueued
		}
		if evs[i].NextAttemptAt.IsZero() {
			evs[i].NextAttemptAt = now
		}
		if evs[i].CreatedAt.IsZero() {
			evs[i].CreatedAt = now
		}
		evs[i].UpdatedAt = now
	}
	return wrap("enqueue", s.q(ctx).CreateInBatches(evs, 200).Error)
}

// claimedEvent is a sync_events row with its claim, for an insert that
// claims as it inserts.
type claimedEvent struct {
	SyncEvent
	ClaimedBy  *string
	LeaseUntil *time.Time
}

func (claimedEvent) TableName() string { return "sync_events" }

// InsertEventsClaimed is InsertEvents with the events whose claimed entry is
// true born claimed by c.By until c.Until, in the same statement: the intake
// hands them to its own worker (engine/handoff.go) instead of leaving them
// to a claim round, and no other claim (no other process's, nor its own
// worker's next round) takes them meanwhile. Their times are then as a claim
// would read them back.
func (s *Store) InsertEventsClaimed(ctx context.Context, evs []SyncEvent, claimed []bool, c Claim) error {
	if len(evs) == 0 {
		return nil
	}
	if !slices.Contains(claimed, true) {
		return s.InsertEvents(ctx, evs)
	}
	now := s.now()
	until := c.Until.UTC()
	rows := make([]claimedEvent, len(evs))
	for i := range evs {
		ev := &evs[i]
		if ev.Status == "" {
			ev.Status = StatusQueued
		}
		if ev.NextAttemptAt.IsZero() {
			ev.NextAttemptAt = now
		}
		if ev.CreatedAt.IsZero() {
			ev.CreatedAt = now
		}
		ev.UpdatedAt = now
		rows[i].SyncEvent = *ev
		if claimed[i] {
			rows[i].ClaimedBy, rows[i].LeaseUntil = &c.By, &until
		}
	}
	if err := s.q(ctx).CreateInBatches(rows, 200).Error; err != nil {
		return wrap("enqueue", err)
	}
	for i := range evs {
		evs[i].ID = rows[i].ID
		if claimed[i] {
			s.asStored(&evs[i])
		}
	}
	return nil
}

// asStored gives ev's times the form a read of its row gives them: UTC, no
// monotonic reading, and on PostgreSQL microseconds.
func (s *Store) asStored(ev *SyncEvent) {
	at := func(t time.Time) time.Time {
		t = t.UTC().Round(0)
		if s.dialect == migrations.Postgres {
			t = t.Truncate(time.Microsecond)
		}
		return t
	}
	ev.NextAttemptAt, ev.CreatedAt, ev.UpdatedAt = at(ev.NextAttemptAt), at(ev.CreatedAt), at(ev.UpdatedAt)
	if ev.SourceUpdatedAt != nil {
		t := at(*ev.SourceUpdatedAt)
		ev.SourceUpdatedAt = &t
	}
}

// DueEvents returns queued events of active connections whose time has come,
// oldest first, never one that has an older queued event of the same twin
// before it: that keeps each twin's changes in order even while an earlier
// one waits for a retry. A paused connection's events wait in the queue.
func (s *Store) DueEvents(ctx context.Context, now time.Time, limit int) ([]SyncEvent, error) {
	// Hot path (every worker round): read the queue in id order through
	// sync_events_queue and stop at limit. SQLite's planner once took an
	// index on (status, next_attempt_at) and sorted every due event of a
	// long queue by id for each batch, so it is told which index to use.
	from := "sync_events e"
	if s.dialect == migrations.SQLite {
		from += " INDEXED BY sync_events_queue"
	}
	var out []SyncEvent
	err := s.q(ctx).Raw(`SELECT * FROM `+from+`
		WHERE e.status = ? AND e.next_attempt_at <= ?
		  AND EXISTS (SELECT 1 FROM connections c WHERE c.id = e.connection_id AND c.active)
		  AND NOT EXISTS (SELECT 1 FROM sync_events p
		                  WHERE p.twin_id = e.twin_id AND p.status = ? AND p.id < e.id)
		ORDER BY e.id LIMIT ?`, StatusQueued, now.UTC(), StatusQueued, limit).Scan(&out).Error
	return out, wrap("due events", err)
}

// SaveEvent writes an event's status, attempts (both counts), error and log.
func (s *Store) SaveEvent(ctx context.Context, ev *SyncEvent) error {
	ev.UpdatedAt = s.now()
	// Hot path (every applied event): raw SQL, see raw.go.
	_, err := s.exec(ctx, `UPDATE sync_events SET status = ?, attempts = ?, total_attempts = ?, next_attempt_at = ?, last_error = ?, log = ?,
		updated_at = ?, replica = ?, conflicts = ?, resolution = ? WHERE id = ?`,
		ev.Status, ev.Attempts, ev.TotalAttempts, ev.NextAttemptAt.UTC(), ev.LastError, ev.Log, ev.UpdatedAt, ev.Replica, ev.Conflicts, ev.Resolution, ev.ID)
	return wrap("save event", err)
}

// SaveClaimedEvent is SaveEvent for an event of a batch claimed by by: on a
// shared store (PostgreSQL) it writes only while by still holds the claim,
// and held=false says another process took the event over (by's lease
// lapsed) and nothing was written. On SQLite nothing is claimed: it always
// writes.
func (s *Store) SaveClaimedEvent(ctx context.Context, ev *SyncEvent, by string) (held bool, err error) {
	if !s.Shared() {
		return true, s.SaveEvent(ctx, ev)
	}
	ev.UpdatedAt = s.now()
	res, err := s.exec(ctx, `UPDATE sync_events SET status = ?, attempts = ?, total_attempts = ?, next_attempt_at = ?, last_error = ?, log = ?,
		updated_at = ?, replica = ?, conflicts = ?, resolution = ?, claimed_by = NULL, lease_until = NULL WHERE id = ? AND claimed_by = ?`,
		ev.Status, ev.Attempts, ev.TotalAttempts, ev.NextAttemptAt.UTC(), ev.LastError, ev.Log, ev.UpdatedAt, ev.Replica, ev.Conflicts, ev.Resolution, ev.ID, by)
	if err != nil {
		return false, wrap("save event", err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap("save event", err)
}

// SaveClaimedEvents is SaveClaimedEvent for a batch of events in one
// statement: one round trip per batch instead of one per event (on
// PostgreSQL each is a network round trip inside the record's
// transaction). It returns the ids of the events it did not write because
// by no longer holds their claim (PostgreSQL only); the others are written.
// Events' rows are locked by the statement in no particular order, which is
// safe because only their claimer writes them: other processes' claims pass
// locked rows (SKIP LOCKED) instead of waiting for them.
func (s *Store) SaveClaimedEvents(ctx context.Context, evs []*SyncEvent, by string) (lost []int64, err error) {
	if len(evs) == 0 {
		return nil, nil
	}
	now := s.now()
	// The values as a CTE with named columns: PostgreSQL and SQLite (3.33+,
	// UPDATE … FROM) both take it. PostgreSQL types each parameter by its
	// cast; SQLite's columns take what they are given, as SaveEvent's do.
	cast := func(t string) string {
		if s.dialect == migrations.Postgres {
			return "CAST(? AS " + t + ")"
		}
		return "?"
	}
	row := "(" + strings.Join([]string{cast("BIGINT"), "?", cast("INTEGER"), cast("INTEGER"), cast("TIMESTAMPTZ"),
		"?", "?", cast("TIMESTAMPTZ"), "?", cast("TEXT"), cast("TEXT")}, ", ") + ")"
	var q strings.Builder
	q.WriteString(`WITH v(id, status, attempts, total_attempts, next_attempt_at, last_error, log, updated_at, replica, conflicts, resolution) AS (VALUES `)
	args := make([]any, 0, 11*len(evs)+1)
	for i, ev := range evs {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(row)
		ev.UpdatedAt = now
		args = append(args, ev.ID, ev.Status, ev.Attempts, ev.TotalAttempts, ev.NextAttemptAt.UTC(), ev.LastError, ev.Log,
			ev.UpdatedAt, ev.Replica, ev.Conflicts, ev.Resolution)
	}
	q.WriteString(`) UPDATE sync_events SET status = v.status, attempts = v.attempts, total_attempts = v.total_attempts,
		next_attempt_at = v.next_attempt_at, last_error = v.last_error, log = v.log, updated_at = v.updated_at,
		replica = v.replica, conflicts = v.conflicts, resolution = v.resolution`)
	// Recorded, an event's claim is done with (the WHERE below checks it
	// on the row as it was). Cleared here, not by the next claim round's
	// release: on PostgreSQL that was one more update of the row, and every
	// change of claimed_by writes an entry in each of the table's indexes
	// (sync_events_claimed indexes it: no heap-only update).
	q.WriteString(", claimed_by = NULL, lease_until = NULL")
	q.WriteString(" FROM v WHERE sync_events.id = v.id")
	if s.Shared() {
		q.WriteString(" AND sync_events.claimed_by = ?")
		args = append(args, by)
	}
	q.WriteString(" RETURNING sync_events.id")
	rows, err := s.query(ctx, q.String(), args...)
	if err != nil {
		return nil, wrap("save events", err)
	}
	defer rows.Close()
	written := make(map[int64]bool, len(evs))
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, wrap("save events", err)
		}
		written[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("save events", err)
	}
	for _, ev := range evs {
		if !written[ev.ID] {
			lost = append(lost, ev.ID)
		}
	}
	if !s.Shared() {
		return nil, nil // nothing is claimed on SQLite (SaveClaimedEvent)
	}
	return lost, nil
}

// GetEvent reads one event.
func (s *Store) GetEvent(ctx context.Context, id int64) (SyncEvent, error) {
	var ev SyncEvent
	return ev, wrap(fmt.Sprintf("event %d", id), s.q(ctx).First(&ev, id).Error)
}

// EventFilter selects events to list.
type EventFilter struct {
	ConnectionID int64
	Status       string
	Limit        int
	// Teams, when not nil, keeps events of connections owned by these teams
	// (an empty, non-nil list keeps none).
	Teams []int64
}

// ListEvents returns events, newest first.
func (s *Store) ListEvents(ctx context.Context, f EventFilter) ([]SyncEvent, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	q := s.q(ctx).Order("id DESC").Limit(f.Limit)
	if f.ConnectionID != 0 {
		q = q.Where("connection_id = ?", f.ConnectionID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.Teams != nil {
		if len(f.Teams) == 0 {
			return []SyncEvent{}, nil
		}
		q = q.Where("connection_id IN (SELECT id FROM connections WHERE team_id IN ?)", f.Teams)
	}
	var out []SyncEvent
	return out, wrap("list events", q.Find(&out).Error)
}

// RetryEvent puts a failed event back in the queue, due now.
func (s *Store) RetryEvent(ctx context.Context, id int64) error {
	res := s.q(ctx).Model(&SyncEvent{}).Where("id = ? AND status = ?", id, StatusFailed).
		Updates(map[string]any{"status": StatusQueued, "next_attempt_at": s.now(), "attempts": 0, "updated_at": s.now()})
	if res.Error != nil {
		return wrap("retry event", res.Error)
	}
	if res.RowsAffected == 0 {
		if _, err := s.GetEvent(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("event %d is not failed: %w", id, ErrConflict)
	}
	return nil
}

// EventCounts counts a connection's events by status.
func (s *Store) EventCounts(ctx context.Context, connID int64) (map[string]int64, error) {
	var rows []struct {
		Status string
		N      int64
	}
	err := s.q(ctx).Model(&SyncEvent{}).Select("status, COUNT(*) AS n").
		Where("connection_id = ?", connID).Group("status").Scan(&rows).Error
	out := map[string]int64{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, wrap("event counts", err)
}

// ResolveConflict records a person's choices for an event waiting in the
// conflict list and queues it again.
func (s *Store) ResolveConflict(ctx context.Context, id int64, resolution string) error {
	res := s.q(ctx).Model(&SyncEvent{}).Where("id = ? AND status = ?", id, StatusConflict).
		Updates(map[string]any{"status": StatusQueued, "resolution": resolution, "next_attempt_at": s.now(), "updated_at": s.now()})
	if res.Error != nil {
		return wrap("resolve conflict", res.Error)
	}
	if res.RowsAffected == 0 {
		if _, err := s.GetEvent(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("event %d has no open conflict: %w", id, ErrConflict)
	}
	return nil
}

// RetryFailed puts every failed event of a connection back in the queue and
// returns how many.
func (s *Store) RetryFailed(ctx context.Context, connID int64) (int64, error) {
	res := s.q(ctx).Model(&SyncEvent{}).Where("connection_id = ? AND status = ?", connID, StatusFailed).
		Updates(map[string]any{"status": StatusQueued, "next_attempt_at": s.now(), "attempts": 0, "updated_at": s.now()})
	return res.RowsAffected, wrap("retry failed events", res.Error)
}

// SkipEvent gives up on a failed, queued or conflicting event, keeping the
// reason as its last error.
func (s *Store) SkipEvent(ctx context.Context, id int64, reason string) error {
	res := s.q(ctx).Model(&SyncEvent{}).Where("id = ? AND status IN ?", id, []string{StatusFailed, StatusQueued, StatusConflict}).
		Updates(map[string]any{"status": StatusSkipped, "last_error": "skipped: " + reason, "updated_at": s.now()})
	if res.Error != nil {
		return wrap("skip event", res.Error)
	}
	if res.RowsAffected == 0 {
		if _, err := s.GetEvent(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("event %d is already done or skipped: %w", id, ErrConflict)
	}
	return nil
}

// DeleteTwin unlinks two entities as the engine does (a source deleted, a
// trigger no longer matching): the twin goes, and with it its events; the
// entities themselves stay as they are. UnlinkTwin keeps the events.
func (s *Store) DeleteTwin(ctx context.Context, id int64) (Twin, error) {
	var t Twin
	if err := s.q(ctx).First(&t, id).Error; err != nil {
		return t, wrap(fmt.Sprintf("twin %d", id), err)
	}
	// No foreign key deletes them since migration 00018.
	if err := s.q(ctx).Where("twin_id = ?", id).Delete(&SyncEvent{}).Error; err != nil {
		return t, wrap("unlink", err)
	}
	return t, wrap("unlink", s.q(ctx).Delete(&Twin{}, id).Error)
}

// LinkTwin records that entity aID on side a and bID on side b are the same
// thing, without writing to either system.
func (s *Store) LinkTwin(ctx context.Context, connID int64, aID, bID string) (Twin, error) {
	now := s.now()
	t := Twin{ConnectionID: connID, AID: &aID, BID: &bID, CommentLinks: "{}", CreatedAt: now, UpdatedAt: now}
	return t, wrap("link", s.q(ctx).Create(&t).Error)
}

// StartBackfill records a new "sync existing" job.
func (s *Store) StartBackfill(ctx context.Context, connID int64, side Side) (Backfill, error) {
	now := s.now()
	b := Backfill{ConnectionID: connID, Side: side, Status: "running", CreatedAt: now, UpdatedAt: now}
	return b, wrap("start backfill", s.q(ctx).Create(&b).Error)
}

// RunningBackfills lists unfinished jobs, oldest first.
func (s *Store) RunningBackfills(ctx context.Context) ([]Backfill, error) {
	var out []Backfill
	return out, wrap("running backfills", s.q(ctx).Where("status = ?", "running").Order("id").Find(&out).Error)
}

// ListBackfills lists a connection's jobs, newest first.
func (s *Store) ListBackfills(ctx context.Context, connID int64) ([]Backfill, error) {
	var out []Backfill
	return out, wrap("list backfills", s.q(ctx).Where("connection_id = ?", connID).Order("id DESC").Find(&out).Error)
}

// SaveBackfill writes a job's progress.
func (s *Store) SaveBackfill(ctx context.Context, b *Backfill) error {
	b.UpdatedAt = s.now()
	return wrap("save backfill", s.q(ctx).Save(b).Error)
}

// QueueStat is one connection's events in one status, for metrics.
type QueueStat struct {
	ConnectionID int64
	Connection   string
	Status       string
	Count        int64
	Attempts     int64      // tries so far, summed
	Oldest       *time.Time // the oldest event's creation
}

// QueueStats counts events per connection and status in one query; metrics
// read it at scrape time, so the figures survive restarts and agree across
// processes sharing a store.
func (s *Store) QueueStats(ctx context.Context) ([]QueueStat, error) {
	var rows []struct {
		ConnectionID int64
		Connection   string
		Status       string
		Count        int64
		Attempts     int64
		Oldest       string
	}
	err := s.q(ctx).Raw(`SELECT e.connection_id, c.name AS connection, e.status, COUNT(*) AS count,
		COALESCE(SUM(e.attempts), 0) AS attempts, MIN(e.created_at) AS oldest
		FROM sync_events e JOIN connections c ON c.id = e.connection_id
		GROUP BY e.connection_id, c.name, e.status`).Scan(&rows).Error
	if err != nil {
		return nil, wrap("queue stats", err)
	}
	out := make([]QueueStat, 0, len(rows))
	for _, r := range rows {
		q := QueueStat{ConnectionID: r.ConnectionID, Connection: r.Connection, Status: r.Status, Count: r.Count, Attempts: r.Attempts}
		if t, ok := parseDBTime(r.Oldest); ok {
			q.Oldest = &t
		}
		out = append(out, q)
	}
	return out, nil
}

// parseDBTime reads a MIN() over a time column: SQLite gives text, and the
// layouts differ between drivers.
func parseDBTime(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// AppliedBefore is the replica of the twin's last event in direction d,
// before event id, that was applied (done), or nil when there is none (the
// first, or pruned). apply takes it as the previous replica when the event's
// own (queued with it) is not what was applied last (engine/records.go).
func (s *Store) AppliedBefore(ctx context.Context, twinID int64, d Direction, id int64) (*string, error) {
	var replica string
	err := s.queryRow(ctx, `SELECT replica FROM sync_events WHERE twin_id = ? AND status = ? AND id < ? AND direction = ? ORDER BY id DESC LIMIT 1`,
		twinID, StatusDone, id, d).Scan(&replica)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("last applied replica", err)
	}
	return &replica, nil
}
