package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// PollResult tells what one poll call did.
type PollResult struct {
	Changes  int  // entities the connector reported
	Enqueued int  // sync events queued (including failed outgoing runs)
	More     bool // another page is ready
}

// candidate is a change that passed trigger, echo and replica checks and
// waits to be queued.
type candidate struct {
	connID   int64
	side     store.Side
	entityID string
	replica  string // canonical JSON; "" when the outgoing script failed
	failure  string
	log      string
	fields   string // the source entity's fields, canonical JSON
	updated  time.Time
	readAt   time.Time // when the entity was read (before the read started)
	twinID   int64     // the twin intake found (0: none yet)
	unlink   int64     // a twin to unlink instead of queuing anything
	relink   int64     // a remembered pair to restore first (relink.go)
	deleted  bool      // the source entity was deleted
	newTwin  bool      // intake found no twin: enqueue creates it
	handable bool      // its connection is active: its event may be handed over (handoff.go)
}

// PollOnce reads one page of changes from a system and queues sync events for
// every active connection that uses it. Scripts run outside the database
// transaction; the events and the new cursor are then committed together, so
// a crash either keeps both or neither, and nothing is lost or queued twice.
func (e *Engine) PollOnce(ctx context.Context, systemID int64) (PollResult, error) {
	var res PollResult
	st, err := e.system(ctx, systemID)
	if err != nil {
		return res, err
	}
	sys, err := e.st.GetSystem(ctx, systemID) // the cursor as committed
	if err != nil {
		return res, err
	}
	readAt := e.opts.Now() // before reading: a write by Duplex after this makes the events stale
	page, err := st.conn.Changes(ctx, sys.Cursor, e.opts.PageSize)
	if err != nil {
		return res, fmt.Errorf("poll %q: %w", sys.Name, err)
	}
	res.Changes, res.More = len(page.Entities), page.More

	uses, err := e.usesOf(ctx, systemID)
	if err != nil {
		return res, err
	}
	twins, undecided, err := e.twinsOfPageUndecided(ctx, uses, page.Entities)
	if err != nil {
		return res, err
	}
	if undecided && e.deferPoll(systemID) {
		// Read again next time, when the create in flight has its entity
		// linked; nothing of this page is taken in or skipped now.
		return PollResult{Changes: res.Changes}, nil
	} else if !undecided {
		e.pollDecided(systemID)
	}
	reread := e.readStale(ctx, st, uses, page.Entities, twins, readAt) // stale.go
	// The page's scripts run concurrently (as a webhook's do), so the
	// sandbox carries them in a few messages instead of two round trips per
	// change one after another: the one process polling a system otherwise
	// set the pace of every process applying its changes.
	cands := e.intakeAll(ctx, uses, page.Entities, twins, readAt)
	reread.stamp(cands)
	_, isHooked := hooked(st.conn)
	g := e.handingFor()
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		if isHooked {
			// Webhooks may carry entities: the states polled count as
			// taken (a late webhook with an older one must not win), and a
			// state older than one a webhook brought meanwhile is dropped.
			var err error
			if cands, err = freshOnly(ctx, tx, systemID, page.Entities, cands, func(string) bool { return false }); err != nil {
				return err
			}
			if err := tx.MarkSeen(ctx, systemID, seenTimes(page.Entities)); err != nil {
				return err
			}
		}
		n, err := commit(ctx, tx, cands, g)
		if err != nil {
			return err
		}
		res.Enqueued = n
		if page.Cursor != "" && page.Cursor != sys.Cursor {
			return tx.SetCursor(ctx, systemID, page.Cursor)
		}
		return nil
	})
	g.done(err) // wakes the worker for what it did not hand over
	if err != nil {
		return res, fmt.Errorf("record changes of %q: %w", sys.Name, err)
	}
	return res, nil
}

// intakeWidth bounds the intakes of one page run at once. An intake mostly
// waits for the sandbox (its scripts run in worker processes, which bound
// the CPU), and runs waiting together leave in one message: more at once
// means fewer round trips, not more CPU.
func (e *Engine) intakeWidth() int { return max(e.opts.Workers, 16) }

type use struct {
	plan *plan
	side store.Side
}

