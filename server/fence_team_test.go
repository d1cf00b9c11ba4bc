package server_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/server"
)

// TestOtherTeamsSQLiteFile (issue 24: "the same path reads another team's
// database file even when that team keeps its DSN secret"): each team's
// SQLite directory is listed for that team only. The default team's system
// keeps its file's path in a secret; team beta's admin, who guesses the
// path, names it directly, through a symlink in beta's own directory, and
// in a secret DSN: every attempt is 422 outbound_refused (rule sqlite-dir)
// and nothing is saved; a system of beta's put in the store behind the
// API's back fails to open, reading nothing.
func TestOtherTeamsSQLiteFile(t *testing.T) {
	e := newFenceEnv(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	payroll := filepath.Join(dirA, "payroll.db")
	if err := os.WriteFile(payroll, nil, 0o600); err != nil { // an empty file is an empty database
		t.Fatal(err)
	}
	if err := os.Symlink(payroll, filepath.Join(dirB, "mine.db")); err != nil {
		t.Fatal(err)
	}
	e.setPolicy(`{"allow":[{"sqlite_dir":"` + dirA + `","team_id":1},{"sqlite_dir":"` + dirB + `","team_id":` + itoa(e.beta) + `}]}`)
	settings := map[string]any{"driver": "sqlite", "table": "t", "fields": []map[string]any{{"name": "x"}}}
	code, a := e.call(e.org, "POST", "/api/systems", map[string]any{"name": "payroll", "kind": "sql", "team_id": store.DefaultTeamID,
		"settings": settings, "secrets": map[string]string{"dsn": payroll}})
	if code != 201 {
		t.Fatalf("team A's own file: %d %+v", code, a)
	}
	for _, dsn := range []string{payroll, filepath.Join(dirB, "mine.db"), filepath.Join(dirB, "..", filepath.Base(dirA), "payroll.db")} {
		for _, body := range []map[string]any{
			{"name": "peek", "kind": "sql", "team_id": e.beta, "settings": merge(settings, map[string]any{"dsn": dsn})},
			{"name": "peek", "kind": "sql", "team_id": e.beta, "settings": settings, "secrets": map[string]string{"dsn": dsn}},
		} {
			code, a := e.call(e.bta, "POST", "/api/systems", body)
			if code != 422 || a.Code != server.CodeOutboundRefused || a.PolicyRule != "sqlite-dir" {
				t.Errorf("beta names %s: %d %+v", dsn, code, a)
			}
		}
	}
	if n := e.countSystems(); n != 1 {
		t.Fatalf("%d systems saved, want team A's only", n)
	}
	sys := store.System{Name: "sneaked", Kind: "sql", TeamID: e.beta, Settings: mustJSON(merge(settings, map[string]any{"dsn": payroll}))}
	if err := e.st.CreateSystem(context.Background(), &sys); err != nil {
		t.Fatal(err)
	}
	_, err := e.eng.PreviewTrigger(context.Background(), sys.ID, "true", 10, 10)
	var re *connectors.RefusedError
	if !errors.As(err, &re) || re.Rule != "sqlite-dir" {
		t.Fatalf("beta's sneaked system opened: %v", err)
	}
}
