package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

// Intents close the windows in which Duplex's own write could come back as
// a person's change (docs/architecture.md, "Intents"). Before apply writes
// to a side it records an intent (store.Intent): the twin, the event, the
// entity (or, for a create, its correlation key) and what the side will
// hold once the write is through. Then:
//   - a page read from that side marks an entity that matches an open
//     intent as Duplex's echo (markOwnWrites), even when the write's batch
//     is not recorded yet: a poll between write and record, or a restart
//     after a crash in between;
//   - a retry after a crash between a create and its record completes the
//     create from the intent (pendingCreate) instead of taking the twin's
//     entity for an existing one: the create is audited once and the side's
//     base is the entity as created;
//   - the record of the event settles its intents (settleIntents).

// intentEcho is how long an unsettled intent counts for the echo check. A
// batch settles its intents when it is recorded; an intent older than this
// belongs to an event that keeps failing or to a process that died, and a
// state equal to what it expected is more likely a person's by then.
const intentEcho = 15 * time.Minute

// intentKeep is when an unsettled intent is removed altogether (an event
// failed for good, or skipped by a person).
const intentKeep = 7 * 24 * time.Hour

// expectation is what a side will hold after a write: a snapshot, the
// bodies of the comments the write adds (their ids are the system's) and how
// many files it adds. partial: the snapshot's fields are only those a
// create sends.
type expectation struct {
	snap     snapshot
	partial  bool
	comments []string
	files    int
}

// matches says whether an entity read from the side is in the expected
// state, or on the way to it: the write's fields all in place, every comment
// and file Duplex accounted for there, and any other comment one the write
// adds (by body). Anything else, a person's edit among it, does not match.
func (x expectation) matches(ent connectors.Entity) bool {
	if ent.Deleted {
		return false
	}
	if x.partial {
		for k, v := range x.snap.F {
			got, ok := ent.Fields[k]
			if !ok || mustCanonical(got) != mustCanonical(v) {
				return false
			}
		}
	} else if mustCanonical(mapOrEmpty(ent.Fields)) != mustCanonical(mapOrEmpty(x.snap.F)) {
		return false
	}
	known := make(map[string]bool, len(x.snap.C))
	for _, id := range x.snap.C {
		known[id] = true
	}
	pending := make(map[string]int, len(x.comments))
	for _, b := range x.comments {
		pending[b]++
	}
	for _, c := range ent.Comments {
		switch {
		case known[c.ID]:
			delete(known, c.ID)
		case pending[c.Body] > 0:
			pending[c.Body]--
		default:
			return false
		}
	}
	if len(known) > 0 {
		return false // a comment Duplex accounted for is gone
	}
	files := make(map[string]bool, len(x.snap.A))
	for _, id := range x.snap.A {
		files[id] = true
	}
	extra := 0
	for _, a := range ent.Attachments {
		if !files[a.ID] {
			extra++
		}
		delete(files, a.ID)
	}
	return len(files) == 0 && extra <= x.files
}

func mapOrEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func (x expectation) intent() (store.Intent, error) {
	enc, err := x.snap.encode()
	if err != nil {
		return store.Intent{}, err
	}
	bodies := x.comments
	if bodies == nil {
		bodies = []string{}
	}
	cs, err := json.Marshal(bodies)
	if err != nil {
		return store.Intent{}, err
	}
	return store.Intent{Expected: enc, Partial: x.partial, Comments: string(cs), Files: x.files, Echo: true}, nil
}

func expectationOf(in store.Intent) (expectation, bool) {
	snap, err := decodeSnapshot(&in.Expected)
	if err != nil || snap == nil {
		return expectation{}, false
	}
	x := expectation{snap: *snap, partial: in.Partial, files: in.Files}
	if in.Comments != "" && json.Unmarshal([]byte(in.Comments), &x.comments) != nil {
		return expectation{}, false
	}
	return x, true
}

