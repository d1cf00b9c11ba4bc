package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
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
	evs := make([]*store.SyncEvent, len(due))
	for i := range due {
		evs[i] = &due[i]
	}
	reads := e.readTargets(ctx, plans, twins, evs) // batchread.go
	for i := range due {
		if ctx.Err() != nil {
			break // shutting down: what is not done stays queued as it was
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			slots[i], done[i] = e.process(reads[i].wait(ctx), plans, twins[due[i].TwinID], &due[i])
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

// team is the team of a connection the batch has read (0: not read): the
// audit entries take it, so the record reads no connection. A
// connection's team is set when it is made and never changes.
func (b *batchPlans) team(id int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.m[id]; ok {
		return p.conn.TeamID
	}
	return 0
}

// result is one processed event with what must be saved with it.
type result struct {
	team    int64 // the connection's team, for its audit entries (0: looked up)
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
	var dec decodedSource
	out, saved, err := e.apply(ctx, plans, twin, ev, &logs, &dec)
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
	r := result{ev: ev, twin: twin, out: out, team: plans.team(ev.ConnectionID)}
	if err == nil {
		dst := ev.Direction.Source().Other()
		switch {
		// The target's hash, when something was written there, or when
		// nothing was but settle moved it (Duplex's earlier write found in
		// place: settle.go). Set only if no person's change of the target
		// was taken in since the twin was read (store.WrittenHash).
		case slices.Contains([]string{"create", "update", "comment", "attach", "delete", "close"}, out.Action),
			out.Action == "none" && twin.Hash(dst) != read.Hash(dst):
			r.hashes = append(r.hashes, store.WrittenHash{Side: dst, Hash: twin.Hash(dst),
				WasHash: read.Hash(dst), WasSent: read.Sent(store.DirectionFrom(dst))})
		}
		// The source's state this event carried is accepted: it becomes the
		// source's echo reference (a side's hash is the hash of its base), so
		// content changed away from and back to later is no echo. Recorded
		// only if no newer change of the source was queued meanwhile.
		if snap := dec.source(ev); snap != nil && out.Action != "unlink" {
			r.srcHash = snap.hash()
		}
	}
	return r, true
}

// decodedSource is an event's source state as queued (SourceFields),
// decoded once: apply decodes it for the source's base, process for its
// echo hash.
type decodedSource struct {
	snap *snapshot
	done bool
}

func (d *decodedSource) source(ev *store.SyncEvent) *snapshot {
	if !d.done {
		d.snap, _ = decodeSnapshot(ev.SourceFields)
		d.done = true
	}
	return d.snap
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
		audits, err := recordTwins(ctx, tx, rs)
		if err != nil {
			return err
		}
		byEvent, err := e.recordEvents(ctx, tx, rs, results)
		if err != nil {
			return err
		}
		for _, r := range byEvent {
			if unlinked(r) || r.ev.Status == store.StatusFailed || r.ev.Status == store.StatusQueued {
				continue
			}
			detail, _ := json.Marshal(r.out)
			audits = append(audits, store.AuditEntry{Actor: "engine", Action: "sync." + r.out.Action, TeamID: r.teamID(),
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

// teamID is the audit entry's team: nil when the batch did not read the
// connection (AddAudits looks it up then).
func (r result) teamID() *int64 {
	if r.team == 0 {
		return nil
	}
	t := r.team
	return &t
}

// unlinked: a done event whose source was deleted; its twin goes, and its
// events with it (foreign key).
func unlinked(r result) bool { return r.ev.Status == store.StatusDone && r.out.Action == "unlink" }

// recordTwins saves the batch's twins: locked in id order first (rs is
// sorted by twin id), then the unlinked ones deleted and the rest saved in
// one statement (store.SaveTwins). It returns the unlinks' audit entries.
func recordTwins(ctx context.Context, tx *store.Store, rs []result) ([]store.AuditEntry, error) {
	audits := make([]store.AuditEntry, 0, len(rs))
	lock := make([]int64, len(rs))
	for i, r := range rs {
		lock[i] = r.ev.TwinID
	}
	if err := tx.LockTwins(ctx, lock); err != nil {
		return nil, err
	}
	var saves []store.TwinSave
	for _, r := range rs {
		if unlinked(r) {
			// The audit entry keeps the record of the deleted twin.
			detail, _ := json.Marshal(r.out)
			audits = append(audits, store.AuditEntry{Actor: "engine", Action: "twin.unlink", TeamID: r.teamID(),
				ConnectionID: &r.ev.ConnectionID, Detail: "source deleted: " + string(detail)})
			if _, err := tx.DeleteTwin(ctx, r.ev.TwinID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			continue
		}
		// Hot path: per batch one twin update (each twin with the
		// source's hash when there is one), one event update, and one
		// insert of the audit entries.
		var src *store.SourceHash
		if r.srcHash != "" {
			src = &store.SourceHash{Side: r.ev.Direction.Source(), Hash: r.srcHash, Direction: r.ev.Direction, Replica: r.ev.Replica}
		}
		switch {
		case r.twin != nil:
			saves = append(saves, store.TwinSave{Twin: r.twin, Hashes: r.hashes, Src: src})
		case src != nil:
			if err := tx.SetSourceHash(ctx, r.ev.TwinID, src.Side, src.Hash, src.Direction, src.Replica); err != nil {
				return nil, err
			}
		}
	}
	return audits, tx.SaveTwins(ctx, saves)
}

// recordEvents saves the batch's events in one statement
// (store.SaveClaimedEvents) and returns them in event id order. An event
// whose claim another process took over meanwhile is dropped from results
// and the transaction rolled back (errClaimLost): that process applies it.
func (e *Engine) recordEvents(ctx context.Context, tx *store.Store, rs []result, results *[]result) ([]result, error) {
	byEvent := slices.Clone(rs)
	slices.SortFunc(byEvent, func(x, y result) int { return cmp.Compare(x.ev.ID, y.ev.ID) })
	evs := make([]*store.SyncEvent, 0, len(byEvent))
	for _, r := range byEvent {
		if !unlinked(r) { // an unlinked one went with its twin
			evs = append(evs, r.ev)
		}
	}
	gone, err := tx.SaveClaimedEvents(ctx, evs, e.opts.ProcessID)
	if err != nil {
		return nil, err
	}
	if len(gone) > 0 {
		e.claims.lost.Add(int64(len(gone)))
		*results = slices.DeleteFunc(slices.Clone(rs), func(x result) bool { return slices.Contains(gone, x.ev.ID) })
		e.log.Warn("events' claims were taken over before their batch was recorded; not recorded here, the process holding them applies them again",
			"process", e.opts.ProcessID, "events", gone)
		return nil, errClaimLost
	}
	return byEvent, nil
}

// heldOnly drops the results whose event this process no longer claims
// (see record), logging them.
//
// Only a batch with an unlink reads the claims first: its event goes with
// its twin, so the event update (store.SaveClaimedEvents), which finds
// every other lost claim and rolls the record back, never sees it. One
// round trip less per batch on PostgreSQL.
func (e *Engine) heldOnly(ctx context.Context, tx *store.Store, rs []result) ([]result, error) {
	if !slices.ContainsFunc(rs, unlinked) {
		return rs, nil
	}
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

func setOrDelete(m map[string]any, k string, v any, set bool) {
	if set {
		m[k] = v
	} else {
		delete(m, k)
	}
}

// sameCanonical is mustCanonical(a) == mustCanonical(b), without encoding
// the common field values: two strings or two booleans have equal JSON
// exactly when they are equal (JSON string escaping is one to one).
func sameCanonical(a, b any) bool {
	switch x := a.(type) {
	case nil:
		if b == nil {
			return true
		}
	case string:
		if y, ok := b.(string); ok && (x == y || utf8.ValidString(x) && utf8.ValidString(y)) {
			return x == y // (invalid UTF-8 encodes lossily: compared encoded below)
		}
	case bool:
		if y, ok := b.(bool); ok {
			return x == y
		}
	}
	return mustCanonical(a) == mustCanonical(b)
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
func (e *Engine) applyDelete(ctx context.Context, p *plan, twin *store.Twin, ev *store.SyncEvent, dst store.Side) (outcome, *store.Twin, error) {
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
		if err := e.recordDeleteIntent(ctx, p, twin, ev, dst); err != nil {
			return outcome{}, nil, err
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
		base := snapshot{F: map[string]any{}}
		if b, err := decodeSnapshot(twin.Base(dst)); err == nil && b != nil {
			base = *b
		}
		// Like every write of Duplex's, recorded before it is made: a poll
		// of the target between the close and this event's record would
		// otherwise take the closed entity for a person's change and send
		// it back (the peer link's fault run saw this under load).
		if _, err := e.recordIntent(ctx, p, twin, ev, dst, write{base: base, changes: fields}); err != nil {
			return outcome{}, nil, err
		}
		if _, err := target.conn.Update(ctx, targetID, fields); err != nil {
			return outcome{}, nil, fmt.Errorf("close %s entity %s: %w", dst, targetID, err)
		}
		written := base.with(fields, nil)
		twin.SetHash(dst, written.hash())
		// A page read before the close and taken in after its record holds
		// the entity's older state: readStale (stale.go) reads it again.
		twin.SetWrittenAt(dst, e.opts.Now())
		if enc, err := written.encode(); err == nil {
			twin.SetBase(dst, enc)
		}
		return outcome{Action: "close", TargetID: targetID, Patch: fields}, twin, nil
	}
}

// create makes the counterpart of a new twin, or finds the one an earlier,
// interrupted attempt made (found=true).
func (e *Engine) create(ctx context.Context, conn connectors.Connector, key string, fields map[string]any) (connectors.Entity, bool, error) {
	if bw, ok := conn.(connectors.BatchWriter); ok { // batchwrite.go
		r := e.writes.write(ctx, bw, connectors.Write{Key: key, Fields: fields})
		return r.Entity, r.Found, r.Err
	}
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
	readAt := e.opts.Now()
	ent, err := sys.conn.Get(ctx, ev.SourceID)
	if err != nil {
		return nil, fmt.Errorf("read %s entity %s: %w", src, ev.SourceID, err)
	}
	// The source as of now is what this event applies: the twin's later
	// events of this source, queued from reads before this one, carry older
	// states and must read it again too, or the older state would be
	// applied over this newer one (the cluster kill test ended with an
	// older title this way). WrittenAt(src) is what the staleness check
	// above compares with; the twin is saved with the event's record.
	twin.SetWrittenAt(src, readAt)
	previous, err := decodeObject(twin.Sent(ev.Direction))
	if err != nil {
		return nil, err
	}
	out, err := e.opts.Runner.Outgoing(ctx, p.sides[src].outgoing, scriptEntity(ent), previous,
		scripting.Meta{Connection: p.conn.Name, Key: p.fairKey(), Side: string(src), FirstSync: twin.EntityID(src.Other()) == "", Timeout: p.options.scriptTimeout()})
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
	// Only over the replica the batch read: a change queued since is newer
	// than this read, and its own event sends it (store.SetSentIf).
	if _, err := e.st.SetSentIf(ctx, twin.ID, ev.Direction, enc, twin.Sent(ev.Direction)); err != nil {
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
	if t.CommentLinks != "" && t.CommentLinks != "{}" { // most twins: nothing to decode
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
func (e *Engine) addComments(ctx context.Context, conn connectors.Connector, twin *store.Twin, src store.Side, local connectors.Entity, want []connectors.Comment, srcIDs map[string]bool) (added, relinked []connectors.Comment, err error) {
	links := loadLinks(twin)
	add, relink := newComments(links, src, local, want, srcIDs)
	dst := src.Other()
	for k, v := range relink {
		links[k] = v
		// A comment of Duplex's found in place (its record was lost to a
		// crash): the target's base must hold it, or its echo comes back.
		if id, ok := strings.CutPrefix(v, string(dst)+":"); ok {
			relinked = append(relinked, connectors.Comment{ID: id})
		}
	}
	if len(add) == 0 {
		if len(relink) > 0 {
			links.save(twin)
		}
		return nil, relinked, nil
	}
	defer links.save(twin) // also after a failure, so a retry skips what was added
	added = make([]connectors.Comment, 0, len(add))
	for _, c := range add {
		nc, err := conn.AddComment(ctx, local.ID, connectors.Comment{Author: c.Author, Body: c.Body, Private: c.Private})
		if err != nil {
			return added, relinked, fmt.Errorf("add comment on %s entity %s: %w", dst, local.ID, err)
		}
		added = append(added, nc)
		if c.ID != "" {
			links[string(src)+":"+c.ID] = string(dst) + ":" + nc.ID
		}
	}
	return added, relinked, nil
}

// capLog keeps the newest part of an event's log (retries append to it).
func capLog(s string) string {
	const max = 64 << 10
	if len(s) <= max {
		return s
	}
	return "…" + s[len(s)-max:]
}
