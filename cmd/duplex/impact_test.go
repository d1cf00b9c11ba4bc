package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `duplex script impact` against a running demo's store: an outgoing draft
// that changes the title reports the escalated ticket's patch, old → new.
func TestScriptImpactCommand(t *testing.T) {
	dir := t.TempDir()
	startDemoIn(t, dir, false)
	db := openDB(t, filepath.Join(dir, "duplex.db"))
	waitFor(t, "the demo's escalation synced", func() bool {
		return count(t, db, "SELECT COUNT(*) FROM sync_events WHERE status = 'done' AND direction = 'a_to_b'") > 0
	})
	draft := filepath.Join(t.TempDir(), "a.outgoing.js")
	src := `replica.title = "[T] " + entity.subject;
replica.description = entity.description;
replica.priority = entity.priority;
replica.ticket = entity.key;
replica.comments = entity.comments;
`
	if err := os.WriteFile(draft, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := runScript(context.Background(), []string{"impact", "--data", dir, "-direction", "a_to_b", "-outgoing", draft, "1"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	t.Log(got)
	if !strings.Contains(got, "patch_differs") || !strings.Contains(got, `patch.title: "`) || !strings.Contains(got, `→ "[T] `) {
		t.Fatalf("output:\n%s", got)
	}
	// No draft: a usage error, nothing run.
	if err := runScript(context.Background(), []string{"impact", "--data", dir, "-direction", "a_to_b", "1"}, &out); err == nil {
		t.Fatal("impact without a draft did not fail")
	}
}

// `duplex apply --dry-run` shows the impact of each changed script: the
// demo exported, its engineering-side incoming script edited in the folder,
// and the dry run names the escalated issue's title old → new, writing
// nothing.
func TestApplyDryRunShowsImpact(t *testing.T) {
	dir := t.TempDir()
	startDemoIn(t, dir, false)
	db := openDB(t, filepath.Join(dir, "duplex.db"))
	waitFor(t, "the demo's escalation synced", func() bool {
		return count(t, db, "SELECT COUNT(*) FROM sync_events WHERE status = 'done' AND direction = 'a_to_b'") > 0
	})
	ctx := context.Background()
	folder := filepath.Join(t.TempDir(), "config")
	var out bytes.Buffer
	if err := runExport(ctx, []string{folder, "--data", dir}, &out); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(folder, "teams", "*", "connections", "*", "b.incoming.js"))
	if len(files) != 1 {
		t.Fatalf("exported b.incoming.js: %v", files)
	}
	src, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "entity.title = replica.title;", `entity.title = "[T] " + replica.title;`, 1)
	if edited == string(src) {
		t.Fatalf("title line not found:\n%s", src)
	}
	if err := os.WriteFile(files[0], []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	versions := count(t, db, "SELECT COUNT(*) FROM script_versions")
	out.Reset()
	if err := runApply(ctx, []string{"--data", dir, "--dry-run", folder}, &out); err != nil {
		t.Fatalf("apply --dry-run: %v\n%s", err, out.String())
	}
	got := out.String()
	t.Log(got)
	for _, want := range []string{"new version of b.incoming.js", "impact of connection default/support-escalation a_to_b (changed: incoming)",
		"patch_differs", `patch.title: "Checkout fails with a 500" → "[T] Checkout fails with a 500"`, "dry run: nothing applied"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if after := count(t, db, "SELECT COUNT(*) FROM script_versions"); after != versions {
		t.Fatalf("a dry run saved scripts: %d → %d versions", versions, after)
	}
}