// write is what apply is about to write to the target, for its intent.
type write struct {
	first   bool
	resumed *store.Intent  // a create completed after a crash (pendingCreate)
	key     string         // the create's correlation key
	base    snapshot       // the target's base
	local   map[string]any // the target's fields as read before the write
	agreed  map[string]any
	changes map[string]any
	add     []connectors.Comment // comments to add
	files   int                  // files to add or relink
}

// writes reports whether the apply writes anything to the target.
func (w write) writes() bool {
	return w.first || len(w.changes) > 0 || len(w.add) > 0 || w.files > 0
}

// recordIntent records, before anything is written, what the target will
// hold afterwards. A resumed create keeps the intent it has. Returns nil
// when nothing is to be written.
func (e *Engine) recordIntent(ctx context.Context, p *plan, twin *store.Twin, ev *store.SyncEvent, dst store.Side, w write) (*store.Intent, error) {
	if w.resumed != nil {
		return w.resumed, nil
	}
	if !w.writes() {
		return nil, nil
	}
	x := expectation{snap: w.base.with(w.agreed, nil).with(w.changes, nil), files: w.files}
	if w.first {
		x = expectation{snap: snapshot{F: w.changes}, partial: true, files: w.files}
	}
	for _, c := range w.add {
		x.comments = append(x.comments, c.Body)
	}
	in, err := x.intent()
	if err != nil {
		return nil, fmt.Errorf("intent: %w", err)
	}
	e.address(&in, p, twin, ev, dst, "update")
	// The target holds a person's edit: what the intent expects could only
	// be read after that edit is undone (settle.go, personEdited). It still
	// completes a create and names Duplex's comments; it is no echo.
	in.Echo = w.first || !personEdited(w.base, w.local, w.agreed, w.changes)
	if w.first {
		in.Action, in.EntityID, in.CorrelationKey = "create", "", w.key
		// With sync back on create the first read of the new entity goes
		// back on purpose: the intent completes the twin, never an echo.
		in.Echo = !p.options.SyncBackOnCreate
	}
	if err := e.st.AddIntent(ctx, &in); err != nil {
		return nil, err
	}
	return &in, nil
}

// pendingCreate finds a create of the twin's target entity whose event was
// never recorded (a crash, or a failure after the create). Only a twin that
// has the target's id but no base for it is looked up: once a write to the
// side is recorded, the base is set.
func (e *Engine) pendingCreate(ctx context.Context, twin *store.Twin, dst store.Side) (*store.Intent, error) {
	if twin.EntityID(dst) == "" || twin.Base(dst) != nil {
		return nil, nil
	}
	in, err := e.st.PendingCreate(ctx, twin.ID, dst)
	if err != nil || in == nil || in.EntityID != twin.EntityID(dst) {
		return nil, err
	}
	return in, nil
}

// createOrResume creates the target entity, or, for a resumed create, reads
// the one the interrupted attempt made (found=true).
func (e *Engine) createOrResume(ctx context.Context, conn connectors.Connector, key string, fields map[string]any, resumed *store.Intent) (connectors.Entity, bool, error) {
	if resumed == nil {
		return e.create(ctx, conn, key, fields)
	}
	ent, err := conn.Get(ctx, resumed.EntityID)
	if err != nil {
		return ent, false, fmt.Errorf("read %s: %w", resumed.EntityID, err)
	}
	return ent, true, nil
}