// usesOf lists (connection, side) pairs that read from a system. Paused
// connections are included: their changes are queued and wait there (the
// worker skips them) so that resuming applies them in order, and nothing
// that happened during the pause is lost. One query per poll call; plans come
// from the cache.
func (e *Engine) usesOf(ctx context.Context, systemID int64) ([]use, error) {
	conns, err := e.st.ListConnections(ctx)
	if err != nil {
		return nil, err
	}
	var out []use
	for _, c := range conns {
		if c.SystemAID != systemID && c.SystemBID != systemID {
			continue
		}
		p, err := e.planFor(ctx, c)
		if err != nil {
			// A broken connection must not stop the others sharing the system.
			e.log.Error("connection cannot run", "connection", c.Name, "err", err)
			continue
		}
		for _, side := range []store.Side{store.SideA, store.SideB} {
			if c.SystemID(side) == systemID {
				out = append(out, use{p, side})
			}
		}
	}
	return out, nil
}

// pageTwins holds the twins of a page of entities read after the page: one
// query per connection and side instead of one per entity.
type pageTwins map[twinKey]store.Twin

type twinKey struct {
	conn int64
	side store.Side
	id   string
}

func (e *Engine) twinsOfPage(ctx context.Context, uses []use, ents []connectors.Entity) (pageTwins, error) {
	out, _, err := e.twinsOfPageUndecided(ctx, uses, ents)
	return out, err
}

// twinsOfPageUndecided is twinsOfPage that also says whether the page holds
// an entity nobody can tell yet (intent.go, markOwnWrites).
func (e *Engine) twinsOfPageUndecided(ctx context.Context, uses []use, ents []connectors.Entity) (pageTwins, bool, error) {
	out := pageTwins{}
	if len(ents) == 0 {
		return out, false, nil
	}
	intents, err := e.openIntents(ctx, uses, len(ents)) // intent.go: before the twins
	if err != nil {
		return nil, false, err
	}
	ids := make([]string, len(ents))
	for i := range ents {
		ids[i] = ents[i].ID
	}
	for _, u := range uses {
		m, err := e.st.TwinsOf(ctx, u.plan.conn.ID, u.side, ids)
		if err != nil {
			return nil, false, err
		}
		for id, t := range m {
			out[twinKey{u.plan.conn.ID, u.side, id}] = t
		}
	}
	undecided := e.markOwnWrites(ctx, intents, uses, ents, out)
	return out, undecided, nil
}

// intake runs trigger, echo check and outgoing script for one entity on one
// side of one connection, whose twin (if any) is in twins. ok=false means
// nothing to queue. intakePage (backfill.go) runs the same steps for a page,
// its scripts in batches.
func (e *Engine) intake(ctx context.Context, p *plan, side store.Side, ent connectors.Entity, twins pageTwins) (candidate, bool) {
	in, done, ok := e.intakeHead(p, side, ent, twins)
	if done {
		return in.c, ok
	}
	if in.hasTwin { // decoded once, for the trigger's request and the outgoing script
		in.decodePrevious(p)
	}
	match, early, err := e.match(ctx, p, side, ent, in.twin, in.hasTwin, in.previous, in.prevErr)
	if done, ok := e.intakeMatched(ctx, p, &in, ent, match, err); done {
		return in.c, ok
	}
	if in.c.relink != 0 {
		early = nil // it ran on the inputs before the relink
	}
	out, err := e.outgoing(ctx, p, side, ent, in.previous, in.outgoingMeta(p), early)
	return e.intakeTail(ctx, p, &in, ent, out, err)
}

// intakeStep is one entity's intake between its steps: before the trigger,
// between the trigger and the outgoing script, after it.
type intakeStep struct {
	c         candidate
	twin      store.Twin
	hasTwin   bool
	previous  map[string]any // the last replica sent, the outgoing script's previous
	prevErr   error          // previous's decoding error
	prevOf    int64          // the twin whose last sent replica previous is (0: none decoded)
	fields    string         // the entity's state, encoded once for the echo check and the event
	fieldsErr error
	encoded   bool // fields and fieldsErr are set
}

