package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripts"
	"github.com/duplexsync/duplex/server"
)

// assertEmptyDir fails when dir holds anything (a store, a key, a WAL file).
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("%s: %s was created", dir, e.Name())
	}
}

// treeSum is every file of dir with its SHA-256, to prove nothing changed.
func treeSum(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("%s %x", p, sha256.Sum256(b)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func clearKeyEnv(t *testing.T) {
	t.Setenv("DUPLEX_SECRET_KEY", "")
	t.Setenv("DUPLEX_SECRET_KEY_PREVIOUS", "")
	t.Setenv("DUPLEX_NEW_SECRET_KEY", "")
}

// newStoreWithConn makes a store (and key) in a new data dir with two
// systems and a connection, as serve would have.
func newStoreWithConn(t *testing.T) (common, *store.Store) {
	t.Helper()
	ctx := context.Background()
	c := common{dataDir: t.TempDir()}
	if _, err := loadBox(c.dataDir); err != nil {
		t.Fatal(err)
	}
	st, err := openStore(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	a := store.System{Name: "desk", Kind: "sql", Settings: sqlSettings, PollIntervalMS: 2000}
	b := store.System{Name: "tracker", Kind: "sql", Settings: sqlSettings, PollIntervalMS: 2000}
	for _, s := range []*store.System{&a, &b} {
		if err := st.CreateSystem(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	conn := store.Connection{Name: "esc", SystemAID: a.ID, SystemBID: b.ID}
	if err := st.CreateConnection(ctx, &conn, nil, "test"); err != nil {
		t.Fatal(err)
	}
	return c, st
}

// A mistyped --data is an error naming the path for every command that
// reads a store; no store, key or file appears there, and the config
// folder is untouched.
func TestMistypedDataDir(t *testing.T) {
	clearKeyEnv(t)
	ctx := context.Background()
	src, _ := newStoreWithConn(t)
	dir := filepath.Join(t.TempDir(), "config")
	var out bytes.Buffer
	if err := runExport(ctx, []string{"--data", src.dataDir, dir}, &out); err != nil {
		t.Fatal(err)
	}
	before := treeSum(t, dir)
	typo := filepath.Join(t.TempDir(), "duplex-dta")
	missing := filepath.Join(typo, "duplex.db")
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"export", func() error { return runExport(ctx, []string{"--data", typo, dir}, &out) }},
		{"export --prune", func() error { return runExport(ctx, []string{"--data", typo, "--prune", dir}, &out) }},
		{"apply --dry-run", func() error { return runApply(ctx, []string{"--data", typo, "--dry-run", dir}, &out) }},
		{"apply", func() error { return runApply(ctx, []string{"--data", typo, dir}, &out) }},
		{"backup", func() error {
			return runBackup(ctx, []string{"--data", typo, filepath.Join(t.TempDir(), "b.db")}, &out)
		}},
		{"secrets rotate", func() error { return runSecrets(ctx, []string{"rotate", "--data", typo}, &out) }},
		{"template export", func() error {
			return runTemplate(ctx, []string{"export", "--data", typo, "x", filepath.Join(t.TempDir(), "t")}, &out)
		}},
	} {
		out.Reset()
		err := tc.run()
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("%s: want an error naming %s, got %v\n%s", tc.name, missing, err, out.String())
		}
		if _, err := os.Stat(typo); !os.IsNotExist(err) {
			t.Fatalf("%s created %s (%v)", tc.name, typo, err)
		}
	}
	if after := treeSum(t, dir); after != before {
		t.Fatalf("the config folder changed:\n%s\n---\n%s", before, after)
	}

	// The store exists but the key is elsewhere: refused, naming the key
	// file, and no key is made.
	keyless := t.TempDir()
	db := filepath.Join(src.dataDir, "duplex.db")
	out.Reset()
	err := runExport(ctx, []string{"--data", keyless, "--db", db, dir}, &out)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(keyless, "secret.key")) {
		t.Fatalf("export without a key: %v", err)
	}
	out.Reset()
	err = runApply(ctx, []string{"--data", keyless, "--db", db, "--dry-run", dir}, &out)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(keyless, "secret.key")) {
		t.Fatalf("dry run without a key: %v", err)
	}
	assertEmptyDir(t, keyless)
}

