package engine_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// TestChangesMadeElsewhere: a running engine sees a connection's script and
// a system's settings changed directly in the store (as `duplex apply` or
// another process's API does, without Reload or ReloadSystem) within its
// refresh interval.
func TestChangesMadeElsewhere(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			f.settle()
			schema, err := f.eng.Schema(f.ctx, f.conn.SystemAID)
			if err != nil || !hasField(schema.Fields, "requester") {
				t.Fatalf("support schema before: %+v %v", schema, err)
			}
			ctx, cancel := context.WithCancel(f.ctx)
			done := make(chan error, 1)
			go func() { done <- f.eng.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("run: %v", err)
				}
			})

			// A new outgoing script, saved straight into the store.
			cur, err := f.st.CurrentScripts(f.ctx, f.conn.ID)
			if err != nil {
				t.Fatal(err)
			}
			src := cur[store.SideA][store.KindOutgoing].Source + "\nreplica.title = \"[v2] \" + entity.subject;\n"
			if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideA, store.KindOutgoing, src, "elsewhere"); err != nil {
				t.Fatal(err)
			}
			// New settings of the support desk: "requester" is no longer a field.
			sys, err := f.st.GetSystem(f.ctx, f.conn.SystemAID)
			if err != nil {
				t.Fatal(err)
			}
			var settings map[string]any
			if err := json.Unmarshal([]byte(sys.Settings), &settings); err != nil {
				t.Fatal(err)
			}
			var fields []any
			for _, fl := range settings["fields"].([]any) {
				if fl.(map[string]any)["name"] != "requester" {
					fields = append(fields, fl)
				}
			}
			settings["fields"] = fields
			raw, _ := json.Marshal(settings)
			sys.Settings = string(raw)
			if err := f.st.UpdateSystem(f.ctx, &sys); err != nil {
				t.Fatal(err)
			}
			f.exec(f.support, "UPDATE tickets SET subject = 'changed elsewhere' WHERE id = 1")

			deadline := time.Now().Add(15 * time.Second)
			for {
				title := f.one(f.eng2, "SELECT title FROM issues WHERE ticket_ref = 'T-1'")
				schema, err := f.eng.Schema(f.ctx, f.conn.SystemAID)
				if err == nil && title == "[v2] changed elsewhere" && !hasField(schema.Fields, "requester") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after the changes: issue title %q, support fields %+v (%v)", title, schema.Fields, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			f.noFailures()
		})
	}
}

func hasField(fields []connectors.FieldSpec, name string) bool {
	for _, fl := range fields {
		if fl.Name == name {
			return true
		}
	}
	return false
}
