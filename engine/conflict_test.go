package engine_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"

	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// symmetric replaces the demo scripts with a two-way mapping of subject/title
// and priority, so both sides can change the same fields.
func symmetric(t *testing.T, f *fixture, policy string) {
	t.Helper()
	src := map[store.Side]map[store.ScriptKind]string{
		store.SideA: {
			store.KindOutgoing: "replica.key = entity.key; replica.title = entity.subject; replica.priority = entity.priority;",
			store.KindIncoming: "entity.subject = replica.title; entity.priority = replica.priority;",
		},
		store.SideB: {
			store.KindOutgoing: "replica.key = entity.ticket_ref; replica.title = entity.title; replica.priority = entity.priority;",
			store.KindIncoming: "entity.ticket_ref = replica.key; entity.title = replica.title; entity.priority = replica.priority;",
		},
	}
	for side, kinds := range src {
		for kind, s := range kinds {
			if _, err := f.st.SaveScript(f.ctx, f.conn.ID, side, kind, s, "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if policy != "" {
		if _, err := engine.ParsePolicy(policy); err != nil {
			t.Fatal(err)
		}
		if err := f.st.SetConflictPolicy(f.ctx, f.conn.ID, policy); err != nil {
			t.Fatal(err)
		}
	}
	f.settle()
	if got := f.one(f.eng2, "SELECT priority FROM issues WHERE ticket_ref = 'T-1'"); got != "urgent" {
		t.Fatalf("initial sync: priority %q", got)
	}
}

func (f *fixture) ticket1() (subject, priority string) {
	return f.one(f.support, "SELECT subject FROM tickets WHERE id = 1"), f.one(f.support, "SELECT priority FROM tickets WHERE id = 1")
}

func (f *fixture) issue1() (title, priority string) {
	return f.one(f.eng2, "SELECT title FROM issues WHERE ticket_ref = 'T-1'"), f.one(f.eng2, "SELECT priority FROM issues WHERE ticket_ref = 'T-1'")
}

// Edits of different fields on both sides between two polls both survive.
func TestConcurrentEditsOfDifferentFieldsBothSurvive(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			symmetric(t, f, "")
			f.exec(f.support, "UPDATE tickets SET subject = 'Subject from support' WHERE id = 1")
			f.exec(f.eng2, "UPDATE issues SET priority = 'low' WHERE ticket_ref = 'T-1'")
			f.settle()
			if s, p := f.ticket1(); s != "Subject from support" || p != "low" {
				t.Errorf("ticket: subject %q priority %q; want both edits", s, p)
			}
			if s, p := f.issue1(); s != "Subject from support" || p != "low" {
				t.Errorf("issue: title %q priority %q; want both edits", s, p)
			}
		})
	}
}

// The same field changed on both sides is settled by the policy, and both
// sides end equal.
func TestConflictPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy string
		want   string
	}{
		{"", "high"}, // default: side a wins
		{`{"default":"b"}`, "low"},
		{`{"default":"a","fields":{"priority":"b","title":"b"}}`, "low"},
		{`{"default":"newest"}`, "low"}, // engineering edited last
	} {
		t.Run(tc.policy, func(t *testing.T) {
			f := newFixture(t, testdb.SQLite(t), time.Second)
			symmetric(t, f, tc.policy)
			f.exec(f.support, "UPDATE tickets SET priority = 'high' WHERE id = 1")
			time.Sleep(5 * time.Millisecond)
			f.exec(f.eng2, "UPDATE issues SET priority = 'low' WHERE ticket_ref = 'T-1'")
			f.settle()
			_, pa := f.ticket1()
			_, pb := f.issue1()
			if pa != tc.want || pb != tc.want {
				t.Fatalf("ticket %q, issue %q; want both %q", pa, pb, tc.want)
			}
		})
	}
}

