package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/sqlconn"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/demo"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
	"github.com/duplexsync/duplex/server"
)

type env struct {
	t     *testing.T
	st    *store.Store
	eng   *engine.Engine
	h     http.Handler
	paths demo.Paths
	tok   string
}

// newEnv serves the API over a real store and engine, with the demo's two
// SQLite databases available as systems (none created yet).
func newEnv(t *testing.T, st *store.Store) *env {
	t.Helper()
	ctx := context.Background()
	box, err := secret.LoadOrCreate(t.TempDir() + "/k")
	if err != nil {
		t.Fatal(err)
	}
	reg := connectors.NewRegistry()
	if err := reg.Register("sql", sqlconn.New); err != nil {
		t.Fatal(err)
	}
	// A connector without the optional interfaces (no Finder, no
	// Correlating): the sql one behind a plain Connector.
	if err := reg.Register("sql-plain", func(ctx context.Context, cfg connectors.Config) (connectors.Connector, error) {
		c, err := sqlconn.New(ctx, cfg)
		return plainConnector{c}, err
	}); err != nil {
		t.Fatal(err)
	}
	eng := engine.New(engine.Options{Store: st, Connectors: reg, Secrets: box,
		Runner: scripting.NewRunner(scripting.Options{Timeout: time.Second})})
	t.Cleanup(func() { _ = eng.Close() })
	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	paths, err := demo.CreateDatabases(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := server.New(server.Options{Store: st, Engine: eng, Secrets: box, Templates: lib, MaxBodyBytes: 64 << 10})
	return &env{t: t, st: st, eng: eng, h: h, paths: paths, tok: rootToken(t, st)}
}

// do sends a request and decodes the JSON answer into out (if not nil).
func (e *env) do(method, path, body string, out any) int {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.tok)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			e.t.Fatalf("%s %s: %d, body %q is not JSON: %v", method, path, rec.Code, rec.Body.String(), err)
		}
	}
	return rec.Code
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

type apiErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
}

// systems creates the demo's two systems through the API.
func (e *env) systems() (int64, int64) {
	e.t.Helper()
	var a, b struct {
		ID         int64          `json:"id"`
		SecretKeys []string       `json:"secret_keys"`
		Settings   map[string]any `json:"settings"`
	}
	body := mustJSON(map[string]any{"name": "desk", "kind": "sql", "settings": demo.SupportSettings(e.paths.Support),
		"secrets": map[string]string{"api_token": "hunter2-secret"}, "poll_interval_ms": 500})
	if code := e.do("POST", "/api/systems", body, &a); code != http.StatusCreated {
		e.t.Fatalf("create system: %d", code)
	}
	body = mustJSON(map[string]any{"name": "tracker", "kind": "sql", "settings": demo.EngineeringSettings(e.paths.Engineering)})
	if code := e.do("POST", "/api/systems", body, &b); code != http.StatusCreated {
		e.t.Fatalf("create system: %d", code)
	}
	if len(a.SecretKeys) != 1 || a.SecretKeys[0] != "api_token" || a.Settings["table"] != "tickets" {
		e.t.Fatalf("system response: %+v", a)
	}
	return a.ID, b.ID
}

