package confdir

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
)

const deskPassword = "hunter2-do-not-export"

var ledgerToken = "tok-" + strings.Repeat("z", 20)

func newBox(t *testing.T) *secret.Box {
	t.Helper()
	k, err := secret.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := secret.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// env is what apply reads secret values from in these tests.
func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var fullEnv = map[string]string{
	"DUPLEX_SECRET_DESK_DSN_PASSWORD": deskPassword,
	"DUPLEX_SECRET_LEDGER_API_TOKEN":  ledgerToken,
}

// seed fills a store with two teams, four systems and two connections, one
// of them with a second version of a script, a policy and options.
func seed(t *testing.T, st *store.Store, box *secret.Box) {
	t.Helper()
	ctx := context.Background()
	fin := store.Team{Name: "finance"}
	if err := st.Identity().CreateTeam(ctx, &fin); err != nil {
		t.Fatal(err)
	}
	seal := func(m map[string]string) []byte {
		b, err := box.SealMap(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	desk := store.System{Name: "desk", Kind: "sql", PollIntervalMS: 1500, RatePerSecond: 2.5, RateBurst: 3,
		Settings: `{"table":"tickets","driver":"sqlite","dsn":"support.db","fields":[{"name":"subject"},{"name":"labels","type":"list"}],"key_prefix":"T-<&>"}`,
		Secrets:  seal(map[string]string{"dsn_password": deskPassword})}
	tracker := store.System{Name: "tracker", Kind: "sql", PollIntervalMS: 2000, Settings: `{"driver":"sqlite","dsn":"eng.db","table":"issues"}`}
	ledger := store.System{Name: "ledger", Kind: "http", TeamID: fin.ID, PollIntervalMS: 60000,
		Settings: `{"url":"http://127.0.0.1:1/items"}`, Secrets: seal(map[string]string{"api_token": ledgerToken})}
	bank := store.System{Name: "bank", Kind: "http", TeamID: fin.ID, Settings: `{}`}
	for _, s := range []*store.System{&desk, &tracker, &ledger, &bank} {
		if err := st.CreateSystem(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	tpl, _ := lib.Get("support-escalation")
	src, err := tpl.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[store.Side]map[store.ScriptKind]string{}
	for side, kinds := range src {
		byKind[store.Side(side)] = map[store.ScriptKind]string{}
		for k, s := range kinds {
			byKind[store.Side(side)][store.ScriptKind(k)] = s
		}
	}
	esc := store.Connection{Name: "escalation", SystemAID: desk.ID, SystemBID: tracker.ID, Active: true,
		Template: "support-escalation", ConflictPolicy: `{"default":"manual","fields":{"priority":"b"}}`,
		Options: `{"on_unmatch":"unlink","script_timeout_ms":2000}`}
	if err := st.CreateConnection(ctx, &esc, byKind, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SaveScript(ctx, esc.ID, store.SideA, store.KindOutgoing, src["a"]["outgoing"]+"\nlog(\"v2\");\n", "test"); err != nil {
		t.Fatal(err)
	}
	books := store.Connection{Name: "books", SystemAID: ledger.ID, SystemBID: bank.ID, TeamID: fin.ID}
	if err := st.CreateConnection(ctx, &books, map[store.Side]map[store.ScriptKind]string{
		store.SideA: {store.KindTrigger: `amount > 0`, store.KindOutgoing: `replica.amount = entity.amount;`},
		store.SideB: {store.KindIncoming: `entity.amount = replica.amount;`},
	}, "test"); err != nil {
		t.Fatal(err)
	}
	// Validation rules: escalation's side a has two versions (the second
	// is current), side b one; books' side a had rules, all removed since.
	for _, r := range []struct {
		conn int64
		side store.Side
		doc  string
	}{
		{esc.ID, store.SideA, `[{"field": "contact", "kind": "email"}]`},
		{esc.ID, store.SideA, escRulesA},
		{esc.ID, store.SideB, escRulesB},
		{books.ID, store.SideA, `[{"field": "amount", "kind": "required"}]`},
		{books.ID, store.SideA, `[]`},
	} {
		if _, err := st.SaveScript(ctx, r.conn, r.side, store.KindRules, r.doc, "test"); err != nil {
			t.Fatal(err)
		}
	}
}

// escRulesA and escRulesB are the seeded connection's current rules, as
// the API stores them (one of every shape: values, bounds, an expression,
// a unique rule with where and target_field).
const escRulesA = `[
  {"field": "contact", "kind": "email", "message": "contact must be an e-mail address"},
  {"field": "priority", "kind": "oneOf", "values": ["low", "normal", "high", 4]},
  {"field": "score", "kind": "range", "min": 0, "max": 100.5},
  {"field": "title", "kind": "maxLength", "max": 255},
  {"field": "due", "kind": "expr", "expr": "priority != \"critical\" || required(due)", "message": "critical <issues> need a due date"}
]`

const escRulesB = `[
  {"field": "ticket", "kind": "unique", "target_field": "ticket_ref", "where": "status != \"closed\""}
]`

// tree reads every file under dir by relative path.
func tree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, what string, a, b map[string][]byte) {
	t.Helper()
	if len(a) != len(b) {
		t.Errorf("%s: %d files vs %d", what, len(a), len(b))
	}
	for p, ab := range a {
		if bb, ok := b[p]; !ok {
			t.Errorf("%s: %s missing", what, p)
		} else if !bytes.Equal(ab, bb) {
			t.Errorf("%s: %s differs:\n%s\n---\n%s", what, p, ab, bb)
		}
	}
}

func exportTo(t *testing.T, st *store.Store, box *secret.Box, dir string) {
	t.Helper()
	if _, err := Export(context.Background(), st, box, dir, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
}

func plan(t *testing.T, st *store.Store, box *secret.Box, dir string, opts Options) *Plan {
	t.Helper()
	f, probs, err := Read(dir)
	if err != nil || len(probs) > 0 {
		t.Fatalf("read: %v %v", err, probs)
	}
	if opts.Getenv == nil {
		opts.Getenv = env(fullEnv)
	}
	p, err := MakePlan(context.Background(), st, box, f, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func count(t *testing.T, st *store.Store, table string) int64 {
	t.Helper()
	var n int64
	if err := st.DB().Table(table).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRoundTrip(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { roundTrip(t, b.Open) })
	}
}

func roundTrip(t *testing.T, open func(testing.TB) *store.Store) {
	ctx := context.Background()
	src, srcBox := open(t), newBox(t)
	seed(t, src, srcBox)
	dir := t.TempDir()
	exportTo(t, src, srcBox, dir)
	first := tree(t, dir)
	if len(first) != 4+2*7+2 { // + escalation's a.rules.json and b.rules.json; books' side a has an empty list: no file
		t.Fatalf("exported %d files: %v", len(first), keys(first))
	}
	if _, ok := first["teams/finance/connections/books/a.rules.json"]; ok {
		t.Fatalf("a side whose rules were all removed has a rules file:\n%s", first["teams/finance/connections/books/a.rules.json"])
	}
	if b := first["teams/default/connections/escalation/a.rules.json"]; !bytes.Contains(b, []byte(`"critical <issues> need a due date"`)) ||
		!bytes.Contains(b, []byte("\n  {\n    \"field\": \"contact\",")) {
		t.Fatalf("a.rules.json is not the current version, indented and unescaped:\n%s", b)
	}
	exportTo(t, src, srcBox, dir) // into the same folder: stable bytes, nothing left over
	sameTree(t, "second export", first, tree(t, dir))
	for p, b := range first {
		for _, v := range []string{deskPassword, ledgerToken} {
			if bytes.Contains(b, []byte(v)) {
				t.Fatalf("%s contains a secret value", p)
			}
		}
	}
	// The deployment id names the store, not its configuration: it must
	// not travel (two deployments with one id would share their
	// correlation keys, engine/corrkey.go).
	srcDep, err := src.Deployment(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range first {
		if bytes.Contains(b, []byte(srcDep.ID)) {
			t.Fatalf("%s carries the deployment id %s", p, srcDep.ID)
		}
	}
	if !bytes.Contains(first["teams/default/systems/desk.json"], []byte(`"dsn_password"`)) {
		t.Fatalf("secret name missing:\n%s", first["teams/default/systems/desk.json"])
	}

	// A fresh database with its own key.
	dst, dstBox := open(t), newBox(t)
	dstDep, err := dst.Deployment(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A missing secret fails the plan and writes nothing.
	p := plan(t, dst, dstBox, dir, Options{Getenv: env(map[string]string{"DUPLEX_SECRET_DESK_DSN_PASSWORD": deskPassword})})
	if len(p.Problems) != 1 || !strings.Contains(p.Problems[0].String(), `secret "api_token" needed`) ||
		!strings.Contains(p.Problems[0].String(), "DUPLEX_SECRET_LEDGER_API_TOKEN") {
		t.Fatalf("problems: %v", p.Problems)
	}
	if err := p.Apply(ctx, dst); !errors.Is(err, ErrProblems) {
		t.Fatalf("apply with problems: %v", err)
	}
	if n := count(t, dst, "systems") + count(t, dst, "connections") + count(t, dst, "audit_log"); n != 0 {
		t.Fatalf("a refused plan wrote %d rows", n)
	}

	// A dry run (a plan that is not applied) writes nothing either.
	p = plan(t, dst, dstBox, dir, Options{})
	if len(p.Problems) > 0 {
		t.Fatalf("problems: %v", p.Problems)
	}
	// team finance, 4 systems, 2 connections
	if len(p.Changes) != 7 {
		t.Fatalf("plan: %+v", p.Changes)
	}
	if n := count(t, dst, "systems") + count(t, dst, "teams"); n != 1 {
		t.Fatalf("planning wrote rows: %d", n)
	}
	if err := p.Apply(ctx, dst); err != nil {
		t.Fatal(err)
	}
	compareStores(t, src, srcBox, dst, dstBox)
	if d, err := dst.Deployment(ctx); err != nil || d != dstDep || d.ID == srcDep.ID {
		t.Fatalf("after apply the store's deployment is %+v (%v); it was %+v, the source's %+v", d, err, dstDep, srcDep)
	}

	// Applying again changes nothing and makes no script version.
	versions, audits := count(t, dst, "script_versions"), count(t, dst, "audit_log")
	p = plan(t, dst, dstBox, dir, Options{})
	if len(p.Changes) != 0 || len(p.Problems) != 0 {
		t.Fatalf("second plan: %+v %v", p.Changes, p.Problems)
	}
	if err := p.Apply(ctx, dst); err != nil {
		t.Fatal(err)
	}
	if v, a := count(t, dst, "script_versions"), count(t, dst, "audit_log"); v != versions || a != audits {
		t.Fatalf("second apply: versions %d → %d, audit %d → %d", versions, v, audits, a)
	}
	// And the new database exports to the same bytes.
	dir2 := t.TempDir()
	exportTo(t, dst, dstBox, dir2)
	sameTree(t, "export of the applied database", first, tree(t, dir2))

	// Edits: a script, pause, a poll interval, a secret value, rules on
	// both sides (b's file removed: its rules are cleared) and a
	// reformatted rules file, which is no change.
	escDir := filepath.Join(dir, "teams/default/connections/escalation")
	writeTest(t, filepath.Join(escDir, "a.outgoing.js"), "replica.title = entity.subject;\n")
	writeTest(t, filepath.Join(escDir, "a.rules.json"), `[{"field": "title", "kind": "required"}, {"expr": "len(title) < 80"}]`)
	if err := os.Remove(filepath.Join(escDir, "b.rules.json")); err != nil {
		t.Fatal(err)
	}
	writeTest(t, filepath.Join(dir, "teams/finance/connections/books/b.rules.json"), "[\n\n]\n")
	editJSON(t, filepath.Join(escDir, "connection.json"), func(m map[string]any) { m["active"] = false })
	editJSON(t, filepath.Join(dir, "teams/default/systems/desk.json"), func(m map[string]any) { m["poll_interval_ms"] = 900 })
	p = plan(t, dst, dstBox, dir, Options{Getenv: env(map[string]string{"DUPLEX_SECRET_LEDGER_API_TOKEN": "rotated-token"})})
	var whats []string
	for _, c := range p.Changes {
		whats = append(whats, c.Sign+" "+c.What)
	}
	want := []string{
		`~ system desk: poll_interval_ms 1500 → 900`,
		`~ system ledger: secret "api_token" (new value)`,
		`~ connection escalation: new version of a.outgoing.js`,
		`~ connection escalation: new version of a.rules.json (2 rules)`,
		`~ connection escalation: new version of b.rules.json (0 rules)`,
		`~ connection escalation: pause`,
	}
	if strings.Join(whats, "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(whats, "\n"), strings.Join(want, "\n"))
	}
	if err := p.Apply(ctx, dst); err != nil {
		t.Fatal(err)
	}
	if v := count(t, dst, "script_versions"); v != versions+3 {
		t.Fatalf("script versions %d → %d, want three more", versions, v)
	}
	escRules, err := dst.CurrentRules(ctx, connByName(t, dst, "escalation").ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := escRules[store.SideA].Source; !strings.Contains(got, `"kind": "expr"`) ||
		!strings.Contains(got, `"len(title) \u003c 80"`) { // stored as the API stores it (json.MarshalIndent)
		t.Fatalf("a rules after the edit (an expression rule without a kind is saved as expr):\n%s", got)
	}
	if got := escRules[store.SideB]; got.Source != "[]" || got.Version != 2 || got.Author != Actor {
		t.Fatalf("b rules after the file was removed: %+v", got)
	}
	var ruleAudits int64
	if err := dst.DB().Table("audit_log").Where("action = ?", "rules.save").Count(&ruleAudits).Error; err != nil || ruleAudits != 2 {
		t.Fatalf("rules.save audit entries: %d %v", ruleAudits, err)
	}
	if p = plan(t, dst, dstBox, dir, Options{Getenv: env(nil)}); len(p.Changes) != 0 {
		t.Fatalf("a plan after applying the edits: %+v", p.Changes)
	}
	ledger := systemByName(t, dst, "ledger")
	if m, _ := dstBox.OpenMap(ledger.Secrets); m["api_token"] != "rotated-token" {
		t.Fatalf("ledger secrets: %v", m)
	}
	desk := systemByName(t, dst, "desk")
	if m, _ := dstBox.OpenMap(desk.Secrets); m["dsn_password"] != deskPassword {
		t.Fatalf("desk kept its secret when no value was given: %v", m)
	}
	entries, err := dst.ListAudit(ctx, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Actor != Actor || e.TeamID == nil || *e.TeamID == 0 {
			t.Fatalf("audit entry: %+v", e)
		}
		if strings.Contains(e.Detail, "rotated-token") {
			t.Fatalf("audit holds a secret value: %+v", e)
		}
	}

	// Prune: a connection removed from the folder stays unless --prune.
	if err := os.RemoveAll(filepath.Join(dir, "teams/finance/connections/books")); err != nil {
		t.Fatal(err)
	}
	noEnv := env(nil) // stored secrets stay as they are
	if p = plan(t, dst, dstBox, dir, Options{Getenv: noEnv}); len(p.Changes) != 0 {
		t.Fatalf("without prune: %+v", p.Changes)
	}
	p = plan(t, dst, dstBox, dir, Options{Prune: true, Getenv: noEnv})
	if len(p.Changes) != 1 || p.Changes[0].Sign != "-" || p.Changes[0].What != "connection books" {
		t.Fatalf("prune plan: %+v", p.Changes)
	}
	if err := p.Apply(ctx, dst); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.ListConnections(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dst, "connections"); n != 1 {
		t.Fatalf("%d connections after prune", n)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func writeTest(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func editJSON(t *testing.T, path string, fn func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	out, _ := json.MarshalIndent(m, "", "  ")
	writeTest(t, path, string(out))
}

func connByName(t *testing.T, st *store.Store, name string) store.Connection {
	t.Helper()
	all, err := st.ListConnections(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no connection %q", name)
	return store.Connection{}
}

func systemByName(t *testing.T, st *store.Store, name string) store.System {
	t.Helper()
	all, err := st.ListSystems(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no system %q", name)
	return store.System{}
}

// compareStores checks field by field that dst holds src's configuration.
func compareStores(t *testing.T, src *store.Store, srcBox *secret.Box, dst *store.Store, dstBox *secret.Box) {
	t.Helper()
	ctx := context.Background()
	teamNames := func(st *store.Store) map[int64]string {
		ts, err := st.Identity().ListTeams(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[int64]string{}
		for _, x := range ts {
			m[x.ID] = x.Name
		}
		return m
	}
	srcTeams, dstTeams := teamNames(src), teamNames(dst)
	srcSys, _ := src.ListSystems(ctx)
	dstSys, _ := dst.ListSystems(ctx)
	if len(srcSys) != len(dstSys) {
		t.Fatalf("systems: %d vs %d", len(srcSys), len(dstSys))
	}
	sysName := func(list []store.System) map[int64]string {
		m := map[int64]string{}
		for _, s := range list {
			m[s.ID] = s.Name
		}
		return m
	}
	srcNames, dstNames := sysName(srcSys), sysName(dstSys)
	for _, a := range srcSys {
		b := systemByName(t, dst, a.Name)
		as, _ := compactJSON([]byte(a.Settings))
		bs, _ := compactJSON([]byte(b.Settings))
		if a.Kind != b.Kind || as != bs || a.PollIntervalMS != b.PollIntervalMS || a.RatePerSecond != b.RatePerSecond ||
			a.RateBurst != b.RateBurst || srcTeams[a.TeamID] != dstTeams[b.TeamID] {
			t.Errorf("system %s:\n%+v\n%+v", a.Name, a, b)
		}
		am, err1 := srcBox.OpenMap(a.Secrets)
		bm, err2 := dstBox.OpenMap(b.Secrets)
		if err1 != nil || err2 != nil || !mapsEqual(am, bm) {
			t.Errorf("system %s secrets: %v %v (%v %v)", a.Name, am, bm, err1, err2)
		}
	}
	srcConns, _ := src.ListConnections(ctx)
	dstConns, _ := dst.ListConnections(ctx)
	if len(srcConns) != len(dstConns) {
		t.Fatalf("connections: %d vs %d", len(srcConns), len(dstConns))
	}
	for _, a := range srcConns {
		var b store.Connection
		for _, c := range dstConns {
			if c.Name == a.Name {
				b = c
			}
		}
		if srcNames[a.SystemAID] != dstNames[b.SystemAID] || srcNames[a.SystemBID] != dstNames[b.SystemBID] ||
			a.Active != b.Active || a.Template != b.Template || a.ConflictPolicy != b.ConflictPolicy ||
			a.Options != b.Options || srcTeams[a.TeamID] != dstTeams[b.TeamID] {
			t.Errorf("connection %s:\n%+v\n%+v", a.Name, a, b)
		}
		ar, err1 := src.CurrentRules(ctx, a.ID)
		br, err2 := dst.CurrentRules(ctx, b.ID)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		for _, side := range Sides {
			x, errX := scripting.ParseRules(ar[side].Source)
			y, errY := scripting.ParseRules(br[side].Source)
			xj, _ := json.Marshal(x)
			yj, _ := json.Marshal(y)
			if errX != nil || errY != nil || (len(x) > 0 || len(y) > 0) && !bytes.Equal(xj, yj) {
				t.Errorf("connection %s %s rules: %s vs %s (%v %v)", a.Name, side, xj, yj, errX, errY)
			}
		}
		as, _ := src.CurrentScripts(ctx, a.ID)
		bs, _ := dst.CurrentScripts(ctx, b.ID)
		for _, side := range Sides {
			for _, kind := range store.ScriptKinds {
				if as[side][kind].Source != bs[side][kind].Source {
					t.Errorf("connection %s %s %s: %q vs %q", a.Name, side, kind, as[side][kind].Source, bs[side][kind].Source)
				}
			}
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	conn := filepath.Join(dir, "teams/default/connections/c1")
	writeTest(t, filepath.Join(dir, "teams/default/systems/s1.json"), `{"kind": "sql", "settings": {}, "secrets": []}`)
	writeTest(t, filepath.Join(dir, "teams/default/systems/s2.json"), `{"kind": "sql", "settings": {}, "secrets": []}`)
	writeTest(t, filepath.Join(conn, "connection.json"), `{"system_a": "s1", "system_b": "s2", "active": false}`)
	writeTest(t, filepath.Join(conn, "a.outgoing.js"), "replica.title = entity.subject;\nreplica.x = ;\n")
	writeTest(t, filepath.Join(conn, "a.trigger.expr"), `"todev" in labels &&`)
	writeTest(t, filepath.Join(conn, "b.incoming.js"), "entity.title = replica.title;\n")
	// A template folder: the built-in one passes its fixtures.
	copyDir(t, "../../scripts/support-escalation", filepath.Join(dir, "templates/support-escalation"))

	probs, err := Validate(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range probs {
		got = append(got, p.String())
	}
	if len(probs) != 2 ||
		!strings.HasPrefix(got[0], "teams/default/connections/c1/a.trigger.expr:1:20: ") ||
		!strings.HasPrefix(got[1], "teams/default/connections/c1/a.outgoing.js:2:13: SyntaxError") {
		t.Fatalf("problems:\n%s", strings.Join(got, "\n"))
	}

	// Fixing both leaves it clean; a broken fixture expectation is caught.
	writeTest(t, filepath.Join(conn, "a.outgoing.js"), "replica.title = entity.subject;\n")
	writeTest(t, filepath.Join(conn, "a.trigger.expr"), `"todev" in labels`)
	if probs, err := Validate(context.Background(), dir, nil); err != nil || len(probs) != 0 {
		t.Fatalf("fixed folder: %v %v", probs, err)
	}
	fx := filepath.Join(dir, "templates/support-escalation/testdata/a-escalated-ticket.json")
	b, _ := os.ReadFile(fx)
	writeTest(t, fx, strings.Replace(string(b), `"priority": "critical"`, `"priority": "low"`, 1))
	probs, err = Validate(context.Background(), dir, nil)
	if err != nil || len(probs) != 1 || probs[0].File != "templates/support-escalation/testdata/a-escalated-ticket.json" {
		t.Fatalf("broken fixture: %v %v", probs, err)
	}

	// Rules: a unique rule passes offline (its lookup needs the live
	// connector); an expression that does not compile is reported at the
	// error inside it, a rule with no kind at the rule, each with its
	// position in the list.
	writeTest(t, filepath.Join(conn, "b.rules.json"), `[
  {"field": "ticket", "kind": "unique", "where": "status != \"closed\""},
  {"field": "due", "kind": "expr", "expr": "priority == \"x\" &&"}
]`)
	writeTest(t, filepath.Join(conn, "a.rules.json"), "[\n  {\"field\": \"contact\", \"kind\": \"email\"},\n    {\"field\": \"x\"}\n]\n")
	probs, err = Validate(context.Background(), dir, nil)
	got = nil
	for _, p := range probs {
		got = append(got, p.String())
	}
	if err != nil || len(probs) != 3 || // + the broken fixture
		!strings.HasPrefix(got[0], "teams/default/connections/c1/a.rules.json:3:5: rule 2 (no kind): kind is required") ||
		!strings.HasPrefix(got[1], "teams/default/connections/c1/b.rules.json:3:64: rule 2 (expr): unexpected token EOF (expr 1:18)") {
		t.Fatalf("broken rules: %v\n%s", err, strings.Join(got, "\n"))
	}
	writeTest(t, filepath.Join(conn, "a.rules.json"), `[{"field": "contact", "kind": "email", "mesage": "typo"}]`)
	writeTest(t, filepath.Join(conn, "b.rules.json"), `[{"field": "ticket", "kind": "unique", "where": "status !="}]`)
	probs, _ = Validate(context.Background(), dir, nil)
	got = nil
	for _, p := range probs {
		got = append(got, p.String())
	}
	if len(probs) != 3 || !strings.HasPrefix(got[0], `teams/default/connections/c1/a.rules.json:1:40: json: unknown field "mesage"`) ||
		!strings.HasPrefix(got[1], "teams/default/connections/c1/b.rules.json:1:") || !strings.Contains(got[1], "rule 1 (unique)") {
		t.Fatalf("rules with an unknown field, a broken where: \n%s", strings.Join(got, "\n"))
	}

	// Bad JSON is reported with its position.
	writeTest(t, filepath.Join(conn, "connection.json"), "{\n  \"system_a\": \"s1\",\n  \"sytem_b\": \"s2\"\n}")
	probs, _ = Validate(context.Background(), dir, nil)
	if len(probs) == 0 || probs[0].File != "teams/default/connections/c1/connection.json" || probs[0].Line != 3 {
		t.Fatalf("unknown field: %v", probs)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		writeTest(t, filepath.Join(to, rel), string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
