package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/plural"
	"github.com/duplexsync/duplex/scripting"
)

// applyRun is one event on its way through apply's stages. Each stage fills
// in what the later ones read, so every stage is short and names one step:
// prepare, read, incoming, decide, write, attach, settle.
type applyRun struct {
	p        *plan
	ev       *store.SyncEvent
	twin     store.Twin // a copy: only a successful apply's twin is saved
	src, dst store.Side
	logs     *[]string
	decoded  *decodedSource // filled by settleInput for process
	meta     scripting.Meta // for the target side's scripts and rules
	rec      scriptRecord   // what the scripts produced last time this way (records.go)

	// prepare
	replica, previous map[string]any
	prevDigest        string          // textDigest of ev.Previous (chainPrevious)
	srcIDs            map[string]bool // the ids of the replica's comments
	target            *systemState
	targetID          string
	key               string // a create's correlation key (corrkey.go)
	// read
	first   bool          // nothing on the target yet (or a create to complete)
	resumed *store.Intent // a create whose record a crash lost (intent.go)
	local   connectors.Entity
	base    snapshot // the target's base
	// incoming
	fields   map[string]any // the target fields the incoming script wants
	comments []connectors.Comment
	files    *attachmentPlan
	// decide
	changes map[string]any  // what is written
	agreed  map[string]any  // fields the target already holds as wanted
	own     map[string]bool // fields an unrecorded attempt of this event wrote (ownUnrecorded)
	// ownAgreed: every agreed field holds what an unrecorded attempt of
	// this event wrote (intent.go, ownAgreed)
	ownAgreed bool
	// write
	toIntent bool // counted in Engine.toIntent until its intent is recorded
	found    bool // a create found by its correlation key (or resumed)
	out      outcome
	// attach
	added    []connectors.Comment
	relinked []connectors.Comment // Duplex's comments the retry found in place
	fileIDs  []string
}