// With the manual policy the conflicting events wait with both values and
// the base; a person's choice is applied and both sides agree.
func TestManualConflict(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	symmetric(t, f, `{"default":"manual"}`)
	f.exec(f.support, "UPDATE tickets SET priority = 'high' WHERE id = 1")
	f.exec(f.eng2, "UPDATE issues SET priority = 'low' WHERE ticket_ref = 'T-1'")
	f.settle()
	if _, p := f.issue1(); p != "low" {
		t.Fatalf("a manual conflict was settled without a person: issue priority %q", p)
	}
	waiting, err := f.st.ListEvents(f.ctx, store.EventFilter{Status: store.StatusConflict})
	if err != nil || len(waiting) != 2 {
		t.Fatalf("conflict list: %d events, %v; want 2 (one each way)", len(waiting), err)
	}
	for _, ev := range waiting {
		var cs []engine.Conflict
		if ev.Conflicts == nil || json.Unmarshal([]byte(*ev.Conflicts), &cs) != nil || len(cs) != 1 || cs[0].Field != "priority" {
			t.Fatalf("event %d conflicts %v", ev.ID, ev.Conflicts)
		}
		if ev.LastError != "1 field changed on both sides" {
			t.Fatalf("event %d says %q, want \"1 field changed on both sides\"", ev.ID, ev.LastError)
		}
		if ev.Direction == store.AToB && (cs[0].Base != "urgent" || cs[0].Target != "low" || cs[0].Incoming != "high") {
			t.Fatalf("a→b conflict %+v: want base urgent, target low, incoming high", cs[0])
		}
	}
	// The person takes support's value for the issue, and keeps it on the ticket.
	for _, ev := range waiting {
		take := `{"priority":{"take":"source"}}`
		if ev.Direction == store.BToA {
			take = `{"priority":{"take":"target"}}`
		}
		if err := f.st.ResolveConflict(f.ctx, ev.ID, take); err != nil {
			t.Fatal(err)
		}
	}
	f.settle()
	_, pa := f.ticket1()
	_, pb := f.issue1()
	if pa != "high" || pb != "high" {
		t.Fatalf("after resolution: ticket %q, issue %q; want both high", pa, pb)
	}
}

// An edit of a field the target's side never sends back (the engineering
// title, with the demo's scripts) is still the engineer's edit: a later
// change of the ticket's subject is a conflict under the manual policy,
// even after an unrelated engineering change went to the ticket in between.
func TestEditOfAFieldNotSentBackIsProtected(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	if err := f.st.SetConflictPolicy(f.ctx, f.conn.ID, `{"default":"manual"}`); err != nil {
		t.Fatal(err)
	}
	f.settle()
	f.exec(f.eng2, "UPDATE issues SET title = 'Renamed by engineering', state = 'in_progress' WHERE ticket_ref = 'T-1'")
	time.Sleep(50 * time.Millisecond) // past the sql connector's settle window
	f.settle()
	if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "escalated" {
		t.Fatalf("the state change did not reach the ticket: %q", got)
	}
	f.exec(f.support, "UPDATE tickets SET subject = 'Renamed by support' WHERE id = 1")
	time.Sleep(50 * time.Millisecond)
	f.settle()
	if got := f.one(f.eng2, "SELECT title FROM issues WHERE ticket_ref = 'T-1'"); got != "Renamed by engineering" {
		t.Fatalf("issue title %q: the engineer's rename was overwritten without a conflict", got)
	}
	evs, err := f.st.ListEvents(f.ctx, store.EventFilter{ConnectionID: f.conn.ID, Status: store.StatusConflict})
	if err != nil || len(evs) != 1 {
		t.Fatalf("want one conflict waiting, got %d (%v)", len(evs), err)
	}
}

