package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/duplexsync/duplex/migrations"
)

// Intent is a write Duplex is about to make to one side of a twin, recorded
// before it is made: what the side is expected to hold once the write is
// through. A change read from that side which matches an open intent is
// Duplex's own write even when its batch is not recorded yet (a poll in
// between, or a crash in between), and a create whose record was lost is
// completed from it (engine/intent.go).
type Intent struct {
	ID             int64  `gorm:"primaryKey"`
	TwinID         int64  // the twin written for
	EventID        int64  // the event whose apply writes; its record settles the intent
	ConnectionID   int64  //
	SystemID       int64  // the system written to
	Side           Side   // the side written to
	Action         string // create or update
	EntityID       string // the entity written; "" for a create before its answer
	CorrelationKey string // a create's correlation key
	// Expected is the side's state once the write is through (the engine's
	// snapshot JSON: fields, comment ids, attachment ids). Partial: its
	// fields are only those a create sends (the rest is the system's).
	Expected  string
	Partial   bool
	Comments  string // JSON list of the bodies of the comments the write adds
	Files     int    // how many attachments the write adds
	Echo      bool   // false once a person's change of the side was taken in
	CreatedAt time.Time
}

// TableName keeps gorm off its plural guess.
func (Intent) TableName() string { return "write_intents" }

// AddIntent records an intent; it is committed when AddIntent returns, and
// must be before the write it announces. The intents of the writes that run
// at the same time (the worker applies many events at once) share one
// statement and one commit: see intentCommitter.
func (s *Store) AddIntent(ctx context.Context, in *Intent) error {
	if in.CreatedAt.IsZero() {
		in.CreatedAt = s.now()
	}
	if s.intents == nil { // a Store bound to a transaction: part of it
		return s.insertIntents(ctx, []*Intent{in})
	}
	return s.intents.add(ctx, in)
}

// intentCommitter is the group commit of intents. An intent per write was
// one commit per change: on PostgreSQL a WAL flush each (0.4–4 ms here),
// the largest part of the store's cost per change against SQLite's. The
// intents that arrive while a group commits form the next group, so a lone
// intent waits for no timer, and a group never waits for another
// connection's work, only for one commit.
//
// A group of creates' answers only waits up to createdLinger for an intent
// to share its commit: the answers come after their writes, off the path
// of any change, and at a steady stream each would otherwise be a commit
// of its own between two intents' (about half the store's commits under a
// stream of creates). An intent never waits: it takes the answers queued
// with it. Answers wait only when their callers say intents are coming
// (other writes under way that have not recorded theirs): where none is
// (one batch at a time: its intents, its writes, then its answers; or
// lanes full of events waiting for their answers) a wait would only
// delay them.
type intentCommitter struct {
	st      *Store
	mu      sync.Mutex
	queue   []*pendingIntent
	running bool
	intent  chan struct{} // cap 1: an intent was queued (ends an answers' linger)
	linger  time.Duration // createdLinger (tests change it)
}

type pendingIntent struct {
	in      *Intent  // an intent to insert, or
	created *created // a create's answer to note (IntentCreated)
	coming  bool     // the answer's caller expects intents soon
	queued  time.Time
	err     error
	done    chan struct{}
}

// createdLinger is how long creates' answers wait for an intent.
const createdLinger = 2 * time.Millisecond

func newIntentCommitter(st *Store) *intentCommitter {
	return &intentCommitter{st: st, intent: make(chan struct{}, 1), linger: createdLinger}
}

type created struct {
	intentID, twinID int64
	side             Side
	entityID         string
	expected         string
}

// intentGroupMax bounds a group's statement (14 parameters a row).
const intentGroupMax = 64

func (c *intentCommitter) add(ctx context.Context, in *Intent) error {
	return c.wait(ctx, &pendingIntent{in: in, done: make(chan struct{})})
}

func (c *intentCommitter) wait(ctx context.Context, p *pendingIntent) error {
	p.queued = time.Now()
	c.mu.Lock()
	c.queue = append(c.queue, p)
	if p.in != nil {
		select {
		case c.intent <- struct{}{}:
		default:
		}
	}
	if !c.running {
		c.running = true
		go c.run()
	}
	c.mu.Unlock()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		// It may still be committed: an intent without its write is
		// harmless (settled or aged out like any other).
		return ctx.Err()
	}
}

