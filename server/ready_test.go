package server_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/internal/testdb"
)

// /readyz is 200 only with the store reachable, its schema current and the
// engine running; otherwise 503 with the reasons. /livez stays 200.
func TestReadiness(t *testing.T) {
	st := testdb.SQLite(t)
	e := newFakeEnv(t, st)
	get := func(path string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	if code, out := get("/readyz"); code != 200 || out["status"] != "ready" {
		t.Fatalf("ready: %d %v", code, out)
	}
	e.eng.mu.Lock()
	e.eng.stopped = true
	e.eng.mu.Unlock()
	if code, out := get("/readyz"); code != 503 || !strings.Contains(jsonText(out["unready"]), "engine not running") {
		t.Fatalf("engine stopped: %d %v", code, out)
	}
	e.eng.mu.Lock()
	e.eng.stopped = false
	e.eng.mu.Unlock()
	// A schema older than the binary: the newest migration is not applied.
	if err := st.DB().Exec("DELETE FROM goose_db_version WHERE version_id = (SELECT MAX(version_id) FROM goose_db_version)").Error; err != nil {
		t.Fatal(err)
	}
	if code, out := get("/readyz"); code != 503 || out["pending_migrations"] != float64(1) {
		t.Fatalf("pending migration: %d %v", code, out)
	}
	_ = st.Close()
	if code, out := get("/readyz"); code != 503 || out["store"] != "unreachable" {
		t.Fatalf("store closed: %d %v", code, out)
	}
	if code, _ := get("/livez"); code != 200 {
		t.Fatalf("livez: %d", code)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