// noteCreated saves the new entity's id on the twin at once (side b's poller
// could otherwise take the entity for a person's and make a second twin for
// it) and, in the same transaction, the entity as created on its intent.
func (e *Engine) noteCreated(ctx context.Context, in *store.Intent, twin *store.Twin, dst store.Side, local connectors.Entity, changes map[string]any, found bool) error {
	if in == nil {
		return e.st.SetTwinEntityID(ctx, twin.ID, dst, local.ID)
	}
	x, ok := expectationOf(*in)
	if !ok {
		x = expectation{}
	}
	x.partial, x.snap = false, snapshotOf(local)
	if found {
		// Comments and files an interrupted attempt added are among those
		// the intent expects by body and count.
		x.snap = asCreated(local, changes, loadLinks(twin), dst)
	}
	enc, err := x.snap.encode()
	if err != nil {
		return e.st.SetTwinEntityID(ctx, twin.ID, dst, local.ID)
	}
	in.EntityID, in.Expected, in.Partial = local.ID, enc, false
	return e.st.IntentCreated(ctx, in.ID, twin.ID, dst, local.ID, enc, e.toIntent.Load() > 0)
}

// settleIntents removes, in the record's transaction, the intents of the
// events that ended (done, skipped, conflict: their writes are in the twins
// now), and those past intentKeep. An event queued again or failed keeps
// its intents: its writes are not accounted for yet.
func (e *Engine) settleIntents(ctx context.Context, tx *store.Store, rs []result) error {
	ids := make([]int64, 0, len(rs))
	for _, r := range rs {
		if r.ev.Status != store.StatusQueued && r.ev.Status != store.StatusFailed {
			ids = append(ids, r.ev.ID)
		}
	}
	if err := tx.SettleIntents(ctx, ids); err != nil {
		return err
	}
	// Intents past intentKeep are rare (an event failed for good): a sweep
	// a minute is enough, and spares most records a round trip.
	now := e.opts.Now()
	last := e.intentSweep.Load()
	if now.UnixNano()-last < int64(time.Minute) || !e.intentSweep.CompareAndSwap(last, now.UnixNano()) {
		return nil
	}
	_, err := tx.DeleteIntentsBefore(ctx, now.Add(-intentKeep))
	return err
}

// openIntents reads the open intents of the system a page came from. It
// must run after the page was read and before its twins are: an intent
// gone by then was settled, and its twin as read next holds the echo hash.
func (e *Engine) openIntents(ctx context.Context, uses []use, n int) ([]store.Intent, error) {
	if len(uses) == 0 || n == 0 {
		return nil, nil
	}
	u := uses[0]
	return e.st.OpenIntents(ctx, u.plan.conn.SystemID(u.side), e.opts.Now().Add(-intentEcho))
}

// markOwnWrites gives an entity of the page that matches an open intent
// its content hash as echo reference in twins (a copy for this page only),
// so intake takes it for Duplex's own write. An entity not linked yet that
// matches a create's intent gets a stand-in twin with that reference: it
// is the create's answer, not a person's new entity. Intents of an entity
// that matches neither them nor its echo hash are superseded: that change
// is a person's and is taken in now.
//
// undecided: an entity not linked yet matched no intent while a create of
// its connection and side has no answer saved yet. It may be that create's
// entity, changed by a person in the moment between the create and Duplex
// saving its id; taken now for a person's new entity, its trigger (which
// decides only for unlinked entities) could drop the change for good. A
// poll defers such a page (deferPoll).
func (e *Engine) markOwnWrites(ctx context.Context, intents []store.Intent, uses []use, ents []connectors.Entity, twins pageTwins) (undecided bool) {
	if len(intents) == 0 {
		return false
	}
	var stale []int64
	for _, ent := range ents {
		if ent.Deleted {
			markOwnDelete(intents, uses, ent, twins)
			continue
		}
		for _, u := range uses {
			k := twinKey{u.plan.conn.ID, u.side, ent.ID}
			t, linked := twins[k]
			own, mine := false, []int64(nil)
			for _, in := range intents {
				if in.ConnectionID != k.conn || in.Side != k.side || in.Action == actionDelete {
					continue
				}
				// A create's intent read before its answer was saved: the
				// twin read after it may have the new id already.
				exact, create := in.EntityID == ent.ID, in.Partial && in.EntityID == ""
				if !(exact || create) || (linked && in.TwinID != t.ID) {
					continue
				}
				if exact {
					mine = append(mine, in.ID)
				}
				if !in.Echo {
					continue // superseded: its comments still count (linkPending)
				}
				if x, ok := expectationOf(in); ok && x.matches(ent) {
					own = true
					if !linked {
						t = store.Twin{ID: in.TwinID, ConnectionID: in.ConnectionID}
						t.SetEntityID(k.side, ent.ID)
					}
					break
				}
			}
			if !linked && !own && createInFlight(intents, k, ent.UpdatedAt) {
				undecided = true
			}
			if linked && len(mine) > 0 {
				t = linkPending(t, k.side, ent, intents, mine)
				twins[k] = t
			}
			switch {
			case own:
				t.SetHash(k.side, contentHash(ent))
				twins[k] = t
			case len(mine) > 0 && t.Hash(k.side) != contentHash(ent):
				stale = append(stale, echoing(intents, mine)...)
			}
		}
	}
	if len(stale) == 0 {
		return undecided
	}
	if err := e.st.SupersedeIntents(ctx, stale); err != nil {
		// Only the echo check loses them: a person's state equal to what
		// they expected could be taken for Duplex's for a while.
		e.log.Warn("superseding write intents failed", "err", err)
	}
	return undecided
}

