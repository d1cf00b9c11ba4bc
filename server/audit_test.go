package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpconn"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
	"github.com/duplexsync/duplex/server"
)

// Every audited action leaves an entry with the actor and the team, readable
// by the team's admins and nobody else's.
func TestAuditTrail(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { auditTrail(t, b.Open(t)) })
	}
}

func auditTrail(t *testing.T, st *store.Store) {
	ctx := context.Background()
	lib, _ := scripts.Builtin()
	h := server.New(server.Options{Store: st, Engine: &fakeEngine{}, Secrets: mustBox(t), Templates: lib,
		Logger: slog.New(slog.DiscardHandler), Auth: server.AuthOptions{Password: cheap}})
	beta := store.Team{Name: "beta"}
	_ = st.Identity().CreateTeam(ctx, &beta)
	admin := userToken(t, st, "admin@test", false, map[int64]store.Role{1: store.RoleAdmin})
	editor := userToken(t, st, "editor@test", false, map[int64]store.Role{1: store.RoleEditor})
	betaAdmin := userToken(t, st, "beta@test", false, map[int64]store.Role{beta.ID: store.RoleAdmin})
	org := userToken(t, st, "org@test", true, nil)
	ed, _ := st.Identity().UserByEmail(ctx, "editor@test")

	call := func(tok, method, path, body string, want int) []byte {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, rec.Code, want, rec.Body)
		}
		return rec.Body.Bytes()
	}
	var sys struct{ ID int64 }
	_ = json.Unmarshal(call(admin, "POST", "/api/systems", `{"name":"s","kind":"sql","secrets":{"dsn":"hunter2-value"}}`, 201), &sys)
	call(admin, "PUT", fmt.Sprintf("/api/systems/%d", sys.ID), `{"secrets":{"dsn":"hunter3-value"}}`, 200)
	var conn struct{ ID int64 }
	_ = json.Unmarshal(call(editor, "POST", "/api/connections", fmt.Sprintf(`{"name":"c","system_a_id":%d,"system_b_id":%d}`, sys.ID, sys.ID), 201), &conn)
	cp := fmt.Sprintf("/api/connections/%d", conn.ID)
	call(editor, "PUT", cp+"/scripts/a/outgoing", `{"source":"replica.t = entity.t;"}`, 200)
	call(editor, "PUT", cp+"/scripts/a/trigger", `{"source":"true"}`, 200)
	call(editor, "POST", cp+"/activate", ``, 200)
	call(editor, "POST", cp+"/pause", ``, 200)
	call(editor, "PUT", cp+"/conflict-policy", `{"default":"manual"}`, 200)
	call(admin, "PUT", fmt.Sprintf("/api/teams/1/members/%d", ed.ID), `{"role":"viewer"}`, 200)
	call(admin, "PUT", fmt.Sprintf("/api/teams/1/members/%d", ed.ID), `{"role":"editor"}`, 200)

	aid, bid := "1", "2"
	twin := store.Twin{ConnectionID: conn.ID, AID: &aid, BID: &bid}
	_ = st.DB().Create(&twin).Error
	conflicts := `[{"field":"title"}]`
	_ = st.InsertEvents(ctx, []store.SyncEvent{
		{ConnectionID: conn.ID, TwinID: twin.ID, Direction: store.AToB, SourceID: "1", Replica: "{}", Status: store.StatusFailed, NextAttemptAt: time.Now()},
		{ConnectionID: conn.ID, TwinID: twin.ID, Direction: store.AToB, SourceID: "1", Replica: "{}", Status: store.StatusConflict, NextAttemptAt: time.Now(), Conflicts: &conflicts},
	})
	evs, _ := st.ListEvents(ctx, store.EventFilter{})
	call(editor, "POST", fmt.Sprintf("/api/events/%d/skip", evs[1].ID), `{"reason":"duplicate ticket"}`, 200)
	call(editor, "POST", fmt.Sprintf("/api/events/%d/resolve", evs[0].ID), `{"title":{"take":"source"}}`, 200)
	call(admin, "DELETE", fmt.Sprintf("/api/teams/1/members/%d", ed.ID), ``, 204)

	var entries []store.AuditEntry
	_ = json.Unmarshal(call(admin, "GET", "/api/audit?limit=100", "", 200), &entries)
	want := map[string]string{ // action → actor
		"system.create": "admin@test", "system.update": "admin@test", "connection.create": "editor@test",
		"script.save": "editor@test", "connection.activate": "editor@test", "connection.pause": "editor@test",
		"connection.conflict_policy": "editor@test", "member.role": "admin@test", "member.remove": "admin@test",
		"event.skip": "editor@test", "event.resolve": "editor@test",
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if e.TeamID == nil || *e.TeamID != 1 {
			t.Errorf("entry %s has team %v, want 1", e.Action, e.TeamID)
		}
		if actor, ok := want[e.Action]; ok {
			if e.Actor != actor+" (token test)" {
				t.Errorf("%s by %q, want %q", e.Action, e.Actor, actor)
			}
			seen[e.Action] = true
		}
		if strings.Contains(e.Detail, "hunter") {
			t.Errorf("audit entry %s holds a secret value: %s", e.Action, e.Detail)
		}
	}
	for a := range want {
		if !seen[a] {
			t.Errorf("no audit entry for %s", a)
		}
	}
	var scripts int
	for _, e := range entries {
		if e.Action == "script.save" {
			scripts++
		}
	}
	if scripts != 2 { // the outgoing script and the trigger
		t.Errorf("%d script.save entries, want 2", scripts)
	}
	// Another team's admin sees none of it; an org admin sees it all; the
	// editor (removed above, so re-added) is not an admin and is refused.
	_ = json.Unmarshal(call(betaAdmin, "GET", "/api/audit", "", 200), &entries)
	if len(entries) != 0 {
		t.Fatalf("another team's admin reads %d entries: %+v", len(entries), entries)
	}
	var all []store.AuditEntry
	_ = json.Unmarshal(call(org, "GET", "/api/audit?limit=100", "", 200), &all)
	if len(all) <= len(want) {
		t.Fatalf("org admin reads %d entries", len(all))
	}
	_ = st.Identity().SetMembership(ctx, 1, ed.ID, store.RoleEditor)
	call(editor, "GET", "/api/audit", "", 403)
}

