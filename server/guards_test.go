package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/internal/testdb"
)

// A test run whose script puts NaN in the replica answers the error with
// the field's path (it answered an empty 200: NaN has no JSON), and one
// whose replica is over the output limit names the limit instead of
// returning megabytes.
func TestTestRunRefusesNaNAndHugeReplicas(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	sa, sb := e.systems()
	var conn struct {
		ID int64 `json:"id"`
	}
	body := mustJSON(map[string]any{"name": "esc", "system_a_id": sa, "system_b_id": sb, "template": "support-escalation"})
	if code := e.do("POST", "/api/connections", body, &conn); code != http.StatusCreated {
		t.Fatalf("create connection: %d", code)
	}
	entity := `{"side":"a","entity":{"id":"77","key":"T-77","fields":{"subject":"s","priority":"high","labels":["todev"]}}}`
	for _, tc := range []struct{ script, msg string }{
		{"replica.title = entity.subject; replica.estimate = 0 / 0;", "replica.estimate: NaN is not a valid value"},
		{"let x = 'x'; for (let i = 0; i < 20; i++) x += x; for (let i = 0; i < 10; i++) replica['f' + i] = x;", "over the output size limit of 8 MiB"},
	} {
		src := mustJSON(map[string]string{"source": tc.script})
		if code := e.do("PUT", fmt.Sprintf("/api/connections/%d/scripts/a/outgoing", conn.ID), src, nil); code != 200 {
			t.Fatalf("save script: %d", code)
		}
		var run struct {
			Replica map[string]any
			Error   *apiErr
		}
		code := e.do("POST", fmt.Sprintf("/api/connections/%d/test-run", conn.ID), entity, &run)
		if code != 200 || run.Error == nil || run.Error.Code != "script_failed" || !strings.Contains(run.Error.Message, tc.msg) || run.Replica != nil {
			t.Fatalf("%s: %d %+v", tc.script, code, run)
		}
	}
}
