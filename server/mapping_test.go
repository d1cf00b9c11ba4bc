package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/internal/testdb"
)

type mappingJSON struct {
	Direction string `json:"direction"`
	Source    string `json:"source"`
	Target    string `json:"target"`
	Code      string `json:"code"`
	Reason    string `json:"reason"`
	Mapping   *struct {
		From string `json:"from"`
		To   string `json:"to"`
		Rows []struct {
			Target  string            `json:"target"`
			Kind    string            `json:"kind"`
			Source  string            `json:"source"`
			Map     map[string]string `json:"map"`
			Default *string           `json:"default"`
		} `json:"rows"`
		Comments struct {
			Sync   bool   `json:"sync"`
			Prefix string `json:"prefix"`
		} `json:"comments"`
		Trigger string `json:"trigger"`
	} `json:"mapping"`
	Versions struct {
		Trigger, Outgoing, Incoming struct {
			Version int `json:"version"`
		}
	} `json:"versions"`
}

// The mapping view through the API: a template's mapping direction opens as
// rows, its code direction answers 409 not_a_mapping with the reason; a
// saved mapping becomes new script versions with one audit entry; a hand
// edit turns the direction into code and saving a mapping again brings it
// back; render and suggest write nothing.
func TestMappingEndpoints(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { testMappingEndpoints(t, newEnv(t, b.Open(t))) })
	}
}