// Secret values never come back from the API and never reach the log, also
// when the remote system fails.
func TestSecretsNeverLeave(t *testing.T) {
	st := testdb.SQLite(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := connectors.NewRegistry()
	_ = reg.Register("http", httpconn.New)
	box := mustBox(t)
	eng := engine.New(engine.Options{Store: st, Connectors: reg, Secrets: box, Logger: logger,
		Runner: scripting.NewRunner(scripting.Options{})})
	t.Cleanup(func() { _ = eng.Close() })
	lib, _ := scripts.Builtin()
	h := server.New(server.Options{Store: st, Engine: eng, Secrets: box, Templates: lib, Logger: logger,
		Auth: server.AuthOptions{Password: cheap}})
	tok := rootToken(t, st)
	const value = "tok-S3CR3T-4242"

	// A remote that fails every request and echoes what it was sent, as a
	// careless server would, into its error answer.
	var sawToken atomic.Bool
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dump := fmt.Sprintf("%v %v", r.URL, r.Header)
		if strings.Contains(dump, value) {
			sawToken.Store(true)
		}
		http.Error(w, "bad gateway: "+dump, http.StatusBadGateway)
	}))
	t.Cleanup(remote.Close)
	var bodies []string
	call := func(method, path, body string) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		bodies = append(bodies, rec.Body.String())
	}
	settings := fmt.Sprintf(`{"url":%q,"list_path":"/items?since={since}","get_path":"/items/{id}","create_path":"/items","update_path":"/items/{id}"}`, remote.URL)
	call("POST", "/api/systems", `{"name":"h","kind":"http","settings":`+settings+`,"secrets":{"token":"`+value+`","webhook_secret":"`+value+`"}}`)
	call("GET", "/api/systems", "")
	call("GET", "/api/systems/1", "")
	call("POST", "/api/systems/1/test", "{}")
	call("GET", "/api/systems/1/schema", "")
	call("POST", "/api/connections", `{"name":"c","system_a_id":1,"system_b_id":1}`)
	call("POST", "/api/connections/1/trigger-preview", `{"side":"a","source":"true"}`)
	call("POST", "/api/connections/1/test-run", `{"side":"a","id":"1"}`)
	call("PUT", "/api/systems/1", `{"secrets":{"token":"`+value+`"}}`)
	call("GET", "/api/audit", "")
	call("POST", "/api/systems", `{"name":"h","kind":"http","settings":`+settings+`,"secrets":{"token":"`+value+`"}}`) // conflict
	for i, b := range bodies {
		if strings.Contains(b, value) {
			t.Fatalf("answer %d holds the secret: %s", i, b)
		}
	}
	if strings.Contains(logs.String(), value) {
		t.Fatalf("the log holds the secret:\n%s", logs.String())
	}
	if !sawToken.Load() {
		t.Fatalf("no request reached the remote with the token, so the check above proves little; answers: %v", bodies)
	}
	// And the database holds it only sealed.
	var raw []byte
	_ = st.DB().Raw("SELECT secrets FROM systems WHERE id = 1").Row().Scan(&raw)
	if bytes.Contains(raw, []byte(value)) || len(raw) == 0 {
		t.Fatalf("stored secrets: %q", raw)
	}
}
