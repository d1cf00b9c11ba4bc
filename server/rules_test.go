package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/internal/demo"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripts"
)

// Validation rules through the API: a draft with an expression that does
// not compile is refused with the rule's position and its line and column;
// a valid list is saved as a version and audited; the test run reports the
// rules' results without writing.
func TestRulesEndpoints(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { testRulesEndpoints(t, newEnv(t, b.Open(t))) })
	}
}

func testRulesEndpoints(t *testing.T, e *env) {
	sa, sb := e.systems()
	var conn struct {
		ID int64 `json:"id"`
	}
	body := mustJSON(map[string]any{"name": "esc", "system_a_id": sa, "system_b_id": sb, "template": "support-escalation"})
	if code := e.do("POST", "/api/connections", body, &conn); code != http.StatusCreated {
		t.Fatalf("create connection: %d", code)
	}
	base := fmt.Sprintf("/api/connections/%d/rules/b", conn.ID)

	var empty struct {
		Version int   `json:"version"`
		Rules   []any `json:"rules"`
	}
	if code := e.do("GET", base, "", &empty); code != 200 || empty.Version != 0 || empty.Rules == nil || len(empty.Rules) != 0 {
		t.Fatalf("no rules yet: %d %+v", code, empty)
	}

	bad := `{"rules":[{"field":"title","kind":"required"},{"field":"title","kind":"expr","expr":"len(title) <\n  ","message":"m"}]}`
	var got struct {
		apiErr
		Rule int `json:"rule"`
	}
	for _, path := range []string{base, base + "/validate"} {
		method := "PUT"
		if strings.HasSuffix(path, "/validate") {
			method = "POST"
		}
		got.Rule, got.Line = 0, 0
		if code := e.do(method, path, bad, &got); code != 422 || got.Code != "script_invalid" || got.Rule != 2 || got.Line != 2 || got.Column == 0 {
			t.Errorf("%s %s with a compile error: %d %+v", method, path, code, got)
		}
	}
	if code := e.do("PUT", base, `{"rules":[{"field":"x","kind":"oneOf"}]}`, &got); code != 422 || got.Rule != 1 {
		t.Errorf("oneOf without values: %d %+v", code, got)
	}
	if code := e.do("PUT", base, `{}`, &got); code != 400 {
		t.Errorf("no rules: %d", code)
	}

	good := `{"rules":[{"field":"title","kind":"maxLength","max":10},{"field":"priority","kind":"oneOf","values":["low","normal","high","urgent"]},
		{"expr":"description != \"\"","field":"description","message":"needs a description"}]}`
	var saved struct {
		Version     int      `json:"version"`
		Expressions []string `json:"expressions"`
		Rules       []struct {
			Kind string `json:"kind"`
		} `json:"rules"`
	}
	if code := e.do("PUT", base, good, &saved); code != 200 || saved.Version != 1 || len(saved.Rules) != 3 || saved.Rules[2].Kind != "expr" ||
		saved.Expressions[0] != `maxLength(replica["title"], 10)` {
		t.Fatalf("save: %d %+v", code, saved)
	}
	if code := e.do("GET", base, "", &saved); code != 200 || saved.Version != 1 || len(saved.Rules) != 3 {
		t.Fatalf("get: %d %+v", code, saved)
	}
	var versions []struct{ Version int }
	if code := e.do("GET", base+"/versions", "", &versions); code != 200 || len(versions) != 1 {
		t.Fatalf("versions: %d %+v", code, versions)
	}
	var audit []struct{ Action, Detail string }
	e.do("GET", "/api/audit?limit=100", "", &audit)
	found := false
	for _, a := range audit {
		found = found || (a.Action == "rules.save" && strings.Contains(a.Detail, "b.rules version 1"))
	}
	if !found {
		t.Errorf("no rules.save audit entry: %+v", audit)
	}
	// The connection's scripts stay the three kinds.
	var c struct {
		Scripts map[string]map[string]any `json:"scripts"`
	}
	e.do("GET", fmt.Sprintf("/api/connections/%d", conn.ID), "", &c)
	if _, ok := c.Scripts["b"]["rules"]; ok || len(c.Scripts["b"]) != 3 {
		t.Errorf("connection scripts: %v", c.Scripts["b"])
	}

	var run struct {
		Invalid bool `json:"invalid"`
		Rules   []struct {
			Field  string `json:"field"`
			Rule   string `json:"rule"`
			Value  any    `json:"value"`
			Passed bool   `json:"passed"`
		} `json:"rules"`
	}
	entity := `{"side":"a","entity":{"id":"77","key":"T-77","fields":{"subject":"A rather long subject","priority":"high","description":"","labels":["todev"]}}}`
	if code := e.do("POST", fmt.Sprintf("/api/connections/%d/test-run", conn.ID), entity, &run); code != 200 || !run.Invalid || len(run.Rules) != 3 ||
		run.Rules[0].Passed || run.Rules[0].Value != "A rather long subject" || !run.Rules[1].Passed || run.Rules[2].Passed {
		t.Fatalf("test run: %d %+v", code, run)
	}
	if code := e.do("GET", fmt.Sprintf("/api/connections/%d/rules/c", conn.ID), "", nil); code != 400 {
		t.Errorf("bad side: %d", code)
	}
}

