package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// Fixture is one recorded case of a template: a change on one side goes in,
// the trigger result, the replica and what the other side would get come out.
// Templates keep them in testdata/*.json; `duplex script test` and the tests
// run them.
type Fixture struct {
	Side     store.Side         `json:"side"`   // where the change happens
	Entity   connectors.Entity  `json:"entity"` // the changed entity
	Target   *connectors.Entity `json:"target"` // the counterpart now; null = first sync
	Previous map[string]any     `json:"previous,omitempty"`
	Want     FixtureWant        `json:"want"`
}

// FixtureWant lists what must come out; a missing (null) part is not checked.
type FixtureWant struct {
	Matched  *bool          `json:"matched,omitempty"`
	Replica  map[string]any `json:"replica,omitempty"`
	Patch    map[string]any `json:"patch,omitempty"`
	Comments []string       `json:"comments,omitempty"` // bodies of the comments that would be added
	Skipped  *bool          `json:"skipped,omitempty"`
	Log      []string       `json:"log,omitempty"` // substrings the log must contain
	Error    string         `json:"error,omitempty"`
}

// CheckFixture runs a fixture against a set of sources ("a"/"b" →
// "trigger"/"outgoing"/"incoming" → source) and returns what differs from
// its expectations (empty: it passes). Trigger variables are typed from the
// fixture's entity.
func CheckFixture(ctx context.Context, r Scripts, name string, sources map[string]map[string]string, fx Fixture) ([]string, error) {
	if !fx.Side.Valid() {
		return nil, fmt.Errorf("fixture %s: side must be a or b", name)
	}
	plans := map[store.Side]*sidePlan{}
	for _, side := range []store.Side{store.SideA, store.SideB} {
		src := sources[string(side)]
		sp := &sidePlan{}
		var err error
		env := envFromFields(fx.Entity.Fields)
		if fx.Target != nil && side != fx.Side {
			env = envFromFields(fx.Target.Fields)
		}
		if sp.trigger, err = scripting.CompileTrigger(src["trigger"], env); err != nil {
			return nil, err
		}
		if sp.outgoing, err = r.Compile(ctx, string(side)+".outgoing.js", scripting.KindOutgoing, src["outgoing"], scripting.Meta{Connection: name}); err != nil {
			return nil, err
		}
		if sp.incoming, err = r.Compile(ctx, string(side)+".incoming.js", scripting.KindIncoming, src["incoming"], scripting.Meta{Connection: name}); err != nil {
			return nil, err
		}
		plans[side] = sp
	}
	if fx.Entity.Fields == nil {
		fx.Entity.Fields = map[string]any{}
	}
	res := TestRunResult{Side: fx.Side, Linked: fx.Target != nil, Log: []string{}}
	simulate(ctx, r, scripting.Meta{Connection: name}, plans[fx.Side], plans[fx.Side.Other()], fx.Side, fx.Entity, fx.Previous, fx.Target, commentLinks{}, &res)

	var diffs []string
	w := fx.Want
	if res.Error != nil {
		if w.Error == "" || !strings.Contains(res.Error.Error(), w.Error) {
			diffs = append(diffs, fmt.Sprintf("%s script error: %v", res.Stage, res.Error))
		}
		return diffs, nil
	}
	if w.Error != "" {
		diffs = append(diffs, fmt.Sprintf("want an error containing %q, got none", w.Error))
	}
	if w.Matched != nil && *w.Matched != res.Matched {
		diffs = append(diffs, fmt.Sprintf("trigger matched = %v, want %v", res.Matched, *w.Matched))
	}
	if w.Skipped != nil && *w.Skipped != res.Skipped {
		diffs = append(diffs, fmt.Sprintf("skipped = %v (%s), want %v", res.Skipped, res.SkipReason, *w.Skipped))
	}
	if w.Replica != nil {
		diffs = append(diffs, diffMaps("replica", w.Replica, res.Replica)...)
	}
	if w.Patch != nil {
		diffs = append(diffs, diffMaps("patch", w.Patch, res.Patch)...)
	}
	if w.Comments != nil {
		got := make([]string, len(res.Comments))
		for i, c := range res.Comments {
			got[i] = c.Body
		}
		if !sameValue(toAny(w.Comments), toAny(got)) {
			diffs = append(diffs, fmt.Sprintf("new comments %q, want %q", got, w.Comments))
		}
	}
	logText := strings.Join(res.Log, "\n")
	for _, s := range w.Log {
		if !strings.Contains(logText, s) {
			diffs = append(diffs, fmt.Sprintf("log %q does not contain %q", logText, s))
		}
	}
	return diffs, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// diffMaps describes how got differs from want, key by key.
func diffMaps(what string, want, got map[string]any) []string {
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []string
	for _, k := range names {
		wv, inW := want[k]
		gv, inG := got[k]
		switch {
		case !inG:
			out = append(out, fmt.Sprintf("%s.%s missing, want %s", what, k, show(wv)))
		case !inW:
			out = append(out, fmt.Sprintf("%s.%s = %s, not expected", what, k, show(gv)))
		case !sameValue(wv, gv):
			out = append(out, fmt.Sprintf("%s.%s = %s, want %s", what, k, show(gv), show(wv)))
		}
	}
	return out
}

func show(v any) string {
	s, err := canonical(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return s
}

// envFromFields types trigger variables from example values.
func envFromFields(fields map[string]any) map[string]any {
	env := map[string]any{"id": "", "key": ""}
	for k, v := range fields {
		switch v.(type) {
		case float64, int, int64:
			env[k] = 0.0
		case bool:
			env[k] = false
		case []any, []string:
			env[k] = []any{}
		default:
			env[k] = ""
		}
	}
	return env
}
