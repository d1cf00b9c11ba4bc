package engine

import (
	"context"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// replayer runs one entity's stored change through the saved and the draft
// plans of a direction ([source side, target side]).
type replayer struct {
	r            Scripts
	p            *plan
	src          store.Side
	saved, draft [2]*sidePlan
	needsSource  bool // the draft changes the trigger or the outgoing script
}

// replayInput is what the store holds of one change.
type replayInput struct {
	entity   connectors.Entity  // the source as queued (needsSource)
	replica  map[string]any     // the replica sent (!needsSource)
	previous map[string]any     // the replica sent before it
	target   *connectors.Entity // the target as of the last sync (the twin's base); nil: none
	links    commentLinks
}

func (rp *replayer) replay(ctx context.Context, ev store.SyncEvent, twin *store.Twin) ImpactEntity {
	ent := ImpactEntity{EntityID: ev.SourceID, EventID: ev.ID, TwinID: ev.TwinID, Outcome: ImpactUnchanged}
	if twin == nil {
		ent.Outcome, ent.Reason = ImpactNotReplayable, "the pair was unlinked since"
		return ent
	}
	ent.TargetID = twin.EntityID(rp.src.Other())
	in, reason := rp.input(ev, twin)
	if reason != "" {
		ent.Outcome, ent.Reason = ImpactNotReplayable, reason
		return ent
	}
	before, after := rp.runs(ctx, ev, in, &ent)
	compareRuns(&ent, before, after, in.target)
	return ent
}

// input rebuilds a change's inputs from the store, or says why it cannot.
func (rp *replayer) input(ev store.SyncEvent, twin *store.Twin) (replayInput, string) {
	var in replayInput
	var err error
	if in.previous, err = decodeObject(ev.Previous); err != nil {
		return in, "the previous replica is not readable: " + err.Error()
	}
	dst := rp.src.Other()
	if id := twin.EntityID(dst); id != "" {
		base, err := decodeSnapshot(twin.Base(dst))
		if err != nil {
			return in, "the target's base is not readable: " + err.Error()
		}
		fields := map[string]any{}
		if base != nil {
			fields = base.F
		}
		in.target = &connectors.Entity{ID: id, Fields: fields}
	}
	in.links = loadLinks(twin)
	if !rp.needsSource {
		if in.replica, err = decodeObject(&ev.Replica); err != nil {
			return in, "the replica sent is not readable: " + err.Error()
		}
		if in.replica == nil {
			in.replica = map[string]any{}
		}
		return in, ""
	}
	snap, err := decodeSnapshot(ev.SourceFields)
	if err != nil || snap == nil {
		return in, "the source entity as of this change is not stored (only the replica sent is)"
	}
	in.entity = connectors.Entity{ID: ev.SourceID, Fields: snap.F}
	if ev.SourceUpdatedAt != nil {
		in.entity.UpdatedAt = *ev.SourceUpdatedAt
	}
	return in, ""
}

// runs replays the inputs through the saved plan (before) and the draft
// (after).
func (rp *replayer) runs(ctx context.Context, ev store.SyncEvent, in replayInput, ent *ImpactEntity) (before, after TestRunResult) {
	before = TestRunResult{Side: rp.src, Linked: true, Log: []string{}}
	after = TestRunResult{Side: rp.src, Linked: true, Log: []string{}}
	run := rp.p.runMeta()
	if !rp.needsSource {
		before.Replica, after.Replica = in.replica, in.replica
		simulateIncoming(ctx, rp.r, run, rp.saved[1], rp.src, in.replica, in.previous, in.target, in.links, &before)
		simulateIncoming(ctx, rp.r, run, rp.draft[1], rp.src, in.replica, in.previous, in.target, in.links, &after)
		return before, after
	}
	okBefore := simulateOutgoing(ctx, rp.r, run, rp.saved[0], rp.src, in.entity, in.target, in.previous, &before)
	okAfter := simulateOutgoing(ctx, rp.r, run, rp.draft[0], rp.src, in.entity, in.target, in.previous, &after)
	if !okBefore {
		return before, after
	}
	var draft map[string]any
	if okAfter {
		draft = after.Replica
	}
	ent.Inexact = alignReplicas(ev.Replica, before.Replica, draft)
	simulateIncoming(ctx, rp.r, run, rp.saved[1], rp.src, before.Replica, in.previous, in.target, in.links, &before)
	if okAfter {
		simulateIncoming(ctx, rp.r, run, rp.draft[1], rp.src, after.Replica, in.previous, in.target, in.links, &after)
	}
	return before, after
}

// alignReplicas compares the saved version's replayed replica with the one
// that was sent. Where they differ, the stored input lacks something the
// script reads (the entity's key, comment texts: the event keeps the source's
// fields and comment ids only) or the saved script changed since. There the
// value sent is used for the saved replay, and for the draft's too when the
// draft computes the same value as the saved version; the keys are returned
// so the entity is marked approximate.
func alignReplicas(sentJSON string, saved, draft map[string]any) []string {
	sent, err := decodeObject(&sentJSON)
	if err != nil || saved == nil {
		return nil
	}
	var keys []string
	for _, k := range sortedKeys(sent, saved) {
		was := mustCanonical(saved[k])
		if was == mustCanonical(sent[k]) {
			continue
		}
		keys = append(keys, k)
		if draft != nil && mustCanonical(draft[k]) == was {
			v, ok := sent[k]
			setOrDelete(draft, k, v, ok)
		}
		v, ok := sent[k]
		setOrDelete(saved, k, v, ok)
	}
	return keys
}

// compareRuns fills ent from the saved (before) and draft (after) runs.
func compareRuns(ent *ImpactEntity, before, after TestRunResult, target *connectors.Entity) {
	if after.Error != nil {
		if before.Error != nil && before.Error.Error() == after.Error.Error() {
			ent.Reason = "fails the same way with the saved version: " + after.Error.Error()
			return
		}
		ent.Outcome, ent.Stage = ImpactWouldFail, after.Stage
		setError(ent, after.Error)
		return
	}
	if before.Error != nil {
		ent.Outcome, ent.Reason = ImpactNowSucceeds, "fails with the saved version: "+before.Error.Error()
		return
	}
	ent.Replica = impactDiff(before.Replica, after.Replica, nil)
	var have map[string]any
	if target != nil {
		have = target.Fields
	}
	ent.Patch = impactDiff(before.Patch, after.Patch, have)
	switch {
	case before.Matched && !after.Matched:
		ent.Outcome = ImpactStopsSyncing
	case !before.Matched && after.Matched:
		ent.Outcome = ImpactStartsSyncing
	case after.Invalid && !before.Invalid:
		ent.Outcome, ent.Rules = ImpactValidationFails, scripting.Failed(after.Rules)
	case before.Skipped != after.Skipped:
		ent.Outcome = ImpactPatchDiffers
		ent.Reason = skipReason(after)
	case len(ent.Patch) > 0:
		ent.Outcome = ImpactPatchDiffers
	case len(ent.Replica) > 0:
		ent.Outcome = ImpactReplicaDiffers
	}
}

func skipReason(after TestRunResult) string {
	if after.Skipped {
		return "the draft skips it: " + after.SkipReason
	}
	return "the saved version skips it; the draft writes it"
}

// impactDiff lists the keys whose values differ between old and new; a key
// missing from one of them has its value in fallback (the target's field,
// which a patch leaves as it is), or nil.
func impactDiff(old, new, fallback map[string]any) map[string]FieldChange {
	var out map[string]FieldChange
	for _, k := range sortedKeys(old, new) {
		o, ok := old[k]
		if !ok {
			o = fallback[k]
		}
		n, ok := new[k]
		if !ok {
			n = fallback[k]
		}
		if mustCanonical(o) == mustCanonical(n) {
			continue
		}
		if out == nil {
			out = map[string]FieldChange{}
		}
		out[k] = FieldChange{Old: o, New: n}
	}
	return out
}