// markOwnDelete gives a deleted entity that an open delete intent names
// the deleted mark as echo reference in twins (a copy for this page only):
// intake then takes the deletion for Duplex's own, also before the delete's
// record (a poll in between queued the delete back to its source).
func markOwnDelete(intents []store.Intent, uses []use, ent connectors.Entity, twins pageTwins) {
	for _, u := range uses {
		k := twinKey{u.plan.conn.ID, u.side, ent.ID}
		t, linked := twins[k]
		if !linked {
			continue
		}
		for _, in := range intents {
			if in.Action == actionDelete && in.Echo && in.ConnectionID == k.conn && in.Side == k.side &&
				in.EntityID == ent.ID && in.TwinID == t.ID {
				t.SetHash(k.side, deletedHash)
				twins[k] = t
				break
			}
		}
	}
}

// recordDeleteIntent records, before the delete policy deletes the target
// entity, that Duplex is about to (markOwnDelete).
func (e *Engine) recordDeleteIntent(ctx context.Context, p *plan, twin *store.Twin, ev *store.SyncEvent, dst store.Side) error {
	in := store.Intent{Expected: "{}", Comments: "[]", Echo: true}
	e.address(&in, p, twin, ev, dst, actionDelete)
	return e.st.AddIntent(ctx, &in)
}

// address names on an intent the write it announces: twin, event, the
// system, side and entity written, the action, and when.
func (e *Engine) address(in *store.Intent, p *plan, twin *store.Twin, ev *store.SyncEvent, dst store.Side, action string) {
	in.TwinID, in.EventID, in.ConnectionID = twin.ID, ev.ID, p.conn.ID
	in.SystemID, in.Side, in.EntityID = p.conn.SystemID(dst), dst, twin.EntityID(dst)
	in.Action, in.CreatedAt = action, e.opts.Now() // the clock the echo window is read with
}

// createInFlight says whether a create of k's connection and side has
// recorded its intent but not the new entity's id, and could have made an
// entity last changed at updated: not one changed before the intent was
// recorded (a person's own entities, most of a page), give or take a
// minute for the system's clock.
func createInFlight(intents []store.Intent, k twinKey, updated time.Time) bool {
	for _, in := range intents {
		if in.ConnectionID == k.conn && in.Side == k.side && in.Action == "create" && in.EntityID == "" &&
			(updated.IsZero() || !updated.Before(in.CreatedAt.Add(-clockSlack))) {
			return true
		}
	}
	return false
}

// clockSlack is how far a system's clock may be behind Duplex's for
// createInFlight.
const clockSlack = time.Minute