func (in *intakeStep) triggerMeta(p *plan) scripting.Meta {
	return scripting.Meta{Connection: p.conn.Name, Key: p.fairKey(), Side: string(in.c.side), Timeout: p.options.scriptTimeout()}
}

// decodePrevious decodes the twin's last sent replica, the outgoing
// script's previous, unless the script never names previous: it would be
// handed none of it (scripting.OnlyReads), and the decoding was about 40
// of an update's 1,087 allocations in BenchmarkPipeline. A stored replica
// that does not decode then fails no change whose script ignores it.
func (in *intakeStep) decodePrevious(p *plan) {
	in.prevOf = in.twin.ID
	if s := p.sides[in.c.side].outgoing; s != nil {
		if reads, known := s.InputReads("previous"); known && len(reads) == 0 {
			in.previous, in.prevErr = nil, nil
			return
		}
	}
	in.previous, in.prevErr = decodeObject(in.twin.Sent(store.DirectionFrom(in.c.side)))
}

func (in *intakeStep) outgoingMeta(p *plan) scripting.Meta {
	first := !in.hasTwin || in.twin.EntityID(in.c.side.Other()) == ""
	return scripting.Meta{Connection: p.conn.Name, Key: p.fairKey(), Side: string(in.c.side), FirstSync: first, Timeout: p.options.scriptTimeout()}
}

// intakeHead is what comes before the trigger: done=true ends the intake
// with ok.
func (e *Engine) intakeHead(p *plan, side store.Side, ent connectors.Entity, twins pageTwins) (in intakeStep, done, ok bool) {
	in.c = candidate{connID: p.conn.ID, side: side, entityID: ent.ID, updated: ent.UpdatedAt, handable: p.conn.Active}
	if e.quarantined(p) {
		return in, true, false // runs no script; resuming backfills what changed meanwhile
	}
	in.twin, in.hasTwin = twins[twinKey{p.conn.ID, side, ent.ID}]
	in.c.newTwin = !in.hasTwin
	if in.hasTwin {
		in.c.twinID = in.twin.ID
	}
	if ent.Deleted {
		if !in.hasTwin || in.twin.Hash(side) == deletedHash {
			return in, true, false // never synced, or Duplex deleted it itself
		}
		in.c.deleted = true
		return in, true, true
	}
	// An echo of Duplex's own write ends before the trigger (a crossing to
	// the script workers for every write Duplex makes), unless the trigger's
	// answer could unlink it: a linked entity's match matters only for
	// on_unmatch=unlink on its origin side (intakeMatched).
	if in.hasTwin && in.twin.Hash(side) != "" && !(p.options.OnUnmatch == "unlink" && in.twin.Origin == side) {
		in.encode(ent)
		if in.echo(side) {
			return in, true, false
		}
	}
	return in, false, false
}

// encode encodes ent's state once, for the echo check and the event.
func (in *intakeStep) encode(ent connectors.Entity) {
	if !in.encoded {
		in.fields, in.fieldsErr = snapshotOf(ent).encode()
		in.encoded = true
	}
}

// echo reports whether the encoded state is what Duplex itself last wrote
// to (or read from) side.
func (in *intakeStep) echo(side store.Side) bool {
	return in.hasTwin && in.twin.Hash(side) != "" && in.fieldsErr == nil && in.twin.Hash(side) == textDigest(in.fields)
}

// intakeMatched takes the trigger's answer: done=true ends the intake with
// ok; otherwise the outgoing script is to run, with in.previous.
func (e *Engine) intakeMatched(ctx context.Context, p *plan, in *intakeStep, ent connectors.Entity, match bool, err error) (done, ok bool) {
	c, side := &in.c, in.c.side
	if err != nil {
		if e.noteLimit(ctx, p.conn.ID, err) {
			return true, false // quarantined meanwhile: resuming backfills it
		}
		c.failure = "trigger: " + err.Error()
		return true, true
	}
	if match && !in.hasTwin {
		if old, ok := e.rememberedTwin(ctx, p, side, ent); ok { // relink.go
			in.twin, in.hasTwin = old, true
			c.relink, c.twinID, c.newTwin = old.ID, old.ID, false
		}
	}
	if !match && !in.hasTwin {
		return true, false
	}
	if !match && p.options.OnUnmatch == "unlink" && in.twin.Origin == side {
		c.unlink = in.twin.ID // it no longer matches where it came from
		return true, true
	}
	// Encoded once: the echo check's hash (contentHash) and the event's source state.
	in.encode(ent)
	if in.echo(side) {
		return true, c.relink != 0 // an echo of what Duplex itself wrote (a remembered pair is still restored)
	}
	if in.hasTwin {
		if in.prevOf != in.twin.ID { // relinked to a remembered twin
			in.decodePrevious(p)
		}
		if in.prevErr != nil {
			c.failure = "previous replica: " + in.prevErr.Error()
			return true, true
		}
	}
	return false, false
}