// The same with the twin's script record in use (issue 16): an earlier
// engineering change recorded the outgoing script's result for engineering's
// base, so the rename of the title (one field changed, sent together with a
// comment) is found not carried without a run for the old base; it is
// still the engineer's edit.
func TestEditOfAFieldNotSentBackIsProtectedWithTheRecord(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	if err := f.st.SetConflictPolicy(f.ctx, f.conn.ID, `{"default":"manual"}`); err != nil {
		t.Fatal(err)
	}
	f.settle()
	issue := f.issueOf("1")
	f.exec(f.eng2, "UPDATE issues SET state = 'in_progress' WHERE id = ?", issue) // carried: records the base's result
	time.Sleep(50 * time.Millisecond)
	f.settle()
	f.exec(f.eng2, "UPDATE issues SET title = 'Renamed by engineering' WHERE id = ?", issue)
	f.exec(f.eng2, "INSERT INTO issue_comments (issue_id, author, body) VALUES (?, 'dev', 'renamed it')", issue)
	time.Sleep(50 * time.Millisecond)
	f.settle()
	if got := f.one(f.support, "SELECT COUNT(*) FROM ticket_comments WHERE ticket_id = 1 AND body LIKE '%renamed it%'"); got != "1" {
		t.Fatalf("the comment did not reach the ticket (%s): the change was not sent", got)
	}
	f.exec(f.support, "UPDATE tickets SET subject = 'Renamed by support' WHERE id = 1")
	time.Sleep(50 * time.Millisecond)
	f.settle()
	if got := f.one(f.eng2, "SELECT title FROM issues WHERE id = ?", issue); got != "Renamed by engineering" {
		t.Fatalf("issue title %q: the engineer's rename was overwritten without a conflict", got)
	}
	evs, err := f.st.ListEvents(f.ctx, store.EventFilter{ConnectionID: f.conn.ID, Status: store.StatusConflict})
	if err != nil || len(evs) != 1 {
		t.Fatalf("want one conflict waiting, got %d (%v)", len(evs), err)
	}
}

// Two changes of one issue are queued, and both read the issue again when
// applied (Duplex wrote to it after they were queued). The first applies
// the newer state, resolved; then the engineer moves the issue back to
// in_progress, which the second carries. The second's previous replica is
// the one the first applied, not the one queued with it (in_progress): against
// that, in_progress looks unchanged and the ticket stayed solved. The
// cluster kill test lost edits this way.
func TestPreviousIsWhatWasAppliedNotWhatWasQueued(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			issue := f.inProgress()
			// Queued in the past: Duplex's create of the issue (at settle)
			// is after both, so both are stale when applied.
			f.advance(-time.Hour)
			f.exec(f.eng2, "INSERT INTO issue_comments (issue_id, author, body) VALUES (?, 'dev', 'looking')", issue)
			f.poll(f.conn.SystemBID)
			f.exec(f.eng2, "UPDATE issues SET state = 'resolved' WHERE id = ?", issue)
			f.poll(f.conn.SystemBID)
			if n := len(f.event(store.StatusQueued)); n != 2 {
				t.Fatalf("%d events queued, want 2", n)
			}
			f.now.Store(nil)
			if _, err := f.eng.WorkOnce(f.ctx); err != nil { // the first: one event per twin and batch
				t.Fatal(err)
			}
			if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "solved" {
				for _, ev := range append(f.event(store.StatusDone), f.event(store.StatusQueued)...) {
					t.Logf("event %d %s %s %s created %s replica %s", ev.ID, ev.Direction, ev.Status, ev.Action, ev.CreatedAt, ev.Replica)
				}
				t.Log(f.one(f.eng2, "SELECT state FROM issues WHERE id = ?", issue))
				t.Fatalf("after the first event the ticket is %q, want solved (it read the issue again)", got)
			}
			f.exec(f.eng2, "UPDATE issues SET state = 'in_progress' WHERE id = ?", issue)
			if _, err := f.eng.WorkOnce(f.ctx); err != nil {
				t.Fatal(err)
			}
			f.settle()
			if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "escalated" {
				t.Errorf("ticket status %q, want escalated: the engineer's move back to in_progress was lost", got)
			}
		})
	}
}

