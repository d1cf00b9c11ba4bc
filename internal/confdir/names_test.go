package confdir

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// TestNamesPerTeamApply: two teams of one folder each have a system "desk"
// and a connection "sync" (names are unique per team, migration 00019).
// Apply makes four rows; each connection joins its own team's systems;
// --secrets keyed "team/system" gives each desk its own value; a second
// plan has no changes and the export plans no change either. A connection
// that names a system only another team has is a problem, in validate and
// in apply: a folder cannot wire another team's system.
func TestNamesPerTeamApply(t *testing.T) {
	ctx := context.Background()
	st := testdb.SQLite(t)
	box := newBox(t)
	dir := t.TempDir()
	for _, team := range []string{"ops", "sales"} {
		for _, sys := range []string{"desk", "ledger"} {
			writeTest(t, filepath.Join(dir, "teams", team, "systems", sys+".json"),
				`{"kind":"sql","poll_interval_ms":2000,"secrets":["password"],"settings":{"table":"`+team+`_`+sys+`"}}`)
		}
		writeTest(t, filepath.Join(dir, "teams", team, "connections", "sync", "connection.json"),
			`{"active":false,"system_a":"desk","system_b":"ledger"}`)
	}
	opts := Options{Secrets: map[string]map[string]string{
		"ops/desk": {"password": "ops-desk"}, "sales/desk": {"password": "sales-desk"},
		"ledger": {"password": "any-ledger"},
	}}
	p := plan(t, st, box, dir, opts)
	if len(p.Problems) > 0 {
		t.Fatalf("problems: %v", p.Problems)
	}
	if err := p.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	systems, err := st.ListSystems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	teams, _ := st.Identity().ListTeams(ctx)
	teamName := map[int64]string{}
	for _, tm := range teams {
		teamName[tm.ID] = tm.Name
	}
	byKey := map[string]store.System{}
	for _, s := range systems {
		byKey[inTeam(teamName[s.TeamID], s.Name)] = s
		if !strings.Contains(s.Settings, teamName[s.TeamID]+"_"+s.Name) {
			t.Fatalf("system %d %s of team %s has settings %s", s.ID, s.Name, teamName[s.TeamID], s.Settings)
		}
	}
	if len(byKey) != 4 {
		t.Fatalf("systems: %v", byKey)
	}
	for _, team := range []string{"ops", "sales"} {
		sec, err := box.OpenMap(byKey[team+"/desk"].Secrets)
		if err != nil || sec["password"] != team+"-desk" {
			t.Fatalf("%s/desk secrets %v %v", team, sec, err)
		}
	}
	conns, err := st.ListConnections(ctx)
	if err != nil || len(conns) != 2 {
		t.Fatalf("connections %+v %v", conns, err)
	}
	for _, c := range conns {
		tn := teamName[c.TeamID]
		if c.SystemAID != byKey[tn+"/desk"].ID || c.SystemBID != byKey[tn+"/ledger"].ID {
			t.Fatalf("team %s's sync joins %d ⇄ %d, want its own desk %d and ledger %d", tn, c.SystemAID, c.SystemBID,
				byKey[tn+"/desk"].ID, byKey[tn+"/ledger"].ID)
		}
	}
	if p := plan(t, st, box, dir, opts); len(p.Changes) != 0 || len(p.Problems) != 0 {
		t.Fatalf("second plan: %+v %v", p.Changes, p.Problems)
	}
	out := t.TempDir()
	exportTo(t, st, box, out)
	exported := tree(t, out)
	for _, f := range []string{"teams/ops/systems/desk.json", "teams/sales/systems/desk.json", "teams/ops/connections/sync/connection.json", "teams/sales/connections/sync/connection.json"} {
		if exported[f] == nil {
			t.Fatalf("export lacks %s: %v", f, keys(exported))
		}
	}
	if p := plan(t, st, box, out, opts); len(p.Changes) != 0 || len(p.Problems) != 0 {
		t.Fatalf("plan of the export: %+v %v", p.Changes, p.Problems)
	}

	// A connection of sales naming a system only ops has.
	writeTest(t, filepath.Join(dir, "teams", "ops", "systems", "payroll.json"),
		`{"kind":"sql","poll_interval_ms":2000,"secrets":[],"settings":{"table":"payroll"}}`)
	writeTest(t, filepath.Join(dir, "teams", "sales", "connections", "peek", "connection.json"),
		`{"active":false,"system_a":"payroll","system_b":"desk"}`)
	f, _, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	probs, err := Validate(ctx, dir, nil)
	if err != nil || !hasProblem(probs, "teams/sales/connections/peek", `system "payroll"`) {
		t.Fatalf("validate: %v %v", probs, err)
	}
	p, err = MakePlan(ctx, st, box, f, Options{Secrets: opts.Secrets, Getenv: env(nil)})
	if err != nil || !hasProblem(p.Problems, "teams/sales/connections/peek", `system "payroll"`) {
		t.Fatalf("plan: %v %v", p.Problems, err)
	}
}

func hasProblem(probs []Problem, file, msg string) bool {
	for _, pr := range probs {
		if strings.HasPrefix(pr.File, file) && strings.Contains(pr.Msg, msg) {
			return true
		}
	}
	return false
}
