package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/plural"
	"github.com/duplexsync/duplex/scripting"
)

// WorkOnce applies the sync events that are due, oldest first, and returns how
// many it handled. Each event ends done, skipped, failed, or queued again
// with a later attempt time. The results of the whole batch (events, twins,
// audit entries) are committed in one transaction: one durable write for many
// events instead of one each.
func (e *Engine) WorkOnce(ctx context.Context) (int, error) {
	due, claimed, err := e.claimEvents(ctx) // claim.go: shared with other processes
	if err != nil || len(due) == 0 {
		return 0, err
	}
	defer claimed()
	plans := &batchPlans{m: map[int64]*plan{}}
	ids := make([]int64, len(due))
	for i := range due {
		ids[i] = due[i].TwinID
	}
	twins, err := e.st.TwinsByID(ctx, ids) // one query for the batch
	if err != nil {
		return 0, err
	}
	// A batch holds at most one event per twin, so its events are applied
	// concurrently: a slow system or a script running into its deadline
	// holds up only its own event, not the connections behind it.
	slots := make([]result, len(due))
	done := make([]bool, len(due))
	sem := make(chan struct{}, e.opts.Workers)
	var wg sync.WaitGroup
	for i := range due {
		if ctx.Err() != nil {
			break // shutting down: what is not done stays queued as it was
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			slots[i], done[i] = e.process(ctx, plans, twins[due[i].TwinID], &due[i])
		}(i)
	}
	wg.Wait()
	results := make([]result, 0, len(due))
	for i := range slots {
		if done[i] {
			results = append(results, slots[i])
		}
	}
	// Record what was done even when ctx was cancelled meanwhile: those
	// writes already reached the other system.
	if err := e.record(context.WithoutCancel(ctx), results); err != nil {
		return 0, err
	}
	return len(results), ctx.Err()
}

// batchPlans compiles or fetches each connection's plan once per batch.
type batchPlans struct {
	mu sync.Mutex
	m  map[int64]*plan
}

func (b *batchPlans) get(ctx context.Context, e *Engine, id int64) (*plan, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.m[id]; ok {
		return p, nil
	}
	p, err := e.planByID(ctx, id)
	if err == nil {
		b.m[id] = p
	}
	return p, err
}

// result is one processed event with what must be saved with it.
type result struct {
	ev      *store.SyncEvent
	twin    *store.Twin
	hashes  []store.WrittenHash // the echo hash apply set on the target
	srcHash string              // the source's new echo hash, if any
	out     outcome
}

