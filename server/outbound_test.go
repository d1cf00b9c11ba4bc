package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpconn"
	"github.com/duplexsync/duplex/connectors/sqlconn"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/itemsvc"
	"github.com/duplexsync/duplex/internal/outbound"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
	"github.com/duplexsync/duplex/server"
)

// fenceEnv is a server over a SQLite store file, with the real engine, the
// sql and http connectors and the outbound guards main wires.
type fenceEnv struct {
	t        *testing.T
	st       *store.Store
	eng      *engine.Engine
	h        http.Handler
	dir, db  string
	org, bta string // tokens: an org admin, the admin of team beta
	beta     int64
}

func newFenceEnv(t *testing.T) *fenceEnv {
	dir := t.TempDir()
	db := filepath.Join(dir, "duplex.db")
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return fenceEnvOn(t, st, dir, db)
}

// fenceEnvOn is newFenceEnv on a store opened from dsn; dir holds the key.
func fenceEnvOn(t *testing.T, st *store.Store, dir, db string) *fenceEnv {
	ctx := context.Background()
	box, err := secret.LoadOrCreate(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	guards := outbound.NewGuards(func(ctx context.Context) (string, error) {
		r, err := st.OutboundPolicy(ctx)
		return r.Policy, err
	}, outbound.StoreFence(db, filepath.Join(dir, "secret.key")), slog.New(slog.DiscardHandler))
	reg := connectors.NewRegistry()
	_ = reg.Register("sql", sqlconn.New)
	_ = reg.Register("http", httpconn.New)
	reg.RegisterChecker("sql", sqlconn.Check)
	eng := engine.New(engine.Options{Store: st, Connectors: reg, Secrets: box, Outbound: guards.For,
		Runner: scripting.NewRunner(scripting.Options{}), Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { _ = eng.Close() })
	lib, _ := scripts.Builtin()
	h := server.New(server.Options{Store: st, Engine: eng, Secrets: box, Templates: lib, Outbound: guards,
		Logger: slog.New(slog.DiscardHandler), Auth: server.AuthOptions{Password: cheap}})
	beta := store.Team{Name: "beta"}
	if err := st.Identity().CreateTeam(ctx, &beta); err != nil {
		t.Fatal(err)
	}
	return &fenceEnv{t: t, st: st, eng: eng, h: h, dir: dir, db: db, beta: beta.ID,
		org: rootToken(t, st), bta: userToken(t, st, "beta-admin@test", false, map[int64]store.Role{beta.ID: store.RoleAdmin})}
}

type answer struct {
	Code       string `json:"code"`
	Message    string `json:"message"`
	PolicyRule string `json:"policy_rule"`
	ID         int64  `json:"id"`
}

func (e *fenceEnv) call(tok, method, path string, body any) (int, answer) {
	e.t.Helper()
	var rd *strings.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else {
		rd = strings.NewReader(mustJSON(body))
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var a answer
	_ = json.Unmarshal(rec.Body.Bytes(), &a)
	return rec.Code, a
}

func (e *fenceEnv) setPolicy(p string) {
	e.t.Helper()
	if code, a := e.call(e.org, "PUT", "/api/outbound-policy", p); code != 200 {
		e.t.Fatalf("set policy: %d %+v", code, a)
	}
}

func (e *fenceEnv) countSystems() int {
	e.t.Helper()
	systems, err := e.st.ListSystems(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return len(systems)
}

// TestStoreIsNeverASystem: another team's admin names the store's own
// duplex.db through other paths; even with its directory allowed, every
// attempt is refused with 422 store_is_not_a_system and nothing is saved;
// a system put in the store behind the API's back fails to open.
func TestStoreIsNeverASystem(t *testing.T) {
	e := newFenceEnv(t)
	other := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(e.db, filepath.Join(other, "users.db")))
	must(os.Link(e.db, filepath.Join(other, "hard.db")))
	must(os.Symlink(e.dir, filepath.Join(other, "data")))
	// The worst case: the org admin allowed both directories.
	e.setPolicy(`{"allow":[{"sqlite_dir":"` + e.dir + `"},{"sqlite_dir":"` + other + `"}]}`)
	for _, dsn := range []string{
		filepath.Join(other, "users.db"), filepath.Join(other, "hard.db"), filepath.Join(other, "data", "duplex.db"),
		"file:" + filepath.Join(other, "users.db") + "?mode=ro", e.dir + "/./duplex.db", filepath.Join(other, "data", "duplex.db-wal"),
		filepath.Join(e.dir, "secret.key"),
	} {
		settings := map[string]any{"driver": "sqlite", "table": "users", "id_column": "id", "updated_column": "updated_at",
			"fields": []map[string]any{{"name": "email"}, {"name": "org_admin", "type": "number"}}}
		// In settings and in the secret DSN alike.
		for _, body := range []map[string]any{
			{"name": "steal", "kind": "sql", "team_id": e.beta, "settings": merge(settings, map[string]any{"dsn": dsn})},
			{"name": "steal", "kind": "sql", "team_id": e.beta, "settings": settings, "secrets": map[string]string{"dsn": dsn}},
		} {
			code, a := e.call(e.bta, "POST", "/api/systems", body)
			if code != 422 || a.Code != server.CodeStoreFence || a.PolicyRule != connectors.RuleStore {
				t.Errorf("%s: %d %+v", dsn, code, a)
			}
		}
	}
	if n := e.countSystems(); n != 0 {
		t.Fatalf("%d systems saved", n)
	}
	// A file beside the store in an allowed directory is fine.
	code, a := e.call(e.bta, "POST", "/api/systems", map[string]any{"name": "fine", "kind": "sql", "team_id": e.beta,
		"settings": map[string]any{"driver": "sqlite", "dsn": filepath.Join(e.dir, "team.db"), "table": "t", "fields": []map[string]any{{"name": "x"}}}})
	if code != 201 {
		t.Fatalf("a team's own file: %d %+v", code, a)
	}
	// Updating it to the store's file is refused too, and leaves it as it was.
	if code, a := e.call(e.bta, "PUT", "/api/systems/"+itoa(a.ID), map[string]any{"secrets": map[string]string{"dsn": filepath.Join(other, "hard.db")}}); code != 422 || a.Code != server.CodeStoreFence {
		t.Fatalf("update: %d %+v", code, a)
	}

	// Its directory no longer allowed: testing it names the rule.
	e.setPolicy(`{"allow":[]}`)
	var tested struct {
		OK   bool   `json:"ok"`
		Code string `json:"code"`
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/systems/"+itoa(a.ID)+"/test", nil)
	req.Header.Set("Authorization", "Bearer "+e.bta)
	e.h.ServeHTTP(rec, req)
	if _ = json.Unmarshal(rec.Body.Bytes(), &tested); tested.OK || tested.Code != server.CodeOutboundRefused {
		t.Fatalf("system test after its rule went: %s", rec.Body)
	}

	// Saved without the API (an apply, an old store): the connector
	// refuses to open it, and no row is read.
	sys := store.System{Name: "sneaked", Kind: "sql", TeamID: e.beta, Settings: mustJSON(map[string]any{"driver": "sqlite",
		"dsn": filepath.Join(other, "users.db"), "table": "users", "fields": []map[string]any{{"name": "email"}}})}
	if err := e.st.CreateSystem(context.Background(), &sys); err != nil {
		t.Fatal(err)
	}
	_, err := e.eng.PreviewTrigger(context.Background(), sys.ID, "true", 10, 10)
	var re *connectors.RefusedError
	if !errors.As(err, &re) || re.Rule != connectors.RuleStore {
		t.Fatalf("open: %v", err)
	}
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestOutboundPolicy: loopback and metadata hosts are refused at save (by
// name and by literal) and at connect (the dial sees the resolved address);
// an explicitly allowed address works; only the org admin changes the
// policy, and every change is audited.
func TestOutboundPolicy(t *testing.T) {
	e := newFenceEnv(t)
	var hits atomic.Int64
	svc := itemsvc.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		svc.ServeHTTP(w, r)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	system := func(base string) map[string]any {
		return map[string]any{"name": "remote " + base, "kind": "http", "team_id": e.beta, "settings": map[string]any{
			"url": base, "list_path": "/items?since={since}", "get_path": "/items/{id}",
			"create_path": "/items", "update_path": "/items/{id}"}}
	}
	for base, rule := range map[string]string{
		srv.URL:                        "loopback",
		"http://localhost:" + u.Port(): "loopback", // a name that resolves to 127.0.0.1
		"http://169.254.169.254/latest/meta-data": "metadata",
		"http://[::1]:" + u.Port():                "loopback",
		"http://10.0.0.1":                         "private",
	} {
		code, a := e.call(e.bta, "POST", "/api/systems", system(base))
		if code != 422 || a.Code != server.CodeOutboundRefused || a.PolicyRule != rule {
			t.Errorf("%s: %d %+v", base, code, a)
		}
	}
	if e.countSystems() != 0 || hits.Load() != 0 {
		t.Fatalf("saved %d systems, %d requests", e.countSystems(), hits.Load())
	}

	// Only the org admin sees or changes the policy.
	allow := `{"allow":[{"network":"127.0.0.1","ports":[` + u.Port() + `],"team_id":` + itoa(e.beta) + `,"note":"test server"}]}`
	if code, _ := e.call(e.bta, "PUT", "/api/outbound-policy", allow); code != 403 {
		t.Fatalf("team admin set the policy: %d", code)
	}
	if code, _ := e.call(e.bta, "GET", "/api/outbound-policy", nil); code != 403 {
		t.Fatalf("team admin read the policy: %d", code)
	}
	if code, a := e.call(e.org, "PUT", "/api/outbound-policy", `{"allow":[{"network":"nope"}]}`); code != 400 {
		t.Fatalf("bad policy: %d %+v", code, a)
	}
	e.setPolicy(allow)

	// Allowed explicitly: saved, and it syncs.
	code, a := e.call(e.bta, "POST", "/api/systems", system(srv.URL))
	if code != 201 {
		t.Fatalf("allowed: %d %+v", code, a)
	}
	ctx := context.Background()
	if _, err := e.eng.PreviewTrigger(ctx, a.ID, "true", 10, 1); err != nil || hits.Load() == 0 {
		t.Fatalf("allowed system: %v, %d requests", err, hits.Load())
	}
	// The rule is for team beta only: the default team may not.
	if code, a := e.call(e.org, "POST", "/api/systems", merge(system(srv.URL), map[string]any{"team_id": store.DefaultTeamID})); code != 422 || a.PolicyRule != "loopback" {
		t.Fatalf("other team: %d %+v", code, a)
	}

	// Withdrawn: the next connection is refused at the dial.
	e.setPolicy(`{"allow":[]}`)
	before := hits.Load()
	_, err := e.eng.PreviewTrigger(ctx, a.ID, "true", 10, 1)
	var re *connectors.RefusedError
	if !errors.As(err, &re) || re.Rule != "loopback" || hits.Load() != before {
		t.Fatalf("withdrawn: %v, %d new requests", err, hits.Load()-before)
	}

	// Audited, with the actor.
	entries, err := e.st.ListAuditFor(ctx, store.AuditFilter{Action: "outbound_policy.set", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, en := range entries {
		if en.Action == "outbound_policy.set" && en.Actor == testActor {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d audit entries of policy changes, want 2", n)
	}
}

// TestStoreIsNeverASystemPostgres: on a PostgreSQL store, a sql system on
// the same server and database is refused by any name of the server, even
// with the server's address allowed; another database there is not.
func TestStoreIsNeverASystemPostgres(t *testing.T) {
	base := os.Getenv(testdb.PostgresEnv)
	if base == "" {
		t.Skipf("set %s to run PostgreSQL tests", testdb.PostgresEnv)
	}
	dsn, drop := testdb.Schema(t, base)
	t.Cleanup(drop)
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := fenceEnvOn(t, st, t.TempDir(), dsn)
	u, _ := url.Parse(base)
	e.setPolicy(`{"allow":[{"network":"127.0.0.1"},{"network":"::1"}]}`)
	same := *u
	same.Host = "localhost:" + u.Port()
	same.RawQuery = "sslmode=disable&search_path=public"
	settings := map[string]any{"driver": "postgres", "table": "users", "fields": []map[string]any{{"name": "email"}}}
	for _, d := range []string{base, same.String(), "host=127.0.0.1 port=" + u.Port() + " dbname=" + strings.TrimPrefix(u.Path, "/") + " user=postgres"} {
		code, a := e.call(e.bta, "POST", "/api/systems", map[string]any{"name": "steal", "kind": "sql", "team_id": e.beta,
			"settings": settings, "secrets": map[string]string{"dsn": d}})
		if code != 422 || a.Code != server.CodeStoreFence {
			t.Errorf("%s: %d %+v", d, code, a)
		}
	}
	other := *u
	other.Path = "/another"
	if code, a := e.call(e.bta, "POST", "/api/systems", map[string]any{"name": "fine", "kind": "sql", "team_id": e.beta,
		"settings": settings, "secrets": map[string]string{"dsn": other.String()}}); code != 201 {
		t.Fatalf("another database: %d %+v", code, a)
	}
}

// TestRefusedSystemHookSaysNothing: an anonymous webhook to a system whose
// target the policy refuses learns neither the rule nor the address.
func TestRefusedSystemHookSaysNothing(t *testing.T) {
	e := newFenceEnv(t)
	secretDir := filepath.Join(t.TempDir(), "team-alpha-secret-folder")
	sys := store.System{Name: "internal", Kind: "sql", TeamID: e.beta,
		Settings: mustJSON(map[string]any{"driver": "sqlite", "dsn": filepath.Join(secretDir, "x.db"), "table": "t", "fields": []map[string]any{{"name": "x"}}})}
	if err := e.st.CreateSystem(context.Background(), &sys); err != nil {
		t.Fatal(err)
	}
	e.eng.ReloadSystem(sys.ID)
	req := httptest.NewRequest("POST", "/hooks/"+itoa(sys.ID), strings.NewReader(`{"id":"1"}`))
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	body := rec.Body.String()
	if rec.Code < 400 || strings.Contains(body, "secret-folder") || strings.Contains(body, "sqlite-dir") || strings.Contains(body, "policy") {
		t.Fatalf("%d %s", rec.Code, body)
	}
}