func TestAPI(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			ctx := context.Background()
			var health map[string]string
			if code := e.do("GET", "/healthz", "", &health); code != 200 || health["status"] != "ok" {
				t.Fatalf("healthz %d %v", code, health)
			}
			sa, sb := e.systems()

			// Secrets never come back and are not stored in plain text.
			for _, path := range []string{"/api/systems", "/api/systems/1"} {
				req := httptest.NewRequest("GET", path, nil)
				req.Header.Set("Authorization", "Bearer "+e.tok)
				rec := httptest.NewRecorder()
				e.h.ServeHTTP(rec, req)
				if rec.Code != 200 || strings.Contains(rec.Body.String(), "hunter2") {
					t.Fatalf("%s leaks a secret: %s", path, rec.Body.String())
				}
			}
			sys, _ := e.st.GetSystem(ctx, sa)
			if len(sys.Secrets) == 0 || bytes.Contains(sys.Secrets, []byte("hunter2")) {
				t.Fatalf("secrets stored in plain text or not at all: %q", sys.Secrets)
			}

			// A connection from the template.
			var conn struct {
				ID      int64 `json:"id"`
				Scripts map[string]map[string]struct {
					Version int    `json:"version"`
					Source  string `json:"source"`
				} `json:"scripts"`
			}
			body := mustJSON(map[string]any{"name": "esc", "system_a_id": sa, "system_b_id": sb,
				"template": "support-escalation", "active": true})
			if code := e.do("POST", "/api/connections", body, &conn); code != http.StatusCreated {
				t.Fatalf("create connection: %d", code)
			}
			if !strings.Contains(conn.Scripts["b"]["incoming"].Source, `"urgent":"critical"`) {
				t.Fatalf("template parameters not rendered: %q", conn.Scripts["b"]["incoming"].Source)
			}

			// Compile errors come back as 422 with the real position.
			cases := []struct {
				name, method, path, body string
				status                   int
				code                     string
				line, col                int
			}{
				{"js syntax", "PUT", "/api/connections/1/scripts/a/outgoing", `{"source":"replica.a = 1;\nreplica.b = ;"}`, 422, "script_invalid", 2, 13},
				{"trigger", "PUT", "/api/connections/1/scripts/a/trigger", `{"source":"status == "}`, 422, "script_invalid", 1, 10},
				{"trigger type", "PUT", "/api/connections/1/scripts/a/trigger", `{"source":"labels + 1 > 2"}`, 422, "script_invalid", 1, 8},
				{"bad side", "PUT", "/api/connections/1/scripts/c/outgoing", `{"source":""}`, 400, "bad_request", 0, 0},
				{"bad kind", "PUT", "/api/connections/1/scripts/a/webhook", `{"source":""}`, 400, "bad_request", 0, 0},
				{"missing source", "PUT", "/api/connections/1/scripts/a/outgoing", `{}`, 400, "bad_request", 0, 0},
				{"unknown field", "PUT", "/api/connections/1/scripts/a/outgoing", `{"src":"x"}`, 400, "bad_request", 0, 0},
				{"malformed", "POST", "/api/systems", `{"name":`, 400, "bad_request", 0, 0},
				{"empty", "POST", "/api/systems", ``, 400, "bad_request", 0, 0},
				{"wrong type", "POST", "/api/systems", `{"name": 5}`, 400, "bad_request", 0, 0},
				{"too large", "POST", "/api/systems", `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "too_large", 0, 0},
				{"duplicate name", "POST", "/api/systems", `{"name":"desk","kind":"sql","settings":{}}`, 409, "conflict", 0, 0},
				{"no such system", "GET", "/api/systems/99", ``, 404, "not_found", 0, 0},
				{"bad id", "GET", "/api/systems/x", ``, 400, "bad_request", 0, 0},
				{"system in use", "DELETE", "/api/systems/1", ``, 409, "conflict", 0, 0},
				{"no such template", "GET", "/api/templates/nope", ``, 404, "not_found", 0, 0},
				{"no such route", "GET", "/api/nope", ``, 404, "not_found", 0, 0},
				{"retry missing", "POST", "/api/events/999/retry", ``, 404, "not_found", 0, 0},
				{"bad policy", "PUT", "/api/connections/1/conflict-policy", `{"default":"loudest"}`, 400, "bad_request", 0, 0},
				{"test run without entity", "POST", "/api/connections/1/test-run", `{"side":"a"}`, 400, "bad_request", 0, 0},
				{"test run missing entity", "POST", "/api/connections/1/test-run", `{"side":"a","entity_id":"404"}`, 404, "not_found", 0, 0},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					var got apiErr
					if code := e.do(tc.method, tc.path, tc.body, &got); code != tc.status || got.Code != tc.code {
						t.Fatalf("%d %+v, want %d %s", code, got, tc.status, tc.code)
					}
					if tc.line != 0 && (got.Line != tc.line || got.Column != tc.col) {
						t.Fatalf("position %d:%d, want %d:%d (%s)", got.Line, got.Column, tc.line, tc.col, got.Message)
					}
					if got.Message == "" {
						t.Fatal("no message")
					}
				})
			}

			// Each save is a new version; history lists them newest first.
			var v struct{ Version int }
			for i, src := range []string{"replica.title = entity.subject;", "replica.title = entity.subject.toUpperCase();"} {
				if code := e.do("PUT", "/api/connections/1/scripts/a/outgoing", mustJSON(map[string]string{"source": src}), &v); code != 200 || v.Version != i+2 {
					t.Fatalf("save %d: %d version %d", i, code, v.Version)
				}
			}
			var hist []struct {
				Version int
				Author  string
			}
			if code := e.do("GET", "/api/connections/1/scripts/a/outgoing/versions", "", &hist); code != 200 || len(hist) != 3 || hist[0].Version != 3 {
				t.Fatalf("history %d %+v", code, hist)
			}

			// Pause, activate, test run.
			var c2 struct{ Active bool }
			if code := e.do("POST", "/api/connections/1/pause", "", &c2); code != 200 || c2.Active {
				t.Fatalf("pause: %d %+v", code, c2)
			}
			if code := e.do("POST", "/api/connections/1/activate", "", &c2); code != 200 || !c2.Active {
				t.Fatalf("activate: %d %+v", code, c2)
			}
			var run struct {
				Matched bool
				Replica map[string]any
				Patch   map[string]any
				Error   *apiErr
			}
			if code := e.do("POST", "/api/connections/1/test-run", `{"side":"a","entity_id":"1"}`, &run); code != 200 || !run.Matched ||
				run.Replica["title"] != "CHECKOUT FAILS WITH A 500" || run.Patch["title"] != "CHECKOUT FAILS WITH A 500" || run.Patch["state"] != "new" || run.Error != nil {
				t.Fatalf("test run: %d %+v", code, run)
			}

			// The engine syncs what the API configured; then the queue API.
			// The sql connector leaves rows younger than its settle time
			// (20 ms) for the next poll, so poll until the ticket is taken.
			for deadline := time.Now().Add(5 * time.Second); ; {
				res, err := e.eng.PollOnce(ctx, sa)
				if err != nil {
					t.Fatal(err)
				}
				if res.Enqueued > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(25 * time.Millisecond)
			}
			if _, err := e.eng.WorkOnce(ctx); err != nil {
				t.Fatal(err)
			}
			var evs []struct {
				ID     int64
				Status string
			}
			if code := e.do("GET", "/api/events?status=done&connection_id=1", "", &evs); code != 200 || len(evs) != 1 {
				t.Fatalf("events: %d %+v", code, evs)
			}
			var got apiErr
			if code := e.do("POST", "/api/events/1/retry", "", &got); code != 409 || got.Code != "conflict" {
				t.Fatalf("retry of a done event: %d %+v", code, got)
			}
			if code := e.do("POST", "/api/events/1/resolve", `{"title":{"take":"source"}}`, &got); code != 409 {
				t.Fatalf("resolve of an event without conflict: %d %+v", code, got)
			}
			// A failing script: the error list, retry all, skip with a reason.
			if code := e.do("PUT", "/api/connections/1/scripts/b/incoming", `{"source":"fail_here();"}`, nil); code != 200 {
				t.Fatalf("save failing script: %d", code)
			}
			desk, err := sql.Open("sqlite3", e.paths.Support)
			if err != nil {
				t.Fatal(err)
			}
			defer desk.Close()
			if _, err := desk.Exec("UPDATE tickets SET subject = 'Checkout still fails' WHERE id = 1"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(30 * time.Millisecond) // past the sql connector's settle time
			if _, err := e.eng.PollOnce(ctx, sa); err != nil {
				t.Fatal(err)
			}
			if _, err := e.eng.WorkOnce(ctx); err != nil {
				t.Fatal(err)
			}
			var failed []struct {
				ID        int64
				LastError string `json:"last_error"`
			}
			if code := e.do("GET", "/api/events?status=failed", "", &failed); code != 200 || len(failed) != 1 || !strings.Contains(failed[0].LastError, "fail_here") {
				t.Fatalf("failed list: %d %+v", code, failed)
			}
			var retried struct{ Retried int }
			if code := e.do("POST", "/api/connections/1/retry-failed", "", &retried); code != 200 || retried.Retried != 1 {
				t.Fatalf("retry-failed: %d %+v", code, retried)
			}
			path := fmt.Sprintf("/api/events/%d/skip", failed[0].ID)
			if code := e.do("POST", path, `{}`, &got); code != 400 {
				t.Fatalf("skip without reason: %d", code)
			}
			var skipped struct {
				Status    string
				LastError string `json:"last_error"`
			}
			if code := e.do("POST", path, `{"reason":"known bad data"}`, &skipped); code != 200 || skipped.Status != "skipped" || !strings.Contains(skipped.LastError, "known bad data") {
				t.Fatalf("skip: %d %+v", code, skipped)
			}
			if code := e.do("POST", path, `{"reason":"again"}`, &got); code != 409 {
				t.Fatalf("second skip: %d", code)
			}

			var twins []map[string]any
			if code := e.do("GET", "/api/connections/1/twins", "", &twins); code != 200 || len(twins) != 1 || twins[0]["b_id"] == nil {
				t.Fatalf("twins: %d %+v", code, twins)
			}
			// Unlink the pair, link it again by hand: nothing is written to the systems.
			twinID := int64(twins[0]["id"].(float64))
			var before, after []map[string]any
			var connBefore, connAfter struct{ Counts map[string]float64 }
			if code := e.do("GET", "/api/events", "", &before); code != 200 || len(before) == 0 {
				t.Fatalf("events before unlink: %d %d", code, len(before))
			}
			e.do("GET", "/api/connections/1", "", &connBefore)
			if code := e.do("DELETE", fmt.Sprintf("/api/twins/%d", twinID), "", nil); code != 204 {
				t.Fatalf("unlink: %d", code)
			}
			// The pair's history stays, marked as belonging to an unlinked pair.
			if code := e.do("GET", "/api/events", "", &after); code != 200 || len(after) != len(before) {
				t.Fatalf("events after unlink: %d, %d before, %d after", code, len(before), len(after))
			}
			marked := 0
			for _, ev := range after {
				if ev["twin_id"] == float64(twinID) {
					if p, _ := ev["unlinked_pair"].(string); !strings.HasPrefix(p, fmt.Sprintf("twin %d (a 1, b ", twinID)) {
						t.Fatalf("event of the unlinked pair: %+v", ev)
					}
					marked++
				}
			}
			e.do("GET", "/api/connections/1", "", &connAfter)
			if marked == 0 || fmt.Sprint(connBefore.Counts) != fmt.Sprint(connAfter.Counts) {
				t.Fatalf("after unlink: %d marked events, counts %v → %v", marked, connBefore.Counts, connAfter.Counts)
			}
			if code := e.do("DELETE", fmt.Sprintf("/api/twins/%d", twinID), "", &got); code != 404 {
				t.Fatalf("unlink twice: %d", code)
			}
			var linked map[string]any
			body = mustJSON(map[string]string{"a_id": "1", "b_id": twins[0]["b_id"].(string)})
			if code := e.do("POST", "/api/connections/1/twins", body, &linked); code != 201 || linked["a_id"] != "1" {
				t.Fatalf("link: %d %+v", code, linked)
			}
			if code := e.do("POST", "/api/connections/1/twins", body, &got); code != 409 {
				t.Fatalf("link twice: %d %+v", code, got)
			}
			if code := e.do("PUT", "/api/connections/1/options", `{"on_unmatch":"sometimes"}`, &got); code != 400 {
				t.Fatalf("bad options: %d", code)
			}
			if code := e.do("PUT", "/api/connections/1/options", `{"on_unmatch":"unlink"}`, nil); code != 200 {
				t.Fatalf("options: %d", code)
			}

			var job struct {
				ID     int64
				Status string
			}
			if code := e.do("POST", "/api/connections/1/backfill", `{"side":"a"}`, &job); code != 202 || job.Status != "running" {
				t.Fatalf("backfill: %d %+v", code, job)
			}
			if _, err := e.eng.BackfillOnce(ctx); err != nil {
				t.Fatal(err)
			}
			var jobs []struct{ Status string }
			if code := e.do("GET", "/api/connections/1/backfills", "", &jobs); code != 200 || len(jobs) != 1 || jobs[0].Status != "done" {
				t.Fatalf("backfills: %d %+v", code, jobs)
			}
			var linkedN struct{ Linked int }
			if code := e.do("POST", "/api/connections/1/link-existing", `{"a_field":"key","b_field":"ticket_ref"}`, &linkedN); code != 200 || linkedN.Linked != 0 {
				t.Fatalf("link-existing: %d %+v (ticket 1 is linked already)", code, linkedN)
			}
			if code := e.do("PUT", "/api/connections/1/options", `{}`, nil); code != 200 {
				t.Fatal("reset options")
			}

			var audit []struct{ Action string }
			if code := e.do("GET", "/api/audit?connection_id=1", "", &audit); code != 200 || len(audit) < 5 || audit[0].Action != "connection.options" {
				t.Fatalf("audit: %d %+v", code, audit)
			}
		})
	}
}

// The editor's completion file is served and declares the helpers.
func TestScriptAPIDeclarations(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/script-api.d.ts", nil)
	req.Header.Set("Authorization", "Bearer "+e.tok)
	e.h.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/typescript") ||
		!strings.Contains(rec.Body.String(), "declare function mergeComments(") {
		t.Fatalf("%d %s %.200s", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
}

// The page is served at / and is not an API error.
func TestPage(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	req := httptest.NewRequest("GET", "/", nil)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || !strings.Contains(string(body), "<title>Duplex</title>") {
		t.Fatalf("page: %d %.100s", rec.Code, body)
	}
}
