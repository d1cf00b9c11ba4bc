package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting/sandbox"
	"github.com/duplexsync/duplex/scripts/mapping"
)

// BenchmarkImpactMappingDraft replays the demo's 200 last engineering →
// support changes through a draft made by the mapping editor: the status
// map's "resolved" entry changed from "solved" to "done". The 100 issues
// that are resolved report exactly that, the ticket's status "solved" →
// "done" and nothing else; the 100 in progress are unchanged. The time is
// the benchmark's (go test ./engine -run - -bench ImpactMappingDraft); the
// content is asserted on every iteration, never the time.
func BenchmarkImpactMappingDraft(b *testing.B) {
	f := newFixture(b, testdb.SQLite(b), time.Second)
	for i := 0; i < 200; i++ {
		if _, err := f.support.Exec(`INSERT INTO tickets (subject, description, priority, labels) VALUES (?, 'bench', 'high', 'todev')`,
			fmt.Sprint("mapping bench ", i)); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(settle)
	f.settle()
	resolved := map[string]bool{} // the resolved issues' ticket keys
	for i := 1; i <= 200; i++ {
		state, ref := "in_progress", fmt.Sprint("T-", i+3) // the demo's own three tickets come first
		if i%2 == 0 {
			state = "resolved"
			resolved[ref] = true
		}
		f.exec(f.eng2, "UPDATE issues SET state = ? WHERE ticket_ref = ?", state, ref)
	}
	f.settle()
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE state = 'resolved'"); n != 100 {
		b.Fatalf("%d resolved issues, want 100", n)
	}

	// The draft as the mapping editor makes it: the saved direction parsed,
	// one map entry changed, rendered again.
	cur, err := f.st.CurrentScripts(f.ctx, f.conn.ID)
	if err != nil {
		b.Fatal(err)
	}
	m, err := mapping.Parse(cur[store.SideB][store.KindOutgoing].Source, cur[store.SideA][store.KindIncoming].Source, cur[store.SideB][store.KindTrigger].Source)
	if err != nil {
		b.Fatalf("the demo's engineering → support direction is not a mapping: %v", err)
	}
	m.Rows[0].Map["resolved"] = "done"
	draft, err := mapping.Render(m)
	if err != nil {
		b.Fatal(err)
	}
	if draft.Outgoing != cur[store.SideB][store.KindOutgoing].Source {
		b.Fatal("a value map change rendered a different outgoing script")
	}
	issueTicket := map[string]string{} // issue id → ticket key
	rows, err := f.eng2.Query("SELECT id, ticket_ref FROM issues WHERE ticket_ref <> ''")
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var ref string
		if err := rows.Scan(&id, &ref); err != nil {
			b.Fatal(err)
		}
		issueTicket[fmt.Sprint(id)] = ref
	}
	_ = rows.Close()

	check := func(b *testing.B, res engine.ImpactResult) {
		t := res.Totals
		if res.Partial || res.Changes != 200 || t.Entities != 200 || t.PatchDiffers != 100 || t.Unchanged != 100 || t.NotReplayable != 0 || t.WouldFail != 0 {
			b.Fatalf("totals %+v (changes %d, partial %v)", t, res.Changes, res.Partial)
		}
		for _, e := range res.Entities {
			ref := issueTicket[e.EntityID]
			switch e.Outcome {
			case engine.ImpactPatchDiffers:
				c, ok := e.Patch["status"]
				if !resolved[ref] || len(e.Patch) != 1 || !ok || c.Old != "solved" || c.New != "done" || len(e.Replica) != 0 {
					b.Fatalf("issue %s (%s): %+v", e.EntityID, ref, e)
				}
			case engine.ImpactUnchanged:
				if resolved[ref] {
					b.Fatalf("resolved issue %s (%s) unchanged", e.EntityID, ref)
				}
			default:
				b.Fatalf("issue %s: %s", e.EntityID, e.Outcome)
			}
		}
	}
	run := func(b *testing.B, eng *engine.Engine) {
		for i := 0; i < b.N; i++ {
			res, err := eng.Impact(f.ctx, f.conn.ID, store.BToA, engine.ImpactDraft{Incoming: &draft.Incoming}, 200, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			check(b, res)
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
