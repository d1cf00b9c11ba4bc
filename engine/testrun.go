package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// TestRunResult is what a connection's scripts would do with one entity.
type TestRunResult struct {
	Side      store.Side           `json:"side"`
	Matched   bool                 `json:"matched"`    // the trigger matched
	Linked    bool                 `json:"linked"`     // the entity already has a twin
	WouldSync bool                 `json:"would_sync"` // matched or linked
	Replica   map[string]any       `json:"replica,omitempty"`
	TargetID  string               `json:"target_id,omitempty"` // "" = the other side would be created
	Patch     map[string]any       `json:"patch,omitempty"`
	Comments  []connectors.Comment `json:"comments,omitempty"` // comments that would be added
	// Rules are the results of the target side's validation rules on the
	// replica; Invalid: one failed, and the event would fail with nothing written.
	Rules      []scripting.RuleResult `json:"rules,omitempty"`
	Invalid    bool                   `json:"invalid,omitempty"`
	Skipped    bool                   `json:"skipped,omitempty"`
	SkipReason string                 `json:"skip_reason,omitempty"`
	Log        []string               `json:"log"`
	Error      error                  `json:"-"`               // a script error (*scripting.Error) or a trigger error
	Stage      string                 `json:"stage,omitempty"` // where Error happened: trigger, outgoing, rules, incoming
	// Drafts names the pieces that ran as an unsaved draft (trigger,
	// outgoing, incoming, rules); empty: only saved versions ran.
	Drafts []string `json:"drafts,omitempty"`
}

// DraftError is a draft of a test run that does not compile: the request is
// refused (nothing ran). Err is the compile error (*scripting.Error, with
// its position); Stage the piece: trigger, outgoing, incoming or rules.
type DraftError struct {
	Stage string
	Err   error
}

func (e *DraftError) Error() string { return "draft " + e.Stage + ": " + e.Err.Error() }
func (e *DraftError) Unwrap() error { return e.Err }

// names lists the draft's pieces, in the order they run.
func (d ImpactDraft) names() []string {
	var out []string
	for _, p := range []struct {
		name string
		src  *string
	}{{"trigger", d.Trigger}, {"outgoing", d.Outgoing}, {"rules", d.Rules}, {"incoming", d.Incoming}} {
		if p.src != nil {
			out = append(out, p.name)
		}
	}
	return out
}

// TestRun runs a connection's current trigger and scripts for an entity of
// side `side`, without writing anything: it reads the entity (when ent is
// nil, by id) and the counterpart if a twin exists, and reports the trigger
// result, the replica, the patch and the comments the other side would get.
// Script and trigger errors are reported in the result, not as err.
func (e *Engine) TestRun(ctx context.Context, connID int64, side store.Side, id string, ent *connectors.Entity) (TestRunResult, error) {
	return e.TestRunDraft(ctx, connID, side, id, ent, ImpactDraft{})
}

// TestRunDraft is TestRun with unsaved drafts for the direction from side:
// side's trigger and outgoing script, the other side's incoming script and
// rules (a nil piece runs the saved version). The drafts are compiled for
// this call only, over a copy of the saved plan: nothing is stored and the
// engine's plans stay as they are. They run on the same interactive lane
// with the connection's limits as the saved scripts. A draft that does not
// compile is a *DraftError (wrapping the *scripting.Error), and nothing
// runs; errors while running are reported in the result as for TestRun.
func (e *Engine) TestRunDraft(ctx context.Context, connID int64, side store.Side, id string, ent *connectors.Entity, draft ImpactDraft) (TestRunResult, error) {
	res := TestRunResult{Side: side, Log: []string{}}
	p, err := e.planByID(ctx, connID)
	if err != nil {
		return res, err
	}
	// Compiled before the entities are read: a draft that does not compile
	// costs no read of them (a draft trigger needs the source's schema,
	// which is cached).
	plans, stage, err := e.draftPlan(ctx, p, side, draft)
	if err != nil {
		var se *scripting.Error
		if errors.As(err, &se) && se.Script == "" {
			se.Script = stage + " (draft)" // the trigger's and the rules' errors carry no name
		}
		return res, &DraftError{Stage: stage, Err: err}
	}
	res.Drafts = draft.names()
	if ent == nil {
		src, err := e.system(ctx, p.conn.SystemID(side))
		if err != nil {
			return res, err
		}
		got, err := src.conn.Get(ctx, id)
		if err != nil {
			return res, fmt.Errorf("read %s entity %s: %w", side, id, err)
		}
		ent = &got
	}
	var (
		twin     store.Twin
		previous map[string]any
		target   *connectors.Entity
	)
	if ent.ID != "" {
		twin, err = e.st.TwinBy(ctx, connID, side, ent.ID)
		switch {
		case err == nil:
			res.Linked = true
		case !errors.Is(err, store.ErrNotFound):
			return res, err
		}
	}
	dir := store.DirectionFrom(side)
	if res.Linked {
		if previous, err = decodeObject(twin.Sent(dir)); err != nil {
			return res, err
		}
		if tid := twin.EntityID(side.Other()); tid != "" {
			dst, err := e.system(ctx, p.conn.SystemID(side.Other()))
			if err != nil {
				return res, err
			}
			got, err := dst.conn.Get(ctx, tid)
			if err != nil {
				return res, fmt.Errorf("read %s entity %s: %w", side.Other(), tid, err)
			}
			target = &got
		}
	}
	links := commentLinks{}
	if res.Linked {
		links = loadLinks(&twin)
	}
	simulate(ctx, e.interactive(), p.runMeta(), plans[0], plans[1], side, *ent, previous, target, links, &res)
	// Unique rules need a lookup in the target (read-only): done here, not
	// in the pure simulation.
	if err := e.testUnique(ctx, p, plans[1].rules, side, twin, &res); err != nil {
		return res, err
	}
	return res, nil
}

