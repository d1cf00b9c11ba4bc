package server_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
)

type kindErr struct {
	Code          string   `json:"code"`
	Message       string   `json:"message"`
	Field         string   `json:"field"`
	ExpectedKinds []string `json:"expected_kinds"`
}

// A connection from a template joins only systems of the kinds its sides
// fit; a team template saved from a connection fits its systems' kinds.
func TestTemplateSideKinds(t *testing.T) {
	e := newTplEnv(t)
	ta := e.teams["a"]
	ctx := context.Background()
	ids := map[string]int64{"sql": e.sys["a"][0]}
	for _, kind := range []string{"rt", "redmine"} {
		sys := store.System{Name: "a-" + kind, Kind: kind, TeamID: ta}
		if err := e.st.CreateSystem(ctx, &sys); err != nil {
			t.Fatal(err)
		}
		ids[kind] = sys.ID
	}
	conn := func(name, a, b string, tpl map[string]any) map[string]any {
		out := map[string]any{"name": name, "team_id": ta, "system_a_id": ids[a], "system_b_id": ids[b]}
		for k, v := range tpl {
			out[k] = v
		}
		return out
	}
	refused := func(body map[string]any, field string, want ...string) {
		t.Helper()
		var got kindErr
		if code := e.as("aEditor", "POST", "/api/connections", body, &got); code != 422 || got.Code != "template_kind_mismatch" ||
			got.Field != field || !slices.Equal(got.ExpectedKinds, want) {
			t.Fatalf("%v: %d %+v, want 422 on %s expecting %v", body, code, got, field, want)
		}
	}

	// The API lists each built-in's kinds.
	var list []struct {
		Name   string   `json:"name"`
		KindsA []string `json:"kinds_a"`
		KindsB []string `json:"kinds_b"`
	}
	e.must(200, "aEditor", "GET", "/api/templates", nil, &list)
	i := slices.IndexFunc(list, func(x struct {
		Name   string   `json:"name"`
		KindsA []string `json:"kinds_a"`
		KindsB []string `json:"kinds_b"`
	}) bool {
		return x.Name == "rt-redmine-escalation"
	})
	if i < 0 || !slices.Equal(list[i].KindsA, []string{"rt"}) || !slices.Equal(list[i].KindsB, []string{"redmine"}) {
		t.Fatalf("listed: %+v", list)
	}

	builtin := map[string]any{"template": "rt-redmine-escalation"}
	refused(conn("x", "sql", "redmine", builtin), "system_a_id", "rt")
	refused(conn("x", "rt", "sql", builtin), "system_b_id", "redmine")
	refused(conn("x", "redmine", "rt", builtin), "system_a_id", "rt") // swapped sides
	// Fitting systems pass the kind check (this fake engine then refuses the
	// trigger's field; support-escalation on sql systems is created in
	// the real-engine tests).
	var past kindErr
	if code := e.as("aEditor", "POST", "/api/connections", conn("x", "rt", "redmine", builtin), &past); past.Code == "template_kind_mismatch" {
		t.Fatalf("fitting systems refused: %d %+v", code, past)
	}
	var origin connTplJSON
	e.must(201, "aEditor", "POST", "/api/connections", conn("rt-esc", "rt", "redmine", map[string]any{
		"scripts": map[string]map[string]string{"a": {"trigger": "true", "outgoing": "replica.title = \"x\";\n"}}}), &origin)

	// Saved as a team template: the systems' kinds, unless the body names
	// others for a side.
	var tpl tplJSON
	e.must(201, "aEditor", "POST", fmt.Sprintf("/api/connections/%d/save-as-template", origin.ID),
		map[string]any{"name": "rt-esc"}, &tpl)
	if !slices.Equal(tpl.Body.A, []string{"rt"}) || !slices.Equal(tpl.Body.B, []string{"redmine"}) {
		t.Fatalf("saved kinds %+v", tpl.Body.SideKinds)
	}
	team := map[string]any{"template_id": tpl.ID}
	refused(conn("y", "sql", "redmine", team), "system_a_id", "rt")
	var y connTplJSON
	e.must(201, "aEditor", "POST", "/api/connections", conn("y", "rt", "redmine", team), &y)
	// A version whose side a fits sql only is no upgrade for y.
	e.must(201, "aEditor", "POST", fmt.Sprintf("/api/team-templates/%d/versions", tpl.ID), map[string]any{
		"title": "sql now", "sources": tpl.Body.Sources, "kinds_a": []string{"sql"}, "note": "sql"}, nil)
	var up kindErr
	if code := e.as("aEditor", "POST", fmt.Sprintf("/api/connections/%d/upgrade-template", y.ID), map[string]any{}, &up); code != 422 ||
		up.Code != "template_kind_mismatch" || up.Field != "system_a_id" || !slices.Equal(up.ExpectedKinds, []string{"sql"}) {
		t.Fatalf("upgrade onto other kinds: %d %+v", code, up)
	}

	var wide tplJSON
	e.must(201, "aEditor", "POST", fmt.Sprintf("/api/connections/%d/save-as-template", origin.ID),
		map[string]any{"name": "rt-any", "kinds_b": []string{"redmine", "sql"}}, &wide)
	if !slices.Equal(wide.Body.A, []string{"rt"}) || !slices.Equal(wide.Body.B, []string{"redmine", "sql"}) {
		t.Fatalf("saved kinds %+v", wide.Body.SideKinds)
	}
	e.must(201, "aEditor", "POST", "/api/connections", conn("z", "rt", "sql", map[string]any{"template_id": wide.ID}), nil)
}
