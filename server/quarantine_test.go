package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/duplexsync/duplex/internal/testdb"
)

// The API shows why the engine paused a connection (GET one and the list),
// and activate lifts the quarantine (reason gone, backfills started).
func TestQuarantineInTheAPI(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	sa, sb := e.systems()
	var conn struct{ ID int64 }
	body := mustJSON(map[string]any{"name": "esc", "system_a_id": sa, "system_b_id": sb, "active": true, "template": "support-escalation"})
	if code := e.do("POST", "/api/connections", body, &conn); code != http.StatusCreated {
		t.Fatalf("create connection: %d", code)
	}
	ctx := context.Background()
	for range 3 {
		if _, err := e.st.RecordLimitHit(ctx, conn.ID, time.Now(), time.Minute, 3, "quarantined: 3 script runs hit a limit"); err != nil {
			t.Fatal(err)
		}
	}
	type out struct {
		ID            int64   `json:"id"`
		Active        bool    `json:"active"`
		PausedReason  string  `json:"paused_reason"`
		QuarantinedAt *string `json:"quarantined_at"`
	}
	var one out
	if code := e.do("GET", fmt.Sprintf("/api/connections/%d", conn.ID), "", &one); code != 200 ||
		one.Active || one.PausedReason != "quarantined: 3 script runs hit a limit" || one.QuarantinedAt == nil {
		t.Fatalf("GET connection: %d %+v", code, one)
	}
	var list []out
	if code := e.do("GET", "/api/connections", "", &list); code != 200 || len(list) != 1 || list[0].PausedReason == "" {
		t.Fatalf("list: %d %+v", code, list)
	}
	var resumed out
	if code := e.do("POST", fmt.Sprintf("/api/connections/%d/activate", conn.ID), "", &resumed); code != 200 ||
		!resumed.Active || resumed.PausedReason != "" || resumed.QuarantinedAt != nil {
		t.Fatalf("activate: %d %+v", code, resumed)
	}
	var jobs []struct{ Side string }
	if code := e.do("GET", fmt.Sprintf("/api/connections/%d/backfills", conn.ID), "", &jobs); code != 200 || len(jobs) != 2 {
		t.Fatalf("backfills after lifting the quarantine: %d %+v", code, jobs)
	}
}