// A dry run into a folder with no store writes nothing, with or without
// --create; a plain apply needs --create.
func TestDryRunIntoNothing(t *testing.T) {
	clearKeyEnv(t)
	ctx := context.Background()
	src, _ := newStoreWithConn(t)
	dir := filepath.Join(t.TempDir(), "config")
	var out bytes.Buffer
	if err := runExport(ctx, []string{"--data", src.dataDir, dir}, &out); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	out.Reset()
	if err := runApply(ctx, []string{"--data", empty, "--dry-run", dir}, &out); err == nil ||
		!strings.Contains(err.Error(), filepath.Join(empty, "duplex.db")) {
		t.Fatalf("dry run without --create: %v\n%s", err, out.String())
	}
	assertEmptyDir(t, empty)
	out.Reset()
	if err := runApply(ctx, []string{"--data", empty, "--create", "--dry-run", dir}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "+ [default] system desk") || !strings.Contains(out.String(), "nothing applied") {
		t.Fatalf("dry run plan:\n%s", out.String())
	}
	assertEmptyDir(t, empty)
	// A dry run against an existing store a migration behind writes
	// nothing either: it is refused.
	out.Reset()
	if err := runApply(ctx, []string{"--data", empty, "--create", dir}, &out); err != nil {
		t.Fatalf("apply --create: %v\n%s", err, out.String())
	}
	for _, f := range []string{"duplex.db", "secret.key"} {
		if _, err := os.Stat(filepath.Join(empty, f)); err != nil {
			t.Fatalf("apply --create made no %s: %v", f, err)
		}
	}
	out.Reset()
	if err := runApply(ctx, []string{"--data", empty, "--dry-run", dir}, &out); err != nil || !strings.Contains(out.String(), "no changes") {
		t.Fatalf("dry run after apply: %v\n%s", err, out.String())
	}
	// A store a migration behind: the dry run and export refuse it rather
	// than migrate it.
	st, err := openStore(ctx, common{dataDir: empty})
	if err != nil {
		t.Fatal(err)
	}
	applied := func() int64 {
		var v int64
		if err := st.DB().Raw("SELECT MAX(version_id) FROM goose_db_version").Scan(&v).Error; err != nil {
			t.Fatal(err)
		}
		return v
	}
	latest := applied()
	if err := st.DB().Exec("DELETE FROM goose_db_version WHERE version_id = ?", latest).Error; err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"apply", "--dry-run"}, {"export"}} {
		run := runApply
		if args[0] == "export" {
			run = runExport
		}
		err := run(ctx, append(args[1:], "--data", empty, filepath.Join(t.TempDir(), "x")), &out)
		if err == nil || !strings.Contains(err.Error(), "1 migration(s) behind") {
			t.Fatalf("%s on a store behind: %v", args[0], err)
		}
	}
	if v := applied(); v >= latest {
		t.Fatalf("a read migrated the store to %d", v)
	}
	_ = st.Close()
}

