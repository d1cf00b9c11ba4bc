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
			if _, err := e.st.Templates().TemplateByName(ctx, store.DefaultTeamID, "lost-template"); !errors.Is(err, store.ErrNotFound) {
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

// The same for the rest of the configuration (issue 18): systems, teams
// and their members, users, tokens and team templates. Each create, change
// or delete whose audit insert fails answers 500 and leaves the store as
// it was, and the engine is not told to reopen a system.
func TestConfigurationWithoutItsAuditIsNotKept(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newFakeEnv(t, b.Open(t))
			ctx := context.Background()
			var a, bb, spare struct{ ID int64 }
			for _, s := range []struct {
				name string
				out  *struct{ ID int64 }
			}{{"a", &a}, {"b", &bb}, {"spare", &spare}} {
				e.json("POST", "/api/systems", fmt.Sprintf(`{"name":%q,"kind":"sql","settings":{}}`, s.name), 201, s.out)
			}
			var conn connectionJSON
			e.json("POST", "/api/connections", fmt.Sprintf(`{"name":"c","system_a_id":%d,"system_b_id":%d}`, a.ID, bb.ID), 201, &conn)
			var tpl struct{ ID int64 }
			e.json("POST", fmt.Sprintf("/api/connections/%d/save-as-template", conn.ID), `{"name":"kept"}`, 201, &tpl)
			var user struct{ ID int64 }
			e.json("POST", "/api/users", `{"email":"kept@test","password":"a long enough password"}`, 201, &user)

			tables := []string{"systems", "teams", "memberships", "users", "api_tokens", "templates", "template_versions", "template_shares"}
			counts := func() map[string]int64 {
				out := map[string]int64{}
				for _, table := range tables {
					var n int64
					if err := e.st.DB().Table(table).Count(&n).Error; err != nil {
						t.Fatal(err)
					}
					out[table] = n
				}
				return out
			}
			before := counts()
			_, systemReloads, _ := e.eng.calls()
			testdb.RefuseAudits(t, e.st, "")

			var ae apiErr
			for _, r := range []struct{ method, path, body string }{
				{"POST", "/api/systems", `{"name":"lost","kind":"sql","settings":{}}`},
				{"PUT", fmt.Sprintf("/api/systems/%d", spare.ID), `{"name":"renamed","poll_interval_ms":900}`},
				{"DELETE", fmt.Sprintf("/api/systems/%d", spare.ID), ``},
				{"POST", "/api/teams", `{"name":"lost"}`},
				{"PUT", fmt.Sprintf("/api/teams/%d/members/%d", store.DefaultTeamID, user.ID), `{"role":"editor"}`},
				{"POST", "/api/users", `{"email":"lost@test","password":"a long enough password"}`},
				{"PUT", fmt.Sprintf("/api/users/%d", user.ID), `{"disabled":true}`},
				{"POST", "/api/me/tokens", `{"name":"lost"}`},
				{"POST", fmt.Sprintf("/api/team-templates/%d/versions", tpl.ID), `{"title":"v2","sources":{"a":{},"b":{}}}`},
				{"PUT", fmt.Sprintf("/api/team-templates/%d/sharing", tpl.ID), `{"visibility":"org"}`},
				{"POST", fmt.Sprintf("/api/team-templates/%d/fork", tpl.ID), `{"name":"lost-fork"}`},
				{"POST", fmt.Sprintf("/api/connections/%d/save-as-template", conn.ID), `{"name":"kept"}`},
			} {
				e.json(r.method, r.path, r.body, 500, &ae)
			}
			after := counts()
			for _, table := range tables {
				if after[table] != before[table] {
					t.Errorf("%s: %d rows after refused changes, %d before", table, after[table], before[table])
				}
			}
			sys, err := e.st.GetSystem(ctx, spare.ID)
			if err != nil || sys.Name != "spare" || sys.PollIntervalMS == 900 {
				t.Errorf("a system update whose audit failed was kept: %+v (%v)", sys, err)
			}
			u, err := e.st.Identity().GetUser(ctx, user.ID)
			if err != nil || u.Disabled {
				t.Errorf("a user update whose audit failed was kept: %+v (%v)", u, err)
			}
			roles, err := e.st.Identity().Memberships(ctx, user.ID)
			if err != nil || roles[store.DefaultTeamID] != "" {
				t.Errorf("a membership whose audit failed was kept: %v (%v)", roles, err)
			}
			got, err := e.st.Templates().GetTemplate(ctx, tpl.ID)
			if err != nil || got.Visibility != store.VisibilityPrivate || got.Latest != 1 {
				t.Errorf("a template change whose audit failed was kept: %+v (%v)", got, err)
			}
			if _, reloads, _ := e.eng.calls(); len(reloads) != len(systemReloads) {
				t.Errorf("the engine reopened systems for rolled-back changes: %v → %v", systemReloads, reloads)
			}
		})
	}
}
