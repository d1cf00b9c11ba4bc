package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// ImpactDraft holds the draft versions of one direction's scripts, for the
// impact preview and the test run (TestRunDraft); a nil field keeps the
// saved version. For direction a_to_b, Trigger and Outgoing
// are side a's, Incoming and Rules side b's (the rules check the replica
// before anything is written to the target).
type ImpactDraft struct {
	Trigger  *string `json:"trigger,omitempty"`
	Outgoing *string `json:"outgoing,omitempty"`
	Incoming *string `json:"incoming,omitempty"`
	Rules    *string `json:"rules,omitempty"`
}

// needsSource says whether the draft changes what runs on the source entity
// (so the replay needs the entity as of the change, not just its replica).
func (d ImpactDraft) needsSource() bool { return d.Trigger != nil || d.Outgoing != nil }

// Impact outcomes, one per entity.
const (
	ImpactUnchanged       = "unchanged"
	ImpactReplicaDiffers  = "replica_differs"
	ImpactPatchDiffers    = "patch_differs"
	ImpactWouldFail       = "would_fail"
	ImpactNowSucceeds     = "now_succeeds"
	ImpactStartsSyncing   = "starts_syncing"
	ImpactStopsSyncing    = "stops_syncing"
	ImpactValidationFails = "validation_fails"
	ImpactNotReplayable   = "not_replayable"
)

// Impact limits: the default and largest number of changes replayed, and
// the default time budget.
const (
	DefaultImpactChanges = 200
	MaxImpactChanges     = 1000
	DefaultImpactBudget  = 10 * time.Second
)

// FieldChange is one field's value with the saved version (Old) and with
// the draft (New).
type FieldChange struct {
	Old any `json:"old"`
	New any `json:"new"`
}

// ImpactEntity is what the draft changes for one entity (its latest change).
type ImpactEntity struct {
	EntityID string                 `json:"entity_id"`
	EventID  int64                  `json:"event_id"`
	TwinID   int64                  `json:"twin_id"`
	TargetID string                 `json:"target_id,omitempty"`
	Outcome  string                 `json:"outcome"`
	Replica  map[string]FieldChange `json:"replica,omitempty"` // replica keys that differ
	Patch    map[string]FieldChange `json:"patch,omitempty"`   // target fields written differently
	Stage    string                 `json:"stage,omitempty"`   // where the draft fails: trigger, outgoing, rules, incoming
	Error    string                 `json:"error,omitempty"`
	Line     int                    `json:"line,omitempty"`
	Column   int                    `json:"column,omitempty"`
	Rules    []scripting.RuleResult `json:"rules,omitempty"` // the draft's failed validation rules
	Reason   string                 `json:"reason,omitempty"`
	// Inexact lists the replica keys where the saved version, replayed on
	// the stored input, does not give the replica that was sent: the
	// replay of this entity is approximate there.
	Inexact []string `json:"inexact,omitempty"`
}

// ImpactTotals counts the entities by outcome.
type ImpactTotals struct {
	Entities        int `json:"entities"`
	Unchanged       int `json:"unchanged"`
	ReplicaDiffers  int `json:"replica_differs"`
	PatchDiffers    int `json:"patch_differs"`
	WouldFail       int `json:"would_fail"`
	NowSucceeds     int `json:"now_succeeds"`
	StartsSyncing   int `json:"starts_syncing"`
	StopsSyncing    int `json:"stops_syncing"`
	ValidationFails int `json:"validation_fails"`
	NotReplayable   int `json:"not_replayable"`
	Inexact         int `json:"inexact"` // entities whose replay is approximate (ImpactEntity.Inexact)
}

func (t *ImpactTotals) add(outcome string) {
	t.Entities++
	counter := map[string]*int{
		ImpactUnchanged: &t.Unchanged, ImpactReplicaDiffers: &t.ReplicaDiffers, ImpactPatchDiffers: &t.PatchDiffers,
		ImpactWouldFail: &t.WouldFail, ImpactNowSucceeds: &t.NowSucceeds, ImpactStartsSyncing: &t.StartsSyncing,
		ImpactStopsSyncing: &t.StopsSyncing, ImpactValidationFails: &t.ValidationFails, ImpactNotReplayable: &t.NotReplayable,
	}[outcome]
	if counter != nil {
		*counter++
	}
}

// ImpactResult is the impact preview of a draft over a connection's recent
// changes of one direction.
type ImpactResult struct {
	Direction store.Direction `json:"direction"`
	Changes   int             `json:"changes"` // synced changes read from the store
	Totals    ImpactTotals    `json:"totals"`
	// Partial: the time budget ran out before every entity was replayed.
	Partial bool `json:"partial"`
	// DraftError is the draft's compile error, if any: every entity then
	// would fail with it.
	DraftError string         `json:"draft_error,omitempty"`
	Entities   []ImpactEntity `json:"entities"`
}