func (c *intentCommitter) run() {
	for {
		c.mu.Lock()
		n := min(len(c.queue), intentGroupMax)
		if n == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		if wait := c.linger - time.Since(c.queue[0].queued); wait > 0 && n < intentGroupMax && answersWaiting(c.queue) {
			c.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-c.intent:
			}
			t.Stop()
			continue
		}
		select { // a stale signal must not cut the next linger short
		case <-c.intent:
		default:
		}
		group := c.queue[:n:n]
		c.queue = c.queue[n:]
		c.mu.Unlock()
		c.commit(group)
		for _, p := range group {
			close(p.done)
		}
	}
}

// commit writes a group in one transaction: its intents in one statement,
// then its creates' answers, by twin id (the record's lock order). If that
// fails, each is tried alone, so one bad row (its twin deleted meanwhile)
// fails only its own write.
func (c *intentCommitter) commit(group []*pendingIntent) {
	ctx := context.Background() // the group is not any one caller's
	var err error
	if ins := insertsOnly(group); ins != nil && (len(ins) == 1 || c.st.dialect == migrations.Postgres) {
		// One statement, its own commit, without BEGIN and COMMIT (and on
		// PostgreSQL without the SET of relaxIntentCommit: the statement
		// relaxes its own commit, insertIntents). Three round trips less
		// a group there. A multi-row INSERT is atomic on its own.
		err = c.st.insertIntents(ctx, ins)
	} else {
		err = c.st.Tx(ctx, func(tx *Store) error { return tx.relaxedIntentGroup(ctx, group) })
	}
	if err == nil || len(group) == 1 {
		for _, p := range group {
			p.err = err
		}
		return
	}
	for _, p := range group {
		p.err = c.st.Tx(ctx, func(tx *Store) error { return tx.relaxedIntentGroup(ctx, []*pendingIntent{p}) })
	}
}

// answersWaiting reports whether a queue holds creates' answers only, each
// expecting intents soon.
func answersWaiting(q []*pendingIntent) bool {
	for _, p := range q {
		if p.in != nil || !p.coming {
			return false
		}
	}
	return true
}

// insertsOnly returns the group's intents when it holds nothing else (no
// create's answer to note) and they go in one statement (one intent an
// event: insertIntents inserts those of one event one by one), or nil.
func insertsOnly(group []*pendingIntent) []*Intent {
	ins := make([]*Intent, 0, len(group))
	events := make(map[int64]bool, len(group))
	for _, p := range group {
		if p.in == nil || events[p.in.EventID] {
			return nil
		}
		events[p.in.EventID] = true
		ins = append(ins, p.in)
	}
	return ins
}

func (s *Store) relaxedIntentGroup(ctx context.Context, group []*pendingIntent) error {
	if err := s.relaxIntentCommit(ctx); err != nil {
		return err
	}
	return s.writeIntentGroup(ctx, group)
}

// writeIntentGroup writes a group in the transaction s is bound to.
func (s *Store) writeIntentGroup(ctx context.Context, group []*pendingIntent) error {
	var ins []*Intent
	var done []*created
	for _, p := range group {
		if p.in != nil {
			ins = append(ins, p.in)
		} else {
			done = append(done, p.created)
		}
	}
	if len(ins) > 0 {
		if err := s.insertIntents(ctx, ins); err != nil {
			return err
		}
	}
	return s.writeCreated(ctx, done)
}