// outcome is what applying an event did, for the audit log.
type outcome struct {
	Action   string         `json:"action"` // create, update, comment, attach, none, skip
	TargetID string         `json:"target_id,omitempty"`
	Patch    map[string]any `json:"patch,omitempty"`
	Comments int            `json:"comments,omitempty"`
	// Attachments is how many files were copied to the target.
	Attachments int    `json:"attachments,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// process applies one event and decides its new status. ok=false means the
// event was interrupted by shutdown and stays as it was.
func (e *Engine) process(ctx context.Context, plans *batchPlans, twin *store.Twin, ev *store.SyncEvent) (result, bool) {
	if e.skipQuarantined(ctx, plans, ev.ConnectionID) {
		return result{}, false // quarantined while the batch ran: stays queued
	}
	var logs []string
	var read store.Twin // the twin as read before applying
	if twin != nil {
		read = *twin
	}
	out, saved, err := e.apply(ctx, plans, twin, ev, &logs)
	e.noteLimit(ctx, ev.ConnectionID, err) // quarantine.go
	twin = saved
	if err != nil && ctx.Err() != nil && twin == nil {
		return result{}, false
	}
	ev.Attempts++
	ev.TotalAttempts++
	ev.Log = capLog(strings.Join(nonEmpty(ev.Log, logs), "\n"))
	switch {
	case err == nil && out.Action == "skip":
		ev.Status, ev.LastError = store.StatusSkipped, out.Reason
	case err == nil && out.Action == "conflict":
		ev.Status, ev.LastError = store.StatusConflict, out.Reason
	case err == nil:
		ev.Status, ev.LastError = store.StatusDone, ""
	case permanent(err) || ev.Attempts >= e.opts.MaxAttempts:
		ev.Status, ev.LastError = store.StatusFailed, err.Error()
	default:
		ev.Status, ev.LastError = store.StatusQueued, err.Error()
		wait := e.opts.Backoff(ev.Attempts)
		var ra *connectors.RetryAfterError
		if errors.As(err, &ra) && ra.After > wait {
			wait = ra.After // the system said when; never sooner
		}
		ev.NextAttemptAt = e.opts.Now().Add(wait)
	}
	if err != nil { // the ids let an operator go from a log line to the event in the API
		e.log.Warn("sync event failed", "connection", ev.ConnectionID, "twin", ev.TwinID, "event", ev.ID,
			"direction", ev.Direction, "attempts", ev.Attempts, "status", ev.Status, "err", err)
	}
	r := result{ev: ev, twin: twin, out: out}
	if err == nil {
		switch out.Action { // the target's hash, when something was written there
		case "create", "update", "comment", "attach", "delete", "close":
			// Set only if no person's change of the target was taken in
			// since the twin was read (store.WrittenHash).
			dst := ev.Direction.Source().Other()
			r.hashes = append(r.hashes, store.WrittenHash{Side: dst, Hash: twin.Hash(dst),
				WasHash: read.Hash(dst), WasSent: read.Sent(store.DirectionFrom(dst))})
		}
		// The source's state this event carried is accepted: it becomes the
		// source's echo reference (a side's hash is the hash of its base), so
		// content changed away from and back to later is no echo. Recorded
		// only if no newer change of the source was queued meanwhile.
		if snap, err := decodeSnapshot(ev.SourceFields); err == nil && snap != nil && out.Action != "unlink" {
			r.srcHash = snap.hash()
		}
	}
	return r, true
}

// record saves a batch of results in one transaction. The batch's writes
// already reached the other systems, so a transaction that only lost a race
// (on PostgreSQL, a deadlock or serialization failure) is run again rather
// than leaving the batch to be applied twice. Rows are locked in the global
// order (store.lockEvents): the twins by id, then the events by id.
//
// On PostgreSQL an event is recorded only while this process still holds
// its claim. One whose lease lapsed and was taken over by another process
// (this one stalled longer than the lease) is not recorded here at all:
// neither its event nor its twin. The process that took it over applies it
// again and records it once; re-applying is what a restart after a crash
// between the write and its record does (the merge finds the values in
// place, a create is found by its correlation key, a comment by its text),
// while recording it here as well would count it twice and could put this
// process's older copy of the twin over the newer one the other recorded.
func (e *Engine) record(ctx context.Context, results []result) error {
	if len(results) == 0 {
		return nil
	}
	slices.SortStableFunc(results, func(x, y result) int { return cmp.Compare(x.ev.TwinID, y.ev.TwinID) })
	var err error
	for attempt := 1; ; attempt++ {
		var lost bool
		lost, err = e.recordOnce(ctx, &results)
		if lost && err == nil {
			continue // the claim was lost between the check and the write: without it
		}
		if !store.Retryable(err) || attempt == 5 || ctx.Err() != nil {
			return err
		}
		e.log.Warn("recording a batch lost a race with another transaction; again", "attempt", attempt, "err", err)
		time.Sleep(time.Duration(attempt*20) * time.Millisecond)
	}
}

// errClaimLost rolls back a record whose event was taken over meanwhile.
var errClaimLost = errors.New("claim lost")

// recordOnce runs the record transaction. lost=true: an event's claim was
// found lost only at its write; nothing was written, and results no longer
// holds it.
func (e *Engine) recordOnce(ctx context.Context, results *[]result) (lost bool, err error) {
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		rs, err := e.heldOnly(ctx, tx, *results)
		if err != nil {
			return err
		}
		*results = rs
		audits := make([]store.AuditEntry, 0, len(rs))
		// The twins, in id order (rs is sorted by twin id).
		for _, r := range rs {
			if r.ev.Status == store.StatusDone && r.out.Action == "unlink" {
				// The twin goes, and its events with it (foreign key); the
				// audit entry below keeps the record.
				detail, _ := json.Marshal(r.out)
				audits = append(audits, store.AuditEntry{Actor: "engine", Action: "twin.unlink",
					ConnectionID: &r.ev.ConnectionID, Detail: "source deleted: " + string(detail)})
				if _, err := tx.DeleteTwin(ctx, r.ev.TwinID); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				continue
			}
			// Hot path: per event one twin update (with the source's hash
			// when there is one), one event update, and the audit entries
			// of the batch in one insert below.
			var src *store.SourceHash
			if r.srcHash != "" {
				src = &store.SourceHash{Side: r.ev.Direction.Source(), Hash: r.srcHash, Direction: r.ev.Direction, Replica: r.ev.Replica}
			}
			switch {
			case r.twin != nil:
				if err := tx.SaveTwinWithSource(ctx, r.twin, r.hashes, src); err != nil {
					return err
				}
			case src != nil:
				if err := tx.SetSourceHash(ctx, r.ev.TwinID, src.Side, src.Hash, src.Direction, src.Replica); err != nil {
					return err
				}
			}
		}
		// Then the events, in id order.
		byEvent := slices.Clone(rs)
		slices.SortFunc(byEvent, func(x, y result) int { return cmp.Compare(x.ev.ID, y.ev.ID) })
		for _, r := range byEvent {
			if r.ev.Status == store.StatusDone && r.out.Action == "unlink" {
				continue // deleted with its twin
			}
			held, err := tx.SaveClaimedEvent(ctx, r.ev, e.opts.ProcessID)
			if err != nil {
				return err
			}
			if !held {
				lost = true
				*results = slices.DeleteFunc(slices.Clone(rs), func(x result) bool { return x.ev.ID == r.ev.ID })
				e.log.Warn("an event's claim was taken over before its batch was recorded; not recorded here, the process holding it applies it again",
					"process", e.opts.ProcessID, "event", r.ev.ID, "twin", r.ev.TwinID)
				return errClaimLost
			}
			if r.ev.Status == store.StatusFailed || r.ev.Status == store.StatusQueued {
				continue
			}
			detail, _ := json.Marshal(r.out)
			audits = append(audits, store.AuditEntry{Actor: "engine", Action: "sync." + r.out.Action,
				ConnectionID: &r.ev.ConnectionID, TwinID: &r.ev.TwinID, EventID: &r.ev.ID, Detail: string(detail)})
		}
		if err := e.settleIntents(ctx, tx, rs); err != nil { // intent.go
			return err
		}
		return tx.AddAudits(ctx, audits)
	})
	if errors.Is(err, errClaimLost) {
		return true, nil
	}
	return false, err
}

// heldOnly drops the results whose event this process no longer claims
// (see record), logging them.
func (e *Engine) heldOnly(ctx context.Context, tx *store.Store, rs []result) ([]result, error) {
	ids := make([]int64, len(rs))
	for i := range rs {
		ids[i] = rs[i].ev.ID
	}
	lost, err := tx.LostClaims(ctx, ids, e.opts.ProcessID)
	if err != nil || len(lost) == 0 {
		return rs, err
	}
	e.claims.lost.Add(int64(len(lost)))
	e.log.Warn("events' claims were taken over before their batch was recorded; not recorded here, the process holding them applies them again",
		"process", e.opts.ProcessID, "events", len(lost))
	return slices.DeleteFunc(slices.Clone(rs), func(r result) bool { return lost[r.ev.ID] }), nil
}

func nonEmpty(first string, rest []string) []string {
	out := make([]string, 0, len(rest)+1)
	if first != "" {
		out = append(out, first)
	}
	for _, s := range rest {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// permanent reports errors a retry cannot fix: the script or the data is
// wrong. Those wait in the error list for a person.
func permanent(err error) bool {
	var se *scripting.Error
	return errors.As(err, &se) || errors.Is(err, connectors.ErrInvalid) ||
		errors.Is(err, connectors.ErrNotFound) || errors.Is(err, connectors.ErrBadConfig) ||
		errors.Is(err, connectors.ErrRefused) || errors.Is(err, errConfig)
}

var errConfig = errors.New("connection cannot run")

// RuleError is an event refused by validation rules of its target side. It
// unwraps to connectors.ErrInvalid: the event fails without retries (a data
// problem, not a transient one) and waits in the error list.
type RuleError struct {
	Failed []scripting.RuleResult
}

func (e *RuleError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, r := range e.Failed {
		parts[i] = r.String()
	}
	return "validation failed: " + strings.Join(parts, "; ")
}

func (e *RuleError) Unwrap() error { return connectors.ErrInvalid }

// checkRules checks a replica against a side's rules; the error names each
// failed rule with its field, kind, value and message.
func checkRules(ctx context.Context, x Scripts, rules *scripting.Rules, replica map[string]any, meta scripting.Meta) error {
	if rules.Len() == 0 {
		return nil
	}
	res, err := x.Check(ctx, rules, replica, meta)
	if err != nil {
		return err
	}
	if failed := scripting.Failed(res); len(failed) > 0 {
		return &RuleError{Failed: failed}
	}
	return nil
}

// apply runs the incoming script and writes the minimal change to the target
// system. The twin it returns (when not nil) must be saved with the event.
func (e *Engine) apply(ctx context.Context, plans *batchPlans, tw *store.Twin, ev *store.SyncEvent, logs *[]string) (outcome, *store.Twin, error) {
	p, err := plans.get(ctx, e, ev.ConnectionID)
	if err != nil {
		return outcome{}, nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	src := ev.Direction.Source()
	dst := src.Other()
	if tw == nil {
		return outcome{}, nil, fmt.Errorf("%w: twin %d is gone", errConfig, ev.TwinID)
	}
	twin := *tw // a copy: only a successful apply's twin is saved
	// The other side is another deployment (a peer link): the replica
	// goes to the link's outbox, and that deployment runs its own
	// incoming script (engine/peer.go).
	if link, err := e.peerLinkOf(ctx, p.conn.SystemID(dst)); err != nil {
		return outcome{}, nil, err
	} else if link != nil {
		return e.sendToPeer(ctx, p, link, &twin, ev, dst, logs)
	}
	if ev.Action == actionDelete {
		return e.applyDelete(ctx, p, &twin, dst)
	}
	replica, err := e.replicaOf(ctx, p, ev, &twin, logs)
	if err != nil {
		return outcome{}, nil, err
	}
	// The target side's validation rules, before anything is read from or
	// written to it: a replica that breaks one fails the event for good (a
	// data problem, not a transient one).
	meta := scripting.Meta{Connection: p.conn.Name, Side: string(dst), Timeout: p.options.scriptTimeout()}
	if err := checkRules(ctx, e.opts.Runner, p.sides[dst].rules, replica, meta); err != nil {
		return outcome{}, nil, err
	}
	previous, err := decodeObject(ev.Previous)
	if err != nil {
		return outcome{}, nil, fmt.Errorf("previous replica: %w", err)
	}
	target, err := e.system(ctx, p.conn.SystemID(dst))
	if err != nil {
		return outcome{}, nil, err
	}
	targetID := twin.EntityID(dst)
	// Unique rules look the value up in the target (its own counterpart
	// aside), still before anything is written.
	if uniq, err := uniqueResults(ctx, e.opts.Runner, meta, p.sides[dst].rules, target, targetID, correlationKey(p.conn.ID, twin.ID), replica); err != nil {
		return outcome{}, nil, err
	} else if failed := scripting.Failed(uniq); len(failed) > 0 {
		return outcome{}, nil, &RuleError{Failed: failed}
	}
	first := targetID == ""
	// A create whose record a crash lost is completed, not taken for an
	// update of an entity that was there (intent.go).
	resumed, err := e.pendingCreate(ctx, &twin, dst)
	if err != nil {
		return outcome{}, nil, err
	}
	first = first || resumed != nil
	var local connectors.Entity
	if !first {
		if local, err = target.conn.Get(ctx, targetID); err != nil {
			return outcome{}, nil, fmt.Errorf("read %s entity %s: %w", dst, targetID, err)
		}
	}
	base := snapshot{F: map[string]any{}}
	if b, err := decodeSnapshot(twin.Base(dst)); err != nil {
		return outcome{}, nil, fmt.Errorf("twin base: %w", err)
	} else if b != nil {
		base = *b
	}
	in := map[string]any{}
	if !first {
		in = scriptEntity(local)
	}
	res, err := e.opts.Runner.Incoming(ctx, p.sides[dst].incoming, replica, previous, in,
		scripting.Meta{Connection: p.conn.Name, Side: string(dst), FirstSync: first, Timeout: p.options.scriptTimeout()})
	*logs = append(*logs, res.Log...)
	if err != nil {
		return outcome{}, nil, err
	}
	if res.Skipped {
		return outcome{Action: "skip", Reason: "skipped by script: " + res.SkipReason}, nil, nil
	}
	fields, comments, err := splitEntity(res.Entity)
	if err != nil {
		return outcome{}, nil, fmt.Errorf("%w: incoming script result: %w", connectors.ErrInvalid, err)
	}
	if err := checkPatch(&twin, src, local, fields, comments, replica); err != nil { // patchlimit.go
		return outcome{}, nil, err
	}
	files, err := e.planAttachments(ctx, p, ev, &twin, target, local, replica) // attachments.go
	if err != nil {
		return outcome{}, nil, err
	}
	out := outcome{Action: "none"}
	changes := fields
	found := false
	// Fields the target already has as the source wants them: the sides
	// agree, so that is their base now. This matters after a write whose
	// answer was lost (or a crash before its record): the retry finds the
	// value in place and writes nothing, and without this the base would
	// keep the old value and Duplex's own write would look like a person's
	// edit, turning the next change of the field into a false conflict.
	var agreed map[string]any
	if !first {
		agreed = e.agreedFields(ctx, p, dst, replica, previous, local, base, fields)
		var conflicts []Conflict
		if changes, conflicts, err = e.mergeFor(ctx, p, ev, &twin, dst, local, fields); err != nil {
			return out, nil, err
		}
		changes = leftToApply(ev, targetID, changes, fields, local.Fields, base.F) // partial.go
		if len(conflicts) > 0 {
			enc, _ := json.Marshal(conflicts)
			s := string(enc)
			ev.Conflicts = &s
			return outcome{Action: "conflict", Reason: plural.Of(int64(len(conflicts)), "field") + " changed on both sides"}, nil, nil
		}
	} else {
		changes = patch(nil, fields)
	}
	add, _ := newComments(loadLinks(&twin), src, local, comments, replicaCommentIDs(replica))
	intent, err := e.recordIntent(ctx, p, &twin, ev, dst, write{first: first, resumed: resumed, key: correlationKey(p.conn.ID, twin.ID),
		base: base, agreed: agreed, changes: changes, add: add, files: files.count()})
	if err != nil {
		return out, nil, err
	}
	if first {
		// The twin (our intent) exists since intake. A connector that can
		// correlate tags the entity with the twin's key, and a retry after a
		// crash between the create and saving the twin finds it instead of
		// creating a second one.
		if local, found, err = e.createOrResume(ctx, target.conn, correlationKey(p.conn.ID, twin.ID), changes, resumed); err != nil {
			return out, e.partialCreate(ctx, ev, &twin, dst, local, changes, err), fmt.Errorf("create on %s: %w", dst, err)
		}
		// Found (a retry after a crash between the create and this record):
		// the create carried these fields already. Writing them again would
		// undo what a person changed on the new entity since; instead its
		// base below is the entity as created, so such a change is seen as
		// a change on the next read and flows back.
		twin.SetEntityID(dst, local.ID)
		// Saved at once, not with the batch: side b's poller could otherwise
		// take the new entity for a person's and make a second twin for it.
		if err := e.noteCreated(ctx, intent, &twin, dst, local, changes, found); err != nil { // the rest comes with the result
			return out, nil, err
		}
		out.Action, out.Patch = "create", changes
		e.ackToPeer(ctx, p, src, ev, local) // engine/peer.go: when the source is a peer link
	} else if len(changes) > 0 {
		if local, err = target.conn.Update(ctx, targetID, changes); err != nil {
			return out, e.partialUpdate(ctx, ev, &twin, dst, base, targetID, changes, err), fmt.Errorf("update %s entity %s: %w", dst, targetID, err)
		}
		out.Action, out.Patch = "update", changes
	}
	out.TargetID = local.ID
	added, err := e.addComments(ctx, target.conn, &twin, src, local, comments, replicaCommentIDs(replica))
	out.Comments = len(added)
	if len(added) > 0 && out.Action == "none" {
		out.Action = "comment"
	}
	if err != nil {
		// Comments already added are linked in twin; save it so a retry skips them.
		return out, &twin, err
	}
	fileIDs, nfiles, err := e.copyAttachments(ctx, files, &twin, local.ID, logs)
	out.Attachments = nfiles
	if nfiles > 0 && out.Action == "none" {
		out.Action = "attach"
	}
	if err != nil {
		return out, &twin, err // files copied are linked in twin, as comments are
	}
	if out.Action == "none" && len(agreed) > 0 {
		if enc, err := base.with(agreed, nil).encode(); err == nil {
			twin.SetBase(dst, enc)
		}
	}
	if out.Action != "none" {
		// The target's new base, and the echo reference, is its old base
		// changed by exactly this write (and by what the sides agree on):
		// never a whole read of the target, which may hold a person's edit
		// not synced yet, and a later poll must see that edit as a change,
		// not as this write's echo.
		written := base.with(agreed, nil).with(out.Patch, added)
		if first {
			written = snapshotOf(local).with(nil, added)
			if found {
				written = asCreated(local, changes, loadLinks(&twin), dst).with(nil, added)
			}
		}
		written.A = append(written.A, fileIDs...)
		twin.SetHash(dst, written.hash())
		if first && p.options.SyncBackOnCreate {
			twin.SetHash(dst, "") // no echo reference: the first read goes back (the base stays for merges)
		}
		twin.SetWrittenAt(dst, e.opts.Now())
		if enc, err := written.encode(); err == nil {
			twin.SetBase(dst, enc)
		}
	}
	// The source's state as queued is now in sync: it is the source's base
	// for the next change coming the other way (but for fields its script
	// does not carry, see sourceBase), and its echo reference is the hash of
	// that whole state (set when the batch is recorded), so content a person
	// changed away from and back to later is not taken for an echo.
	if ev.SourceFields != nil {
		twin.SetBase(src, e.sourceBase(ctx, p, src, ev.SourceID, twin.Base(src), *ev.SourceFields))
	}
	return out, &twin, nil
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
		if lv, ok := local.Fields[k]; ok && mustCanonical(lv) == mustCanonical(v) && mustCanonical(base.F[k]) != mustCanonical(v) {
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
		scripting.Meta{Connection: p.conn.Name, Side: string(dst), Timeout: p.options.scriptTimeout()})
	if err != nil || res.Skipped {
		return nil
	}
	out, _, err := splitEntity(res.Entity)
	if err != nil {
		return nil
	}
	agreed := map[string]any{}
	for _, k := range cands {
		if mustCanonical(out[k]) == mustCanonical(desired[k]) {
			agreed[k] = desired[k]
		}
	}
	return agreed
}

// sourceBase is the source's new base once its change reached the other
// side: its state as queued, except the fields whose change its outgoing
// script does not carry (the replica comes out the same with the old
// value). Those keep their old base value: such an edit (an engineer's
// rename of a field only the other side writes) was not synced, and the
// next merge the other way must still see it as this side's own change,
// not overwrite it. One script run, plus one per field that changed; if a
// run fails, the whole queued state is taken, as before.
func (e *Engine) sourceBase(ctx context.Context, p *plan, src store.Side, id string, oldBase *string, queued string) string {
	old, err := decodeSnapshot(oldBase)
	if err != nil || old == nil {
		return queued
	}
	cur, err := decodeSnapshot(&queued)
	if err != nil || cur == nil {
		return queued
	}
	var changed []string
	for k, v := range cur.F {
		if a, b := mustCanonical(v), mustCanonical(old.F[k]); a != b {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return queued
	}
	run := func(fields map[string]any) (string, bool) {
		res, err := e.opts.Runner.Outgoing(ctx, p.sides[src].outgoing, scriptEntity(connectors.Entity{ID: id, Fields: fields}), nil,
			scripting.Meta{Connection: p.conn.Name, Side: string(src), Timeout: p.options.scriptTimeout()})
		if err != nil {
			return "", false
		}
		enc, err := canonical(res.Replica)
		return enc, err == nil
	}
	ref, ok := run(cur.F)
	if !ok {
		return queued
	}
	keep, probe := maps.Clone(cur.F), maps.Clone(cur.F)
	for _, k := range changed {
		ov, had := old.F[k]
		setOrDelete(probe, k, ov, had)
		if r, ok := run(probe); ok && r == ref {
			setOrDelete(keep, k, ov, had) // not carried: the old base value stays
		}
		probe[k] = cur.F[k]
	}
	enc, err := snapshot{F: keep, C: cur.C, A: cur.A}.encode()
	if err != nil {
		return queued
	}
	return enc
}

func setOrDelete(m map[string]any, k string, v any, set bool) {
	if set {
		m[k] = v
	} else {
		delete(m, k)
	}
}

func mustCanonical(v any) string {
	s, err := canonical(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return s
}

// applyDelete carries out the connection's delete policy for a twin whose
// source entity was deleted.
func (e *Engine) applyDelete(ctx context.Context, p *plan, twin *store.Twin, dst store.Side) (outcome, *store.Twin, error) {
	targetID := twin.EntityID(dst)
	if targetID == "" || p.options.OnDelete == "unlink" {
		return outcome{Action: "unlink", TargetID: targetID}, twin, nil
	}
	target, err := e.system(ctx, p.conn.SystemID(dst))
	if err != nil {
		return outcome{}, nil, err
	}
	switch p.options.OnDelete {
	case "delete":
		d, ok := target.conn.(connectors.Deleter)
		if !ok {
			return outcome{}, nil, fmt.Errorf("%w: the %s connector cannot delete", connectors.ErrInvalid, dst)
		}
		if err := d.Delete(ctx, targetID); err != nil && !errors.Is(err, connectors.ErrNotFound) {
			return outcome{}, nil, fmt.Errorf("delete %s entity %s: %w", dst, targetID, err)
		}
		twin.SetHash(dst, deletedHash)
		return outcome{Action: "delete", TargetID: targetID}, twin, nil
	default: // close
		fields := p.options.Close[string(dst)]
		if len(fields) == 0 {
			return outcome{Action: "none", TargetID: targetID, Reason: "no close fields for side " + string(dst)}, twin, nil
		}
		if _, err := target.conn.Update(ctx, targetID, fields); err != nil {
			return outcome{}, nil, fmt.Errorf("close %s entity %s: %w", dst, targetID, err)
		}
		base := snapshot{F: map[string]any{}}
		if b, err := decodeSnapshot(twin.Base(dst)); err == nil && b != nil {
			base = *b
		}
		written := base.with(fields, nil)
		twin.SetHash(dst, written.hash())
		if enc, err := written.encode(); err == nil {
			twin.SetBase(dst, enc)
		}
		return outcome{Action: "close", TargetID: targetID, Patch: fields}, twin, nil
	}
}

// correlationKey names what Duplex creates for a twin, stable across retries.
func correlationKey(connID, twinID int64) string {
	return fmt.Sprintf("duplex:%d:%d", connID, twinID)
}

// create makes the counterpart of a new twin, or finds the one an earlier,
// interrupted attempt made (found=true).
func (e *Engine) create(ctx context.Context, conn connectors.Connector, key string, fields map[string]any) (connectors.Entity, bool, error) {
	cc, ok := conn.(connectors.Correlating)
	if !ok {
		ent, err := conn.Create(ctx, fields)
		return ent, false, err
	}
	ent, found, err := cc.FindCorrelated(ctx, key)
	if err != nil || found {
		return ent, found, err
	}
	ent, err = cc.CreateCorrelated(ctx, key, fields)
	return ent, false, err
}

// mergeFor runs the field-level merge of an update: it reruns the incoming
// script on the previous replica to learn which target fields the source
// actually changed, then compares with the target's base.
func (e *Engine) mergeFor(ctx context.Context, p *plan, ev *store.SyncEvent, twin *store.Twin, dst store.Side,
	local connectors.Entity, desired map[string]any) (map[string]any, []Conflict, error) {
	policy, err := ParsePolicy(p.conn.ConflictPolicy)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	mi := mergeInput{desired: desired, local: local.Fields, policy: policy, src: dst.Other(), localTime: local.UpdatedAt}
	if ev.SourceUpdatedAt != nil {
		mi.srcTime = *ev.SourceUpdatedAt
	}
	if b, err := decodeSnapshot(twin.Base(dst)); err != nil {
		return nil, nil, fmt.Errorf("twin base: %w", err)
	} else if b != nil {
		mi.base = b.F
	}
	if ev.Resolution != nil && *ev.Resolution != "" {
		if err := json.Unmarshal([]byte(*ev.Resolution), &mi.resolution); err != nil {
			return nil, nil, fmt.Errorf("%w: conflict resolution: %w", connectors.ErrInvalid, err)
		}
	}
	if prev, err := decodeObject(ev.Previous); err == nil && prev != nil {
		// The script sees a fresh copy of the local entity: the first run
		// must not leak into the second.
		again := scriptEntity(local)
		res, err := e.opts.Runner.Incoming(ctx, p.sides[dst].incoming, prev, nil, again,
			scripting.Meta{Connection: p.conn.Name, Side: string(dst), Timeout: p.options.scriptTimeout()})
		if err == nil && !res.Skipped {
			if f, _, err := splitEntity(res.Entity); err == nil {
				mi.prevDesired = f
			}
		}
	}
	patch, conflicts := merge(mi)
	return patch, conflicts, nil
}

// replicaOf returns the event's replica. An event whose outgoing script
// failed at intake has none: on retry the source entity is read again and the
// (possibly fixed) script rerun.
func (e *Engine) replicaOf(ctx context.Context, p *plan, ev *store.SyncEvent, twin *store.Twin, logs *[]string) (map[string]any, error) {
	src := ev.Direction.Source()
	// Duplex wrote to the source after this event was queued (the other
	// direction's event, maybe settling a conflict against it): the queued
	// replica is stale, so read the source again instead of sending it.
	stale := twin.WrittenAt(src) != nil && twin.WrittenAt(src).After(ev.CreatedAt)
	if ev.Replica != "" && !stale {
		m, err := decodeObject(&ev.Replica)
		if err != nil {
			return nil, fmt.Errorf("%w: stored replica: %w", connectors.ErrInvalid, err)
		}
		if m == nil {
			m = map[string]any{}
		}
		return m, nil
	}
	sys, err := e.system(ctx, p.conn.SystemID(src))
	if err != nil {
		return nil, err
	}
	ent, err := sys.conn.Get(ctx, ev.SourceID)
	if err != nil {
		return nil, fmt.Errorf("read %s entity %s: %w", src, ev.SourceID, err)
	}
	previous, err := decodeObject(twin.Sent(ev.Direction))
	if err != nil {
		return nil, err
	}
	out, err := e.opts.Runner.Outgoing(ctx, p.sides[src].outgoing, scriptEntity(ent), previous,
		scripting.Meta{Connection: p.conn.Name, Side: string(src), FirstSync: twin.EntityID(src.Other()) == "", Timeout: p.options.scriptTimeout()})
	*logs = append(*logs, out.Log...)
	if err != nil {
		return nil, err
	}
	enc, err := canonical(out.Replica)
	if err != nil {
		return nil, fmt.Errorf("%w: replica is not JSON: %w", connectors.ErrInvalid, err)
	}
	if len(enc) > maxReplicaBytes {
		return nil, fmt.Errorf("%w: %s: the replica is %d bytes, over the %d byte limit", connectors.ErrInvalid, p.sides[src].outgoing.Name(), len(enc), maxReplicaBytes)
	}
	ev.Replica = enc
	if f, err := snapshotOf(ent).encode(); err == nil {
		ev.SourceFields = &f
	}
	at := ent.UpdatedAt
	ev.SourceUpdatedAt = &at
	if err := e.st.SetSent(ctx, twin.ID, ev.Direction, enc); err != nil {
		return nil, err
	}
	return decodeObject(&enc) // the same JSON round trip a queued replica takes
}

// asCreated is a found entity as Duplex created it: its fields with the
// create's values over them, and of its comments only those Duplex put
// there (linked), so what a person changed or added since is not taken for
// Duplex's own echo.
func asCreated(local connectors.Entity, sent map[string]any, links commentLinks, side store.Side) snapshot {
	ours := map[string]bool{}
	for k, v := range links {
		for _, ref := range []string{k, v} {
			if id, ok := strings.CutPrefix(ref, string(side)+":"); ok {
				ours[id] = true
			}
		}
	}
	snap := snapshot{F: local.Fields}
	for _, c := range local.Comments {
		if ours[c.ID] {
			snap.C = append(snap.C, c.ID)
		}
	}
	for _, a := range local.Attachments {
		if linkedFile(links, side, a.ID) {
			snap.A = append(snap.A, a.ID)
		}
	}
	return snap.with(sent, nil)
}

// commentLinks is the twin's record of which comment on one side is which on
// the other: "a:5" → "b:12" in the direction the comment was copied.
type commentLinks map[string]string

func loadLinks(t *store.Twin) commentLinks {
	l := commentLinks{}
	if t.CommentLinks != "" {
		_ = json.Unmarshal([]byte(t.CommentLinks), &l)
	}
	return l
}

func (l commentLinks) save(t *store.Twin) {
	b, _ := json.Marshal(l)
	t.CommentLinks = string(b)
}

// newComments returns the comments of want that the target does not have
// yet. srcIDs are the ids of the comments in the replica: an entry with such
// an id came from the source, others are the target's own or new text.
//   - a source comment already linked (copied earlier, either way) is there;
//   - a source comment whose exact text the target has is there too: a crash
//     came between adding it and recording the link, and relink returns the
//     link to record instead of adding it twice;
//   - a target comment left as it was, or a comment without id whose text
//     exists, is there.
func newComments(links commentLinks, src store.Side, local connectors.Entity, want []connectors.Comment, srcIDs map[string]bool) (add []connectors.Comment, relink commentLinks) {
	if len(want) == 0 {
		return nil, nil
	}
	linked := make(map[string]bool, 2*len(links))
	for k, v := range links {
		linked[k], linked[v] = true, true
	}
	own := make(map[string]string, len(local.Comments))
	byBody := make(map[string]string, len(local.Comments))
	for _, c := range local.Comments {
		own[c.ID] = c.Body
		byBody[c.Body] = c.ID
	}
	dst := src.Other()
	relink = commentLinks{}
	for _, c := range want {
		if c.ID != "" && srcIDs[c.ID] {
			if linked[string(src)+":"+c.ID] {
				continue
			}
			if id, ok := byBody[c.Body]; ok && id != "" && !linked[string(dst)+":"+id] {
				relink[string(src)+":"+c.ID] = string(dst) + ":" + id
				linked[string(dst)+":"+id] = true
				continue
			}
		} else if body, ok := own[c.ID]; ok && body == c.Body {
			continue
		} else if _, ok := byBody[c.Body]; ok && c.ID == "" {
			continue
		}
		byBody[c.Body] = ""
		add = append(add, c)
	}
	return add, relink
}

// replicaCommentIDs lists the ids of the comments a replica carries.
func replicaCommentIDs(replica map[string]any) map[string]bool {
	list, _ := replica["comments"].([]any)
	out := make(map[string]bool, len(list))
	for _, item := range list {
		if m, ok := item.(map[string]any); ok {
			if id := str(m["id"]); id != "" {
				out[id] = true
			}
		}
	}
	return out
}

// addComments creates the new comments on the target and links each to the
// comment it came from, so it is never copied again in either direction.
func (e *Engine) addComments(ctx context.Context, conn connectors.Connector, twin *store.Twin, src store.Side, local connectors.Entity, want []connectors.Comment, srcIDs map[string]bool) ([]connectors.Comment, error) {
	links := loadLinks(twin)
	add, relink := newComments(links, src, local, want, srcIDs)
	for k, v := range relink {
		links[k] = v
	}
	if len(add) == 0 {
		if len(relink) > 0 {
			links.save(twin)
		}
		return nil, nil
	}
	dst := src.Other()
	defer links.save(twin) // also after a failure, so a retry skips what was added
	added := make([]connectors.Comment, 0, len(add))
	for _, c := range add {
		nc, err := conn.AddComment(ctx, local.ID, connectors.Comment{Author: c.Author, Body: c.Body, Private: c.Private})
		if err != nil {
			return added, fmt.Errorf("add comment on %s entity %s: %w", dst, local.ID, err)
		}
		added = append(added, nc)
		if c.ID != "" {
			links[string(src)+":"+c.ID] = string(dst) + ":" + nc.ID
		}
	}
	return added, nil
}

// capLog keeps the newest part of an event's log (retries append to it).
func capLog(s string) string {
	const max = 64 << 10
	if len(s) <= max {
		return s
	}
	return "…" + s[len(s)-max:]
}
