package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/internal/outbound"
)

// TestEveryConnectorFollowsThePolicy: every connector kind this binary
// offers, pointed at a loopback server under the default policy, is refused
// by the settings check (rule loopback, as a save through the API would
// be), and opening it and asking for changes fails with the same refusal
// at the dial: the server sees no request (issue 24: "for every connector").
func TestEveryConnectorFollowsThePolicy(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "reached", http.StatusTeapot)
	}))
	defer srv.Close()
	reg, err := registry()
	if err != nil {
		t.Fatal(err)
	}
	guard := outbound.NewGuards(outbound.Fixed(`{"allow":[]}`), outbound.Fence{}, nil).For(2)
	ctx := context.Background()
	kinds := 0
	for _, kind := range reg.Kinds() {
		// Settings each kind accepts (they are strict: an unknown key is refused).
		settings := map[string]any{"url": srv.URL}
		switch kind {
		case "github":
			settings["owner"], settings["repo"] = "o", "r"
		case "http":
			for k, v := range map[string]any{"list_path": "/items?since={since}", "get_path": "/items/{id}",
				"create_path": "/items", "update_path": "/items/{id}", "fields": []map[string]any{{"name": "x"}}} {
				settings[k] = v
			}
		case "jira", "redmine", "azuredevops":
			settings["project"] = "OPS"
		case "rt":
			settings["queue"] = "General"
		case "zendesk":
			settings["email"] = "e@x"
		case "servicenow":
			settings["username"] = "u"
		case "tryton":
			settings["database"], settings["user"] = "erp", "u"
		}
		if kind == "sql" {
			settings = map[string]any{"driver": "postgres", "dsn": "postgres://u@127.0.0.1:" + srv.URL[len("http://127.0.0.1:"):] + "/db",
				"table": "t", "fields": []map[string]any{{"name": "x"}}}
		}
		raw, _ := json.Marshal(settings)
		cfg := connectors.Config{Name: kind, Settings: raw, Guard: guard,
			Secrets: map[string]string{"api_key": "k", "token": "k", "user": "u", "password": "p", "email": "e@x", "api_token": "k", "pat": "k"}}
		var re *connectors.RefusedError
		if err := reg.Check(ctx, kind, cfg); !errors.As(err, &re) || re.Rule != "loopback" {
			t.Errorf("%s: settings check: %v, want a refusal by rule loopback", kind, err)
		}
		c, err := reg.Open(ctx, kind, cfg)
		if err == nil {
			_, err = c.Changes(ctx, "", 1)
			_ = c.Close()
		}
		if !errors.Is(err, connectors.ErrRefused) {
			t.Errorf("%s: open and list changes of a loopback server: %v, want a refusal", kind, err)
		}
		kinds++
	}
	if kinds < 6 || hits.Load() != 0 {
		t.Fatalf("%d kinds; the loopback server saw %d requests", kinds, hits.Load())
	}
}
