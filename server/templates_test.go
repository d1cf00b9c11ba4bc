package server_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripts"
)

// tplEnv is a fake-engine server with three teams and one user per role
// that the template tests need.
type tplEnv struct {
	*fakeEnv
	teams map[string]int64    // a, b, c
	toks  map[string]string   // aEditor, aAdmin, bEditor, cEditor
	sys   map[string][2]int64 // per team: two systems of its own
}

func newTplEnv(t *testing.T) *tplEnv {
	t.Helper()
	st := testdb.SQLite(t)
	e := &tplEnv{fakeEnv: newFakeEnv(t, st), teams: map[string]int64{}, toks: map[string]string{}, sys: map[string][2]int64{}}
	ctx := context.Background()
	for _, name := range []string{"a", "b", "c"} {
		tm := store.Team{Name: "team-" + name}
		if err := st.Identity().CreateTeam(ctx, &tm); err != nil {
			t.Fatal(err)
		}
		e.teams[name] = tm.ID
		var ids [2]int64
		for i, side := range []string{"desk", "tracker"} {
			sys := store.System{Name: name + "-" + side, Kind: "sql", TeamID: tm.ID}
			if err := st.CreateSystem(ctx, &sys); err != nil {
				t.Fatal(err)
			}
			ids[i] = sys.ID
		}
		e.sys[name] = ids
	}
	e.toks["aEditor"] = userToken(t, st, "ann@a", false, map[int64]store.Role{e.teams["a"]: store.RoleEditor})
	e.toks["aAdmin"] = userToken(t, st, "ada@a", false, map[int64]store.Role{e.teams["a"]: store.RoleAdmin})
	e.toks["bEditor"] = userToken(t, st, "bob@b", false, map[int64]store.Role{e.teams["b"]: store.RoleEditor})
	e.toks["cEditor"] = userToken(t, st, "cy@c", false, map[int64]store.Role{e.teams["c"]: store.RoleEditor})
	return e
}

// as sends a request as one of the users; out (if not nil) gets the JSON.
func (e *tplEnv) as(who, method, path string, body any, out any) int {
	e.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		raw = []byte(mustJSON(b))
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.toks[who])
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if out != nil {
		if p, ok := out.(*[]byte); ok {
			*p = rec.Body.Bytes()
		} else if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			e.t.Fatalf("%s %s: %d, body %q is not JSON: %v", method, path, rec.Code, rec.Body.String(), err)
		}
	}
	return rec.Code
}

