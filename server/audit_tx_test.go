package server_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// A change and its audit entry are one transaction (issue 18): when the
// audit insert fails, the API answers 500 and keeps nothing, and the engine
// is not told about a change that was rolled back.
func TestChangeWithoutItsAuditIsNotKept(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newFakeEnv(t, b.Open(t))
			ctx := context.Background()
			sysA, sysB := store.System{Name: "a", Kind: "sql"}, store.System{Name: "b", Kind: "sql"}
			for _, s := range []*store.System{&sysA, &sysB} {
				if err := e.st.CreateSystem(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			var kept connectionJSON
			e.json("POST", "/api/connections", fmt.Sprintf(`{"name":"kept","system_a_id":%d,"system_b_id":%d}`, sysA.ID, sysB.ID), 201, &kept)
			twin, err := e.st.EnsureTwin(ctx, kept.ID, store.SideA, "7")
			if err != nil {
				t.Fatal(err)
			}
			evs := []store.SyncEvent{{ConnectionID: kept.ID, TwinID: twin.ID, Direction: store.AToB, SourceID: "7", Replica: `{}`, Status: store.StatusFailed}}
			if err := e.st.InsertEvents(ctx, evs); err != nil {
				t.Fatal(err)
			}
			reloadsBefore, _, wakesBefore := e.eng.calls()

			testdb.RefuseAudits(t, e.st, "")
			var ae apiErr
			e.json("POST", "/api/connections", fmt.Sprintf(`{"name":"lost","system_a_id":%d,"system_b_id":%d,
				"scripts":{"a":{"outgoing":"replica.title = entity.title;"}}}`, sysA.ID, sysB.ID), 500, &ae)
			conns, err := e.st.ListConnections(ctx)
			if err != nil || len(conns) != 1 || conns[0].ID != kept.ID {
				t.Fatalf("a create whose audit failed left %+v (%v)", conns, err)
			}
			var scripts int64
			if err := e.st.DB().Table("script_versions").Where("connection_id <> ?", kept.ID).Count(&scripts).Error; err != nil || scripts != 0 {
				t.Fatalf("%d script versions of the rolled-back connection (%v)", scripts, err)
			}

			// Changes to an existing connection are rolled back the same way.
			path := fmt.Sprintf("/api/connections/%d", kept.ID)
			e.json("PUT", path+"/conflict-policy", `{"default":"manual"}`, 500, &ae)
			e.json("PUT", path+"/options", `{"on_unmatch":"unlink"}`, 500, &ae)
			e.json("POST", path+"/activate", "", 500, &ae)
			e.json("PUT", path+"/scripts/a/outgoing", `{"source":"replica.x = 1;"}`, 500, &ae)
			e.json("PUT", path+"/rules/a", `{"rules":[]}`, 500, &ae)
			e.json("PUT", path+"/mapping/a_to_b", `{"mapping":{"rows":[{"target":"t","kind":"field","source":"s"}],"comments":{"sync":true}}}`, 500, &ae)
			cur, err := e.st.GetConnection(ctx, kept.ID)
			if err != nil || cur.ConflictPolicy != "" || cur.Options != "" || cur.Active {
				t.Fatalf("changes whose audit failed were kept: %+v (%v)", cur, err)
			}
			versions, err := e.st.ScriptHistory(ctx, kept.ID, store.SideA, store.KindOutgoing)
			if err != nil || len(versions) != 1 {
				t.Fatalf("script versions after a refused save: %d (%v)", len(versions), err)
			}
			if incoming, err := e.st.ScriptHistory(ctx, kept.ID, store.SideB, store.KindIncoming); err != nil || len(incoming) != 1 {
				t.Fatalf("incoming versions after a refused mapping save: %d (%v)", len(incoming), err)
			}
			rules, err := e.st.ScriptHistory(ctx, kept.ID, store.SideA, store.KindRules)
			if err != nil || len(rules) != 0 {
				t.Fatalf("rules versions after a refused save: %d (%v)", len(rules), err)
			}
			// So are a person's actions on the queue and the pairs.
			e.json("POST", fmt.Sprintf("/api/events/%d/retry", evs[0].ID), "", 500, &ae)
			e.json("POST", fmt.Sprintf("/api/events/%d/skip", evs[0].ID), `{"reason":"no"}`, 500, &ae)
			e.json("POST", path+"/retry-failed", "", 500, &ae)
			e.json("POST", path+"/twins", `{"a_id":"8","b_id":"9"}`, 500, &ae)
			e.json("DELETE", fmt.Sprintf("/api/twins/%d", twin.ID), "", 500, &ae)
			// And a team template saved from the connection.
			e.json("POST", path+"/save-as-template", `{"name":"lost-template"}`, 500, &ae)
			if _, err := e.st.TemplateByName(ctx, store.DefaultTeamID, "lost-template"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a template whose audit failed: %v", err)
			}
			ev, err := e.st.GetEvent(ctx, evs[0].ID)
			if err != nil || ev.Status != store.StatusFailed {
				t.Fatalf("event after refused retry and skip: %s (%v)", ev.Status, err)
			}
			twins, err := e.st.ListTwins(ctx, kept.ID, 10, 0)
			if err != nil || len(twins) != 1 || twins[0].ID != twin.ID {
				t.Fatalf("twins after refused link and unlink: %+v (%v)", twins, err)
			}
			if reloads, _, wakes := e.eng.calls(); len(reloads) != len(reloadsBefore) || wakes != wakesBefore {
				t.Fatalf("the engine was told about rolled-back changes: reloads %v → %v, wakes %d → %d", reloadsBefore, reloads, wakesBefore, wakes)
			}
		})
	}
}