// maxPollDeferrals bounds how many polls in a row a system defers for a
// create in flight (markOwnWrites): under a stream of creates there is
// nearly always one, and the system's other changes must not wait for
// ever. After that the page is taken as it is.
const maxPollDeferrals = 5

// deferPoll counts a deferred poll of systemID; false once the bound is
// reached (the count starts again then).
func (e *Engine) deferPoll(systemID int64) bool {
	e.deferMu.Lock()
	defer e.deferMu.Unlock()
	if e.deferred == nil {
		e.deferred = map[int64]int{}
	}
	if e.deferred[systemID] >= maxPollDeferrals {
		delete(e.deferred, systemID)
		return false
	}
	e.deferred[systemID]++
	return true
}

// pollDecided starts systemID's count of deferred polls again.
func (e *Engine) pollDecided(systemID int64) {
	e.deferMu.Lock()
	delete(e.deferred, systemID)
	e.deferMu.Unlock()
}

// count is how many files the plan adds to the target (copies and
// relinks), for the write's intent.
func (ap *attachmentPlan) count() int {
	if ap == nil {
		return 0
	}
	return len(ap.copy) + len(ap.found)
}

// linkPending links, on a page's copy of a twin, the entity's comments that
// open intents of the twin add (by body) as Duplex's own on that side, as
// their record will: onlyOwnComments then knows them before it.
func linkPending(t store.Twin, side store.Side, ent connectors.Entity, intents []store.Intent, ids []int64) store.Twin {
	mine := map[int64]bool{}
	for _, id := range ids {
		mine[id] = true
	}
	pending := map[string]bool{}
	for _, in := range intents {
		// Only the entity's own intents, and only their comments: decoding
		// every open intent's whole expectation for every entity of a page
		// was 15 % of a process's CPU against a remote with many creates in
		// flight (make bench-cluster, remote 20 ms).
		if !mine[in.ID] || in.Comments == "" || in.Comments == "[]" {
			continue
		}
		var bodies []string
		if json.Unmarshal([]byte(in.Comments), &bodies) != nil {
			continue
		}
		for _, b := range bodies {
			pending[b] = true
		}
	}
	if len(pending) == 0 {
		return t
	}
	links := loadLinks(&t)
	for _, c := range ent.Comments {
		if pending[c.Body] && !linked(links, side, c.ID) {
			links["intent:"+string(side)+":"+c.ID] = string(side) + ":" + c.ID
		}
	}
	links.save(&t)
	return t
}

func linked(links commentLinks, side store.Side, id string) bool {
	ref := string(side) + ":" + id
	for k, v := range links {
		if k == ref || v == ref {
			return true
		}
	}
	return false
}

// onlyOwnComments says whether a replica differs from the one last sent
// that way only by comments Duplex itself put on this side (linked there
// as its copies): the other side has them already, so the event would
// change nothing there. It is the echo of Duplex's comment on an entity
// whose base is behind a person's change taken in but not applied yet
// (the crash and cluster runs' last bounce-backs). Anything else (a field,
// a comment of a person's, a comment changed or gone) is a change.
func onlyOwnComments(twin *store.Twin, side store.Side, sent, replica string) bool {
	ours := map[string]bool{}
	for _, v := range loadLinks(twin) {
		if id, ok := strings.CutPrefix(v, string(side)+":"); ok {
			ours[id] = true
		}
	}
	if len(ours) == 0 {
		return false // no comment of Duplex's on this side: none can have been added (most twins; no decode)
	}
	old, err := decodeObject(&sent)
	if err != nil || old == nil {
		return false
	}
	cur, err := decodeObject(&replica)
	if err != nil || cur == nil || len(cur) != len(old) {
		return false
	}
	for k, v := range cur {
		if w, ok := old[k]; !ok || (k != "comments" && mustCanonical(v) != mustCanonical(w)) {
			return false
		}
	}
	prev := map[string]string{}
	for _, item := range commentItems(old["comments"]) {
		prev[str(item["id"])] = mustCanonical(item)
	}
	kept, added := 0, 0
	for _, item := range commentItems(cur["comments"]) {
		id := str(item["id"])
		if c, ok := prev[id]; ok {
			if c != mustCanonical(item) {
				return false
			}
			kept++
			continue
		}
		if id == "" || !ours[id] {
			return false
		}
		added++
	}
	return kept == len(prev) && added > 0
}

