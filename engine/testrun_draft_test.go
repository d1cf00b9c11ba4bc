package engine_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
)

func strp(s string) *string { return &s }

// Drafts run in a test run instead of the saved versions, for this call
// only: the saved plan, the stored versions and the systems are untouched.
// A draft that does not compile is refused with its position; one that
// never ends stops at the connection's deadline like a saved script.
func TestTestRunDraft(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), 300*time.Millisecond)
	f.settle()
	writes := f.writes.Load()
	history := func() string {
		out := ""
		for _, side := range []store.Side{store.SideA, store.SideB} {
			for _, k := range []store.ScriptKind{store.KindTrigger, store.KindOutgoing, store.KindIncoming, store.KindRules} {
				h, err := f.st.ScriptHistory(f.ctx, f.conn.ID, side, k)
				if err != nil {
					t.Fatal(err)
				}
				out += fmt.Sprintf("%s.%s:%d ", side, k, len(h))
			}
		}
		return out
	}
	versions := history()
	saved, err := f.eng.TestRun(f.ctx, f.conn.ID, store.SideA, "1", nil)
	if err != nil || saved.Error != nil || saved.Replica["title"] == nil || len(saved.Drafts) != 0 {
		t.Fatalf("saved: %+v %v", saved, err)
	}

	// Outgoing and incoming drafts of the direction a → b.
	res, err := f.eng.TestRunDraft(f.ctx, f.conn.ID, store.SideA, "1", nil, engine.ImpactDraft{
		Outgoing: strp(`replica.title = "draft: " + entity.subject;`),
		Incoming: strp(`entity.title = replica.title + "!";`),
	})
	if err != nil || res.Error != nil || res.Replica["title"] != "draft: "+fmt.Sprint(f.one(f.support, "SELECT subject FROM tickets WHERE id = 1")) ||
		res.Patch["title"] != res.Replica["title"].(string)+"!" || fmt.Sprint(res.Drafts) != "[outgoing incoming]" {
		t.Fatalf("draft: %+v %v", res, err)
	}
	// A trigger draft: ticket 2 (no todev label) would now sync.
	res, err = f.eng.TestRunDraft(f.ctx, f.conn.ID, store.SideA, "2", nil, engine.ImpactDraft{Trigger: strp("true")})
	if err != nil || !res.Matched || !res.WouldSync {
		t.Fatalf("trigger draft: %+v %v", res, err)
	}
	// A rules draft fails the replica: nothing would be written.
	res, err = f.eng.TestRunDraft(f.ctx, f.conn.ID, store.SideA, "1", nil, engine.ImpactDraft{
		Rules: strp(`[{"field":"nope","kind":"required","message":"needs nope"}]`)})
	if err != nil || !res.Invalid || len(scripting.Failed(res.Rules)) != 1 {
		t.Fatalf("rules draft: %+v %v", res, err)
	}
	// Does not compile: refused, with the stage and the position.
	_, err = f.eng.TestRunDraft(f.ctx, f.conn.ID, store.SideA, "1", nil, engine.ImpactDraft{Incoming: strp("\nentity.title = (;")})
	var de *engine.DraftError
	var se *scripting.Error
	if !errors.As(err, &de) || de.Stage != "incoming" || !errors.As(err, &se) || se.Kind != scripting.ErrorCompile || se.Line != 2 {
		t.Fatalf("compile error: %v", err)
	}
	// Never ends: stopped at the deadline, reported in the result.
	res, err = f.eng.TestRunDraft(f.ctx, f.conn.ID, store.SideA, "1", nil, engine.ImpactDraft{Outgoing: strp("for (;;) {}")})
	if err != nil || res.Stage != "outgoing" || !errors.As(res.Error, &se) || !errors.Is(res.Error, scripting.ErrTimeout) {
		t.Fatalf("endless draft: %+v %v", res, err)
	}

	// Nothing of the drafts stayed: the saved versions run as before.
	again, err := f.eng.TestRun(f.ctx, f.conn.ID, store.SideA, "1", nil)
	if err != nil || fmt.Sprint(again.Replica) != fmt.Sprint(saved.Replica) || fmt.Sprint(again.Patch) != fmt.Sprint(saved.Patch) {
		t.Fatalf("saved after drafts: %+v %v, want %+v", again, err, saved)
	}
	if h := history(); h != versions {
		t.Fatalf("script versions changed: %s → %s", versions, h)
	}
	if w := f.writes.Load(); w != writes {
		t.Fatalf("draft test runs wrote %d times to the systems", w-writes)
	}
}
