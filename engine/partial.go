package engine

import (
	"context"
	"encoding/json"
	"maps"
	"slices"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

// A write the target took only in part (connectors.PartialError: Redmine
// saves an update's other fields and refuses a status move its workflow
// does not allow) leaves the event failed with part of it applied. The
// event records which fields were saved and which refused (sync_events.
// partial, shown in the app), the target's base moves by the saved ones,
// and a retry sends only what is left: a saved field is not written again,
// so a person's edit of it since the refusal stands.

// partialApply is SyncEvent.Partial.
type partialApply struct {
	TargetID string   `json:"target_id"`
	Applied  []string `json:"applied"` // over every attempt of the event
	Refused  []string `json:"refused"` // by the last refused attempt
}

func readPartial(ev *store.SyncEvent) (partialApply, bool) {
	var p partialApply
	if ev.Partial == nil || json.Unmarshal([]byte(*ev.Partial), &p) != nil {
		return partialApply{}, false
	}
	return p, true
}

// leftToApply is what an update still has to write after an earlier
// attempt of the event was taken in part by the same target: the merge's
// patch without the fields that attempt saved, and with the ones it
// refused that the target still holds as they were (the merge can leave
// those out: after a create taken in part, the event's previous replica is
// its own, so no field looks changed by the source).
func leftToApply(ev *store.SyncEvent, targetID string, changes, desired, local, base map[string]any) map[string]any {
	p, ok := readPartial(ev)
	if !ok || p.TargetID != targetID {
		return changes
	}
	out := maps.Clone(changes)
	if out == nil {
		out = map[string]any{}
	}
	for _, k := range p.Applied {
		delete(out, k)
	}
	for _, k := range p.Refused {
		v, wanted := desired[k]
		if _, in := out[k]; in || !wanted || sameValue(local[k], v) {
			continue
		}
		if bv, known := base[k]; known && !sameValue(local[k], bv) {
			continue // changed on the target since: the merge decided
		}
		out[k] = v
	}
	return out
}

// partialUpdate handles an update's error: when the target took the write
// in part, it records that on the event and returns the twin to save (its
// base moved by the saved fields); else nil.
func (e *Engine) partialUpdate(ctx context.Context, ev *store.SyncEvent, twin *store.Twin, dst store.Side, base snapshot,
	targetID string, written map[string]any, err error) *store.Twin {
	pe, ok := connectors.Partial(err)
	if !ok {
		return nil
	}
	saved := e.notePartial(ctx, ev, targetID, pe, written)
	if enc, err := base.with(saved, nil).encode(); err == nil {
		twin.SetBase(dst, enc)
	}
	twin.SetWrittenAt(dst, e.opts.Now())
	return twin
}

// partialCreate is partialUpdate for a create: the entity exists, so the
// twin links it at once (a retry updates it instead of finding it by its
// correlation key and taking the refused fields for written), and its base
// is the entity as the target holds it.
func (e *Engine) partialCreate(ctx context.Context, ev *store.SyncEvent, twin *store.Twin, dst store.Side,
	local connectors.Entity, written map[string]any, err error) *store.Twin {
	pe, ok := connectors.Partial(err)
	if !ok || local.ID == "" {
		return nil
	}
	if err := e.st.SetTwinEntityID(ctx, twin.ID, dst, local.ID); err != nil {
		e.log.Error("linking an entity created in part failed", "event", ev.ID, "err", err)
		return nil
	}
	twin.SetEntityID(dst, local.ID)
	e.notePartial(ctx, ev, local.ID, pe, written)
	if enc, err := snapshotOf(local).encode(); err == nil {
		twin.SetBase(dst, enc)
	}
	twin.SetWrittenAt(dst, e.opts.Now())
	return twin
}

// notePartial records a partial write on the event (at once: the batch's
// record of the event leaves the column alone) and returns the fields
// saved, with the values written.
func (e *Engine) notePartial(ctx context.Context, ev *store.SyncEvent, targetID string, pe *connectors.PartialError, written map[string]any) map[string]any {
	p, _ := readPartial(ev)
	if p.TargetID != targetID {
		p = partialApply{TargetID: targetID}
	}
	saved := map[string]any{}
	for _, k := range pe.Applied {
		if v, ok := written[k]; ok {
			saved[k] = v
			if !slices.Contains(p.Applied, k) {
				p.Applied = append(p.Applied, k)
			}
		}
	}
	slices.Sort(p.Applied)
	p.Refused = slices.Sorted(slices.Values(pe.Refused))
	if p.Applied == nil {
		p.Applied = []string{}
	}
	enc, _ := json.Marshal(p)
	s := string(enc)
	ev.Partial = &s
	if err := e.st.SetEventPartial(ctx, ev.ID, s); err != nil {
		e.log.Error("recording a partial write failed", "event", ev.ID, "err", err)
	}
	return saved
}
