package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
	"github.com/duplexsync/duplex/server"
)

// fakeEngine records what the server tells the engine, and validates
// triggers the way the engine does: against a fixed schema, through
// scripting.CompileTrigger.
type fakeEngine struct {
	mu            sync.Mutex
	reloads       []int64
	systemReloads []int64
	wakes         int
	schemaErr     error // returned by Schema when set
	panicSchema   bool  // Schema panics, to test the recovery middleware
	testRun       engine.TestRunResult
	stopped       bool // Status reports the engine not running
	// impactHold, when set, makes Impact report on impactIn and wait for it
	// to be closed (the impact gate's test).
	impactHold chan struct{}
	impactIn   chan int64
}

var _ server.Engine = (*fakeEngine)(nil)

func (f *fakeEngine) Status() engine.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return engine.Status{Running: !f.stopped, Pollers: 2}
}

func (f *fakeEngine) Reload(id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads = append(f.reloads, id)
}

func (f *fakeEngine) ReloadSystem(id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.systemReloads = append(f.systemReloads, id)
}

func (f *fakeEngine) CanFind(ctx context.Context, systemID int64) (bool, error) { return true, nil }

func (f *fakeEngine) Wake() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wakes++
}

func (f *fakeEngine) Schema(ctx context.Context, systemID int64) (connectors.Schema, error) {
	f.mu.Lock()
	err, boom := f.schemaErr, f.panicSchema
	f.mu.Unlock()
	if boom {
		panic("schema exploded")
	}
	if err != nil {
		return connectors.Schema{}, err
	}
	return connectors.Schema{EntityType: "ticket", Fields: []connectors.FieldSpec{
		{Name: "labels", Type: connectors.TypeList},
		{Name: "status", Type: connectors.TypeString},
	}}, nil
}

// CheckScript compiles here: the server's tests with a real engine (and its
// sandbox) are in test/.
func (f *fakeEngine) CheckScript(_ context.Context, _ store.Connection, name string, kind scripting.Kind, src string) error {
	_, err := scripting.Compile(name, kind, src)
	return err
}

func (f *fakeEngine) ValidateTrigger(ctx context.Context, systemID int64, src string) error {
	schema, err := f.Schema(ctx, systemID)
	if err != nil {
		return err
	}
	env := map[string]any{"id": "", "key": ""}
	for _, fs := range schema.Fields {
		env[fs.Name] = ""
		if fs.Type == connectors.TypeList {
			env[fs.Name] = []string{}
		}
	}
	_, err = scripting.CompileTrigger(src, env)
	return err
}

func (f *fakeEngine) TestRun(ctx context.Context, connID int64, side store.Side, id string, ent *connectors.Entity) (engine.TestRunResult, error) {
	return f.testRun, nil
}

func (f *fakeEngine) TestRunDraft(ctx context.Context, connID int64, side store.Side, id string, ent *connectors.Entity, draft engine.ImpactDraft) (engine.TestRunResult, error) {
	return f.testRun, nil
}

func (f *fakeEngine) Impact(ctx context.Context, connID int64, d store.Direction, draft engine.ImpactDraft, changes int, budget time.Duration) (engine.ImpactResult, error) {
	if f.impactHold != nil {
		f.impactIn <- connID
		<-f.impactHold
	}
	return engine.ImpactResult{Direction: d, Entities: []engine.ImpactEntity{}}, nil
}

func (f *fakeEngine) PreviewTrigger(ctx context.Context, systemID int64, src string, limit, sample int) (engine.TriggerPreview, error) {
	return engine.TriggerPreview{}, f.ValidateTrigger(ctx, systemID, src)
}

func (f *fakeEngine) MatchExisting(ctx context.Context, connID int64, aField, bField string) ([]engine.Pair, error) {
	return nil, nil
}

func (f *fakeEngine) Hook(ctx context.Context, systemID int64, header http.Header, body []byte) (engine.HookResult, error) {
	return engine.HookResult{}, engine.ErrNoWebhooks
}

func (f *fakeEngine) calls() (reloads, systemReloads []int64, wakes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reloads), slices.Clone(f.systemReloads), f.wakes
}

