package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
)

// TestPolicyCommand: allow adds a rule, remove drops it, a bad rule changes
// nothing, and every change is in the audit log as the cli's.
func TestPolicyCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runPolicy(ctx, append(args[:1:1], append([]string{"--data", dir}, args[1:]...)...), &out)
		return out.String(), err
	}
	if out, err := run("show"); err != nil || !strings.Contains(out, "allow rules: none") {
		t.Fatalf("show: %v %q", err, out)
	}
	out, err := run("allow", "--network", "10.2.0.0/16", "--port", "5432", "--team", "3", "--note", "ops db")
	if err != nil || !strings.Contains(out, "1. allow network 10.2.0.0/16 port 5432 (team 3): ops db") {
		t.Fatalf("allow: %v %q", err, out)
	}
	if _, err := run("allow", "--host", "10.0.0.1"); err == nil {
		t.Fatal("an address as a host rule was accepted")
	}
	if out, err := run("remove", "1"); err != nil || !strings.Contains(out, "allow rules: none") {
		t.Fatalf("remove: %v %q", err, out)
	}
	st, err := store.Open(ctx, dir+"/duplex.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, err := st.ListAuditFor(ctx, store.AuditFilter{Action: "outbound_policy.set", Limit: 10})
	if err != nil || len(entries) != 2 || entries[0].Actor != "cli" {
		t.Fatalf("audit: %v %+v", err, entries)
	}
}
