package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripts"
	"github.com/duplexsync/duplex/server"
)

// level is the least a caller needs for a route, written here by hand from
// the role model and NOT read from the server's rule table, so a
// wrong rule fails this test.
type level int

const (
	lvPublic   level = iota // anyone, signed in or not
	lvSignedIn              // any user
	lvAnyAdmin              // an admin of some team (the audit log shows their teams' entries)
	lvViewer                // viewer of the team owning the resource
	lvEditor                // editor there
	lvAdmin                 // admin there
	lvOrgAdmin              // org admin
)

// routeLevels lists every route the server registers. A new route that is
// not listed here fails TestRoleMatrix.
var routeLevels = map[string]level{
	"GET /healthz":         lvPublic,
	"GET /livez":           lvPublic,
	"GET /readyz":          lvPublic,
	"GET /metrics":         lvOrgAdmin,
	"POST /hooks/:system":  lvPublic,
	"POST /api/auth/login": lvPublic,
	"POST /api/auth/auto":  lvPublic,
	"POST /api/setup":      lvPublic,

	"POST /api/auth/logout":      lvSignedIn,
	"GET /api/me":                lvSignedIn,
	"PUT /api/me/password":       lvSignedIn,
	"GET /api/me/tokens":         lvSignedIn,
	"POST /api/me/tokens":        lvSignedIn,
	"DELETE /api/me/tokens/:id":  lvSignedIn,
	"GET /api/teams":             lvSignedIn,
	"GET /api/systems":           lvSignedIn,
	"GET /api/connector-kinds":   lvSignedIn,
	"GET /api/connections":       lvSignedIn,
	"GET /api/events":            lvSignedIn,
	"GET /api/alerts":            lvSignedIn, // filtered to the caller's teams
	"GET /api/templates":         lvSignedIn,
	"GET /api/templates/:name":   lvSignedIn,
	"GET /api/script-api.d.ts":   lvSignedIn,
	"GET /api/openapi.json":      lvPublic,
	"GET /api/audit":             lvAnyAdmin,
	"POST /api/teams":            lvOrgAdmin,
	"GET /api/users":             lvAnyAdmin, // team admins get a directory to add members from
	"POST /api/users":            lvOrgAdmin,
	"PUT /api/users/:id":         lvOrgAdmin,
	"GET /api/outbound-policy":   lvOrgAdmin,
	"PUT /api/outbound-policy":   lvOrgAdmin,
	"GET /api/org-settings":      lvOrgAdmin,
	"PUT /api/org-settings":      lvOrgAdmin,
	"GET /api/teams/:id/members": lvAdmin,

	"PUT /api/teams/:id/members/:user":    lvAdmin,
	"DELETE /api/teams/:id/members/:user": lvAdmin,

	"POST /api/systems":                  lvAdmin, // body names team 1
	"GET /api/systems/:id":               lvViewer,
	"PUT /api/systems/:id":               lvAdmin,
	"DELETE /api/systems/:id":            lvAdmin,
	"GET /api/systems/:id/schema":        lvViewer,
	"GET /api/systems/:id/deliveries":    lvViewer,
	"POST /api/systems/:id/test":         lvEditor,
	"POST /api/connections":              lvEditor, // body names team 1
	"GET /api/connections/:id":           lvViewer,
	"GET /api/connections/:id/twins":     lvViewer,
	"POST /api/connections/:id/twins":    lvEditor,
	"GET /api/connections/:id/backfills": lvViewer,
	"POST /api/connections/:id/backfill": lvEditor,

	"PUT /api/connections/:id/scripts/:side/:kind":           lvEditor,
	"GET /api/connections/:id/scripts/:side/:kind/versions":  lvViewer,
	"POST /api/connections/:id/scripts/:side/:kind/validate": lvEditor,
	"GET /api/connections/:id/rules/:side":                   lvViewer,
	"PUT /api/connections/:id/rules/:side":                   lvEditor,
	"GET /api/connections/:id/rules/:side/versions":          lvViewer,
	"POST /api/connections/:id/rules/:side/validate":         lvEditor,
	"POST /api/connections/:id/trigger-preview":              lvEditor,
	"PUT /api/connections/:id/conflict-policy":               lvEditor,
	"POST /api/connections/:id/activate":                     lvEditor,
	"POST /api/connections/:id/pause":                        lvEditor,
	"POST /api/connections/:id/test-run":                     lvEditor,
	"POST /api/connections/:id/impact":                       lvEditor,
	"GET /api/connections/:id/mapping/:direction":            lvViewer,
	"PUT /api/connections/:id/mapping/:direction":            lvEditor,
	"POST /api/connections/:id/mapping/:direction/render":    lvEditor,
	"POST /api/connections/:id/mapping/:direction/suggest":   lvEditor,
	"PUT /api/connections/:id/options":                       lvEditor,
	"POST /api/connections/:id/link-existing":                lvEditor,
	"POST /api/connections/:id/retry-failed":                 lvEditor,
	"DELETE /api/twins/:id":                                  lvEditor,

	// Team templates: the matrix's template is org-wide, so every signed-in
	// caller sees it; a template a caller cannot see answers 404, which
	// TestTeamTemplateShareForkUpgrade checks.
	"GET /api/team-templates/:id":                   lvSignedIn,
	"GET /api/team-templates/:id/versions":          lvSignedIn,
	"GET /api/team-templates/:id/versions/:version": lvSignedIn,
	"GET /api/team-templates/:id/archive":           lvSignedIn,
	"POST /api/team-templates/:id/versions":         lvEditor,
	"PUT /api/team-templates/:id/sharing":           lvAdmin,
	"POST /api/team-templates/:id/fork":             lvEditor, // into team 1
	"POST /api/team-templates/import":               lvEditor, // ?team_id=1
	"POST /api/connections/:id/save-as-template":    lvEditor,
	"GET /api/connections/:id/template-status":      lvViewer,
	"POST /api/connections/:id/upgrade-template":    lvEditor,

	"GET /api/events/:id":          lvViewer,
	"POST /api/events/:id/retry":   lvEditor,
	"POST /api/events/:id/resolve": lvEditor,
	"POST /api/events/:id/skip":    lvEditor,

	// Peer links: the peer endpoints take signed messages, not sessions.
	"POST /peer/v1/redeem":            lvPublic,
	"POST /peer/v1/messages":          lvPublic,
	"GET /api/peer-links":             lvSignedIn, // filtered to the caller's teams
	"POST /api/peer-links":            lvAdmin,    // body names team 1
	"POST /api/peer-links/accept":     lvAdmin,    // body names team 1
	"GET /api/peer-links/:id":         lvViewer,
	"POST /api/peer-links/:id/pause":  lvAdmin,
	"POST /api/peer-links/:id/resume": lvAdmin,
	"POST /api/peer-links/:id/revoke": lvAdmin,
}

