package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting/sandbox"
)

// readCounting counts a connector's reads: an impact preview must make none.
type readCounting struct {
	connectors.Connector
	reads *atomic.Int64
}

func (c readCounting) Get(ctx context.Context, id string) (connectors.Entity, error) {
	c.reads.Add(1)
	return c.Connector.Get(ctx, id)
}

func (c readCounting) Changes(ctx context.Context, cursor string, limit int) (connectors.Page, error) {
	c.reads.Add(1)
	return c.Connector.Changes(ctx, cursor, limit)
}

func (c readCounting) Describe(ctx context.Context) (connectors.Schema, error) {
	c.reads.Add(1)
	return c.Connector.Describe(ctx)
}

// impactFixture is the demo with escalated tickets t1..t6 (t1..t3 priority
// high) whose engineering issues then moved: t1..t3 to resolved, t4..t6 to
// in_progress. Reads of the systems are counted from then on.
type impactFixture struct {
	*fixture
	reads   atomic.Int64
	counted atomic.Bool
	tickets []string
}

func newImpactFixture(t *testing.T) *impactFixture {
	f := &impactFixture{fixture: newFixture(t, testdb.SQLite(t), time.Second)}
	f.wrap = func(_ string, c connectors.Connector) connectors.Connector {
		return readCounting{Connector: c, reads: &f.reads}
	}
	f.settle()
	for i := 1; i <= 6; i++ {
		prio := "low"
		if i <= 3 {
			prio = "high"
		}
		res, err := f.support.Exec(`INSERT INTO tickets (subject, description, priority, labels) VALUES (?, 'd', ?, 'todev')`,
			fmt.Sprint("impact ", i), prio)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.LastInsertId()
		f.tickets = append(f.tickets, fmt.Sprint(id))
	}
	time.Sleep(settle)
	f.settle()
	for i, tk := range f.tickets {
		state := "in_progress"
		if i < 3 {
			state = "resolved"
		}
		f.exec(f.eng2, "UPDATE issues SET state = ? WHERE ticket_ref = ?", state, "T-"+tk)
	}
	f.settle()
	f.reads.Store(0)
	return f
}

// rows counts the store's rows that an impact preview must leave alone.
func (f *impactFixture) rows() string {
	var out []string
	for _, table := range []string{"sync_events", "twins", "audit_log", "script_versions", "connections"} {
		var n, last int64
		if err := f.st.DB().Raw("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM "+table).Row().Scan(&n, &last); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s=%d/%d", table, n, last))
	}
	for _, table := range []string{"sync_events", "twins", "connections"} {
		var at string
		if err := f.st.DB().Raw("SELECT COALESCE(MAX(updated_at), '') FROM " + table).Row().Scan(&at); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, table+"@"+at)
	}
	return strings.Join(out, " ")
}