// testUnique adds the results of the target side's unique rules to a test
// run's rules, when the run got as far as the incoming stage.
func (e *Engine) testUnique(ctx context.Context, p *plan, dstRules *scripting.Rules, side store.Side, twin store.Twin, res *TestRunResult) error {
	if !dstRules.HasUnique() || res.Replica == nil || (res.Stage != "" && res.Stage != "incoming") {
		return nil
	}
	dst, err := e.system(ctx, p.conn.SystemID(side.Other()))
	if err != nil {
		return err
	}
	enc, err := canonical(res.Replica)
	if err != nil {
		return err
	}
	replica, err := decodeObject(&enc)
	if err != nil {
		return err
	}
	own, key := twin.EntityID(side.Other()), ""
	if res.Linked && own == "" {
		if key, err = e.createKey(ctx, p.conn.ID, &twin, side.Other()); err != nil {
			return err
		}
	}
	meta := scripting.Meta{Connection: p.conn.Name, Key: p.fairKey(), Side: string(side.Other()), Timeout: p.options.scriptTimeout()}
	uniq, err := uniqueResults(ctx, e.interactive(), meta, dstRules, dst, own, key, replica)
	if err != nil {
		return err
	}
	res.Rules = append(res.Rules, uniq...)
	scripting.SortResults(res.Rules)
	res.Invalid = len(scripting.Failed(res.Rules)) > 0
	return nil
}

// simulate is the pure part of a test run: trigger, outgoing, incoming,
// patch, comments. Template fixtures use it without any store.
func simulate(ctx context.Context, r Scripts, run scripting.Meta, src, dst *sidePlan, side store.Side,
	ent connectors.Entity, previous map[string]any, target *connectors.Entity, links commentLinks, res *TestRunResult) {
	if simulateOutgoing(ctx, r, run, src, side, ent, target, previous, res) {
		simulateIncoming(ctx, r, run, dst, side, res.Replica, previous, target, links, res)
	}
}

// simulateOutgoing is the first half of simulate: trigger and outgoing
// script; false when one failed (res says how).
func simulateOutgoing(ctx context.Context, r Scripts, run scripting.Meta, src *sidePlan, side store.Side,
	ent connectors.Entity, target *connectors.Entity, previous map[string]any, res *TestRunResult) bool {
	var err error
	if res.Matched, err = r.Match(ctx, src.trigger, triggerVars(ent), scripting.Meta{Connection: run.Connection, Key: run.Key, Side: string(side), Timeout: run.Timeout}); err != nil {
		res.Error, res.Stage = err, "trigger"
		return false
	}
	res.WouldSync = res.Matched || res.Linked
	first := target == nil
	out, err := r.Outgoing(ctx, src.outgoing, scriptEntity(ent), previous,
		scripting.Meta{Connection: run.Connection, Key: run.Key, Side: string(side), FirstSync: first, Timeout: run.Timeout})
	res.Log = append(res.Log, out.Log...)
	if err != nil {
		res.Error, res.Stage = err, "outgoing"
		return false
	}
	res.Replica = out.Replica
	return true
}

// simulateIncoming is the second half of simulate, from a replica: rules,
// incoming, patch, comments. The impact preview starts here from a stored
// replica when only the incoming script or the rules changed.
func simulateIncoming(ctx context.Context, r Scripts, run scripting.Meta, dst *sidePlan, side store.Side,
	sent map[string]any, previous map[string]any, target *connectors.Entity, links commentLinks, res *TestRunResult) {
	first := target == nil
	in := map[string]any{}
	var local connectors.Entity
	if target != nil {
		local = *target
		in = scriptEntity(local)
		res.TargetID = local.ID
	}
	// The replica goes through its JSON form, exactly as a queued event would.
	enc, err := canonical(sent)
	if err != nil {
		res.Error, res.Stage = err, "outgoing"
		return
	}
	replica, err := decodeObject(&enc)
	if err != nil {
		res.Error, res.Stage = err, "outgoing"
		return
	}
	if replica == nil {
		replica = map[string]any{}
	}
	if res.Rules, err = r.Check(ctx, dst.rules, replica, scripting.Meta{Connection: run.Connection, Key: run.Key, Side: string(side.Other()), Timeout: run.Timeout}); err != nil {
		res.Error, res.Stage = err, "rules"
		return
	}
	res.Invalid = len(scripting.Failed(res.Rules)) > 0
	inc, err := r.Incoming(ctx, dst.incoming, replica, previous, in,
		scripting.Meta{Connection: run.Connection, Key: run.Key, Side: string(side.Other()), FirstSync: first, Timeout: run.Timeout})
	res.Log = append(res.Log, inc.Log...)
	if err != nil {
		res.Error, res.Stage = err, "incoming"
		return
	}
	if inc.Skipped {
		res.Skipped, res.SkipReason = true, inc.SkipReason
		return
	}
	fields, comments, err := splitEntity(inc.Entity)
	if err != nil {
		res.Error, res.Stage = err, "incoming"
		return
	}
	res.Patch = patch(local.Fields, fields)
	res.Comments, _ = newComments(links, side, local, comments, replicaCommentIDs(replica))
}