// commentItems is a replica's comment list; nil if it is not one.
func commentItems(v any) []map[string]any {
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]map[string]any, 0, len(list))
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil
		}
		out = append(out, m)
	}
	return out
}

// echoing keeps the ids of intents that still count as echoes.
func echoing(intents []store.Intent, ids []int64) []int64 {
	on := map[int64]bool{}
	for _, in := range intents {
		on[in.ID] = in.Echo
	}
	var out []int64
	for _, id := range ids {
		if on[id] {
			out = append(out, id)
		}
	}
	return out
}

// ownAgreed says whether every agreed field holds the value an earlier,
// unrecorded attempt of this event wrote (its intent expected it): the
// target holds Duplex's own write, found in place after a kill or a lost
// answer, not a person's edit that happens to agree. The store is asked
// only when fields are agreed (rare: an attempt's record lost, or a person
// making the same edit).
func (e *Engine) ownAgreed(ctx context.Context, r *applyRun) (bool, error) {
	if r.ev.ID == 0 || len(r.agreed) == 0 {
		return false, nil
	}
	ins, err := e.st.IntentsOfEvent(ctx, r.ev.ID, r.dst)
	if err != nil || len(ins) == 0 {
		return false, err
	}
	for k, v := range r.agreed {
		if !slices.ContainsFunc(ins, func(in store.Intent) bool {
			x, ok := expectationOf(in)
			w, has := x.snap.F[k]
			return ok && has && sameValue(w, v)
		}) {
			return false, nil
		}
	}
	return true, nil
}

// ownUnrecorded takes into the target's base the fields an earlier attempt
// of this event wrote but never recorded: the process that made it was
// killed between the write and the record (its claim lapsed and another
// process took the event over), or the write's answer was lost. The retry
// may carry a newer replica (it read its source again), and without this
// the merge would meet Duplex's own write as a person's edit of the target
// and settle a "conflict" against the change (the cluster kill test left a
// ticket escalated this way though its issue was resolved). Such a field is
// also one the source changed whatever the previous replica says: the value
// there came from a replica that was never recorded. Only a field
// the merge would see as changed on both sides is looked at, and only when
// the target holds exactly the value the attempt's intent expected, so the
// store is asked only then: an intent is settled when its event is
// recorded, so one still there for this event is an unrecorded attempt.
func (e *Engine) ownUnrecorded(ctx context.Context, r *applyRun) error {
	if r.ev.ID == 0 || r.base.F == nil {
		return nil
	}
	var suspects []string
	for k, v := range r.fields {
		cur, has := r.local.Fields[k]
		if !has || sameValue(cur, v) {
			continue
		}
		if bv, ok := r.base.F[k]; !ok || sameValue(cur, bv) {
			continue // not changed on the target since the last sync
		}
		suspects = append(suspects, k)
	}
	if len(suspects) == 0 {
		return nil
	}
	ins, err := e.st.IntentsOfEvent(ctx, r.ev.ID, r.dst)
	if err != nil || len(ins) == 0 {
		return err
	}
	base := maps.Clone(r.base.F)
	for _, in := range ins {
		x, ok := expectationOf(in)
		if !ok {
			continue
		}
		for _, k := range suspects {
			if v, ok := x.snap.F[k]; ok && sameValue(v, r.local.Fields[k]) {
				base[k] = v // Duplex's value: the base had it, had the attempt been recorded
				if r.own == nil {
					r.own = map[string]bool{}
				}
				r.own[k] = true
			}
		}
	}
	r.base.F = base
	return nil
}