// writeCreated notes creates' answers: each new entity's id on its twin and
// the entity as created on its intent. Two statements for the group,
// whatever its size (they were two per create: the largest part of the
// store's statements per change under a stream of creates). On PostgreSQL
// the twins are locked first, by id, the record's lock order: the update
// itself locks them in whatever order its join visits them.
func (s *Store) writeCreated(ctx context.Context, done []*created) error {
	if len(done) == 0 {
		return nil
	}
	slices.SortFunc(done, func(x, y *created) int { return cmp.Compare(x.twinID, y.twinID) })
	if s.dialect == migrations.Postgres && len(done) > 1 {
		ids := make([]any, len(done))
		for i, d := range done {
			ids[i] = d.twinID
		}
		rows, err := s.query(ctx, "SELECT id FROM twins WHERE id IN ("+placeholders(len(ids))+") ORDER BY id FOR UPDATE", ids...)
		if err != nil {
			return wrap("save twin", err)
		}
		if err := rows.Close(); err != nil {
			return wrap("save twin", err)
		}
	}
	for _, side := range []Side{SideA, SideB} {
		var q strings.Builder
		var args []any
		for _, d := range done {
			if d.side != side {
				continue
			}
			if len(args) == 0 {
				q.WriteString("WITH v(id, entity_id) AS (VALUES ")
			} else {
				q.WriteString(", ")
			}
			q.WriteString("(" + s.cast("BIGINT") + ", " + s.cast("TEXT") + ")")
			args = append(args, d.twinID, d.entityID)
		}
		if len(args) == 0 {
			continue
		}
		q.WriteString(") UPDATE twins SET " + string(side) + "_id = v.entity_id, updated_at = ? FROM v WHERE twins.id = v.id")
		if _, err := s.exec(ctx, q.String(), append(args, s.now())...); err != nil {
			return wrap("save twin", err)
		}
	}
	var q strings.Builder
	args := make([]any, 0, 3*len(done))
	q.WriteString("WITH v(id, entity_id, expected) AS (VALUES ")
	for i, d := range done {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(" + s.cast("BIGINT") + ", " + s.cast("TEXT") + ", " + s.cast("TEXT") + ")")
		args = append(args, d.intentID, d.entityID, d.expected)
	}
	q.WriteString(") UPDATE write_intents SET entity_id = v.entity_id, expected = v.expected, partial = ? FROM v WHERE write_intents.id = v.id")
	if _, err := s.exec(ctx, q.String(), append(args, false)...); err != nil {
		return wrap("record intent", err)
	}
	return nil
}

// cast types a VALUES parameter on PostgreSQL, which cannot infer it there;
// SQLite's columns take what they are given.
func (s *Store) cast(t string) string {
	if s.dialect == migrations.Postgres {
		return "CAST(? AS " + t + ")"
	}
	return "?"
}

// relaxIntentCommit commits an intent group on PostgreSQL without waiting
// for its WAL flush. What an intent guards against is a kill of Duplex (its
// committed rows are there whatever the flush) and a poll that reads the
// write before its batch is recorded (it sees committed rows). Only a crash
// of the database server itself within the flush delay can lose an intent,
// and the batch's record (a synchronous commit, which flushes the WAL
// before it) follows within a second: at worst that write is taken for a
// person's change once, as before intents.
func (s *Store) relaxIntentCommit(ctx context.Context) error {
	if s.dialect != migrations.Postgres {
		return nil
	}
	_, err := s.exec(ctx, `SET LOCAL synchronous_commit = off`)
	return wrap("record intent", err)
}

