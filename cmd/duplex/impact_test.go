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
