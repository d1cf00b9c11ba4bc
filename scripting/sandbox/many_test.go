package sandbox

import (
	"context"
	"testing"

	"github.com/duplexsync/duplex/scripting"
)

// MatchMany and OutgoingMany send many runs in messages of at most
// MaxBatch; each run's result and error are its own.
func TestPoolManyRuns(t *testing.T) {
	p := newPool(t, Options{Workers: 1, MaxBatch: 4})
	ctx := context.Background()
	meta := scripting.Meta{Connection: "c", Side: "a"}
	trig, err := scripting.CompileTrigger(`n > 2`, map[string]any{"n": 0.0})
	if err != nil {
		t.Fatal(err)
	}
	out := mustCompile(t, scripting.KindOutgoing, `if (entity.n == 3) { throw new Error("no 3") } replica.n = entity.n * 10; replica.first = ctx.firstSync`)
	var vars, prev []map[string]any
	var metas []scripting.Meta
	for i := range 6 {
		vars, prev = append(vars, map[string]any{"n": float64(i)}), append(prev, nil)
		m := meta
		m.FirstSync = i%2 == 0
		metas = append(metas, m)
	}
	before := p.Stats()
	match, errs, err := p.MatchMany(ctx, trig, vars, meta)
	if err != nil {
		t.Fatal(err)
	}
	for i := range vars {
		if errs[i] != nil || match[i] != (i > 2) {
			t.Errorf("trigger run %d: %v, %v", i, match[i], errs[i])
		}
	}
	res, errs, err := p.OutgoingMany(ctx, out, vars, prev, metas)
	if err != nil {
		t.Fatal(err)
	}
	for i := range vars {
		if i == 3 {
			if errs[i] == nil {
				t.Errorf("outgoing run 3: no error")
			}
			continue
		}
		if errs[i] != nil || res[i].Replica["n"] != int64(i*10) || res[i].Replica["first"] != (i%2 == 0) {
			t.Errorf("outgoing run %d: %#v, %v", i, res[i].Replica, errs[i])
		}
	}
	st := p.Stats()
	if runs, msgs := st.Runs-before.Runs, st.Messages-before.Messages; runs != 12 || msgs != 4 {
		t.Errorf("%d runs in %d messages, want 12 in 4 (6 and 6, at most 4 a message)", runs, msgs)
	}
}