// Impact replays a connection's last `changes` applied changes of direction
// d through the saved and the draft versions of the direction's trigger,
// scripts and rules, and reports per entity (its latest change) what the
// draft would do differently. It reads only the store: the source entity
// as queued (the event's source snapshot: fields and comment ids, not
// comment texts), the replica sent, the previous replica and the twin's
// base of the target side as the target. It writes nothing and calls no
// connector, except that a draft trigger is compiled against the source
// system's schema (cached after the first read). Scripts run on the
// interactive lane with the connection's limits; the budget bounds the
// whole replay and a result cut short by it is marked Partial.
func (e *Engine) Impact(ctx context.Context, connID int64, d store.Direction, draft ImpactDraft, changes int, budget time.Duration) (ImpactResult, error) {
	res := ImpactResult{Direction: d, Entities: []ImpactEntity{}}
	if d != store.AToB && d != store.BToA {
		return res, fmt.Errorf("%w: direction must be a_to_b or b_to_a", connectors.ErrInvalid)
	}
	if changes <= 0 {
		changes = DefaultImpactChanges
	}
	changes = min(changes, MaxImpactChanges)
	if budget <= 0 {
		budget = DefaultImpactBudget
	}
	p, err := e.planByID(ctx, connID)
	if err != nil {
		return res, err
	}
	src := d.Source()
	saved := [2]*sidePlan{p.sides[src], p.sides[src.Other()]}
	drafted, stage, derr := e.draftPlan(ctx, p, src, draft)
	evs, err := e.st.RecentSynced(ctx, connID, d, changes)
	if err != nil {
		return res, err
	}
	res.Changes = len(evs)
	evs = latestPerEntity(evs)
	twins, err := e.st.TwinsByID(ctx, twinIDs(evs))
	if err != nil {
		return res, err
	}
	if derr != nil {
		res.DraftError = derr.Error()
	}
	bctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	rp := replayer{r: e.interactive(), p: p, src: src, saved: saved, draft: drafted, needsSource: draft.needsSource()}
	for _, ev := range evs {
		if bctx.Err() != nil {
			res.Partial = true
			break
		}
		var ent ImpactEntity
		if derr != nil {
			ent = failedDraft(ev, twins[ev.TwinID], stage, derr)
		} else {
			ent = rp.replay(bctx, ev, twins[ev.TwinID])
		}
		if bctx.Err() != nil && ctx.Err() == nil { // cut by the budget mid-run: not a result
			res.Partial = true
			break
		}
		res.Totals.add(ent.Outcome)
		if len(ent.Inexact) > 0 {
			res.Totals.Inexact++
		}
		res.Entities = append(res.Entities, ent)
	}
	return res, ctx.Err()
}

// draftPlan compiles the draft over a copy of the saved plan of the
// direction: source side, target side. A compile error comes back with the
// stage it belongs to.
func (e *Engine) draftPlan(ctx context.Context, p *plan, src store.Side, d ImpactDraft) ([2]*sidePlan, string, error) {
	s, t := *p.sides[src], *p.sides[src.Other()]
	var err error
	if d.Trigger != nil {
		if s.trigger, err = e.compileTrigger(ctx, p.conn.SystemID(src), *d.Trigger); err != nil {
			return [2]*sidePlan{}, "trigger", err
		}
	}
	if d.Outgoing != nil {
		name := fmt.Sprintf("%s/%s.outgoing.js (draft)", p.conn.Name, src)
		if s.outgoing, err = e.interactive().Compile(ctx, name, scripting.KindOutgoing, *d.Outgoing, scripting.Meta{Connection: p.conn.Name, Key: p.fairKey()}); err != nil {
			return [2]*sidePlan{}, "outgoing", err
		}
		s.outID = sourceID(*d.Outgoing)
	}
	if d.Incoming != nil {
		name := fmt.Sprintf("%s/%s.incoming.js (draft)", p.conn.Name, src.Other())
		if t.incoming, err = e.interactive().Compile(ctx, name, scripting.KindIncoming, *d.Incoming, scripting.Meta{Connection: p.conn.Name, Key: p.fairKey()}); err != nil {
			return [2]*sidePlan{}, "incoming", err
		}
		t.inID = sourceID(*d.Incoming)
	}
	if d.Rules != nil {
		if t.rules, err = scripting.CompileRulesDoc(*d.Rules); err != nil {
			return [2]*sidePlan{}, "rules", err
		}
	}
	return [2]*sidePlan{&s, &t}, "", nil
}

// latestPerEntity keeps each source entity's newest event (evs is newest
// first): the report is per entity.
func latestPerEntity(evs []store.SyncEvent) []store.SyncEvent {
	seen := map[string]bool{}
	out := evs[:0:0]
	for _, ev := range evs {
		if !seen[ev.SourceID] {
			seen[ev.SourceID] = true
			out = append(out, ev)
		}
	}
	return out
}

func twinIDs(evs []store.SyncEvent) []int64 {
	ids := make([]int64, 0, len(evs))
	for _, ev := range evs {
		ids = append(ids, ev.TwinID)
	}
	return ids
}

// failedDraft is an entity's result when the draft does not compile.
func failedDraft(ev store.SyncEvent, twin *store.Twin, stage string, err error) ImpactEntity {
	ent := ImpactEntity{EntityID: ev.SourceID, EventID: ev.ID, TwinID: ev.TwinID, Outcome: ImpactWouldFail, Stage: stage}
	if twin != nil {
		ent.TargetID = twin.EntityID(ev.Direction.Source().Other())
	}
	setError(&ent, err)
	return ent
}

func setError(ent *ImpactEntity, err error) {
	ent.Error = err.Error()
	var se *scripting.Error
	if errors.As(err, &se) {
		ent.Line, ent.Column = se.Line, se.Column
	}
}

// sortedKeys gives the union of the maps' keys, sorted.
func sortedKeys(ms ...map[string]any) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range ms {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}