// intakeTail takes the outgoing script's result.
func (e *Engine) intakeTail(ctx context.Context, p *plan, in *intakeStep, ent connectors.Entity, out scripting.OutgoingResult, err error) (candidate, bool) {
	c, side, twin := in.c, in.c.side, &in.twin
	dir := store.DirectionFrom(side)
	c.log = strings.Join(out.Log, "\n")
	if err != nil {
		if e.noteLimit(ctx, p.conn.ID, err) {
			return c, false // as above: the page's intakes run at once
		}
		c.failure = err.Error()
		return c, true
	}
	if c.replica, err = canonical(out.Replica); err != nil {
		c.failure = "replica is not JSON: " + err.Error()
		return c, true
	}
	if len(c.replica) > maxReplicaBytes {
		c.failure, c.replica = fmt.Sprintf("%s: the replica is %d bytes, over the %d byte limit", p.sides[side].outgoing.Name(), len(c.replica), maxReplicaBytes), ""
		return c, true
	}
	if c.fields = in.fields; in.fieldsErr != nil {
		c.failure = "entity fields are not JSON: " + in.fieldsErr.Error()
		return c, true
	}
	if in.hasTwin && twin.Sent(dir) != nil && (*twin.Sent(dir) == c.replica || onlyOwnComments(twin, side, *twin.Sent(dir), c.replica)) {
		// Nothing the other side cares about changed (intent.go: or only
		// Duplex's comments); a remembered pair is still restored.
		return c, c.relink != 0
	}
	return c, true
}

// matchOutgoing is implemented by executors that evaluate a trigger and,
// when it matches, run the outgoing script in one request (sandbox.Pool:
// one crossing to its workers instead of two).
type matchOutgoing interface {
	MatchOutgoing(ctx context.Context, t *scripting.Trigger, vars map[string]any, tmeta scripting.Meta,
		s *scripting.Script, entity, previous map[string]any, meta scripting.Meta) (scripting.MatchedOutgoing, error)
}

// match evaluates the side's trigger on ent. When the executor can, the
// outgoing script goes in the same request (early, nil when it did not
// run), on the inputs intake gives it unless a remembered pair is restored:
// the twin's last sent replica and whether the other side has the entity.
// Not for an echo of Duplex's own write, which runs no outgoing script.
func (e *Engine) match(ctx context.Context, p *plan, side store.Side, ent connectors.Entity, twin store.Twin, hasTwin bool,
	previous map[string]any, prevErr error) (bool, *scripting.MatchedOutgoing, error) {
	sp := p.sides[side]
	tmeta := scripting.Meta{Connection: p.conn.Name, Key: p.fairKey(), Side: string(side), Timeout: p.options.scriptTimeout()}
	mo, ok := e.opts.Runner.(matchOutgoing)
	if !ok || prevErr != nil || hasTwin && twin.Hash(side) != "" && twin.Hash(side) == contentHash(ent) {
		match, err := e.opts.Runner.Match(ctx, sp.trigger, triggerVars(ent), tmeta)
		return match, nil, err
	}
	meta := tmeta
	meta.FirstSync = !hasTwin || twin.EntityID(side.Other()) == ""
	res, err := mo.MatchOutgoing(ctx, sp.trigger, triggerVars(ent), tmeta, sp.outgoing, scriptEntity(ent), previous, meta)
	if err == nil {
		err = res.MatchErr
	}
	if res.Out == nil {
		return res.Match, nil, err
	}
	return res.Match, &res, err
}

