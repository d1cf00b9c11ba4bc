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
	before, after := rp.run(ctx, rp.saved, in), rp.run(ctx, rp.draft, in)
	compareRuns(&ent, before, after, in.target)
	if rp.needsSource && before.Error == nil {
		// The saved version replayed should give the replica that was sent;
		// where it does not, the stored input lacks something the script
		// reads (the entity's key, comment texts) or the script changed since.
		if sent, err := decodeObject(&ev.Replica); err == nil {
			got, _ := decodeObject(ptr(mustCanonical(before.Replica)))
			ent.Inexact = sortedKeys(changesAsAny(impactDiff(sent, got, nil)))
		}
	}
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

// run is a test run of one plan over the inputs.
func (rp *replayer) run(ctx context.Context, sides [2]*sidePlan, in replayInput) TestRunResult {
	res := TestRunResult{Side: rp.src, Linked: true, Log: []string{}}
	timeout := rp.p.options.scriptTimeout()
	if rp.needsSource {
		simulate(ctx, rp.r, rp.p.conn.Name, timeout, sides[0], sides[1], rp.src, in.entity, in.previous, in.target, in.links, &res)
		return res
	}
	res.Replica = in.replica
	simulateIncoming(ctx, rp.r, rp.p.conn.Name, timeout, sides[1], rp.src, in.replica, in.previous, in.target, in.links, &res)
	return res
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

func ptr(s string) *string { return &s }

func changesAsAny(m map[string]FieldChange) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