// apply runs the incoming script and writes the minimal change to the target
// system. The twin it returns (when not nil) must be saved with the event.
func (e *Engine) apply(ctx context.Context, plans *batchPlans, tw *store.Twin, ev *store.SyncEvent, logs *[]string, dec *decodedSource) (outcome, *store.Twin, error) {
	p, err := plans.get(ctx, e, ev.ConnectionID)
	if err != nil {
		return outcome{}, nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	if tw == nil {
		return outcome{}, nil, fmt.Errorf("%w: twin %d is gone", errConfig, ev.TwinID)
	}
	src := ev.Direction.Source()
	// The other side is another deployment (a peer link): the replica
	// goes to the link's outbox, and that deployment runs its own
	// incoming script (engine/peer.go).
	if link, err := e.peerLinkOf(ctx, p.conn.SystemID(src.Other())); err != nil {
		return outcome{}, nil, err
	} else if link != nil {
		twin := *tw // a copy: only a successful apply's twin is saved
		return e.sendToPeer(ctx, p, link, &twin, ev, src.Other(), logs)
	}
	r := &applyRun{p: p, ev: ev, twin: *tw, src: src, dst: src.Other(), logs: logs, decoded: dec,
		meta: scripting.Meta{Connection: p.conn.Name, Key: p.fairKey(), Side: string(src.Other()), Timeout: p.options.scriptTimeout()},
		rec:  loadRecord(tw, ev.Direction)}
	if ev.Action == actionDelete {
		return e.applyDelete(ctx, p, &r.twin, r.ev, r.dst)
	}
	e.toIntent.Add(1)
	r.toIntent = true
	defer e.pastIntent(r)
	if err := e.prepare(ctx, r); err != nil {
		return outcome{}, nil, err
	}
	if err := e.read(ctx, r); err != nil {
		return outcome{}, nil, err
	}
	if stop, err := e.incoming(ctx, r); stop || err != nil {
		return r.out, nil, err
	}
	if stop, err := e.decide(ctx, r); stop || err != nil {
		return r.out, nil, err
	}
	if saved, err := e.write(ctx, r); err != nil {
		return r.out, saved, err
	}
	if err := e.attach(ctx, r); err != nil {
		return r.out, &r.twin, err // comments and files added are linked in twin: a retry skips them
	}
	in, out := e.settleInput(ctx, r)
	s := settle(in)
	s.applyTo(&r.twin, r.dst, r.src, e.opts.Now())
	recordScripts(r, s, out)
	return r.out, &r.twin, nil
}

// prepare takes the event's replica and checks it against the target
// side's rules before anything is read from or written to it: a replica
// that breaks one fails the event for good (a data problem, not a
// transient one). Unique rules look the value up in the target (its own
// counterpart aside).
func (e *Engine) prepare(ctx context.Context, r *applyRun) error {
	var err error
	if r.replica, err = e.replicaOf(ctx, r.p, r.ev, &r.twin, r.logs); err != nil {
		return err
	}
	r.srcIDs = replicaCommentIDs(r.replica)
	rules := r.p.sides[r.dst].rules
	if err := checkRules(ctx, e.opts.Runner, rules, r.replica, r.meta); err != nil {
		return err
	}
	if err := e.chainPrevious(ctx, r); err != nil {
		return err
	}
	if r.previous, err = previousFor(r); err != nil {
		return fmt.Errorf("previous replica: %w", err)
	}
	if r.target, err = e.system(ctx, r.p.conn.SystemID(r.dst)); err != nil {
		return err
	}
	r.targetID = r.twin.EntityID(r.dst)
	if r.targetID == "" {
		if r.key, err = e.createKey(ctx, r.p.conn.ID, &r.twin, r.dst); err != nil {
			return err
		}
	}
	uniq, err := uniqueResults(ctx, e.opts.Runner, r.meta, rules, r.target, r.targetID, r.key, r.replica)
	if err != nil {
		return err
	}
	if failed := scripting.Failed(uniq); len(failed) > 0 {
		return &RuleError{Failed: failed}
	}
	return nil
}

// read finds what the target holds: nothing yet (a create, or one a crash
// interrupted, which is completed rather than taken for an update of an
// entity that was there: intent.go), or its entity; and its base.
func (e *Engine) read(ctx context.Context, r *applyRun) error {
	var err error
	if r.resumed, err = e.pendingCreate(ctx, &r.twin, r.dst); err != nil {
		return err
	}
	r.first = r.targetID == "" || r.resumed != nil
	if !r.first {
		if r.local, err = readTarget(ctx, r.target.conn, r.targetID); err != nil { // batchread.go
			return fmt.Errorf("read %s entity %s: %w", r.dst, r.targetID, err)
		}
	}
	r.base = snapshot{F: map[string]any{}}
	if b, err := decodeSnapshot(r.twin.Base(r.dst)); err != nil {
		return fmt.Errorf("twin base: %w", err)
	} else if b != nil {
		r.base = *b
	}
	return nil
}

// previousFor decodes the event's previous replica when something will
// read it: the incoming script, if it names previous, or the merge, when
// the record does not hold what the script produced for it (mergeFor then
// runs the script on it). Otherwise it stays undecoded, nil: the script
// cannot tell, and decoding it was about 34 of an update's allocations in
// BenchmarkPipeline. Runs after chainPrevious, which may change it.
func previousFor(r *applyRun) (map[string]any, error) {
	if r.ev.Previous == nil {
		return nil, nil
	}
	in := r.p.sides[r.dst]
	if reads, known := in.incoming.InputReads("previous"); known && len(reads) == 0 {
		if _, ok := r.rec.prevDesired(in.inID, r.ev.Previous, r.prevDigest); ok {
			return nil, nil
		}
	}
	return decodeObject(r.ev.Previous)
}

// incoming runs the target side's incoming script on the replica and the
// target entity. stop=true: the script skipped the event.
func (e *Engine) incoming(ctx context.Context, r *applyRun) (stop bool, err error) {
	in := map[string]any{}
	if !r.first {
		in = scriptEntity(r.local)
	}
	meta := r.meta
	meta.FirstSync = r.first
	res, err := e.opts.Runner.Incoming(ctx, r.p.sides[r.dst].incoming, r.replica, r.previous, in, meta)
	*r.logs = append(*r.logs, res.Log...)
	if err != nil {
		return false, err
	}
	if res.Skipped {
		r.out = outcome{Action: "skip", Reason: "skipped by script: " + res.SkipReason}
		return true, nil
	}
	if r.fields, r.comments, err = splitEntity(res.Entity); err != nil {
		return false, fmt.Errorf("%w: incoming script result: %w", connectors.ErrInvalid, err)
	}
	if err := checkPatch(&r.twin, r.src, r.local, r.fields, r.comments, r.replica); err != nil { // patchlimit.go
		return false, err
	}
	r.files, err = e.planAttachments(ctx, r.p, r.ev, &r.twin, r.target, r.local, r.replica) // attachments.go
	return false, err
}

// decide computes what to write: for a create every field, for an update
// the field-level merge (merge.go), less what an earlier attempt saved.
// Fields the target already has as the source wants them are agreed: that
// is their base now. This matters after a write whose answer was lost (or a
// crash before its record): the retry finds the value in place and writes
// nothing, and without this the base would keep the old value and Duplex's
// own write would look like a person's edit, turning the next change of
// the field into a false conflict. stop=true: a conflict waits for a person.
func (e *Engine) decide(ctx context.Context, r *applyRun) (stop bool, err error) {
	r.out = outcome{Action: "none"}
	if r.first {
		r.changes = patch(nil, r.fields)
		return false, nil
	}
	if err := e.ownUnrecorded(ctx, r); err != nil { // intent.go
		return false, err
	}
	r.agreed = e.agreedFields(ctx, r.p, r.dst, r.replica, r.previous, r.local, r.base, r.fields)
	if r.ownAgreed, err = e.ownAgreed(ctx, r); err != nil { // intent.go
		return false, err
	}
	changes, conflicts, err := e.mergeFor(ctx, r)
	if err != nil {
		return false, err
	}
	r.changes = leftToApply(r.ev, r.targetID, changes, r.fields, r.local.Fields, r.base.F) // partial.go
	if len(conflicts) > 0 {
		enc, _ := json.Marshal(conflicts)
		s := string(enc)
		r.ev.Conflicts = &s
		r.out = outcome{Action: "conflict", Reason: plural.Of(int64(len(conflicts)), "field") + " changed on both sides"}
		return true, nil
	}
	return false, nil
}

// write records the intent (what the target will hold) and then creates or
// updates the target entity. On error the twin returned, when not nil, is
// to be saved: the target took part of the write.
func (e *Engine) write(ctx context.Context, r *applyRun) (*store.Twin, error) {
	add, _ := newComments(loadLinks(&r.twin), r.src, r.local, r.comments, r.srcIDs)
	key := r.key
	intent, err := e.recordIntent(ctx, r.p, &r.twin, r.ev, r.dst, write{first: r.first, resumed: r.resumed, key: key,
		base: r.base, local: r.local.Fields, agreed: r.agreed, changes: r.changes, add: add, files: r.files.count()})
	e.pastIntent(r)
	if err != nil {
		return nil, err
	}
	switch {
	case r.first:
		// The twin (our intent) exists since intake. A connector that can
		// correlate tags the entity with the twin's key, and a retry after a
		// crash between the create and saving the twin finds it instead of
		// creating a second one. Found, the create carried these fields
		// already: writing them again would undo what a person changed on
		// the new entity since; its base is the entity as created (settle).
		if r.local, r.found, err = e.createOrResume(ctx, r.target.conn, key, r.changes, r.resumed); err != nil {
			return e.partialCreate(ctx, r.ev, &r.twin, r.dst, r.local, r.changes, err), fmt.Errorf("create on %s: %w", r.dst, err)
		}
		r.twin.SetEntityID(r.dst, r.local.ID)
		// Saved at once, not with the batch: side b's poller could otherwise
		// take the new entity for a person's and make a second twin for it.
		if err := e.noteCreated(ctx, intent, &r.twin, r.dst, r.local, r.changes, r.found); err != nil {
			return nil, err
		}
		r.out.Action, r.out.Patch = "create", r.changes
		e.ackToPeer(ctx, r.p, r.src, r.ev, r.local) // engine/peer.go: when the source is a peer link
	case len(r.changes) > 0:
		if r.local, err = e.update(ctx, r.target.conn, r.targetID, r.changes); err != nil {
			return e.partialUpdate(ctx, r.ev, &r.twin, r.dst, r.base, r.targetID, r.changes, err), fmt.Errorf("update %s entity %s: %w", r.dst, r.targetID, err)
		}
		r.out.Action, r.out.Patch = "update", r.changes
	}
	r.out.TargetID = r.local.ID
	return nil, nil
}

// attach adds the new comments and copies the new files, each linked in the
// twin as it lands (also when a later one fails).
func (e *Engine) attach(ctx context.Context, r *applyRun) error {
	var err error
	r.added, r.relinked, err = e.addComments(ctx, r.target.conn, &r.twin, r.src, r.local, r.comments, r.srcIDs)
	r.out.Comments = len(r.added)
	if len(r.added) > 0 && r.out.Action == "none" {
		r.out.Action = "comment"
	}
	if err != nil {
		return err
	}
	var nfiles int
	r.fileIDs, nfiles, err = e.copyAttachments(ctx, r.files, &r.twin, r.local.ID, r.logs)
	r.out.Attachments = nfiles
	if nfiles > 0 && r.out.Action == "none" {
		r.out.Action = "attach"
	}
	return err
}

// settleInput gathers what settle needs; the only work it does is to learn
// which of the source's changed fields its outgoing script does not carry.
// out is the outgoing script's result on the source's new base, when known.
func (e *Engine) settleInput(ctx context.Context, r *applyRun) (in settleIn, out string) {
	in = settleIn{action: r.out.Action, first: r.first, found: r.found, syncBack: r.p.options.SyncBackOnCreate,
		base: r.base, agreed: r.agreed, ownAgreed: r.ownAgreed, patch: r.out.Patch, sent: r.changes, local: r.local,
		links: loadLinks(&r.twin), dst: r.dst, added: r.added, relinked: r.relinked, fileIDs: r.fileIDs}
	if r.ev.SourceFields == nil {
		return in, ""
	}
	in.queued = r.ev.SourceFields
	old, err1 := decodeSnapshot(r.twin.Base(r.src))
	cur, err2 := decodeSnapshot(r.ev.SourceFields)
	if err2 == nil && r.decoded != nil {
		*r.decoded = decodedSource{snap: cur, done: true}
	}
	if err1 != nil || err2 != nil || old == nil || cur == nil {
		return in, "" // the whole queued state, as before
	}
	in.srcOld, in.srcCur = old, cur
	in.uncarried, out = e.uncarried(ctx, r, old, cur)
	return in, out
}

// agreedFields returns the target fields that already hold what the source
// wants but differ from the base. A script passes fields it does not map
// through unchanged, and those must not count (a person's unsynced edit
// would become the base and then Duplex's echo): so the incoming script runs
// once more with those fields set back to their base values, and only the
// ones it still sets to the wanted value are driven by the replica.
func (e *Engine) agreedFields(ctx context.Context, p *plan, dst store.Side, replica, previous map[string]any,
	local connectors.Entity, base snapshot, desired map[string]any) map[string]any {
	var cands []string
	for k, v := range desired {
		if lv, ok := local.Fields[k]; ok && sameCanonical(lv, v) && !sameCanonical(base.F[k], v) {
			cands = append(cands, k)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	probe := scriptEntity(local)
	for _, k := range cands {
		bv, ok := base.F[k]
		setOrDelete(probe, k, bv, ok)
	}
	res, err := e.opts.Runner.Incoming(ctx, p.sides[dst].incoming, replica, previous, probe,
		scripting.Meta{Connection: p.conn.Name, Key: p.fairKey(), Side: string(dst), Timeout: p.options.scriptTimeout()})
	if err != nil || res.Skipped {
		return nil
	}
	out, _, err := splitEntity(res.Entity)
	if err != nil {
		return nil
	}
	agreed := map[string]any{}
	for _, k := range cands {
		if sameCanonical(out[k], desired[k]) {
			agreed[k] = desired[k]
		}
	}
	return agreed
}

// uncarried returns the source's fields that changed since its base but
// whose change its outgoing script does not carry (the replica comes out the
// same with the old value): an engineer's rename of a field only the other
// side writes was not synced, and the next merge the other way must still
// see it as this side's own change. A field the script never reads (its
// source names no entity.field for it: scripting.Script.EntityReads) is
// such a field without a run. For the others, one script run, plus one per
// changed field, but none for the old base when the record holds its
// result and one of them changed (reverting it gives the old base's
// result); nil if a run fails (the whole queued state is taken, as
// before). out is the script's result on the new base when known, for the
// record.
func (e *Engine) uncarried(ctx context.Context, r *applyRun, old, cur *snapshot) (_ map[string]bool, out string) {
	reads, readsKnown := r.p.sides[r.src].outgoing.EntityReads()
	var changed []string
	unc := map[string]bool{}
	for k, v := range cur.F {
		if sameCanonical(v, old.F[k]) {
			continue
		}
		if readsKnown && !reads[k] {
			unc[k] = true
			continue
		}
		changed = append(changed, k)
	}
	recorded, known := r.rec.outFor(r.p.sides[r.src].outID, r.twin.Base(r.src))
	if len(changed) == 0 {
		if len(unc) == 0 || (known && readsKnown && sameReads(old.F, cur.F, reads, "")) {
			return unc, recorded // the base's fields the script reads stay: so does its result
		}
		return unc, ""
	}
	run := func(fields map[string]any) (string, bool) {
		res, err := e.opts.Runner.Outgoing(ctx, r.p.sides[r.src].outgoing, scriptEntity(connectors.Entity{ID: r.ev.SourceID, Fields: fields}), nil,
			scripting.Meta{Connection: r.p.conn.Name, Key: r.p.fairKey(), Side: string(r.src), Timeout: r.p.options.scriptTimeout()})
		if err != nil {
			return "", false
		}
		enc, err := canonical(res.Replica)
		return enc, err == nil
	}
	ref, ok := run(cur.F)
	if !ok {
		return nil, ""
	}
	// Fields the script does not read change neither result below.
	if known && len(changed) == 1 && ((readsKnown && sameReads(old.F, cur.F, reads, changed[0])) ||
		(!readsKnown && revertsToOld(old.F, cur.F, changed[0]))) {
		if ref == recorded {
			unc[changed[0]] = true
			return unc, recorded // the new base gives the old base's result
		}
		return unc, ref
	}
	probe := maps.Clone(cur.F)
	probed := 0
	for _, k := range changed {
		ov, had := old.F[k]
		setOrDelete(probe, k, ov, had)
		if res, ok := run(probe); ok && res == ref {
			unc[k] = true
			probed++
		}
		probe[k] = cur.F[k]
	}
	if probed > 0 {
		return unc, ""
	}
	return unc, ref // only unread fields differ between the new base and cur
}

// sameReads reports whether old and cur hold the same values in every
// field in reads but except (present in both or in neither).
func sameReads(old, cur map[string]any, reads map[string]bool, except string) bool {
	for k := range reads {
		if k == except {
			continue
		}
		ov, inOld := old[k]
		cv, inCur := cur[k]
		if inOld != inCur || (inOld && !sameCanonical(ov, cv)) {
			return false
		}
	}
	return true
}

// revertsToOld reports whether cur with field k set back to its old value
// (or left out, if old lacks it) is old: k is the only difference.
func revertsToOld(old, cur map[string]any, k string) bool {
	_, had := old[k]
	n := len(cur)
	if !had {
		n--
	}
	return len(old) == n
}

// mergeFor runs the field-level merge of an update: it learns which target
// fields the source actually changed from what the incoming script produced
// for the previous replica (recorded when that one was applied, else run
// again now), then compares with the target's base.
func (e *Engine) mergeFor(ctx context.Context, r *applyRun) (map[string]any, []Conflict, error) {
	policy, err := ParsePolicy(r.p.conn.ConflictPolicy)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	mi := mergeInput{desired: r.fields, local: r.local.Fields, policy: policy, src: r.src, localTime: r.local.UpdatedAt, base: r.base.F, own: r.own}
	if r.ev.SourceUpdatedAt != nil {
		mi.srcTime = *r.ev.SourceUpdatedAt
	}
	if r.ev.Resolution != nil && *r.ev.Resolution != "" {
		if err := json.Unmarshal([]byte(*r.ev.Resolution), &mi.resolution); err != nil {
			return nil, nil, fmt.Errorf("%w: conflict resolution: %w", connectors.ErrInvalid, err)
		}
	}
	if prev, ok := r.rec.prevDesired(r.p.sides[r.dst].inID, r.ev.Previous, r.prevDigest); ok {
		mi.prevDesired = prev
	} else if r.previous != nil {
		// The script sees a fresh copy of the local entity: the first run
		// must not leak into the second.
		res, err := e.opts.Runner.Incoming(ctx, r.p.sides[r.dst].incoming, r.previous, nil, scriptEntity(r.local),
			scripting.Meta{Connection: r.p.conn.Name, Key: r.p.fairKey(), Side: string(r.dst), Timeout: r.p.options.scriptTimeout()})
		if err == nil && !res.Skipped {
			if f, _, err := splitEntity(res.Entity); err == nil {
				mi.prevDesired = f
			}
		}
	}
	patch, conflicts := merge(mi)
	return patch, conflicts, nil
}

// pastIntent counts r out of the events on their way to an intent (its
// intent is recorded, or it ends without one): a create's answer waits a
// little for an intent to share its commit only while some are
// (store.IntentCreated).
func (e *Engine) pastIntent(r *applyRun) {
	if r.toIntent {
		r.toIntent = false
		e.toIntent.Add(-1)
	}
}
