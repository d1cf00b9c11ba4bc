package confdir

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
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
