package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// shape decodes an API body into its fields, undecoded, to check each
// field's JSON type rather than its Go type.
type shape map[string]json.RawMessage

// kindOf is the JSON type of a raw value: object, array, string, null, ….
func kindOf(raw json.RawMessage) string {
	if raw == nil {
		return "absent"
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "invalid"
	}
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case nil:
		return "null"
	}
	return "scalar"
}

// Issue 18: events, twins and connections carry replicas, conflicts,
// resolutions, policies and options as JSON values (they were JSON strings
// inside the JSON) and the log as a list of lines. CHANGELOG.md lists them.
func TestAPIBodiesCarryJSONValues(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newFakeEnv(t, b.Open(t))
			ctx := context.Background()
			sysA := store.System{Name: "a", Kind: "sql"}
			sysB := store.System{Name: "b", Kind: "sql"}
			for _, s := range []*store.System{&sysA, &sysB} {
				if err := e.st.CreateSystem(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			var conn shape
			e.json("POST", "/api/connections", fmt.Sprintf(`{"name":"shapes","system_a_id":%d,"system_b_id":%d,
				"conflict_policy":{"default":"manual"},"options":{"on_unmatch":"unlink"}}`, sysA.ID, sysB.ID), 201, &conn)
			var id int64
			_ = json.Unmarshal(conn["id"], &id)
			for _, f := range []string{"conflict_policy", "options"} {
				if kindOf(conn[f]) != "object" {
					t.Errorf("connection %s is %s: %s", f, kindOf(conn[f]), conn[f])
				}
			}
			var policy struct{ Default string }
			if err := json.Unmarshal(conn["conflict_policy"], &policy); err != nil || policy.Default != "manual" {
				t.Errorf("conflict_policy %s", conn["conflict_policy"])
			}

			twin, err := e.st.EnsureTwin(ctx, id, store.SideA, "7")
			if err != nil {
				t.Fatal(err)
			}
			if err := e.st.SetSent(ctx, twin.ID, store.AToB, `{"title":"sent"}`); err != nil {
				t.Fatal(err)
			}
			prev, conflicts, resolution := `{"title":"old"}`, `[{"field":"title","incoming":"new"}]`, `{"title":{"take":"source"}}`
			evs := []store.SyncEvent{{ConnectionID: id, TwinID: twin.ID, Direction: store.AToB, SourceID: "7",
				Replica: `{"title":"new"}`, Previous: &prev, Conflicts: &conflicts, Resolution: &resolution,
				Log: "first line\nsecond line", Status: store.StatusConflict}}
			if err := e.st.InsertEvents(ctx, evs); err != nil {
				t.Fatal(err)
			}
			var list []shape
			e.json("GET", "/api/events", "", 200, &list)
			var one shape
			e.json("GET", fmt.Sprintf("/api/events/%d", evs[0].ID), "", 200, &one)
			if len(list) != 1 {
				t.Fatalf("events: %d", len(list))
			}
			for where, ev := range map[string]shape{"list": list[0], "one": one} {
				for f, want := range map[string]string{"replica": "object", "previous": "object", "conflicts": "array",
					"resolution": "object", "log": "array"} {
					if got := kindOf(ev[f]); got != want {
						t.Errorf("%s: event %s is %s, want %s: %s", where, f, got, want, ev[f])
					}
				}
				var lines []string
				if err := json.Unmarshal(ev["log"], &lines); err != nil || len(lines) != 2 || lines[1] != "second line" {
					t.Errorf("%s: log %s", where, ev["log"])
				}
			}

			var twins []shape
			e.json("GET", fmt.Sprintf("/api/connections/%d/twins", id), "", 200, &twins)
			if len(twins) != 1 || kindOf(twins[0]["sent_ab"]) != "object" || kindOf(twins[0]["sent_ba"]) != "absent" {
				t.Fatalf("twins: %v", twins)
			}

			// A connection without a policy or options says null, not "".
			var plain shape
			e.json("POST", "/api/connections", fmt.Sprintf(`{"name":"plain","system_a_id":%d,"system_b_id":%d}`, sysA.ID, sysB.ID), 201, &plain)
			if kindOf(plain["conflict_policy"]) != "null" || kindOf(plain["options"]) != "null" {
				t.Errorf("unset policy and options: %s %s", plain["conflict_policy"], plain["options"])
			}
		})
	}
}