// duringGet runs hook once, after the first Get of an entity it is armed
// for (before it, with before set).
type duringGet struct {
	connectors.Connector
	hook   *atomic.Pointer[func()]
	before bool
}

func (d duringGet) Get(ctx context.Context, id string) (connectors.Entity, error) {
	if d.before {
		if h := d.hook.Swap(nil); h != nil {
			(*h)()
		}
	}
	ent, err := d.Connector.Get(ctx, id)
	if h := d.hook.Swap(nil); h != nil {
		(*h)()
	}
	return ent, err
}

// An event reads its source again when applied and so applies the newest
// subject; an event of the same ticket queued after it but from an older
// read must not then put its older subject over it (the cluster kill test
// ended with an older title this way).
func TestAnOlderQueuedStateDoesNotFollowANewerRead(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			var hook atomic.Pointer[func()]
			f.wrap = func(system string, c connectors.Connector) connectors.Connector {
				if system != "support-desk" {
					return c
				}
				return duringGet{Connector: c, hook: &hook, before: true}
			}
			f.eng = f.newEngine()
			issue := f.inProgress() // Duplex writes the ticket's status: the ticket's events read before are stale
			f.advance(-time.Hour)
			f.exec(f.support, "UPDATE tickets SET subject = 'Subject A' WHERE id = 1")
			f.poll(f.conn.SystemAID)
			f.now.Store(nil)
			f.exec(f.support, "UPDATE tickets SET subject = 'Subject B' WHERE id = 1")
			f.poll(f.conn.SystemAID)
			h := func() { f.exec(f.support, "UPDATE tickets SET subject = 'Subject C' WHERE id = 1") }
			hook.Store(&h)
			for i := 0; i < 2; i++ { // one event per twin and batch
				if _, err := f.eng.WorkOnce(f.ctx); err != nil {
					t.Fatal(err)
				}
			}
			if hook.Load() != nil {
				t.Fatal("the first event did not read the ticket again")
			}
			f.settle()
			if got := f.one(f.eng2, "SELECT title FROM issues WHERE id = ?", issue); got != "Subject C" {
				t.Errorf("issue title %q, want the ticket's last subject, Subject C", got)
			}
		})
	}
}

// An event reads its source again when applied (it is stale), and while it
// does, the engineer changes the issue and a poll queues that change. The
// replica read is older than the one the poll queued: it must not become
// the twin's last sent one, or the engineer's later move back to that
// older state is taken for "already sent" and never queued (the cluster kill
// test lost a resolved state this way).
func TestRereadDoesNotOverwriteANewerQueuedChange(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			var hook atomic.Pointer[func()]
			f.wrap = func(system string, c connectors.Connector) connectors.Connector {
				if system != "engineering" {
					return c
				}
				return duringGet{Connector: c, hook: &hook}
			}
			f.eng = f.newEngine()
			issue := f.inProgress()
			f.advance(-time.Hour) // queued before Duplex's writes to the issue: stale
			f.exec(f.eng2, "UPDATE issues SET state = 'resolved' WHERE id = ?", issue)
			f.poll(f.conn.SystemBID)
			f.now.Store(nil)
			polled := make(chan error, 1)
			h := func() {
				f.exec(f.eng2, "UPDATE issues SET state = 'in_progress' WHERE id = ?", issue)
				_, err := f.eng.PollOnce(f.ctx, f.conn.SystemBID)
				polled <- err
			}
			hook.Store(&h)
			if _, err := f.eng.WorkOnce(f.ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-polled:
				if err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatal("the event did not read the issue again")
			}
			f.settle() // the in_progress queued meanwhile arrives
			if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "escalated" {
				t.Fatalf("ticket status %q after the change queued during the read, want escalated", got)
			}
			f.exec(f.eng2, "UPDATE issues SET state = 'resolved' WHERE id = ?", issue)
			f.settle()
			if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "solved" {
				t.Errorf("ticket status %q, want solved: the engineer's move back to resolved was taken for already sent", got)
			}
		})
	}
}