// fakeEnv serves the API over a real store and a fake engine.
type fakeEnv struct {
	t   *testing.T
	st  *store.Store
	box *secret.Box
	eng *fakeEngine
	h   http.Handler
	tok string
}

const fakeMaxBody = 4 << 10

func newFakeEnv(t *testing.T, st *store.Store) *fakeEnv {
	t.Helper()
	box, err := secret.LoadOrCreate(t.TempDir() + "/key")
	if err != nil {
		t.Fatal(err)
	}
	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	eng := &fakeEngine{}
	h := server.New(server.Options{Store: st, Engine: eng, Secrets: box, Templates: lib, MaxBodyBytes: fakeMaxBody,
		Logger: slog.New(slog.DiscardHandler)})
	return &fakeEnv{t: t, st: st, box: box, eng: eng, h: h, tok: rootToken(t, st)}
}

// call sends a request and returns the status and the raw body.
func (e *fakeEnv) call(method, path, body string) (int, []byte) {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.tok)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// json sends a request, checks the status and decodes the answer into out.
func (e *fakeEnv) json(method, path, body string, want int, out any) {
	e.t.Helper()
	code, raw := e.call(method, path, body)
	if code != want {
		e.t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: body %q is not JSON: %v", method, path, raw, err)
		}
	}
}

type systemJSON struct {
	ID         int64          `json:"id"`
	Name       string         `json:"name"`
	Kind       string         `json:"kind"`
	Settings   map[string]any `json:"settings"`
	SecretKeys []string       `json:"secret_keys"`
}

type versionJSON struct {
	Version   int       `json:"version"`
	Source    string    `json:"source"`
	Author    string    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
}

type connectionJSON struct {
	ID      int64                             `json:"id"`
	Name    string                            `json:"name"`
	Active  bool                              `json:"active"`
	Counts  map[string]int64                  `json:"counts"`
	Scripts map[string]map[string]versionJSON `json:"scripts"`
}

const plainSecret = "pl41n-t0ken-value"

