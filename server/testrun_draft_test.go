package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// A test run of unsaved drafts over a real engine and store: the draft's
// effect shows in the answer, the saved scripts (in the store and in the
// engine's plan) stay as they were, a draft that does not compile is a 422
// with its position, and a draft that never ends stops at the connection's
// script deadline.
func TestTestRunDrafts(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			ctx := context.Background()
			sa, sb := e.systems()
			var conn struct {
				ID int64 `json:"id"`
			}
			body := mustJSON(map[string]any{"name": "esc", "system_a_id": sa, "system_b_id": sb, "template": "support-escalation"})
			if code := e.do("POST", "/api/connections", body, &conn); code != http.StatusCreated {
				t.Fatalf("create connection: %d", code)
			}
			versions := func() int {
				n := 0
				for _, side := range []store.Side{store.SideA, store.SideB} {
					for _, k := range []store.ScriptKind{store.KindTrigger, store.KindOutgoing, store.KindIncoming, store.KindRules} {
						h, err := e.st.ScriptHistory(ctx, conn.ID, side, k)
						if err != nil {
							t.Fatal(err)
						}
						n += len(h)
					}
				}
				return n
			}
			before := versions()
			path := fmt.Sprintf("/api/connections/%d/test-run", conn.ID)
			type run struct {
				Matched bool
				Replica map[string]any
				Patch   map[string]any
				Drafts  []string
				Stage   string
				Error   *apiErr
			}
			var saved run
			if code := e.do("POST", path, `{"side":"a","entity_id":"1"}`, &saved); code != 200 || saved.Error != nil ||
				saved.Replica["title"] == nil || len(saved.Drafts) != 0 {
				t.Fatalf("saved test run: %d %+v", code, saved)
			}
			draft := `replica.title = "[T] " + entity.subject; replica.description = entity.description; replica.priority = entity.priority; replica.ticket = entity.key;`
			var got run
			if code := e.do("POST", path, mustJSON(map[string]any{"side": "a", "entity_id": "1", "draft": map[string]any{"outgoing": draft}}), &got); code != 200 ||
				got.Error != nil || got.Replica["title"] != "[T] Checkout fails with a 500" || got.Patch["title"] != "[T] Checkout fails with a 500" ||
				strings.Join(got.Drafts, ",") != "outgoing" {
				t.Fatalf("draft test run: %d %+v", code, got)
			}
			// An empty draft object is the saved versions, and the draft left
			// nothing behind: not in the engine's plan, not in the store.
			var again run
			if code := e.do("POST", path, `{"side":"a","entity_id":"1","draft":{}}`, &again); code != 200 ||
				fmt.Sprint(again.Replica) != fmt.Sprint(saved.Replica) || len(again.Drafts) != 0 {
				t.Fatalf("saved again: %d %+v, want the replica %v", code, again, saved.Replica)
			}
			if after := versions(); after != before {
				t.Fatalf("script versions: %d before the draft runs, %d after", before, after)
			}

			// Drafts that do not compile: 422 like the validate endpoint.
			for _, tc := range []struct{ name, draft string }{
				{"incoming", `{"incoming": "entity.title = ;"}`},
				{"outgoing", `{"outgoing": "\n  replica.title = (;"}`},
				{"trigger", `{"trigger": "labels contains"}`},
				{"rules", `{"rules": "[{\"field\":\"x\",\"kind\":\"required\"}"}`},
			} {
				var ae apiErr
				code := e.do("POST", path, `{"side":"a","entity_id":"1","draft":`+tc.draft+`}`, &ae)
				if code != http.StatusUnprocessableEntity || ae.Code != "script_invalid" || !strings.Contains(ae.Message, tc.name) {
					t.Errorf("%s: %d %+v", tc.name, code, ae)
				}
				if tc.name != "rules" && ae.Line == 0 {
					t.Errorf("%s: no line in %+v", tc.name, ae)
				}
			}
			var ae apiErr
			if code := e.do("POST", path, `{"side":"a","entity_id":"1","draft":{"outgoing":"\n  replica.title = (;"}}`, &ae); ae.Line != 2 || ae.Column == 0 {
				t.Errorf("outgoing position: %d %+v", code, ae)
			}

			// A draft that loops forever: stopped at the connection's deadline,
			// reported like a saved script's timeout.
			if code := e.do("PUT", fmt.Sprintf("/api/connections/%d/options", conn.ID), `{"script_timeout_ms":200}`, nil); code != 200 {
				t.Fatalf("options: %d", code)
			}
			var loop run
			if code := e.do("POST", path, `{"side":"a","entity_id":"1","draft":{"outgoing":"for (;;) {}"}}`, &loop); code != 200 ||
				loop.Error == nil || loop.Error.Code != "script_failed" || loop.Stage != "outgoing" || loop.Replica != nil {
				t.Fatalf("endless draft: %d %+v", code, loop)
			}
			if after := versions(); after != before {
				t.Fatalf("script versions: %d before the drafts, %d after", before, after)
			}
		})
	}
}
