package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
)

// TestConfigCommands drives export, apply and validate as the binary does,
// between two data dirs with different keys.
func TestConfigCommands(t *testing.T) {
	t.Setenv("DUPLEX_SECRET_KEY", "")
	t.Setenv("DUPLEX_SECRET_KEY_PREVIOUS", "")
	t.Setenv("DUPLEX_NEW_SECRET_KEY", "")
	ctx := context.Background()
	src := common{dataDir: t.TempDir()}
	box, err := loadBox(src.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := box.SealMap(map[string]string{"dsn": "s3cret-value"})
	a := store.System{Name: "desk", Kind: "sql", Settings: `{"driver":"sqlite","table":"tickets","fields":[{"name":"title"}]}`, Secrets: sealed, PollIntervalMS: 2000}
	b := store.System{Name: "eng tracker", Kind: "sql", Settings: sqlSettings, PollIntervalMS: 2000}
	for _, s := range []*store.System{&a, &b} {
		if err := st.CreateSystem(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	conn := store.Connection{Name: "esc", SystemAID: a.ID, SystemBID: b.ID}
	if err := st.CreateConnection(ctx, &conn, map[store.Side]map[store.ScriptKind]string{
		store.SideA: {store.KindOutgoing: "replica.t = entity.subject;"}}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SaveScript(ctx, conn.ID, store.SideB, store.KindRules,
		`[{"field": "title", "kind": "required"}, {"field": "prio", "kind": "oneOf", "values": ["low", "high"]}]`, "test"); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()

	dir := filepath.Join(t.TempDir(), "config")
	var out bytes.Buffer
	if err := runExport(ctx, []string{dir, "--data", src.dataDir}, &out); err != nil {
		t.Fatal(err)
	}
	if err := runValidate(ctx, []string{dir}, &out); err != nil {
		t.Fatalf("validate: %v\n%s", err, out.String())
	}
	rulesFile := filepath.Join(dir, "teams/default/connections/esc/b.rules.json")
	if b, err := os.ReadFile(rulesFile); err != nil || !strings.Contains(string(b), `"oneOf"`) {
		t.Fatalf("exported rules: %v\n%s", err, b)
	}
	if _, err := os.Stat(filepath.Join(dir, "teams/default/connections/esc/a.rules.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a side without rules has a rules file: %v", err)
	}

	dst := t.TempDir()
	count := func() int64 {
		st, err := openStore(ctx, common{dataDir: dst})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var n int64
		st.DB().Table("systems").Count(&n)
		return n
	}
	// A store that does not exist: refused without --create, naming it.
	out.Reset()
	if err := runApply(ctx, []string{"--data", dst, dir}, &out); err == nil ||
		!strings.Contains(err.Error(), filepath.Join(dst, "duplex.db")) || !strings.Contains(err.Error(), "--create") {
		t.Fatalf("apply into no store: %v\n%s", err, out.String())
	}
	assertEmptyDir(t, dst)
	// Missing secret: refused, nothing written (not even the store).
	out.Reset()
	if err := runApply(ctx, []string{"--data", dst, "--create", dir}, &out); !errors.Is(err, errInvalid) ||
		!strings.Contains(out.String(), "DUPLEX_SECRET_DESK_DSN") {
		t.Fatalf("apply without the secret: %v\n%s", err, out.String())
	}
	assertEmptyDir(t, dst)
	t.Setenv("DUPLEX_SECRET_DESK_DSN", "s3cret-value")
	// A dry run into nothing shows the whole plan and creates nothing.
	out.Reset()
	if err := runApply(ctx, []string{"--data", dst, "--create", "--dry-run", dir}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "+ [default] connection esc") || !strings.Contains(out.String(), "does not exist yet") {
		t.Fatalf("dry run:\n%s", out.String())
	}
	assertEmptyDir(t, dst)
	out.Reset()
	if err := runApply(ctx, []string{"--data", dst, "--create", dir}, &out); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Fatalf("apply: %d systems\n%s", n, out.String())
	}
	{
		st, err := openStore(ctx, common{dataDir: dst})
		if err != nil {
			t.Fatal(err)
		}
		conns, _ := st.ListConnections(ctx)
		rules, err := st.CurrentRules(ctx, conns[0].ID)
		_ = st.Close()
		if err != nil || len(rules) != 1 || !strings.Contains(rules[store.SideB].Source, `"oneOf"`) {
			t.Fatalf("rules after apply: %v %+v", err, rules)
		}
	}
	out.Reset()
	if err := runApply(ctx, []string{dir, "--data", dst}, &out); err != nil || strings.TrimSpace(out.String()) != "no changes" {
		t.Fatalf("second apply: %v\n%s", err, out.String())
	}

	// validate: a broken rule fails with its file and position.
	if err := os.WriteFile(rulesFile, []byte("[\n  {\"kind\": \"expr\", \"expr\": \"title ==\"}\n]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runValidate(ctx, []string{dir}, &out); !errors.Is(err, errInvalid) ||
		!strings.Contains(out.String(), rulesFile+":2:") || !strings.Contains(out.String(), "rule 1 (expr)") {
		t.Fatalf("validate broken rule: %v\n%s", err, out.String())
	}
	// apply refuses it too, writing nothing.
	out.Reset()
	if err := runApply(ctx, []string{"--data", dst, dir}, &out); !errors.Is(err, errInvalid) || !strings.Contains(out.String(), "rule 1 (expr)") {
		t.Fatalf("apply broken rule: %v\n%s", err, out.String())
	}

	// validate: a broken trigger fails with its position.
	trig := filepath.Join(dir, "teams/default/connections/esc/b.trigger.expr")
	if err := os.WriteFile(trig, []byte(`state ==`), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runValidate(ctx, []string{dir}, &out); !errors.Is(err, errInvalid) ||
		!strings.Contains(out.String(), trig+":1:") {
		t.Fatalf("validate broken trigger: %v\n%s", err, out.String())
	}
}

// sqlSettings are settings an sql system's strict parse accepts (apply and
// validate check them; nothing here opens the database).
const sqlSettings = `{"driver":"sqlite","dsn":"file:none.db","table":"t","fields":[{"name":"title"}]}`

// TestValidateRefusesUnknownKindAndKey: validate and apply --dry-run name
// the file, line and column of an unknown kind or settings key, before any
// store is opened.
func TestValidateRefusesUnknownKindAndKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sys := filepath.Join(dir, "teams", "default", "systems")
	if err := os.MkdirAll(sys, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"rm.json":   "{\n  \"kind\": \"redmine\",\n  \"settings\": {\n    \"url\": \"http://127.0.0.1:3100\",\n    \"project\": \"p\",\n    \"corelation_field\": \"k\"\n  }\n}\n",
		"jira.json": "{\n  \"kind\": \"jria\",\n  \"settings\": {}\n}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(sys, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	if err := runValidate(ctx, []string{dir}, &out); !errors.Is(err, errInvalid) {
		t.Fatalf("validate: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"rm.json:6:5: redmine settings: corelation_field: unknown setting (did you mean \"correlation_field\"?)",
		"jira.json:2:3: unknown connector kind \"jria\"",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	data := filepath.Join(t.TempDir(), "none")
	if err := runApply(ctx, []string{"--data", data, "--dry-run", dir}, &out); !errors.Is(err, errInvalid) ||
		!strings.Contains(out.String(), "corelation_field") {
		t.Fatalf("apply --dry-run: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("apply --dry-run of a refused folder made %s: %v", data, err)
	}
}
