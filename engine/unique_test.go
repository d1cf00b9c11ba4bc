package engine_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
)

// uniqueFixture: side b (engineering) allows one issue per support ticket
// (ticket_ref), optionally only among those where `where` holds.
func uniqueFixture(t *testing.T, where string) *fixture {
	t.Helper()
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle()
	rules, _ := json.Marshal([]scripting.Rule{
		{Field: "title", Kind: "required"},
		{Field: "ticket", Kind: "unique", TargetField: "ticket_ref", Where: where, Message: "one issue per support ticket"},
	})
	if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideB, store.KindRules, string(rules), "t"); err != nil {
		t.Fatal(err)
	}
	return f
}

// newTicket inserts an escalated support ticket and returns its key.
func (f *fixture) newTicket(subject string) string {
	f.t.Helper()
	f.exec(f.support, `INSERT INTO tickets (subject, description, priority, labels, requester)
		VALUES (?, 'x', 'high', 'todev', 'dora@example.com')`, subject)
	return "T-" + f.one(f.support, "SELECT MAX(id) FROM tickets")
}

// A ticket whose external id an issue already carries fails its event at
// once, naming the field, the value and the existing issue, and nothing is
// written; updates of a synced ticket are not duplicates of their own issue;
// no compilation per event.
func TestUniqueRule(t *testing.T) {
	f := uniqueFixture(t, "")
	// A synced ticket: its issue carries its key. Updating it passes (its
	// own counterpart is not a duplicate).
	synced := f.one(f.eng2, "SELECT ticket_ref FROM issues WHERE ticket_ref != '' ORDER BY id LIMIT 1")
	id := strings.TrimPrefix(synced, "T-")
	f.exec(f.support, "UPDATE tickets SET subject = 'warm up' WHERE id = ?", id)
	f.settle()
	before := scripting.Compilations()
	for i := 0; i < 5; i++ {
		f.exec(f.support, "UPDATE tickets SET subject = ? WHERE id = ?", fmt.Sprintf("update %d", i), id)
		f.settle() // fails the test on any failed event
	}
	if n := scripting.Compilations() - before; n != 0 {
		t.Fatalf("%d compilations for 5 events", n)
	}
	if got := f.one(f.eng2, "SELECT title FROM issues WHERE ticket_ref = ?", synced); got != "update 4" {
		t.Fatalf("the update did not pass: title %q", got)
	}

	// Someone filed an issue for the next ticket by hand.
	key := f.newTicket("Duplicate")
	f.exec(f.eng2, "INSERT INTO issues (title, body, state, priority, ticket_ref) VALUES ('by hand', '', 'new', 'normal', ?)", key)
	manual := f.one(f.eng2, "SELECT id FROM issues WHERE ticket_ref = ?", key)
	writes := f.writes.Load()
	for i := 0; i < 5; i++ {
		f.cycle()
	}
	failed := f.event(store.StatusFailed)
	if len(failed) != 1 {
		t.Fatalf("failed events: %+v", failed)
	}
	ev := failed[0]
	for _, want := range []string{"validation failed", "(unique)", `field "ticket"`, fmt.Sprintf("value %q", key),
		"existing ENG-" + manual, "one issue per support ticket"} {
		if !strings.Contains(ev.LastError, want) {
			t.Errorf("last_error %q lacks %q", ev.LastError, want)
		}
	}
	if ev.Attempts != 1 {
		t.Errorf("tried %d times; a duplicate is not transient", ev.Attempts)
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = ?", key); n != 1 {
		t.Fatalf("%d issues for %s", n, key)
	}
	if w := f.writes.Load() - writes; w != 0 {
		t.Errorf("%d writes", w)
	}

	// The test run reports the unique rule too, in rule order.
	res, err := f.eng.TestRun(f.ctx, f.conn.ID, store.SideA, strings.TrimPrefix(key, "T-"), nil)
	if err != nil || res.Error != nil {
		t.Fatalf("test run: %v %v", err, res.Error)
	}
	if !res.Invalid || len(res.Rules) != 2 || !res.Rules[0].Passed || res.Rules[1].Passed || res.Rules[1].ExistingID != manual {
		t.Fatalf("test run rules: %+v", res.Rules)
	}
}

// With where, only matching entities count: a closed issue with the same
// external id does not block a new one.
func TestUniqueRuleWhere(t *testing.T) {
	f := uniqueFixture(t, `state != "closed"`)
	key := f.newTicket("Reopened elsewhere")
	f.exec(f.eng2, "INSERT INTO issues (title, body, state, priority, ticket_ref) VALUES ('old', '', 'closed', 'normal', ?)", key)
	f.settle()
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = ?", key); n != 2 {
		t.Fatalf("%d issues for %s, want the closed one and the new one", n, key)
	}
	// An open one blocks.
	key2 := f.newTicket("Second")
	f.exec(f.eng2, "INSERT INTO issues (title, body, state, priority, ticket_ref) VALUES ('open', '', 'new', 'normal', ?)", key2)
	for i := 0; i < 5; i++ {
		f.cycle()
	}
	if failed := f.event(store.StatusFailed); len(failed) != 1 || !strings.Contains(failed[0].LastError, key2) {
		t.Fatalf("failed: %+v", failed)
	}
}

// A failed lookup is not a rule failure: the event is retried.
func TestUniqueLookupFailureRetries(t *testing.T) {
	f := uniqueFixture(t, "")
	fault := func(system, op string) error {
		if op == "find" {
			return fmt.Errorf("lookup: %w", connectors.ErrUnavailable)
		}
		return nil
	}
	f.fault.Store(&fault)
	f.newTicket("Lookup down")
	for i := 0; i < 3; i++ {
		f.cycle()
	}
	if failed := f.event(store.StatusFailed); len(failed) != 0 {
		t.Fatalf("a lookup failure failed the event for good: %+v", failed)
	}
	evs := f.event(store.StatusQueued)
	if len(evs) != 1 || !strings.Contains(evs[0].LastError, "lookup") {
		t.Fatalf("pending: %+v", evs)
	}
}