func TestWithFakeEngine(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newFakeEnv(t, b.Open(t))
			ctx := context.Background()

			// Systems: secrets go in, only their names come out.
			var desk, tracker systemJSON
			e.json("POST", "/api/systems", mustJSON(map[string]any{"name": "desk", "kind": "sql",
				"settings": map[string]any{"table": "tickets"}, "secrets": map[string]string{"token": plainSecret},
				"poll_interval_ms": 1000}), 201, &desk)
			e.json("POST", "/api/systems", `{"name":"tracker","kind":"sql"}`, 201, &tracker)
			if !slices.Equal(desk.SecretKeys, []string{"token"}) || desk.Settings["table"] != "tickets" || desk.Kind != "sql" {
				t.Fatalf("created system: %+v", desk)
			}
			if tracker.SecretKeys == nil || len(tracker.SecretKeys) != 0 || tracker.Settings == nil {
				t.Fatalf("system without secrets or settings: %+v", tracker)
			}
			for _, path := range []string{"/api/systems", fmt.Sprintf("/api/systems/%d", desk.ID)} {
				if _, raw := e.call("GET", path, ""); bytes.Contains(raw, []byte(plainSecret)) || !bytes.Contains(raw, []byte(`"secret_keys"`)) {
					t.Fatalf("GET %s: %s", path, raw)
				}
			}
			stored, err := e.st.GetSystem(ctx, desk.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(stored.Secrets) == 0 || bytes.Contains(stored.Secrets, []byte(plainSecret)) {
				t.Fatalf("stored secrets are missing or in plain text: %q", stored.Secrets)
			}

			t.Run("update system", func(t *testing.T) {
				path := fmt.Sprintf("/api/systems/%d", desk.ID)
				var got systemJSON
				// Secrets and settings left out stay as they were.
				e.json("PUT", path, `{"name":"support desk"}`, 200, &got)
				after, _ := e.st.GetSystem(ctx, desk.ID)
				if got.Name != "support desk" || got.Settings["table"] != "tickets" || !slices.Equal(got.SecretKeys, []string{"token"}) ||
					!bytes.Equal(after.Secrets, stored.Secrets) {
					t.Fatalf("update without secrets: %+v", got)
				}
				// Given secrets replace the old ones.
				e.json("PUT", path, `{"secrets":{"password":"other-value"},"settings":{"table":"t2"}}`, 200, &got)
				after, _ = e.st.GetSystem(ctx, desk.ID)
				opened, err := e.box.OpenMap(after.Secrets)
				if err != nil || len(opened) != 1 || opened["password"] != "other-value" || got.Settings["table"] != "t2" ||
					!slices.Equal(got.SecretKeys, []string{"password"}) {
					t.Fatalf("replace secrets: %+v %v %v", got, opened, err)
				}
				_, sysReloads, _ := e.eng.calls()
				if !slices.Equal(sysReloads, []int64{desk.ID, desk.ID}) {
					t.Fatalf("ReloadSystem calls: %v", sysReloads)
				}
				for _, tc := range []struct{ name, body string }{
					{"kind change", `{"kind":"redmine"}`},
					{"settings not an object", `{"settings":[1,2]}`},
					{"secret not a string", `{"secrets":{"token":5}}`},
					{"poll too fast", `{"poll_interval_ms":1}`},
				} {
					t.Run(tc.name, func(t *testing.T) {
						var ae apiErr
						e.json("PUT", path, tc.body, 400, &ae)
						if ae.Code != "bad_request" || ae.Message == "" {
							t.Fatalf("%+v", ae)
						}
					})
				}
			})

			t.Run("schema", func(t *testing.T) {
				var s connectors.Schema
				e.json("GET", fmt.Sprintf("/api/systems/%d/schema", desk.ID), "", 200, &s)
				if len(s.Fields) != 2 || s.Fields[0].Name != "labels" || s.Fields[0].Type != connectors.TypeList {
					t.Fatalf("schema: %+v", s)
				}
				var ae apiErr
				e.json("GET", "/api/systems/999/schema", "", 404, &ae)
				if ae.Code != "not_found" {
					t.Fatalf("%+v", ae)
				}
				// An engine failure is a 500 that does not leak its text.
				e.eng.mu.Lock()
				e.eng.schemaErr = errors.New("dial tcp 10.9.8.7:5432: password authentication failed for user duplex_admin")
				e.eng.mu.Unlock()
				code, raw := e.call("GET", fmt.Sprintf("/api/systems/%d/schema", desk.ID), "")
				if code != 500 || !bytes.Contains(raw, []byte(`"code":"internal"`)) || bytes.Contains(raw, []byte("duplex_admin")) {
					t.Fatalf("engine error: %d %s", code, raw)
				}
				// A panic is caught and answered as JSON.
				e.eng.mu.Lock()
				e.eng.schemaErr, e.eng.panicSchema = nil, true
				e.eng.mu.Unlock()
				code, raw = e.call("GET", fmt.Sprintf("/api/systems/%d/schema", desk.ID), "")
				if code != 500 || !bytes.Contains(raw, []byte(`"code":"internal"`)) || bytes.Contains(raw, []byte("exploded")) {
					t.Fatalf("panic: %d %s", code, raw)
				}
				e.eng.mu.Lock()
				e.eng.panicSchema = false
				e.eng.mu.Unlock()
			})

			// Connections: every script is compiled before anything is saved.
			okScripts := map[string]map[string]string{
				"a": {"trigger": `"todev" in labels`, "outgoing": "replica.title = entity.subject;", "incoming": "entity.status = replica.state;"},
				"b": {"trigger": "false", "outgoing": "replica.state = entity.state;", "incoming": "entity.title = replica.title;"},
			}
			with := func(side, kind, src string) map[string]map[string]string {
				out := map[string]map[string]string{}
				for s, kinds := range okScripts {
					out[s] = map[string]string{}
					for k, v := range kinds {
						out[s][k] = v
					}
				}
				out[side][kind] = src
				return out
			}
			conn := func(extra map[string]any) string {
				m := map[string]any{"name": "esc", "system_a_id": desk.ID, "system_b_id": tracker.ID}
				for k, v := range extra {
					m[k] = v
				}
				return mustJSON(m)
			}
			var created connectionJSON
			e.json("POST", "/api/connections", conn(map[string]any{"scripts": okScripts, "active": true}), 201, &created)
			if !created.Active || created.Counts == nil || created.Scripts["a"]["outgoing"].Version != 1 ||
				created.Scripts["b"]["incoming"].Source != okScripts["b"]["incoming"] || created.Scripts["a"]["trigger"].Author != testActor {
				t.Fatalf("created connection: %+v", created)
			}
			if reloads, _, _ := e.eng.calls(); !slices.Contains(reloads, created.ID) {
				t.Fatalf("no Reload after create: %v", reloads)
			}

			t.Run("create connection errors", func(t *testing.T) {
				cases := []struct {
					name      string
					body      string
					status    int
					code      string
					script    string
					line, col int
				}{
					// Column 15 is the "{" where ")" belongs.
					{"js syntax", conn(map[string]any{"scripts": with("b", "incoming", "entity.title = replica.title;\nif (replica.x {\n}")}),
						422, "script_invalid", "b.incoming.js", 2, 15},
					// Columns count code points: the ";" after "+" is the 29th.
					{"js syntax after non-ASCII", conn(map[string]any{"scripts": with("a", "outgoing", "let ü = 'é'; replica.x = ü +;")}),
						422, "script_invalid", "a.outgoing.js", 1, 29},
					// The second "==" of "====" on line 2.
					{"trigger syntax", conn(map[string]any{"scripts": with("a", "trigger", "\"todev\" in labels\n  && status ==== \"open\"")}),
						422, "script_invalid", "trigger", 2, 15},
					// "priority" is not a field of the system's schema.
					{"trigger unknown field", conn(map[string]any{"scripts": with("b", "trigger", `"x" in labels && priority == "high"`)}),
						422, "script_invalid", "trigger", 1, 18},
					// status is a string: the "+" is the type error.
					{"trigger type", conn(map[string]any{"scripts": with("a", "trigger", "status + 1 > 2")}),
						422, "script_invalid", "trigger", 1, 8},
					{"bad side", conn(map[string]any{"scripts": map[string]any{"c": map[string]string{"outgoing": ""}}}), 400, "bad_request", "", 0, 0},
					{"bad kind", conn(map[string]any{"scripts": map[string]any{"a": map[string]string{"webhook": ""}}}), 400, "bad_request", "", 0, 0},
					{"no name", conn(map[string]any{"name": " "}), 400, "bad_request", "", 0, 0},
					{"no system b", conn(map[string]any{"system_b_id": 0}), 400, "bad_request", "", 0, 0},
					{"missing system", conn(map[string]any{"system_a_id": 999}), 400, "bad_request", "", 0, 0},
					{"system id not a number", conn(map[string]any{"system_a_id": "one"}), 400, "bad_request", "", 0, 0},
					{"template and scripts", conn(map[string]any{"template": "support-escalation", "scripts": okScripts}), 400, "bad_request", "", 0, 0},
					{"unknown template", conn(map[string]any{"template": "nope"}), 404, "not_found", "", 0, 0},
					{"template parameter", conn(map[string]any{"template": "support-escalation", "params": map[string]any{"status_map": nil}}),
						400, "bad_request", "", 0, 0},
				}
				for _, tc := range cases {
					t.Run(tc.name, func(t *testing.T) {
						var ae struct {
							apiErr
							Script string `json:"script"`
						}
						e.json("POST", "/api/connections", tc.body, tc.status, &ae)
						if ae.Code != tc.code || ae.Message == "" || ae.Script != tc.script || ae.Line != tc.line || ae.Column != tc.col {
							t.Fatalf("got %+v, want %s %s at %d:%d", ae, tc.code, tc.script, tc.line, tc.col)
						}
					})
				}
				// None of the refused connections was half saved.
				var all []connectionJSON
				e.json("GET", "/api/connections", "", 200, &all)
				if len(all) != 1 || all[0].ID != created.ID || all[0].Counts == nil {
					t.Fatalf("connections after refusals: %+v", all)
				}
			})

			t.Run("from template", func(t *testing.T) {
				var c connectionJSON
				e.json("POST", "/api/connections", conn(map[string]any{"name": "from template", "template": "support-escalation",
					"params": map[string]any{"priority_map": map[string]string{"urgent": "p0"}}}), 201, &c)
				if !strings.Contains(c.Scripts["b"]["incoming"].Source+c.Scripts["a"]["outgoing"].Source+c.Scripts["b"]["outgoing"].Source, `"urgent":"p0"`) ||
					strings.TrimSpace(c.Scripts["a"]["trigger"].Source) != `"todev" in labels` || c.Active {
					t.Fatalf("template connection: %+v", c.Scripts)
				}
			})

			t.Run("script versions", func(t *testing.T) {
				base := fmt.Sprintf("/api/connections/%d/scripts/a/outgoing", created.ID)
				reloadsBefore, _, _ := e.eng.calls()
				var v versionJSON
				for i, src := range []string{"replica.title = entity.subject.trim();", "replica.title = entity.subject.toUpperCase();"} {
					e.json("PUT", base, mustJSON(map[string]string{"source": src}), 200, &v)
					if v.Version != i+2 || v.Source != src || v.Author != testActor || v.CreatedAt.IsZero() {
						t.Fatalf("save %d: %+v", i, v)
					}
				}
				// The same source again is the same version, not a new one.
				e.json("PUT", base, `{"source":"replica.title = entity.subject.toUpperCase();"}`, 200, &v)
				if v.Version != 3 {
					t.Fatalf("unchanged save: %+v", v)
				}
				var ae apiErr
				e.json("PUT", base, `{"source":"replica.a = 1;\n  replica.b = entity.;"}`, 422, &ae)
				if ae.Code != "script_invalid" || ae.Line != 2 || ae.Column != 22 {
					t.Fatalf("invalid save: %+v", ae)
				}
				e.json("PUT", fmt.Sprintf("/api/connections/%d/scripts/b/trigger", created.ID), `{"source":"status == \"open\" &&\n  labels"}`, 422, &ae)
				if ae.Code != "script_invalid" || ae.Line == 0 {
					t.Fatalf("invalid trigger save: %+v", ae)
				}
				var hist []versionJSON
				e.json("GET", base+"/versions", "", 200, &hist)
				if len(hist) != 3 || hist[0].Version != 3 || hist[1].Version != 2 || hist[2].Version != 1 ||
					hist[2].Source != okScripts["a"]["outgoing"] {
					t.Fatalf("history: %+v", hist)
				}
				var got connectionJSON
				e.json("GET", fmt.Sprintf("/api/connections/%d", created.ID), "", 200, &got)
				if cur := got.Scripts["a"]["outgoing"]; cur.Version != 3 || cur.Author != testActor || cur.CreatedAt.IsZero() || got.Counts == nil {
					t.Fatalf("current script: %+v", got)
				}
				if reloads, _, _ := e.eng.calls(); len(reloads)-len(reloadsBefore) < 2 {
					t.Fatalf("Reload not called per save: %v → %v", reloadsBefore, reloads)
				}
				for _, tc := range []struct {
					name, method, path, body string
					status                   int
					code                     string
				}{
					{"bad side", "PUT", fmt.Sprintf("/api/connections/%d/scripts/c/outgoing", created.ID), `{"source":""}`, 400, "bad_request"},
					{"bad kind", "PUT", fmt.Sprintf("/api/connections/%d/scripts/a/webhook", created.ID), `{"source":""}`, 400, "bad_request"},
					{"no source", "PUT", base, `{}`, 400, "bad_request"},
					{"source not a string", "PUT", base, `{"source":1}`, 400, "bad_request"},
					{"missing connection", "PUT", "/api/connections/999/scripts/a/outgoing", `{"source":""}`, 404, "not_found"},
					{"versions of missing connection", "GET", "/api/connections/999/scripts/a/outgoing/versions", "", 404, "not_found"},
					{"bad id", "GET", "/api/connections/abc", "", 400, "bad_request"},
				} {
					t.Run(tc.name, func(t *testing.T) {
						var ae apiErr
						e.json(tc.method, tc.path, tc.body, tc.status, &ae)
						if ae.Code != tc.code || ae.Message == "" {
							t.Fatalf("%+v", ae)
						}
					})
				}
			})

			t.Run("activate and pause", func(t *testing.T) {
				for _, tc := range []struct {
					action string
					active bool
				}{{"pause", false}, {"activate", true}, {"pause", false}} {
					var c connectionJSON
					e.json("POST", fmt.Sprintf("/api/connections/%d/%s", created.ID, tc.action), "", 200, &c)
					reloads, _, _ := e.eng.calls()
					if c.Active != tc.active || reloads[len(reloads)-1] != created.ID {
						t.Fatalf("%s: %+v, reloads %v", tc.action, c, reloads)
					}
					cur, _ := e.st.GetConnection(ctx, created.ID)
					if cur.Active != tc.active {
						t.Fatalf("%s: stored active %v", tc.action, cur.Active)
					}
				}
				var ae apiErr
				e.json("POST", "/api/connections/999/activate", "", 404, &ae)
			})

			// Events: one failed and one queued, written as the engine would.
			twin, err := e.st.EnsureTwin(ctx, created.ID, store.SideA, "7")
			if err != nil {
				t.Fatal(err)
			}
			evs := []store.SyncEvent{
				{ConnectionID: created.ID, TwinID: twin.ID, Direction: store.AToB, SourceID: "7", Replica: `{"title":"x"}`},
				{ConnectionID: created.ID, TwinID: twin.ID, Direction: store.AToB, SourceID: "7", Replica: `{"title":"y"}`},
			}
			if err := e.st.InsertEvents(ctx, evs); err != nil {
				t.Fatal(err)
			}
			evs[0].Status, evs[0].Attempts, evs[0].LastError = store.StatusFailed, 3, "boom"
			if err := e.st.SaveEvent(ctx, &evs[0]); err != nil {
				t.Fatal(err)
			}

			t.Run("events", func(t *testing.T) {
				type eventJSON struct {
					ID        int64  `json:"id"`
					Status    string `json:"status"`
					Direction string `json:"direction"`
					Attempts  int    `json:"attempts"`
					LastError string `json:"last_error"`
				}
				var list []eventJSON
				e.json("GET", fmt.Sprintf("/api/events?connection_id=%d&status=failed", created.ID), "", 200, &list)
				if len(list) != 1 || list[0].ID != evs[0].ID || list[0].LastError != "boom" || list[0].Direction != "a_to_b" {
					t.Fatalf("failed events: %+v", list)
				}
				e.json("GET", "/api/events?limit=1", "", 200, &list)
				if len(list) != 1 || list[0].ID != evs[1].ID {
					t.Fatalf("limit 1: %+v", list)
				}
				// More than a page is refused with the maximum, not cut back to 100 silently.
				var tooMany struct{ Code, Message string }
				e.json("GET", "/api/events?limit=1000", "", 400, &tooMany)
				if tooMany.Code != "bad_request" || !strings.Contains(tooMany.Message, "at most 500") {
					t.Fatalf("limit 1000: %+v", tooMany)
				}
				var conns []connectionJSON
				e.json("GET", "/api/connections", "", 200, &conns)
				if conns[0].Counts["failed"] != 1 || conns[0].Counts["queued"] != 1 {
					t.Fatalf("counts: %+v", conns[0].Counts)
				}
				var one eventJSON
				e.json("GET", fmt.Sprintf("/api/events/%d", evs[0].ID), "", 200, &one)

				_, _, wakesBefore := e.eng.calls()
				e.json("POST", fmt.Sprintf("/api/events/%d/retry", evs[0].ID), "", 200, &one)
				if one.Status != "queued" || one.Attempts != 0 {
					t.Fatalf("retried: %+v", one)
				}
				if _, _, wakes := e.eng.calls(); wakes != wakesBefore+1 {
					t.Fatalf("Wake not called on retry: %d → %d", wakesBefore, wakes)
				}
				for _, tc := range []struct {
					name, method, path string
					status             int
					code               string
				}{
					{"retry queued", "POST", fmt.Sprintf("/api/events/%d/retry", evs[1].ID), 409, "conflict"},
					{"retry again", "POST", fmt.Sprintf("/api/events/%d/retry", evs[0].ID), 409, "conflict"},
					{"retry missing", "POST", "/api/events/999/retry", 404, "not_found"},
					{"retry bad id", "POST", "/api/events/abc/retry", 400, "bad_request"},
					{"missing event", "GET", "/api/events/999", 404, "not_found"},
					{"bad status filter", "GET", "/api/events?status=lost", 400, "bad_request"},
					{"bad connection filter", "GET", "/api/events?connection_id=1x", 400, "bad_request"},
					{"bad limit", "GET", "/api/events?limit=-1", 400, "bad_request"},
					{"limit over the maximum", "GET", "/api/events?limit=1000", 400, "bad_request"},
					{"audit limit over the maximum", "GET", "/api/audit?limit=1001", 400, "bad_request"},
					{"twins limit over the maximum", "GET", fmt.Sprintf("/api/connections/%d/twins?limit=5000", created.ID), 400, "bad_request"},
					{"alerts limit over the maximum", "GET", "/api/alerts?limit=501", 400, "bad_request"},
					{"twins of missing connection", "GET", "/api/connections/999/twins", 404, "not_found"},
					{"bad twins offset", "GET", fmt.Sprintf("/api/connections/%d/twins?offset=x", created.ID), 400, "bad_request"},
					{"bad audit filter", "GET", "/api/audit?connection_id=x", 400, "bad_request"},
				} {
					t.Run(tc.name, func(t *testing.T) {
						var ae apiErr
						e.json(tc.method, tc.path, "", tc.status, &ae)
						if ae.Code != tc.code || ae.Message == "" {
							t.Fatalf("%+v", ae)
						}
					})
				}
				var twins []store.Twin
				e.json("GET", fmt.Sprintf("/api/connections/%d/twins?limit=10&offset=0", created.ID), "", 200, &twins)
				if len(twins) != 1 || twins[0].EntityID(store.SideA) != "7" {
					t.Fatalf("twins: %+v", twins)
				}
				e.json("GET", fmt.Sprintf("/api/connections/%d/twins?offset=1", created.ID), "", 200, &twins)
				if len(twins) != 0 {
					t.Fatalf("twins past the end: %+v", twins)
				}
			})

			t.Run("test run error keeps its position", func(t *testing.T) {
				e.eng.mu.Lock()
				e.eng.testRun = engine.TestRunResult{Side: store.SideA, Log: []string{}, Stage: "outgoing",
					Error: &scripting.Error{Script: "a.outgoing.js", Kind: scripting.ErrorRuntime, Line: 3, Column: 7, Message: "TypeError: x is undefined"}}
				e.eng.mu.Unlock()
				var run struct {
					Stage string
					Error struct {
						apiErr
						Script string `json:"script"`
					}
				}
				e.json("POST", fmt.Sprintf("/api/connections/%d/test-run", created.ID), `{"side":"a","entity":{"id":"7","fields":{}}}`, 200, &run)
				if run.Stage != "outgoing" || run.Error.Code != "script_failed" || run.Error.Line != 3 || run.Error.Column != 7 || run.Error.Script != "a.outgoing.js" {
					t.Fatalf("test run: %+v", run)
				}
			})

			t.Run("audit", func(t *testing.T) {
				var entries []store.AuditEntry
				e.json("GET", "/api/audit?limit=1000", "", 200, &entries)
				seen := map[string]bool{}
				for _, en := range entries {
					if en.Actor != testActor {
						t.Fatalf("actor %q", en.Actor)
					}
					seen[en.Action] = true
				}
				for _, want := range []string{"system.create", "system.update", "connection.create", "script.save",
					"connection.pause", "connection.activate", "event.retry"} {
					if !seen[want] {
						t.Errorf("no %s audit entry in %v", want, seen)
					}
				}
				e.json("GET", fmt.Sprintf("/api/audit?connection_id=%d&limit=1", created.ID), "", 200, &entries)
				if len(entries) != 1 || entries[0].ConnectionID == nil || *entries[0].ConnectionID != created.ID {
					t.Fatalf("audit of one connection: %+v", entries)
				}
			})

			t.Run("delete system", func(t *testing.T) {
				var ae apiErr
				e.json("DELETE", fmt.Sprintf("/api/systems/%d", desk.ID), "", 409, &ae) // used by a connection
				var spare systemJSON
				e.json("POST", "/api/systems", `{"name":"spare","kind":"sql"}`, 201, &spare)
				if code, _ := e.call("DELETE", fmt.Sprintf("/api/systems/%d", spare.ID), ""); code != 204 {
					t.Fatalf("delete: %d", code)
				}
				e.json("GET", fmt.Sprintf("/api/systems/%d", spare.ID), "", 404, &ae)
			})
		})
	}
}

