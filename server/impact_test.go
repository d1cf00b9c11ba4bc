package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/internal/testdb"
)

// The impact route over a real engine and store: the demo's escalated
// ticket, an outgoing draft and a draft that does not compile.
func TestImpactAPI(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			ctx := context.Background()
			sa, sb := e.systems()
			var conn struct {
				ID int64 `json:"id"`
			}
			body := mustJSON(map[string]any{"name": "esc", "system_a_id": sa, "system_b_id": sb, "template": "support-escalation", "active": true})
			if code := e.do("POST", "/api/connections", body, &conn); code != http.StatusCreated {
				t.Fatalf("create connection: %d", code)
			}
			for deadline := time.Now().Add(5 * time.Second); ; { // past the sql connector's settle time
				res, err := e.eng.PollOnce(ctx, sa)
				if err != nil {
					t.Fatal(err)
				}
				if res.Enqueued > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(25 * time.Millisecond)
			}
			if _, err := e.eng.WorkOnce(ctx); err != nil {
				t.Fatal(err)
			}
			path := fmt.Sprintf("/api/connections/%d/impact", conn.ID)
			draft := `replica.title = "[T] " + entity.subject; replica.description = entity.description; replica.priority = entity.priority; replica.ticket = entity.key;`
			var res engine.ImpactResult
			if code := e.do("POST", path, mustJSON(map[string]any{"direction": "a_to_b", "outgoing": draft}), &res); code != 200 ||
				res.Totals.Entities != 1 || res.Totals.PatchDiffers != 1 ||
				res.Entities[0].Patch["title"] != (engine.FieldChange{Old: "Checkout fails with a 500", New: "[T] Checkout fails with a 500"}) {
				t.Fatalf("impact: %d %+v", code, res)
			}
			res = engine.ImpactResult{}
			if code := e.do("POST", path, `{"direction": "a_to_b", "incoming": "entity.title = ;"}`, &res); code != 200 ||
				res.DraftError == "" || res.Totals.WouldFail != 1 || res.Entities[0].Line != 1 || res.Entities[0].Stage != "incoming" {
				t.Fatalf("syntax error: %d %+v", code, res)
			}
			for _, tc := range []struct{ name, body string }{
				{"bad direction", `{"direction": "up", "incoming": ""}`},
				{"no draft", `{"direction": "a_to_b"}`},
				{"too many changes", `{"direction": "a_to_b", "incoming": "", "changes": 5000}`},
				{"budget over the cap", `{"direction": "a_to_b", "incoming": "", "budget_seconds": 3600}`},
			} {
				var ae apiErr
				if code := e.do("POST", path, tc.body, &ae); code != 400 || ae.Code != "bad_request" || ae.Message == "" {
					t.Errorf("%s: %d %+v", tc.name, code, ae)
				}
			}
			var ae apiErr
			if code := e.do("POST", "/api/connections/999/impact", `{"direction": "a_to_b", "incoming": ""}`, &ae); code != 404 {
				t.Errorf("missing connection: %d %+v", code, ae)
			}
		})
	}
}