func (f *impactFixture) script(side store.Side, kind store.ScriptKind) string {
	f.t.Helper()
	cur, err := f.st.CurrentScripts(f.ctx, f.conn.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return cur[side][kind].Source
}

func (f *impactFixture) impact(d store.Direction, draft engine.ImpactDraft) engine.ImpactResult {
	f.t.Helper()
	before, writes := f.rows(), f.writes.Load()
	res, err := f.eng.Impact(f.ctx, f.conn.ID, d, draft, 0, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	if after := f.rows(); after != before {
		f.t.Fatalf("impact changed the store: %s → %s", before, after)
	}
	if f.writes.Load() != writes || f.reads.Load() != 0 {
		f.t.Fatalf("impact called the systems: %d writes, %d reads", f.writes.Load()-writes, f.reads.Load())
	}
	if res.Partial {
		f.t.Fatalf("partial result within the default budget: %+v", res.Totals)
	}
	return res
}

func byEntity(res engine.ImpactResult) map[string]engine.ImpactEntity {
	out := map[string]engine.ImpactEntity{}
	for _, e := range res.Entities {
		out[e.EntityID] = e
	}
	return out
}

// A changed status map value reports exactly the issues in that state, with
// the ticket status old → new; the other issues are unchanged.
func TestImpactStatusMapChange(t *testing.T) {
	f := newImpactFixture(t)
	src := f.script(store.SideA, store.KindIncoming)
	draft := strings.Replace(src, `"resolved":"solved"`, `"resolved":"done"`, -1) // the header and the map: still a mapping
	if draft == src {
		t.Fatalf("status map not found in the incoming script:\n%s", src)
	}
	res := f.impact(store.BToA, engine.ImpactDraft{Incoming: &draft})
	if res.Totals.Entities != 6 || res.Totals.PatchDiffers != 3 || res.Totals.Unchanged != 3 || res.Totals.NotReplayable != 0 {
		t.Fatalf("totals %+v", res.Totals)
	}
	ents := byEntity(res)
	for i, tk := range f.tickets {
		issue := f.issueOf(tk)
		e, ok := ents[issue]
		if !ok {
			t.Fatalf("issue %s (ticket %s) not reported: %+v", issue, tk, res.Entities)
		}
		if e.TargetID != tk {
			t.Errorf("issue %s: target %q, want ticket %s", issue, e.TargetID, tk)
		}
		if i >= 3 {
			if e.Outcome != engine.ImpactUnchanged || e.Patch != nil {
				t.Errorf("in-progress issue %s: %+v", issue, e)
			}
			continue
		}
		want := engine.FieldChange{Old: "solved", New: "done"}
		if e.Outcome != engine.ImpactPatchDiffers || len(e.Patch) != 1 || e.Patch["status"] != want || e.Replica != nil {
			t.Errorf("resolved issue %s: %+v", issue, e)
		}
	}
}

// A draft that does not compile would fail every entity, with its line.
func TestImpactSyntaxError(t *testing.T) {
	f := newImpactFixture(t)
	draft := "const s = 1;\nentity.status = (;\n"
	res := f.impact(store.BToA, engine.ImpactDraft{Incoming: &draft})
	if res.DraftError == "" || res.Totals.WouldFail != 6 || res.Totals.Entities != 6 {
		t.Fatalf("syntax error: %q %+v", res.DraftError, res.Totals)
	}
	for _, e := range res.Entities {
		if e.Outcome != engine.ImpactWouldFail || e.Line != 2 || e.Stage != "incoming" || e.Error == "" {
			t.Fatalf("entity %+v", e)
		}
	}
	// A runtime error fails only where the line runs.
	rt := "if (replica.state === \"resolved\") {\n  entity.status = replica.nope.x;\n}\n"
	res = f.impact(store.BToA, engine.ImpactDraft{Incoming: &rt})
	if res.DraftError != "" || res.Totals.WouldFail != 3 {
		t.Fatalf("runtime error: %+v", res.Totals)
	}
	for _, e := range res.Entities {
		if e.Outcome == engine.ImpactWouldFail && e.Line != 2 {
			t.Fatalf("entity %+v: want line 2", e)
		}
	}
}

// A trigger draft reports which entities would start or stop syncing; an
// outgoing draft the replica and patch it changes.
func TestImpactTriggerAndOutgoing(t *testing.T) {
	f := newImpactFixture(t)
	// The saved trigger now takes only high-priority tickets.
	if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideA, store.KindTrigger, `"todev" in labels && priority == "high"`, "t"); err != nil {
		t.Fatal(err)
	}
	trig := `"todev" in labels && priority != "high"`
	res := f.impact(store.AToB, engine.ImpactDraft{Trigger: &trig})
	ents := byEntity(res)
	for i, tk := range f.tickets {
		want := engine.ImpactStartsSyncing
		if i < 3 {
			want = engine.ImpactStopsSyncing
		}
		if ents[tk].Outcome != want {
			t.Errorf("ticket %s: %+v, want %s", tk, ents[tk], want)
		}
	}
	if res.Totals.StartsSyncing < 3 || res.Totals.StopsSyncing < 3 {
		t.Fatalf("totals %+v", res.Totals)
	}

	out := strings.Replace(f.script(store.SideA, store.KindOutgoing), "replica.title = entity.subject;", `replica.title = "[T] " + entity.subject;`, 1)
	res = f.impact(store.AToB, engine.ImpactDraft{Outgoing: &out})
	ents = byEntity(res)
	for _, tk := range f.tickets {
		e := ents[tk]
		subject := f.one(f.support, "SELECT subject FROM tickets WHERE id = ?", tk)
		if e.Outcome != engine.ImpactPatchDiffers || e.Replica["title"] != (engine.FieldChange{Old: subject, New: "[T] " + subject}) ||
			e.Patch["title"] != (engine.FieldChange{Old: subject, New: "[T] " + subject}) || len(e.Patch) != 1 || len(e.Replica) != 1 {
			t.Errorf("ticket %s: %+v", tk, e)
		}
		// The event keeps the ticket's fields, not its key: the replay of
		// replica.ticket is approximate, and the value sent is used.
		if len(e.Inexact) != 1 || e.Inexact[0] != "ticket" {
			t.Errorf("ticket %s: %+v", tk, e)
		}
	}
}

// A rules draft reports the entities the new rule would refuse; a budget
// that runs out marks the result partial.
func TestImpactRulesAndBudget(t *testing.T) {
	f := newImpactFixture(t)
	rules := `[{"field": "state", "kind": "oneOf", "values": ["new", "in_progress"], "message": "no closing from engineering"}]`
	res := f.impact(store.BToA, engine.ImpactDraft{Rules: &rules})
	if res.Totals.ValidationFails != 3 || res.Totals.Unchanged != 3 {
		t.Fatalf("totals %+v", res.Totals)
	}
	ents := byEntity(res)
	for _, tk := range f.tickets[:3] {
		e := ents[f.issueOf(tk)]
		if e.Outcome != engine.ImpactValidationFails || len(e.Rules) != 1 || e.Rules[0].Message != "no closing from engineering" {
			t.Errorf("resolved issue of ticket %s: %+v", tk, e)
		}
	}
	res, err := f.eng.Impact(f.ctx, f.conn.ID, store.BToA, engine.ImpactDraft{Rules: &rules}, 0, time.Nanosecond)
	if err != nil || !res.Partial || len(res.Entities) != res.Totals.Entities || res.Totals.Entities >= 6 {
		t.Fatalf("budget: %+v %v", res, err)
	}
}

// BenchmarkImpact replays the demo's last 200 synced changes (200 linked
// tickets, one change each) through an outgoing draft: in process, and in
// sandbox worker processes on the interactive lane as the server runs it.
func BenchmarkImpact(b *testing.B) {
	f := newFixture(b, testdb.SQLite(b), time.Second)
	for i := 0; i < 200; i++ {
		if _, err := f.support.Exec(`INSERT INTO tickets (subject, description, priority, labels) VALUES (?, 'bench', 'high', 'todev')`,
			fmt.Sprint("bench ticket ", i)); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(settle)
	f.settle()
	cur, err := f.st.CurrentScripts(f.ctx, f.conn.ID)
	if err != nil {
		b.Fatal(err)
	}
	out := strings.Replace(cur[store.SideA][store.KindOutgoing].Source, "replica.title = entity.subject;", `replica.title = "[T] " + entity.subject;`, 1)
	run := func(b *testing.B, eng *engine.Engine) {
		for i := 0; i < b.N; i++ {
			res, err := eng.Impact(f.ctx, f.conn.ID, store.AToB, engine.ImpactDraft{Outgoing: &out}, 200, time.Minute)
			if err != nil || res.Partial || res.Totals.Entities != 200 || res.Totals.PatchDiffers != 200 {
				b.Fatalf("%+v %v", res.Totals, err)
			}
		}
	}
	b.Run("inprocess", func(b *testing.B) { run(b, f.eng) })
	b.Run("sandbox", func(b *testing.B) {
		pool, err := sandbox.NewPool(sandbox.Options{Workers: 1, Interactive: 1, Timeout: time.Second, Memory: 512 << 20})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = pool.Stop(context.Background()) }()
		eng := engine.New(engine.Options{Store: f.st, Connectors: f.reg, Secrets: f.box, Runner: pool, Interactive: pool.Interactive()})
		defer eng.Close()
		run(b, eng)
	})
}