// Export keeps the files of objects the store does not have unless --prune,
// and says which.
func TestExportKeepsWhatItDidNotFind(t *testing.T) {
	clearKeyEnv(t)
	ctx := context.Background()
	src, st := newStoreWithConn(t)
	dir := filepath.Join(t.TempDir(), "config")
	var out bytes.Buffer
	if err := runExport(ctx, []string{"--data", src.dataDir, dir}, &out); err != nil {
		t.Fatal(err)
	}
	conns, err := st.ListConnections(ctx)
	if err != nil || len(conns) != 1 {
		t.Fatal(err, conns)
	}
	if err := st.DeleteConnection(ctx, conns[0].ID); err != nil {
		t.Fatal(err)
	}
	connDir := filepath.Join(dir, "teams/default/connections/esc")
	out.Reset()
	if err := runExport(ctx, []string{"--data", src.dataDir, dir}, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(connDir, "connection.json")); err != nil {
		t.Fatalf("export without --prune removed the connection: %v", err)
	}
	if !strings.Contains(out.String(), "kept "+connDir+": not in the store") {
		t.Fatalf("export output:\n%s", out.String())
	}
	out.Reset()
	if err := runExport(ctx, []string{"--data", src.dataDir, "--prune", dir}, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(connDir); !os.IsNotExist(err) {
		t.Fatalf("export --prune kept %s: %v", connDir, err)
	}
	if !strings.Contains(out.String(), "removed "+connDir) {
		t.Fatalf("export --prune output:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "teams/default/systems/desk.json")); err != nil {
		t.Fatalf("export --prune removed a system the store has: %v", err)
	}
}

// A connection made from a shared team template of another team keeps its
// upgrade path after export → apply into a second store: template-status
// answers there as in the first.
func TestTemplateLinkRoundTrip(t *testing.T) {
	clearKeyEnv(t)
	ctx := context.Background()
	src, st := newStoreWithConn(t)
	ops := store.Team{Name: "ops"}
	if err := st.Identity().CreateTeam(ctx, &ops); err != nil {
		t.Fatal(err)
	}
	body := func(outgoing string) string {
		b := scripts.Body{Title: "Escalate", Params: []scripts.Param{{Name: "project", Type: "string", Default: "ENG"}},
			Sources:  scripts.Sources{"a": {"trigger": "", "outgoing": outgoing, "incoming": ""}, "b": {"trigger": "", "outgoing": "", "incoming": ""}},
			Fixtures: map[string]json.RawMessage{"a-one.json": json.RawMessage(`{"side":"a","entity":{"fields":{}},"want":{"matched":true}}`)}}
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return string(enc)
	}
	tpl := store.TeamTemplate{TeamID: store.DefaultTeamID, Name: "esc-tpl", Title: "Escalate"}
	if _, err := st.Templates().CreateTemplate(ctx, &tpl, body("replica.project = {{project}};"), "test", "first"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Templates().PublishTemplateVersion(ctx, tpl.ID, "Escalate", "", body("replica.project = {{project}}; replica.v = 2;"), "test", "second"); err != nil {
		t.Fatal(err)
	}
	if err := st.Templates().SetTemplateSharing(ctx, tpl.ID, store.VisibilityShared, []int64{ops.ID}); err != nil {
		t.Fatal(err)
	}
	sysA := store.System{Name: "ops-a", Kind: "sql", Settings: sqlSettings, TeamID: ops.ID}
	sysB := store.System{Name: "ops-b", Kind: "sql", Settings: sqlSettings, TeamID: ops.ID}
	for _, s := range []*store.System{&sysA, &sysB} {
		if err := st.CreateSystem(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	conn := store.Connection{Name: "ops-esc", SystemAID: sysA.ID, SystemBID: sysB.ID, TeamID: ops.ID}
	if err := st.CreateConnection(ctx, &conn, map[store.Side]map[store.ScriptKind]string{
		store.SideA: {store.KindOutgoing: `replica.project = "OPS";`}}, "test"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetConnectionTeamTemplate(ctx, conn.ID, tpl.ID, 1, `{"project":"OPS"}`); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "config")
	var out bytes.Buffer
	if err := runExport(ctx, []string{"--data", src.dataDir, dir}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1 template(s)") {
		t.Fatalf("export output:\n%s", out.String())
	}
	raw, err := os.ReadFile(filepath.Join(dir, "teams/ops/connections/ops-esc/connection.json"))
	if err != nil || !strings.Contains(string(raw), `"team_template"`) {
		t.Fatalf("connection.json: %v\n%s", err, raw)
	}
	if err := runValidate(ctx, []string{dir}, &out); err != nil {
		t.Fatalf("validate: %v\n%s", err, out.String())
	}

	// Without the template, apply refuses the link, naming it.
	bare := filepath.Join(t.TempDir(), "bare")
	if err := os.CopyFS(bare, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(bare, "teams/default/templates")); err != nil {
		t.Fatal(err)
	}
	dst := common{dataDir: t.TempDir()}
	out.Reset()
	if err := runApply(ctx, []string{"--data", dst.dataDir, "--create", bare}, &out); err == nil ||
		!strings.Contains(out.String(), "team_template default/esc-tpl version 1: the template is neither in the store nor in the folder") {
		t.Fatalf("apply without the template: %v\n%s", err, out.String())
	}
	assertEmptyDir(t, dst.dataDir)

	out.Reset()
	if err := runApply(ctx, []string{"--data", dst.dataDir, "--create", dir}, &out); err != nil {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "+ [default] template esc-tpl (2 versions, shared with ops)") {
		t.Fatalf("apply output:\n%s", out.String())
	}
	out.Reset()
	if err := runApply(ctx, []string{"--data", dst.dataDir, dir}, &out); err != nil || strings.TrimSpace(out.String()) != "no changes" {
		t.Fatalf("second apply: %v\n%s", err, out.String())
	}
	// The second store exports the same folder.
	again := filepath.Join(t.TempDir(), "again")
	if err := runExport(ctx, []string{"--data", dst.dataDir, again}, &out); err != nil {
		t.Fatal(err)
	}
	if a, b := strings.ReplaceAll(treeSum(t, dir), dir, ""), strings.ReplaceAll(treeSum(t, again), again, ""); a != b {
		t.Fatalf("exports differ:\n%s\n---\n%s", a, b)
	}

	status := func(c common) map[string]any {
		t.Helper()
		var token string
		a, err := buildApp(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), c, func(st *store.Store) (o server.AuthOptions, err error) {
			o, token, err = demoAccess(ctx, st)
			return o, err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer a.close()
		cs, err := a.store.ListConnections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		for _, x := range cs {
			if x.Name == "ops-esc" {
				id = x.ID
			}
		}
		req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/api/connections/%d/template-status", id), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		a.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("template-status: %d %s", rec.Code, rec.Body.String())
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "template_id") // ids differ between stores
		delete(m, "team_id")
		return m
	}
	want, got := status(src), status(dst)
	if fmt.Sprint(want) != fmt.Sprint(got) || fmt.Sprint(got["local_edits"]) != "[]" {
		t.Fatalf("template-status differs:\nfirst:  %v\nsecond: %v", want, got)
	}
	if got["update_available"] != true || got["version"] != float64(1) || got["latest"] != float64(2) ||
		fmt.Sprint(got["params"]) != "map[project:OPS]" || len(fmt.Sprint(got["diff"])) < 10 {
		t.Fatalf("template-status after the round trip: %v", got)
	}
}
