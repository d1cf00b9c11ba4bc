package confdir

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/scripting"
)

// A script deadline over the sandbox's cap is refused by `duplex
// validate` and `duplex apply` (the same check), not silently capped.
func TestValidateScriptTimeoutCap(t *testing.T) {
	dir := t.TempDir()
	conn := filepath.Join(dir, "teams/default/connections/c1")
	writeTest(t, filepath.Join(dir, "teams/default/systems/s1.json"), `{"kind": "sql", "settings": {}, "secrets": []}`)
	writeTest(t, filepath.Join(dir, "teams/default/systems/s2.json"), `{"kind": "sql", "settings": {}, "secrets": []}`)
	writeTest(t, filepath.Join(conn, "b.incoming.js"), "entity.title = replica.title;\n")
	writeTest(t, filepath.Join(conn, "connection.json"), `{"system_a": "s1", "system_b": "s2", "options": {"script_timeout_ms": 600000}}`)
	probs, err := Validate(context.Background(), dir, nil)
	if err != nil || len(probs) != 1 || !strings.Contains(probs[0].String(), "script_timeout_ms is 600000; the most a script may run is 10000 ms") {
		t.Fatalf("over the cap: %v %v", probs, err)
	}
	writeTest(t, filepath.Join(conn, "connection.json"), `{"system_a": "s1", "system_b": "s2", "options": {"script_timeout_ms": 10000}}`)
	if probs, err := Validate(context.Background(), dir, nil); err != nil || len(probs) != 0 {
		t.Fatalf("at the cap: %v %v", probs, err)
	}
}

// A script the server would not compile within its deadline is refused by
// `duplex validate` (and apply) with the server's message, not stored.
func TestValidateSlowCompile(t *testing.T) {
	defer func(d time.Duration) { compileDeadline = d }(compileDeadline)
	compileDeadline = 5 * time.Millisecond // the chain below takes about 0.2 s
	dir := t.TempDir()
	conn := filepath.Join(dir, "teams/default/connections/c1")
	writeTest(t, filepath.Join(dir, "teams/default/systems/s1.json"), `{"kind": "sql", "settings": {}, "secrets": []}`)
	writeTest(t, filepath.Join(dir, "teams/default/systems/s2.json"), `{"kind": "sql", "settings": {}, "secrets": []}`)
	writeTest(t, filepath.Join(conn, "connection.json"), `{"system_a": "s1", "system_b": "s2"}`)
	writeTest(t, filepath.Join(conn, "a.outgoing.js"), "replica.x = "+strings.Repeat("1+", 6000)+"1;\n")
	writeTest(t, filepath.Join(conn, "b.incoming.js"), "entity.title = replica.title;\n")
	probs, err := Validate(context.Background(), dir, nil)
	if err != nil || len(probs) != 1 || probs[0].String() != "teams/default/connections/c1/a.outgoing.js: "+scripting.SlowCompileMessage(compileDeadline) {
		t.Fatalf("slow compile: %v %v", probs, err)
	}
}