func testMappingEndpoints(t *testing.T, e *env) {
	sa, sb := e.systems()
	var conn struct {
		ID int64 `json:"id"`
	}
	body := mustJSON(map[string]any{"name": "esc", "system_a_id": sa, "system_b_id": sb, "template": "support-escalation"})
	if code := e.do("POST", "/api/connections", body, &conn); code != http.StatusCreated {
		t.Fatalf("create connection: %d", code)
	}
	base := fmt.Sprintf("/api/connections/%d", conn.ID)

	var m mappingJSON
	if code := e.do("GET", base+"/mapping/b_to_a", "", &m); code != 200 || m.Source != "b" || m.Target != "a" || m.Mapping == nil || m.Code != "" || len(m.Mapping.Rows) != 1 ||
		m.Mapping.Rows[0].Map["resolved"] != "solved" || !m.Mapping.Comments.Sync || strings.TrimSpace(m.Mapping.Trigger) != "false" {
		t.Fatalf("template direction as a mapping: %d %+v", code, m)
	}
	var code mappingJSON
	if status := e.do("GET", base+"/mapping/a_to_b", "", &code); status != 200 || code.Mapping != nil || code.Code != "not_a_mapping" || !strings.Contains(code.Reason, "written as code") {
		t.Fatalf("code direction: %d %+v", status, code)
	}
	var ae apiErr
	if code := e.do("GET", base+"/mapping/sideways", "", &ae); code != 400 {
		t.Fatalf("bad direction: %d", code)
	}

	// Save a changed status map: new versions of the outgoing (its text is
	// the same, so it keeps its version) and the incoming, and an audit entry.
	edited := `{"mapping":{"from":"engineering","to":"support","trigger":"false\n","rows":[{"target":"status","kind":"map","source":"state",
		"map":{"new":"escalated","in_progress":"escalated","resolved":"done","closed":"solved"}}],"comments":{"sync":true,"prefix":"[engineering] "}}}`
	var saved mappingJSON
	if code := e.do("PUT", base+"/mapping/b_to_a", edited, &saved); code != 200 || saved.Versions.Incoming.Version != 2 ||
		saved.Versions.Outgoing.Version != 1 || saved.Versions.Trigger.Version != 1 {
		t.Fatalf("save: %d %+v", code, saved)
	}
	if code := e.do("GET", base+"/mapping/b_to_a", "", &m); code != 200 || m.Mapping == nil || m.Mapping.Rows[0].Map["resolved"] != "done" {
		t.Fatalf("after save: %d %+v", code, m)
	}
	var audit []struct{ Action, Detail string }
	e.do("GET", "/api/audit?limit=100", "", &audit)
	found := false
	for _, a := range audit {
		found = found || a.Action == "mapping.save" && strings.Contains(a.Detail, "a.incoming version 2")
	}
	if !found {
		t.Errorf("no mapping.save audit entry: %+v", audit)
	}

	// Invalid mappings are refused with the row, and save nothing.
	if code := e.do("PUT", base+"/mapping/b_to_a", `{"mapping":{"rows":[{"target":"key","kind":"field","source":"x"}],"comments":{"sync":false}}}`, &ae); code != 422 ||
		ae.Code != "mapping_invalid" || !strings.Contains(ae.Message, "row 1") {
		t.Fatalf("invalid mapping: %d %+v", code, ae)
	}
	if code := e.do("PUT", base+"/mapping/b_to_a", `{"mapping":{"rows":[],"comments":{"sync":false},"trigger":"state =="}}`, &ae); code != 422 || ae.Code != "script_invalid" {
		t.Fatalf("a trigger that does not compile: %d %+v", code, ae)
	}
	if code := e.do("PUT", base+"/mapping/b_to_a", `{}`, &ae); code != 400 {
		t.Fatalf("no mapping: %d", code)
	}

	// A hand edit of the incoming script: the direction is code, with the reason.
	var cur struct {
		Scripts map[string]map[string]struct{ Source string } `json:"scripts"`
	}
	if code := e.do("GET", base, "", &cur); code != 200 {
		t.Fatalf("get connection: %d", code)
	}
	src := cur.Scripts["a"]["incoming"].Source
	if src == "" {
		t.Fatalf("connection without scripts: %+v", cur)
	}
	hand := strings.Replace(src, `log("no support status`, `log("unmapped: no support status`, 1)
	if code := e.do("PUT", base+"/scripts/a/incoming", mustJSON(map[string]string{"source": hand}), nil); code != 200 {
		t.Fatalf("hand edit: %d", code)
	}
	code = mappingJSON{}
	if status := e.do("GET", base+"/mapping/b_to_a", "", &code); status != 200 || code.Mapping != nil || !strings.Contains(code.Reason, "incoming script was edited by hand") {
		t.Fatalf("after a hand edit: %d %+v", status, code)
	}
	// Back to the text the mapping makes: a mapping again.
	if code := e.do("PUT", base+"/scripts/a/incoming", mustJSON(map[string]string{"source": src}), nil); code != 200 {
		t.Fatalf("undo: %d", code)
	}
	m = mappingJSON{}
	if status := e.do("GET", base+"/mapping/b_to_a", "", &m); status != 200 || m.Mapping == nil {
		t.Fatalf("after undoing the hand edit: %d %+v", status, m)
	}

	// Render writes nothing and answers the scripts.
	var r struct{ Trigger, Outgoing, Incoming string }
	if code := e.do("POST", base+"/mapping/b_to_a/render", edited, &r); code != 200 || !strings.Contains(r.Incoming, `"resolved":"done"`) ||
		!strings.HasPrefix(r.Incoming, "// duplex:mapping {") || r.Trigger != "false\n" {
		t.Fatalf("render: %d %+v", code, r)
	}

	// Suggest pairs the demo's fields: engineering issues → support tickets.
	var sug mappingJSON
	if code := e.do("POST", base+"/mapping/a_to_b/suggest", `{}`, &sug); code != 200 {
		t.Fatalf("suggest: %d", code)
	}
	pairs := map[string]string{}
	for _, row := range sug.Mapping.Rows {
		pairs[row.Target] = row.Source
	}
	if pairs["title"] != "subject" || pairs["priority"] != "priority" || pairs["body"] != "description" || !sug.Mapping.Comments.Sync {
		t.Fatalf("suggested %+v", sug.Mapping)
	}
}