// caller is one identity the matrix tries, weakest first: destructive
// routes then run for the strongest callers last.
type caller struct {
	name  string
	token string
	// rank compares with the team-scoped levels; admin elsewhere counts
	// only for lvAnyAdmin.
	rank           int
	adminSomewhere bool
	orgAdmin       bool
}

func (c caller) allowed(l level) bool {
	switch l {
	case lvPublic:
		return true
	case lvSignedIn:
		return c.token != ""
	case lvAnyAdmin:
		return c.adminSomewhere || c.orgAdmin
	case lvOrgAdmin:
		return c.orgAdmin
	}
	return c.orgAdmin || c.rank >= int(l-lvViewer)+1
}

// TestRoleMatrix calls every route as anonymous, another team's admin, and a
// viewer, editor and admin of the team owning the resources, and an org
// admin, and checks each is allowed or refused as routeLevels says.
func TestRoleMatrix(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { roleMatrix(t, b.Open(t)) })
	}
}

func roleMatrix(t *testing.T, st *store.Store) {
	ctx := context.Background()
	box, err := secret.LoadOrCreate(t.TempDir() + "/key")
	if err != nil {
		t.Fatal(err)
	}
	lib, _ := scripts.Builtin()
	h := server.New(server.Options{Store: st, Engine: &fakeEngine{}, Secrets: box, Templates: lib,
		Logger: slog.New(slog.DiscardHandler), Auth: server.AuthOptions{Password: cheap}})

	// Team 1 owns everything the routes name; team 2's admin is the outsider.
	beta := store.Team{Name: "beta"}
	if err := st.Identity().CreateTeam(ctx, &beta); err != nil {
		t.Fatal(err)
	}
	callers := []caller{
		{name: "anonymous"},
		{name: "other team's admin", token: userToken(t, st, "beta@test", false, map[int64]store.Role{beta.ID: store.RoleAdmin}), adminSomewhere: true},
		{name: "viewer", token: userToken(t, st, "viewer@test", false, map[int64]store.Role{1: store.RoleViewer}), rank: 1},
		{name: "editor", token: userToken(t, st, "editor@test", false, map[int64]store.Role{1: store.RoleEditor}), rank: 2},
		{name: "admin", token: userToken(t, st, "admin@test", false, map[int64]store.Role{1: store.RoleAdmin}), rank: 3, adminSomewhere: true},
		{name: "org admin", token: userToken(t, st, "org@test", true, nil), orgAdmin: true},
	}
	userToken(t, st, "spare@test", false, map[int64]store.Role{1: store.RoleViewer})
	spare, _ := st.Identity().UserByEmail(ctx, "spare@test")

	sa := store.System{Name: "a", Kind: "sql"}
	sb := store.System{Name: "b", Kind: "sql"}
	for _, s := range []*store.System{&sa, &sb} {
		if err := st.CreateSystem(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	conn := store.Connection{Name: "c", SystemAID: sa.ID, SystemBID: sb.ID}
	if err := st.CreateConnection(ctx, &conn, nil, "test"); err != nil {
		t.Fatal(err)
	}
	aid, bid := "1", "2"
	twin := store.Twin{ConnectionID: conn.ID, AID: &aid, BID: &bid}
	if err := st.DB().Create(&twin).Error; err != nil {
		t.Fatal(err)
	}
	ev := store.SyncEvent{ConnectionID: conn.ID, TwinID: twin.ID, Direction: store.AToB, SourceID: "1",
		Replica: "{}", Status: store.StatusFailed, NextAttemptAt: st.Now()}
	if err := st.InsertEvents(ctx, []store.SyncEvent{ev}); err != nil {
		t.Fatal(err)
	}
	evs, _ := st.ListEvents(ctx, store.EventFilter{})
	tpl := store.TeamTemplate{TeamID: 1, Name: "matrix", Visibility: store.VisibilityOrg}
	if _, err := st.Templates().CreateTemplate(ctx, &tpl, `{}`, "test", ""); err != nil {
		t.Fatal(err)
	}

	link := store.PeerLink{TeamID: 1, Name: "matrix", ConnectionID: conn.ID, SystemID: sb.ID, PeerSide: store.SideB,
		LocalNode: "matrixnode", PrivateKey: []byte{0}, PublicKey: []byte{0}, Status: store.PeerActive}
	if err := st.CreatePeerLink(ctx, &link, nil); err != nil {
		t.Fatal(err)
	}

	fill := strings.NewReplacer(
		":system", fmt.Sprint(sa.ID), ":side", "a", ":kind", "outgoing", ":name", "support-escalation",
		":user", fmt.Sprint(spare.ID), ":version", "1", ":direction", "b_to_a")
	idFor := func(path string) string {
		switch {
		case strings.HasPrefix(path, "/api/systems/"):
			return fmt.Sprint(sa.ID)
		case strings.HasPrefix(path, "/api/connections/"):
			return fmt.Sprint(conn.ID)
		case strings.HasPrefix(path, "/api/twins/"):
			return fmt.Sprint(twin.ID)
		case strings.HasPrefix(path, "/api/events/"):
			return fmt.Sprint(evs[0].ID)
		case strings.HasPrefix(path, "/api/teams/"):
			return "1"
		case strings.HasPrefix(path, "/api/users/"):
			return fmt.Sprint(spare.ID)
		case strings.HasPrefix(path, "/api/team-templates/"):
			return fmt.Sprint(tpl.ID)
		case strings.HasPrefix(path, "/api/peer-links/"):
			return fmt.Sprint(link.ID)
		}
		return "999"
	}
	bodies := map[string]string{
		"POST /api/systems":                                   `{"team_id":1}`,
		"POST /api/connections":                               `{"team_id":1}`,
		"POST /api/peer-links":                                `{"team_id":1}`,
		"POST /api/peer-links/accept":                         `{"team_id":1}`,
		"PUT /api/teams/:id/members/:user":                    `{"role":"viewer"}`,
		"PUT /api/me/password":                                `{"current":"wrong","new":"long enough password"}`,
		"PUT /api/users/:id":                                  `{}`,
		"PUT /api/outbound-policy":                            `{"allow":[]}`,
		"PUT /api/org-settings":                               `{}`,
		"POST /api/events/:id/skip":                           `{"reason":"matrix"}`,
		"PUT /api/connections/:id/scripts/:side/:kind":        `{"source":"replica.x = 1;"}`,
		"PUT /api/team-templates/:id/sharing":                 `{"visibility":"org"}`,
		"PUT /api/connections/:id/rules/:side":                `{"rules":[{"field":"email","kind":"email"}]}`,
		"POST /api/connections/:id/rules/:side/validate":      `{"rules":[]}`,
		"POST /api/team-templates/:id/fork":                   `{"team_id":1,"name":"forked"}`,
		"PUT /api/connections/:id/mapping/:direction":         `{"mapping":{"rows":[],"comments":{"sync":false}}}`,
		"POST /api/connections/:id/mapping/:direction/render": `{"mapping":{"rows":[],"comments":{"sync":false}}}`,
	}
	queries := map[string]string{"POST /api/team-templates/import": "?team_id=1"}

	// Every registered route is in the table, and every table row is a route.
	registered := map[string]bool{}
	var routes []gin.RouteInfo
	for _, r := range h.(*gin.Engine).Routes() {
		key := r.Method + " " + r.Path
		registered[key] = true
		if _, ok := routeLevels[key]; !ok {
			t.Errorf("route %s has no expected level in routeLevels: add it (and its access rule)", key)
			continue
		}
		routes = append(routes, r)
	}
	for key := range routeLevels {
		if !registered[key] {
			t.Errorf("routeLevels lists %s, which the server does not register", key)
		}
	}
	// Deletes last (the twin's last of all), so they do not remove what
	// other routes need.
	sort.SliceStable(routes, func(i, j int) bool {
		return deleteRank(routes[i]) < deleteRank(routes[j])
	})

	for _, r := range routes {
		key := r.Method + " " + r.Path
		want := routeLevels[key]
		path := fill.Replace(strings.Replace(r.Path, ":id", idFor(r.Path), 1)) + queries[key]
		body := bodies[key]
		if body == "" && r.Method != "GET" {
			body = "{}"
		}
		for _, c := range callers {
			req := httptest.NewRequest(r.Method, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var e struct{ Code string }
			_ = json.Unmarshal(rec.Body.Bytes(), &e)
			refused := e.Code == "unauthenticated" || (e.Code == "forbidden" && want != lvPublic)
			if ok := c.allowed(want); ok == refused {
				t.Errorf("%s as %s: %d %s; want allowed=%v", key, c.name, rec.Code, strings.TrimSpace(rec.Body.String()), ok)
			}
			if refused && rec.Code != 401 && rec.Code != 403 {
				t.Errorf("%s as %s: refused with status %d", key, c.name, rec.Code)
			}
		}
	}
}

func deleteRank(r gin.RouteInfo) int {
	switch {
	case r.Path == "/api/twins/:id":
		return 2
	case r.Method == "DELETE":
		return 1
	}
	return 0
}
