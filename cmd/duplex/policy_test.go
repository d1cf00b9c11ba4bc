package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/outbound"
	"github.com/duplexsync/duplex/internal/tlsconf"
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

// TestAlertWebhookFollowsThePolicy: the alert client main builds refuses a
// loopback receiver by default, and reaches it once an all-team rule allows
// it (a team's rule does not).
func TestAlertWebhookFollowsThePolicy(t *testing.T) {
	ctx := context.Background()
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	policy := `{"allow":[{"network":"127.0.0.1","team_id":3}]}`
	guards := outbound.NewGuards(func(context.Context) (string, error) { return policy, nil }, outbound.Fence{}, nil)
	base, _, err := tlsconf.ClientTransport("")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: alertTransport(base, guards)}
	post := func() error {
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL, strings.NewReader("{}"))
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := post(); !errors.Is(err, connectors.ErrRefused) || hits != 0 {
		t.Fatalf("default: %v, %d hits", err, hits)
	}
	policy = `{"allow":[{"network":"127.0.0.1"}]}`
	guards.Forget()
	if err := post(); err != nil || hits != 1 {
		t.Fatalf("allowed: %v, %d hits", err, hits)
	}
}
