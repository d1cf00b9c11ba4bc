package engine_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
)

// rulesFixture sends the requester across as "contact" and gives side b
// (engineering) rules: contact must be an e-mail address, title is required.
func rulesFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle()
	if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideA, store.KindOutgoing,
		`replica.title = entity.subject; replica.description = entity.description; replica.priority = entity.priority;
replica.ticket = entity.key; replica.contact = entity.requester; replica.comments = entity.comments;`, "t"); err != nil {
		t.Fatal(err)
	}
	rules, _ := json.Marshal([]scripting.Rule{
		{Field: "contact", Kind: "email"},
		{Field: "title", Kind: "required"},
		{Field: "title", Expr: `!(title contains "forbidden")`, Message: "no forbidden titles"},
	})
	if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideB, store.KindRules, string(rules), "t"); err != nil {
		t.Fatal(err)
	}
	return f
}

// A replica failing a rule of its target side fails its event at once (no
// retry) with the field, the rule and the value, and nothing is written to
// the target; a passing one is applied.
func TestRuleFailureWritesNothing(t *testing.T) {
	f := rulesFixture(t)
	f.exec(f.support, `INSERT INTO tickets (subject, description, priority, labels, requester)
		VALUES ('Bad contact', 'x', 'high', 'todev', 'not-an-email'), ('Good contact', 'y', 'high', 'todev', 'dora@example.com')`)
	writes := f.writes.Load()
	for i := 0; i < 5; i++ {
		f.cycle()
	}
	failed := f.event(store.StatusFailed)
	if len(failed) != 1 {
		t.Fatalf("failed events: %+v", failed)
	}
	ev := failed[0]
	for _, want := range []string{`validation failed`, `(email)`, `field "contact"`, `value "not-an-email"`, `must be an e-mail address`} {
		if !strings.Contains(ev.LastError, want) {
			t.Errorf("last_error %q lacks %q", ev.LastError, want)
		}
	}
	if ev.Attempts != 1 {
		t.Errorf("a rule failure was tried %d times; it is not transient", ev.Attempts)
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE title = 'Bad contact'"); n != 0 {
		t.Fatalf("the refused replica reached the target: %d issues", n)
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE title = 'Good contact'"); n != 1 {
		t.Fatalf("the valid replica was not applied: %d issues", n)
	}
	if w := f.writes.Load() - writes; w != 1 {
		t.Errorf("%d writes to the systems, want 1 (the good issue's create)", w)
	}

	// Fixing the data lets the same twin sync on its next change.
	f.exec(f.support, "UPDATE tickets SET requester = 'eve@example.com' WHERE subject = 'Bad contact'")
	for i := 0; i < 5; i++ {
		f.cycle()
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE title = 'Bad contact'"); n != 1 {
		t.Fatalf("after the fix: %d issues", n)
	}
}

// Rules are compiled with the plan, never per event; the test run reports
// them without writing.
func TestRulesNoCompilationPerEventAndTestRun(t *testing.T) {
	f := rulesFixture(t)
	f.exec(f.support, "UPDATE tickets SET subject = 'warm up' WHERE id = 1")
	f.settle() // compiles the plan with the rules
	before := scripting.Compilations()
	for i := 0; i < 10; i++ {
		f.exec(f.support, "UPDATE tickets SET subject = ? WHERE id = 1", "subject "+string(rune('a'+i)))
		f.settle()
	}
	if n := scripting.Compilations() - before; n != 0 {
		t.Fatalf("%d compilations for 10 events", n)
	}
	if got := f.one(f.eng2, "SELECT title FROM issues WHERE ticket_ref = 'T-1'"); got != "subject j" {
		t.Fatalf("title %q", got)
	}

	writes := f.writes.Load()
	evs, _ := f.st.ListEvents(f.ctx, store.EventFilter{})
	f.exec(f.support, "UPDATE tickets SET subject = 'a forbidden subject', requester = 'nope' WHERE id = 2")
	res, err := f.eng.TestRun(f.ctx, f.conn.ID, store.SideA, "2", nil)
	if err != nil || res.Error != nil {
		t.Fatalf("test run: %v %v", err, res.Error)
	}
	if !res.Invalid || len(res.Rules) != 3 || res.Rules[0].Passed || !res.Rules[1].Passed || res.Rules[2].Passed ||
		res.Rules[0].Value != "nope" || res.Rules[2].Message != "no forbidden titles" {
		t.Fatalf("rules: %+v", res.Rules)
	}
	res, err = f.eng.TestRun(f.ctx, f.conn.ID, store.SideA, "1", nil)
	if err != nil || res.Invalid || len(res.Rules) != 3 {
		t.Fatalf("valid ticket: %+v %v", res, err)
	}
	evs2, _ := f.st.ListEvents(f.ctx, store.EventFilter{})
	if f.writes.Load() != writes || len(evs2) != len(evs) {
		t.Fatal("the test run wrote")
	}
}