// plainConnector hides a connector's optional interfaces.
type plainConnector struct{ connectors.Connector }

// A unique rule is saved for a side whose connector can search (the sql
// one) and refused, with its position, for one that cannot.
func TestUniqueRuleNeedsFinder(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	sa, sb := e.systems()
	var plain struct {
		ID int64 `json:"id"`
	}
	body := mustJSON(map[string]any{"name": "plain", "kind": "sql-plain", "settings": demo.EngineeringSettings(e.paths.Engineering)})
	if code := e.do("POST", "/api/systems", body, &plain); code != http.StatusCreated {
		t.Fatalf("create system: %d", code)
	}
	var conn, conn2 struct {
		ID int64 `json:"id"`
	}
	if code := e.do("POST", "/api/connections", mustJSON(map[string]any{"name": "esc", "system_a_id": sa, "system_b_id": sb, "template": "support-escalation"}), &conn); code != http.StatusCreated {
		t.Fatalf("create connection: %d", code)
	}
	// The template's side b fits sql systems only: the same scripts, given
	// as scripts, join the plain one.
	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	tpl, _ := lib.Get("support-escalation")
	src, err := tpl.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	if code := e.do("POST", "/api/connections", mustJSON(map[string]any{"name": "esc2", "system_a_id": sa, "system_b_id": plain.ID, "scripts": src}), &conn2); code != http.StatusCreated {
		t.Fatalf("create connection: %d", code)
	}
	rules := `{"rules":[{"field":"title","kind":"required"},{"field":"ticket","kind":"unique","target_field":"ticket_ref","where":"state != \"closed\""}]}`
	var saved struct {
		Version     int      `json:"version"`
		Expressions []string `json:"expressions"`
		Rules       []struct {
			Kind, Where string
		} `json:"rules"`
	}
	if code := e.do("PUT", fmt.Sprintf("/api/connections/%d/rules/b", conn.ID), rules, &saved); code != 200 || saved.Version != 1 ||
		saved.Rules[1].Kind != "unique" || saved.Rules[1].Where != `state != "closed"` || saved.Expressions[1] != `state != "closed"` {
		t.Fatalf("save on sql: %d %+v", code, saved)
	}
	var got struct {
		apiErr
		Rule int `json:"rule"`
	}
	for _, m := range []struct{ method, path string }{{"PUT", ""}, {"POST", "/validate"}} {
		code := e.do(m.method, fmt.Sprintf("/api/connections/%d/rules/b%s", conn2.ID, m.path), rules, &got)
		if code != 422 || got.Code != "script_invalid" || got.Rule != 2 || !strings.Contains(got.Message, "cannot look entities up") {
			t.Errorf("%s %s on a connector without Finder: %d %+v", m.method, m.path, code, got)
		}
	}
	// Side a of the same connection is the sql connector: accepted there.
	if code := e.do("POST", fmt.Sprintf("/api/connections/%d/rules/a/validate", conn2.ID), rules, nil); code != 200 {
		t.Errorf("side a: %d", code)
	}
	// A where that does not compile: its line and column.
	bad := `{"rules":[{"field":"ticket","kind":"unique","where":"state =="}]}`
	if code := e.do("PUT", fmt.Sprintf("/api/connections/%d/rules/b", conn.ID), bad, &got); code != 422 || got.Rule != 1 || got.Line == 0 {
		t.Errorf("bad where: %d %+v", code, got)
	}
}
