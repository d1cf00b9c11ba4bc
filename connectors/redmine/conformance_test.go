package redmine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/conntest"
	"github.com/duplexsync/duplex/connectors/redmine"
)

func openFake(t *testing.T, f *fake) connectors.Connector {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{"url": f.srv.URL, "project": f.ident, "correlation_field": "Duplex key"})
	c, err := redmine.New(context.Background(), connectors.Config{Name: "fake", Settings: raw, Secrets: map[string]string{"api_key": fakeKey}})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestConformance runs the shared suite against the offline fake.
func TestConformance(t *testing.T) {
	var f *fake
	conntest.Run(t, conntest.Harness{
		Spec: redmine.Spec(),
		Open: func(t *testing.T) connectors.Connector {
			f = newFake(t)
			return openFake(t, f)
		},
		Fields: func(n int) map[string]any {
			return map[string]any{"subject": fmt.Sprintf("issue %d", n), "description": "keep me"}
		},
		UpdateField: "subject", UpdateValue: "renamed", KeepField: "description",
		TieStamps: func(t *testing.T, ids []string) { f.stampAll(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)) },
		MissingID: "424242",
		FindField: "subject",
	})
}