// Malformed, oversized and misaddressed requests get a JSON error with a
// stable code, never an HTML page or a 500.
func TestRequestErrors(t *testing.T) {
	e := newFakeEnv(t, testdb.SQLite(t))
	big := `{"name":"` + strings.Repeat("x", fakeMaxBody) + `","kind":"sql"}`
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed JSON", "POST", "/api/systems", `{"name":`, 400, "bad_request"},
		{"not an object", "POST", "/api/systems", `[1]`, 400, "bad_request"},
		{"trailing data", "POST", "/api/systems", `{"name":"a","kind":"sql"} {}`, 400, "bad_request"},
		{"empty body", "POST", "/api/systems", ``, 400, "bad_request"},
		{"wrong type", "POST", "/api/systems", `{"name":5,"kind":"sql"}`, 400, "bad_request"},
		{"unknown field", "POST", "/api/systems", `{"name":"a","kind":"sql","colour":"red"}`, 400, "bad_request"},
		{"missing kind", "POST", "/api/systems", `{"name":"a"}`, 400, "bad_request"},
		{"settings not an object", "POST", "/api/systems", `{"name":"a","kind":"sql","settings":"x"}`, 400, "bad_request"},
		{"too large", "POST", "/api/systems", big, 413, "too_large"},
		{"too large script", "POST", "/api/connections", `{"name":"c","scripts":{"a":{"outgoing":"` + strings.Repeat("x", fakeMaxBody) + `"}}}`, 413, "too_large"},
		{"unknown route", "GET", "/api/nope", "", 404, "not_found"},
		{"unknown method", "PATCH", "/api/systems", "", 404, "not_found"},
		{"unknown template", "GET", "/api/templates/nope", "", 404, "not_found"},
		{"zero id", "GET", "/api/systems/0", "", 400, "bad_request"},
		{"huge id", "GET", "/api/systems/99999999999999999999", "", 400, "bad_request"},
		{"missing system", "GET", "/api/systems/42", "", 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+e.tok)
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			var ae apiErr
			if err := json.Unmarshal(rec.Body.Bytes(), &ae); err != nil {
				t.Fatalf("%d, not JSON: %q", rec.Code, rec.Body.String())
			}
			if rec.Code != tc.status || ae.Code != tc.code || ae.Message == "" ||
				!strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				t.Fatalf("%d %+v (%s), want %d %s", rec.Code, ae, rec.Header().Get("Content-Type"), tc.status, tc.code)
			}
		})
	}
	// Refused requests wrote nothing.
	var systems []systemJSON
	e.json("GET", "/api/systems", "", 200, &systems)
	if len(systems) != 0 {
		t.Fatalf("systems after refusals: %+v", systems)
	}
}

func TestTemplates(t *testing.T) {
	e := newFakeEnv(t, testdb.SQLite(t))
	var list []scripts.Template
	e.json("GET", "/api/templates", "", 200, &list)
	if len(list) == 0 || list[0].Name == "" {
		t.Fatalf("templates: %+v", list)
	}
	var one scripts.Template
	e.json("GET", "/api/templates/"+list[0].Name, "", 200, &one)
	if one.Name != list[0].Name || len(one.Params) == 0 {
		t.Fatalf("template: %+v", one)
	}
}

func TestHealthz(t *testing.T) {
	for _, tc := range []struct {
		name   string
		closed bool
		status int
		want   string
	}{
		{"store up", false, 200, "ok"},
		{"store down", true, 503, "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := testdb.SQLite(t)
			e := newFakeEnv(t, st)
			if tc.closed {
				if err := st.Close(); err != nil {
					t.Fatal(err)
				}
			}
			var got struct{ Status string }
			e.json("GET", "/healthz", "", tc.status, &got)
			if got.Status != tc.want {
				t.Fatalf("%+v", got)
			}
		})
	}
}

func (f *fakeEngine) CheckSystem(context.Context, store.System) error { return nil }