// must fails the test unless the request answers want.
func (e *tplEnv) must(want int, who, method, path string, body any, out any) {
	e.t.Helper()
	var raw []byte
	code := e.as(who, method, path, body, &raw)
	if code != want {
		e.t.Fatalf("%s %s as %s: %d, want %d: %s", method, path, who, code, want, raw)
	}
	if out != nil {
		if p, ok := out.(*[]byte); ok {
			*p = raw
		} else if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// refused checks an error answer's status and code.
func (e *tplEnv) refused(status int, code, who, method, path string, body any) apiErr {
	e.t.Helper()
	var got apiErr
	if c := e.as(who, method, path, body, &got); c != status || got.Code != code {
		e.t.Fatalf("%s %s as %s: %d %+v, want %d %s", method, path, who, c, got, status, code)
	}
	return got
}

type tplJSON struct {
	ID                int64                 `json:"id"`
	TeamID            int64                 `json:"team_id"`
	Name              string                `json:"name"`
	Visibility        string                `json:"visibility"`
	Latest            int                   `json:"latest_version"`
	ForkedFromID      int64                 `json:"forked_from_id"`
	ForkedFromVersion int                   `json:"forked_from_version"`
	SharedWith        []int64               `json:"shared_with"`
	Version           struct{ Version int } `json:"version"`
	Body              scripts.Body          `json:"body"`
}

type connTplJSON struct {
	ID              int64                             `json:"id"`
	TeamID          int64                             `json:"team_id"`
	TemplateID      int64                             `json:"template_id"`
	TemplateVersion int                               `json:"template_version"`
	Scripts         map[string]map[string]versionJSON `json:"scripts"`
}

type statusJSON struct {
	TemplateID      int64              `json:"template_id"`
	Version         int                `json:"version"`
	Latest          int                `json:"latest"`
	UpdateAvailable bool               `json:"update_available"`
	Params          map[string]any     `json:"params"`
	Diff            []scripts.FileDiff `json:"diff"`
	LocalEdits      []string           `json:"local_edits"`
}

// fixtureTodev is compact, as a stored body keeps it.
const fixtureTodev = `{"side":"a","entity":{"id":"1","fields":{"labels":["todev"],"title":"Crash"}},"want":{"matched":true,"replica":{"project":"ENG"}}}`

func TestTeamTemplateShareForkUpgrade(t *testing.T) {
	e := newTplEnv(t)
	ta, tb, tc := e.teams["a"], e.teams["b"], e.teams["c"]

	// Team A's connection, the origin of the template.
	var origin connTplJSON
	e.must(201, "aEditor", "POST", "/api/connections", map[string]any{
		"name": "a-esc", "team_id": ta, "system_a_id": e.sys["a"][0], "system_b_id": e.sys["a"][1],
		"scripts": map[string]map[string]string{
			"a": {"trigger": `"todev" in labels`, "outgoing": "replica.title = entity.title;\nreplica.project = \"ENG\";\n"},
			"b": {"outgoing": "replica.state = entity.state;\n",
				"incoming": "var m = {\"new\": \"open\", \"done\": \"solved\"};\nentity.status = m[replica.state] || \"open\";\n"},
		}}, &origin)
	save := map[string]any{"name": "eng-esc", "title": "Escalate to engineering", "note": "first",
		"params": []map[string]any{
			{"name": "project", "literal": `"ENG"`, "description": "engineering project key"},
			{"name": "status_map", "literal": `{"new": "open", "done": "solved"}`},
		},
		"fixtures": map[string]json.RawMessage{"a-todev.json": json.RawMessage(fixtureTodev)}}
	saveURL := fmt.Sprintf("/api/connections/%d/save-as-template", origin.ID)

	// Another team's editor cannot save A's connection; a literal that is
	// in no script is refused by name.
	e.refused(403, "forbidden", "bEditor", "POST", saveURL, save)
	bad := map[string]any{"name": "x", "params": []map[string]any{{"name": "p", "literal": `"NOPE"`}}}
	if got := e.refused(422, "template_invalid", "aEditor", "POST", saveURL, bad); !strings.Contains(got.Message, `literal "NOPE" is in none of the scripts`) {
		t.Fatalf("message %q", got.Message)
	}

	var tpl tplJSON
	e.must(201, "aEditor", "POST", saveURL, save, &tpl)
	if tpl.TeamID != ta || tpl.Latest != 1 || tpl.Visibility != "private" || tpl.Version.Version != 1 ||
		!strings.Contains(tpl.Body.Sources["a"]["outgoing"], "replica.project = {{project}};") ||
		!strings.Contains(tpl.Body.Sources["b"]["incoming"], "var m = {{status_map}};") ||
		tpl.Body.Params[0].Type != "string" || tpl.Body.Params[1].Type != "object" || len(tpl.Body.Fixtures) != 1 {
		t.Fatalf("saved template: %+v", tpl)
	}
	tplURL := fmt.Sprintf("/api/team-templates/%d", tpl.ID)

	// Private: B does not see it. Sharing needs A's admin, not an editor.
	e.refused(404, "not_found", "bEditor", "GET", tplURL, nil)
	share := map[string]any{"visibility": "shared", "teams": []int64{tb}}
	e.refused(403, "forbidden", "aEditor", "PUT", tplURL+"/sharing", share)
	e.refused(400, "bad_request", "aAdmin", "PUT", tplURL+"/sharing", map[string]any{"visibility": "shared"})
	e.must(200, "aAdmin", "PUT", tplURL+"/sharing", share, &tpl)
	if tpl.Visibility != "shared" || len(tpl.SharedWith) != 1 || tpl.SharedWith[0] != tb {
		t.Fatalf("after sharing: %+v", tpl)
	}

	// B sees it in the list and by id; C sees neither.
	listed := func(who string) *templateListItem {
		var list []templateListItem
		e.must(200, who, "GET", "/api/templates", nil, &list)
		if len(list) == 0 || !list[0].Builtin {
			t.Fatalf("built-ins are no longer listed first: %+v", list)
		}
		for _, it := range list {
			if it.ID == tpl.ID {
				return &it
			}
		}
		return nil
	}
	if it := listed("bEditor"); it == nil || it.TeamID != ta || it.LatestVersion != 1 || it.Visibility != "shared" || it.Builtin {
		t.Fatalf("B's list: %+v", it)
	}
	if it := listed("cEditor"); it != nil {
		t.Fatalf("C sees A's template shared with B: %+v", it)
	}
	var seen tplJSON
	e.must(200, "bEditor", "GET", tplURL, nil, &seen)
	if seen.SharedWith != nil {
		t.Fatalf("B is shown A's share list: %v", seen.SharedWith)
	}
	for _, path := range []string{tplURL, tplURL + "/versions", tplURL + "/versions/1", tplURL + "/archive"} {
		e.refused(404, "not_found", "cEditor", "GET", path, nil)
	}

	// B creates a connection from it with its own project; a value of the
	// wrong type is refused clearly; C cannot use it.
	create := func(who, team string, params map[string]any) (int, []byte) {
		var raw []byte
		code := e.as(who, "POST", "/api/connections", map[string]any{
			"name": team + "-from-a", "team_id": e.teams[team], "system_a_id": e.sys[team][0], "system_b_id": e.sys[team][1],
			"template_id": tpl.ID, "params": params}, &raw)
		return code, raw
	}
	if code, raw := create("bEditor", "b", map[string]any{"project": 5}); code != 400 || !strings.Contains(string(raw), `parameter \"project\" must be a string, got a number`) {
		t.Fatalf("wrong type: %d %s", code, raw)
	}
	if code, raw := create("cEditor", "c", nil); code != 400 || !strings.Contains(string(raw), "not shared with team") {
		t.Fatalf("C uses A's template: %d %s", code, raw)
	}
	code, raw := create("bEditor", "b", map[string]any{"project": "OPS"})
	var bconn connTplJSON
	if code != 201 || json.Unmarshal(raw, &bconn) != nil {
		t.Fatalf("B's connection: %d %s", code, raw)
	}
	if bconn.TeamID != tb || bconn.TemplateID != tpl.ID || bconn.TemplateVersion != 1 ||
		bconn.Scripts["a"]["outgoing"].Source != "replica.title = entity.title;\nreplica.project = \"OPS\";\n" ||
		!strings.Contains(bconn.Scripts["b"]["incoming"].Source, `var m = {"done":"solved","new":"open"};`) {
		t.Fatalf("B's connection: %+v", bconn)
	}

	// B can neither publish to A's template nor re-share it.
	e.refused(403, "forbidden", "bEditor", "POST", tplURL+"/versions", map[string]any{"title": "hijacked", "sources": tpl.Body.Sources})
	e.refused(403, "forbidden", "bEditor", "PUT", tplURL+"/sharing", map[string]any{"visibility": "org"})
	// C cannot fork what it does not see; B cannot fork into A.
	e.refused(404, "not_found", "cEditor", "POST", tplURL+"/fork", map[string]any{"team_id": tc})
	e.refused(403, "forbidden", "bEditor", "POST", tplURL+"/fork", map[string]any{"team_id": ta, "name": "x"})

	// B forks it and edits its fork; A's original is unchanged.
	var fork tplJSON
	e.must(201, "bEditor", "POST", tplURL+"/fork", map[string]any{"team_id": tb, "name": "b-esc"}, &fork)
	if fork.TeamID != tb || fork.ForkedFromID != tpl.ID || fork.ForkedFromVersion != 1 || fork.Visibility != "private" ||
		len(fork.Body.Fixtures) != 1 || fork.Latest != 1 {
		t.Fatalf("fork: %+v", fork)
	}
	edited := fork.Body
	edited.Sources["a"]["trigger"] = `"escalate" in labels`
	edited.Title = "B's escalation"
	var pub struct{ Version int }
	e.must(201, "bEditor", "POST", fmt.Sprintf("/api/team-templates/%d/versions", fork.ID), map[string]any{
		"title": edited.Title, "params": edited.Params, "sources": edited.Sources, "fixtures": edited.Fixtures, "note": "ours"}, &pub)
	if pub.Version != 2 {
		t.Fatalf("fork publish: %+v", pub)
	}
	var orig tplJSON
	e.must(200, "aEditor", "GET", tplURL, nil, &orig)
	if orig.Latest != 1 || orig.Body.Title != "Escalate to engineering" || orig.Body.Sources["a"]["trigger"] != `"todev" in labels` {
		t.Fatalf("the fork changed the original: %+v", orig)
	}

	// A changes its connection and publishes version 2 under the same name;
	// the fixtures travel on.
	e.must(200, "aEditor", "PUT", fmt.Sprintf("/api/connections/%d/scripts/a/outgoing", origin.ID),
		map[string]string{"source": "replica.title = \"[\" + \"ENG\" + \"] \" + entity.title;\nreplica.project = \"ENG\";\n"}, nil)
	// The request docs/templates.md shows still says "private": the next
	// version is published and the template stays shared.
	save["note"] = "prefix titles"
	save["visibility"] = "private"
	delete(save, "fixtures")
	e.must(200, "aEditor", "POST", saveURL, save, &tpl)
	if tpl.Latest != 2 || tpl.Version.Version != 2 || string(tpl.Body.Fixtures["a-todev.json"]) != fixtureTodev || tpl.Visibility != "shared" {
		t.Fatalf("version 2: %+v", tpl)
	}

	// B's connection is told, with the diff.
	statusURL := fmt.Sprintf("/api/connections/%d/template-status", bconn.ID)
	var st statusJSON
	e.must(200, "bEditor", "GET", statusURL, nil, &st)
	if !st.UpdateAvailable || st.Version != 1 || st.Latest != 2 || st.Params["project"] != "OPS" || len(st.LocalEdits) != 0 ||
		len(st.Diff) != 1 || st.Diff[0].Path != "a.outgoing.js" ||
		!strings.Contains(st.Diff[0].Unified, "-replica.title = entity.title;\n+replica.title = \"[\" + {{project}} + \"] \" + entity.title;\n") {
		t.Fatalf("status: %+v", st)
	}
	e.refused(403, "forbidden", "cEditor", "GET", statusURL, nil)

	// A local edit is not overwritten by accident.
	e.must(200, "bEditor", "PUT", fmt.Sprintf("/api/connections/%d/scripts/b/outgoing", bconn.ID),
		map[string]string{"source": "replica.state = entity.state; // local\n"}, nil)
	e.must(200, "bEditor", "GET", statusURL, nil, &st)
	if len(st.LocalEdits) != 1 || st.LocalEdits[0] != "b.outgoing" {
		t.Fatalf("local edits: %+v", st.LocalEdits)
	}
	upgradeURL := fmt.Sprintf("/api/connections/%d/upgrade-template", bconn.ID)
	e.refused(409, "conflict", "bEditor", "POST", upgradeURL, map[string]any{})
	e.refused(400, "bad_request", "bEditor", "POST", upgradeURL, map[string]any{"discard_local_edits": true, "params": map[string]any{"project": true}})

	var up connTplJSON
	e.must(200, "bEditor", "POST", upgradeURL, map[string]any{"discard_local_edits": true}, &up)
	a := up.Scripts["a"]["outgoing"]
	if up.TemplateVersion != 2 || a.Source != "replica.title = \"[\" + \"OPS\" + \"] \" + entity.title;\nreplica.project = \"OPS\";\n" ||
		a.Version != 2 || up.Scripts["b"]["outgoing"].Source != "replica.state = entity.state;\n" || up.Scripts["b"]["outgoing"].Version != 3 ||
		up.Scripts["a"]["trigger"].Version != 1 {
		t.Fatalf("upgraded: %+v", up)
	}
	e.must(200, "bEditor", "GET", statusURL, nil, &st)
	if st.UpdateAvailable || st.Version != 2 || len(st.Diff) != 0 || len(st.LocalEdits) != 0 {
		t.Fatalf("status after upgrade: %+v", st)
	}
	// A version with the same content is no update.
	save["note"] = "same again"
	e.must(200, "aEditor", "POST", saveURL, save, &tpl)
	e.must(200, "bEditor", "GET", statusURL, nil, &st)
	if tpl.Latest != 3 || st.UpdateAvailable || st.Latest != 3 || len(st.Diff) != 0 {
		t.Fatalf("status after an identical version: %+v", st)
	}

	// Fixtures travel through an archive: B exports A's template, C imports it.
	var archive []byte
	e.must(200, "bEditor", "GET", tplURL+"/archive", nil, &archive)
	e.refused(403, "forbidden", "cEditor", "POST", fmt.Sprintf("/api/team-templates/import?team_id=%d", ta), archive)
	var imported tplJSON
	e.must(201, "cEditor", "POST", fmt.Sprintf("/api/team-templates/import?team_id=%d", tc), archive, &imported)
	if imported.TeamID != tc || imported.Name != "eng-esc" || imported.Latest != 1 ||
		string(imported.Body.Fixtures["a-todev.json"]) != fixtureTodev ||
		imported.Body.Sources["a"]["outgoing"] != tpl.Body.Sources["a"]["outgoing"] || imported.Body.Params[1].Type != "object" {
		t.Fatalf("imported: %+v", imported)
	}
	// Importing again publishes the next version of C's template.
	e.must(200, "cEditor", "POST", fmt.Sprintf("/api/team-templates/import?team_id=%d", tc), archive, &imported)
	if imported.Latest != 2 {
		t.Fatalf("reimport: %+v", imported)
	}

	// Every audited action left an entry with its team.
	entries, err := e.st.ListAudit(context.Background(), 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"template.publish": ta, "template.share": ta, "template.fork": tb, "template.upgrade": tb, "template.import": tc}
	for _, en := range entries {
		if team, ok := want[en.Action]; ok && en.TeamID != nil && *en.TeamID == team {
			delete(want, en.Action)
		}
	}
	if len(want) != 0 {
		t.Fatalf("audit entries missing: %v", want)
	}
}

type templateListItem struct {
	Name          string `json:"name"`
	Builtin       bool   `json:"builtin"`
	ID            int64  `json:"id"`
	TeamID        int64  `json:"team_id"`
	LatestVersion int    `json:"latest_version"`
	Visibility    string `json:"visibility"`
}

// Archives that could escape a folder, hide links, or unpack to too much
// are refused before anything is stored.
func TestTemplateImportRefuses(t *testing.T) {
	e := newTplEnv(t)
	url := fmt.Sprintf("/api/team-templates/import?team_id=%d", e.teams["a"])
	archive := func(name string, size int) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		_ = tw.Close()
		_ = zw.Close()
		return buf.Bytes()
	}
	if got := e.refused(422, "template_invalid", "aEditor", "POST", url, archive("x/../../../etc/cron.d/evil", 1)); !strings.Contains(got.Message, "unsafe path") {
		t.Fatalf("traversal: %+v", got)
	}
	if got := e.refused(422, "template_invalid", "aEditor", "POST", url, archive("x/notes.txt", 1)); !strings.Contains(got.Message, `unknown file "notes.txt"`) {
		t.Fatalf("unknown file: %+v", got)
	}
	// Small on the wire, too large unpacked (zeros compress well).
	e.refused(413, "too_large", "aEditor", "POST", url, archive("x/a.outgoing.js", scripts.MaxArchiveBytes+1))
	// Too large on the wire.
	e.refused(413, "too_large", "aEditor", "POST", url, bytes.Repeat([]byte("x"), 1<<20+1))
	var list []templateListItem
	e.must(200, "aEditor", "GET", "/api/templates", nil, &list)
	for _, it := range list {
		if !it.Builtin {
			t.Fatalf("a refused import stored a template: %+v", it)
		}
	}
}
