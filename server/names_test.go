package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/server"
)

// TestNamesPerTeam: names of systems and connections are unique per team
// (migration 00019), so a team admin who picks a name another team uses
// gets the same answer as for a fresh name (201), and nothing of the other
// team is told; a name taken in one's own team is still 409 (issue 24: a
// 409 used to tell that another team had an object of that name).
func TestNamesPerTeam(t *testing.T) {
	e := newAuthEnv(t, server.AuthOptions{})
	ctx := context.Background()
	beta := store.Team{Name: "beta"}
	if err := e.st.Identity().CreateTeam(ctx, &beta); err != nil {
		t.Fatal(err)
	}
	adminA := userToken(t, e.st, "a@test", false, map[int64]store.Role{1: store.RoleAdmin})
	adminB := userToken(t, e.st, "b@test", false, map[int64]store.Role{beta.ID: store.RoleAdmin})
	type obj struct {
		ID     int64
		Name   string
		TeamID int64 `json:"team_id"`
	}
	create := func(tok, path, body string) (int, obj, string) {
		rec := e.do(req{method: "POST", path: path, body: body, bearer: tok})
		var o obj
		if rec.Code == 201 {
			o = decode[obj](t, rec)
		}
		return rec.Code, o, rec.Body.String()
	}
	system := func(name string, team int64) string {
		return fmt.Sprintf(`{"name":%q,"kind":"sql","team_id":%d,"settings":{"table":"t"}}`, name, team)
	}
	connection := func(name string, team, a, b int64) string {
		return fmt.Sprintf(`{"name":%q,"team_id":%d,"system_a_id":%d,"system_b_id":%d}`, name, team, a, b)
	}

	// Team A's objects.
	code, sa, body := create(adminA, "/api/systems", system("payroll-db", 1))
	if code != 201 {
		t.Fatalf("A's system: %d %s", code, body)
	}
	code, ca, body := create(adminA, "/api/connections", connection("payroll-sync", 1, sa.ID, sa.ID))
	if code != 201 {
		t.Fatalf("A's connection: %d %s", code, body)
	}

	// Team B: a fresh name and A's name answer alike.
	code, fresh, body := create(adminB, "/api/systems", system("fresh-name", beta.ID))
	if code != 201 {
		t.Fatalf("B's fresh system: %d %s", code, body)
	}
	code, sb, body := create(adminB, "/api/systems", system("payroll-db", beta.ID))
	if code != 201 || sb.TeamID != beta.ID || sb.ID == sa.ID {
		t.Fatalf("B's system named like A's: %d %s (a fresh name answered 201)", code, body)
	}
	code, _, body = create(adminB, "/api/connections", connection("fresh-conn", beta.ID, fresh.ID, sb.ID))
	if code != 201 {
		t.Fatalf("B's fresh connection: %d %s", code, body)
	}
	code, cb, body := create(adminB, "/api/connections", connection("payroll-sync", beta.ID, sb.ID, sb.ID))
	if code != 201 || cb.ID == ca.ID {
		t.Fatalf("B's connection named like A's: %d %s", code, body)
	}

	// Within one team a name is still taken (one's own team's names).
	if code, _, body := create(adminB, "/api/systems", system("payroll-db", beta.ID)); code != 409 {
		t.Fatalf("B's second payroll-db: %d %s", code, body)
	}
	if code, _, body := create(adminB, "/api/connections", connection("payroll-sync", beta.ID, sb.ID, sb.ID)); code != 409 {
		t.Fatalf("B's second payroll-sync: %d %s", code, body)
	}
	// Renaming onto a name of another team works too; onto one's own, 409.
	rec := e.do(req{method: "PUT", path: fmt.Sprintf("/api/systems/%d", fresh.ID), body: `{"name":"payroll-db"}`, bearer: adminB})
	if rec.Code != 409 {
		t.Fatalf("rename onto B's own name: %d %s", rec.Code, rec.Body)
	}

	// B's lists hold only B's objects; A's are intact and A's alone.
	for _, path := range []string{"/api/systems", "/api/connections"} {
		for _, o := range decode[[]obj](t, e.do(req{method: "GET", path: path, bearer: adminB})) {
			if o.TeamID != beta.ID || o.ID == sa.ID || o.ID == ca.ID {
				t.Fatalf("B's %s lists %+v", path, o)
			}
		}
	}
	got, err := e.st.GetSystem(ctx, sa.ID)
	if err != nil || got.Name != "payroll-db" || got.TeamID != 1 || !strings.Contains(got.Settings, `"t"`) {
		t.Fatalf("A's system after B's: %+v %v", got, err)
	}
	for _, path := range []string{fmt.Sprintf("/api/systems/%d", sa.ID), fmt.Sprintf("/api/connections/%d", ca.ID)} {
		if rec := e.do(req{method: "GET", path: path, bearer: adminB}); rec.Code != 403 {
			t.Fatalf("B reads A's %s: %d", path, rec.Code)
		}
	}
}