// insertIntents inserts intents in one statement and sets their ids. Rows
// come back matched by their event (RETURNING's order is not promised);
// intents of one event are inserted one by one.
func (s *Store) insertIntents(ctx context.Context, ins []*Intent) error {
	byEvent := make(map[int64]*Intent, len(ins))
	for _, in := range ins {
		if _, dup := byEvent[in.EventID]; dup {
			for _, in := range ins {
				if err := s.insertIntents(ctx, []*Intent{in}); err != nil {
					return err
				}
			}
			return nil
		}
		byEvent[in.EventID] = in
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO write_intents (twin_id, event_id, connection_id, system_id, side, action, entity_id,
		correlation_key, expected, partial, comments, files, echo, created_at) VALUES `)
	args := make([]any, 0, 14*len(ins))
	for i, in := range ins {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, in.TwinID, in.EventID, in.ConnectionID, in.SystemID, string(in.Side), in.Action, in.EntityID,
			in.CorrelationKey, in.Expected, in.Partial, in.Comments, in.Files, in.Echo, in.CreatedAt)
	}
	q.WriteString(" RETURNING id, event_id")
	if s.dialect == migrations.Postgres {
		// Evaluated before the statement's commit, in its transaction (an
		// implicit one when the statement runs alone): that commit does not
		// wait for the WAL flush, as relaxIntentCommit explains.
		q.WriteString(", set_config('synchronous_commit', 'off', true) IS NOT NULL")
	}
	rows, err := s.query(ctx, q.String(), args...)
	if err != nil {
		return wrap("record intent", err)
	}
	defer rows.Close()
	got := 0
	for rows.Next() {
		var id, ev int64
		dest := []any{&id, &ev}
		if s.dialect == migrations.Postgres {
			dest = append(dest, new(bool))
		}
		if err := rows.Scan(dest...); err != nil {
			return wrap("record intent", err)
		}
		if in := byEvent[ev]; in != nil {
			in.ID = id
			got++
		}
	}
	if err := rows.Err(); err != nil {
		return wrap("record intent", err)
	}
	if got != len(ins) {
		return fmt.Errorf("record intent: %d of %d rows came back", got, len(ins))
	}
	return nil
}

// IntentCreated notes a create's answer: the twin gets the new entity's id
// and the intent the entity as created, in one transaction, so a crash
// leaves either neither or both. The answers of creates that end together
// share that transaction and its commit with the intents being added
// (intentCommitter): a commit per create was a WAL flush per new entity on
// PostgreSQL. Committed like the intents (relaxIntentCommit): a kill of
// Duplex finds them; a crash of the database server may lose the last ones,
// and then the retried create is found by its correlation key, as before.
//
// intentsComing: the caller expects intents soon (other writes are under
// way); the answer then waits up to createdLinger for one to share its
// commit (intentCommitter).
func (s *Store) IntentCreated(ctx context.Context, intentID, twinID int64, side Side, entityID, expected string, intentsComing bool) error {
	c := &created{intentID: intentID, twinID: twinID, side: side, entityID: entityID, expected: expected}
	if s.intents == nil { // a Store bound to a transaction: part of it
		return s.writeIntentGroup(ctx, []*pendingIntent{{created: c}})
	}
	return s.intents.wait(ctx, &pendingIntent{created: c, coming: intentsComing, done: make(chan struct{})})
}

// OpenIntents lists the unsettled intents on a system recorded since the
// given time (superseded ones too: their comments are still Duplex's).
func (s *Store) OpenIntents(ctx context.Context, systemID int64, since time.Time) ([]Intent, error) {
	var out []Intent
	err := s.q(ctx).Where("system_id = ? AND created_at > ?", systemID, since).Order("id").Find(&out).Error
	return out, wrap("intents", err)
}

// PendingCreate returns the newest create intent for a twin's side whose
// entity was created (its id known) but whose event is not recorded yet,
// or nil. Its age does not matter: the entity is Duplex's either way.
func (s *Store) PendingCreate(ctx context.Context, twinID int64, side Side) (*Intent, error) {
	var out []Intent
	err := s.q(ctx).Where("twin_id = ? AND side = ? AND action = ? AND entity_id <> ''", twinID, side, "create").
		Order("id DESC").Limit(1).Find(&out).Error
	if err != nil || len(out) == 0 {
		return nil, wrap("intents", err)
	}
	return &out[0], nil
}

// SupersedeIntents stops the listed intents from counting as echoes: a
// person's change of their side was taken in, so the state they expect is
// no longer the side's, and a person changing it back to that state later
// must not be taken for Duplex's write. A create intent still completes its
// twin after a crash.
func (s *Store) SupersedeIntents(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return wrap("supersede intents", s.q(ctx).Model(&Intent{}).Where("id IN ?", ids).Update("echo", false).Error)
}

// SettleIntents removes the intents of events whose result is recorded:
// their writes are accounted for in the twins now. Run in the record's
// transaction.
func (s *Store) SettleIntents(ctx context.Context, eventIDs []int64) error {
	if len(eventIDs) == 0 {
		return nil
	}
	return wrap("settle intents", s.q(ctx).Where("event_id IN ?", eventIDs).Delete(&Intent{}).Error)
}

// DeleteIntentsBefore removes intents older than t (events that never
// settled: failed for good, skipped by a person) and returns how many.
func (s *Store) DeleteIntentsBefore(ctx context.Context, t time.Time) (int64, error) {
	res := s.q(ctx).Where("created_at < ?", t).Delete(&Intent{})
	return res.RowsAffected, wrap("expire intents", res.Error)
}

// IntentsOfEvent returns the intents an earlier attempt of an event
// recorded for a side and that its record has not settled yet: that attempt
// may have written them (a process killed between the write and the
// record, or an answer lost).
func (s *Store) IntentsOfEvent(ctx context.Context, eventID int64, side Side) ([]Intent, error) {
	var out []Intent
	err := s.q(ctx).Where("event_id = ? AND side = ?", eventID, side).Order("id").Find(&out).Error
	return out, wrap("intents", err)
}