// outgoing is the side's outgoing script's result on ent: the run that
// went with the trigger's (early), or a run now.
func (e *Engine) outgoing(ctx context.Context, p *plan, side store.Side, ent connectors.Entity, previous map[string]any, meta scripting.Meta, early *scripting.MatchedOutgoing) (scripting.OutgoingResult, error) {
	if early != nil {
		return *early.Out, early.Err
	}
	return e.opts.Runner.Outgoing(ctx, p.sides[side].outgoing, scriptEntity(ent), previous, meta)
}

// maxReplicaBytes bounds what one change may carry to the other side, so a
// script cannot push a runaway value into the queue and the other system.
const maxReplicaBytes = 1 << 20

// deletedHash marks, on a twin, a side Duplex deleted (its echo is ignored).
const deletedHash = "deleted"

// actionDelete is the event action for an entity deleted at the source.
const actionDelete = "delete"

// commit records candidates inside the caller's transaction and returns how
// many events it queued. The twins are written in the global lock order
// (store.lockEvents): existing ones by id, then the new ones (by entity
// id); the events are inserted in the candidates' order all the same.
//
// With g, the events of new twins (each its twin's first) whose connection
// has a free lane place are queued claimed and handed over to the worker
// after the commit (handoff.go).
func commit(ctx context.Context, tx *store.Store, cands []candidate, g *handing) (int, error) {
	g.reset() // a transaction run again reserves again
	order := lockOrder(cands)
	type queued struct {
		at     int
		ev     store.SyncEvent
		handed bool
	}
	qs := make([]queued, 0, len(cands))
	book, err := readTwins(ctx, tx, cands) // commit.go
	if err != nil {
		return 0, err
	}
	var made map[int]store.Twin // the new twins, by candidate
	for k, at := range order {
		c := cands[at]
		if c.twinID == 0 && made == nil {
			// The new entities come last in the order: their twins in one
			// statement (a backfill's page), after the existing ones.
			if made, err = book.newTwins(ctx, tx, cands, order[k:]); err != nil {
				return 0, err
			}
		}
		if c.unlink != 0 || c.relink != 0 {
			skip, err := book.relinking(ctx, tx, c)
			if err != nil {
				return 0, err
			}
			if skip {
				continue
			}
		}
		if t, ok := made[at]; ok {
			qs = append(qs, queued{at, newEvent(c, t), c.handable && c.failure == "" && g.reserve(c.connID)})
			continue
		}
		ev, ok, err := enqueue(ctx, tx, c, book)
		if err != nil {
			return 0, err
		}
		if ok {
			qs = append(qs, queued{at: at, ev: ev})
		}
	}
	if err := book.flush(ctx, tx); err != nil {
		return 0, err
	}
	slices.SortFunc(qs, func(x, y queued) int { return cmp.Compare(x.at, y.at) })
	evs := make([]store.SyncEvent, len(qs))
	handed := make([]bool, len(qs))
	for i := range qs {
		evs[i], handed[i] = qs[i].ev, qs[i].handed
	}
	if g == nil {
		return len(evs), tx.InsertEvents(ctx, evs)
	}
	if err := tx.InsertEventsClaimed(ctx, evs, handed, g.claim); err != nil {
		return 0, err
	}
	g.queued = len(evs)
	for i := range evs {
		if handed[i] {
			g.evs = append(g.evs, evs[i])
		}
	}
	return len(evs), nil
}

// newTwins makes the twins of the new entities among cands[order] in one
// statement, each with its replica as the last sent (enqueue's hot path for
// many). A candidate whose twin exists after all is not in the map: enqueue
// takes the general path for it.
func newTwins(ctx context.Context, tx *store.Store, cands []candidate, order []int) (map[int]store.Twin, error) {
	var rows []store.NewTwinRow
	var idx []int
	seen := map[twinKey]bool{} // a second change of one new entity shares the twin: general path
	for _, at := range order {
		c := &cands[at]
		k := twinKey{c.connID, c.side, c.entityID}
		if !c.newTwin || c.deleted || c.twinID != 0 || c.unlink != 0 || seen[k] {
			continue
		}
		seen[k] = true
		row := store.NewTwinRow{Conn: c.connID, Side: c.side, ID: c.entityID, Dir: store.DirectionFrom(c.side)}
		if c.failure == "" {
			row.Sent = &c.replica
		}
		rows, idx = append(rows, row), append(idx, at)
	}
	got, err := tx.NewTwins(ctx, rows)
	if err != nil {
		return nil, err
	}
	out := make(map[int]store.Twin, len(got))
	for i, t := range got {
		out[idx[i]] = t
	}
	return out, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// lockOrder is the order commit writes cands' twins in: existing ones by
// id, then the new ones by entity id.
func lockOrder(cands []candidate) []int {
	order := make([]int, len(cands))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		x, y := cands[i], cands[j]
		if c := cmp.Compare(b2i(x.twinID == 0), b2i(y.twinID == 0)); c != 0 {
			return c
		}
		if c := cmp.Compare(x.twinID, y.twinID); c != 0 {
			return c
		}
		return strings.Compare(x.entityID, y.entityID)
	})
	return order
}

// enqueue records a candidate inside the poll transaction: it ensures the
// twin (so two changes of one new entity share it), re-checks the replica
// against the last one sent and builds the event. The twin as this
// commit left it, and what enqueue writes to it, go through book.
func enqueue(ctx context.Context, tx *store.Store, c candidate, book *twinBook) (store.SyncEvent, bool, error) {
	dir := store.DirectionFrom(c.side)
	if c.newTwin && !c.deleted {
		// Hot path: a new entity. One statement makes its twin with this
		// replica as the last sent; if the twin exists after all (made
		// since intake looked), the general path below takes over.
		var sent *string
		if c.failure == "" {
			sent = &c.replica
		}
		twin, ok, err := tx.NewTwin(ctx, c.connID, c.side, c.entityID, dir, sent)
		if err != nil {
			return store.SyncEvent{}, false, err
		}
		if ok {
			return newEvent(c, twin), true, nil
		}
	}
	twin, err := book.twin(ctx, tx, c)
	if err != nil {
		return store.SyncEvent{}, false, err
	}
	if c.deleted {
		return store.SyncEvent{ConnectionID: c.connID, TwinID: twin.ID, Direction: dir, SourceID: c.entityID,
			Replica: "{}", Action: actionDelete, CreatedAt: c.readAt}, true, nil
	}
	ev := newEvent(c, twin)
	if c.failure != "" {
		return ev, true, nil
	}
	// This change is a person's (intake found it is no echo): what Duplex
	// wrote earlier is history, and the same content coming back later
	// (changed away and back) must not be taken for an echo. The hash is
	// cleared on the row as committed, not as read above: on PostgreSQL the
	// worker may have set it since (store.ClearHash).
	if prev := twin.Sent(dir); prev != nil && *prev == c.replica {
		book.set(twin.ID, dir, nil)
		return ev, false, nil
	}
	if prev := twin.Sent(dir); prev != nil && onlyOwnComments(&twin, c.side, *prev, c.replica) {
		return ev, false, nil // intent.go: against the row as committed (another poller may have sent since)
	}
	book.set(twin.ID, dir, &c.replica)
	return ev, true, nil
}

// newEvent is the sync event of a (not deleted) candidate for its twin.
func newEvent(c candidate, twin store.Twin) store.SyncEvent {
	dir := store.DirectionFrom(c.side)
	ev := store.SyncEvent{ConnectionID: c.connID, TwinID: twin.ID, Direction: dir, SourceID: c.entityID,
		Replica: c.replica, Previous: twin.Sent(dir), Log: c.log, SourceUpdatedAt: &c.updated,
		// Created when the source was read, not when the event was written:
		// the worker compares it with Duplex's last write to the source to
		// tell a stale replica.
		CreatedAt: c.readAt}
	if c.fields != "" {
		ev.SourceFields = &c.fields
	}
	if c.failure != "" {
		// Visible in the error list; a retry re-reads the entity and reruns the script.
		ev.Status, ev.LastError, ev.Replica = store.StatusFailed, c.failure, ""
		ev.Attempts, ev.TotalAttempts = 1, 1 // the script ran once and failed
	}
	return ev
}
