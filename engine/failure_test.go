package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/loadscale"
	"github.com/duplexsync/duplex/internal/testdb"
)

func (f *fixture) setFault(h func(system, op string) error) { f.fault.Store(&h) }

func (f *fixture) advance(d time.Duration) {
	t := time.Now().UTC().Add(d)
	if cur := f.now.Load(); cur != nil {
		t = cur.Add(d)
	}
	f.now.Store(&t)
}

func (f *fixture) event(status string) []store.SyncEvent {
	f.t.Helper()
	evs, err := f.st.ListEvents(f.ctx, store.EventFilter{ConnectionID: f.conn.ID, Status: status})
	if err != nil {
		f.t.Fatal(err)
	}
	return evs
}

// A temporary failure is retried with backoff; the twin's later change waits
// behind it (order per twin) while other twins keep flowing; after the
// failure clears, both arrive in order.
func TestRetryKeepsOrderPerTwin(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle()
	issue := f.issueOf("1")
	down := true
	f.setFault(func(system, op string) error {
		if down && system == "engineering" && op == "update" {
			return fmt.Errorf("tracker down: %w", connectors.ErrUnavailable)
		}
		return nil
	})
	f.exec(f.support, "UPDATE tickets SET subject = 'first' WHERE id = 1")
	f.cycle()
	f.exec(f.support, "UPDATE tickets SET subject = 'second' WHERE id = 1")
	f.exec(f.support, "UPDATE tickets SET labels = 'export,todev' WHERE id = 3") // another twin
	for i := 0; i < 3; i++ {
		f.cycle()
	}
	queued := f.event(store.StatusQueued)
	if len(queued) != 2 || queued[1].Attempts != 1 || !strings.Contains(queued[1].LastError, "tracker down") {
		t.Fatalf("want the failed event waiting for its retry and the later one behind it: %+v", queued)
	}
	if !queued[1].NextAttemptAt.After(time.Now().Add(30 * time.Second)) {
		t.Fatalf("retry not backed off: next attempt %v", queued[1].NextAttemptAt)
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-3'"); n != 1 {
		t.Fatal("another twin's create was held up by the failing one")
	}
	down = false
	f.advance(2 * time.Minute)
	f.settle()
	if got := f.one(f.eng2, "SELECT title FROM issues WHERE id = ?", issue); got != "second" {
		t.Fatalf("title %q, want the later change 'second' applied last", got)
	}
	done := f.event(store.StatusDone)
	if len(done) < 2 || done[0].Replica == done[1].Replica {
		t.Fatalf("both changes should have been applied in turn")
	}
}

// A system that says 429 with Retry-After is not called again before then;
// an error that keeps happening ends in the failed list after MaxAttempts.
func TestRetryAfterAndGiveUp(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle()
	calls := 0
	f.setFault(func(system, op string) error {
		if system == "engineering" && op == "update" {
			calls++
			return &connectors.RetryAfterError{After: 90 * time.Minute, Err: errors.New("429 too many requests")}
		}
		return nil
	})
	f.exec(f.support, "UPDATE tickets SET subject = 'x' WHERE id = 1")
	f.cycle()
	ev := f.event(store.StatusQueued)
	if len(ev) != 1 || ev[0].NextAttemptAt.Before(time.Now().Add(89*time.Minute)) {
		t.Fatalf("Retry-After not honoured: %+v", ev)
	}
	f.advance(60 * time.Minute)
	f.cycle()
	if calls != 1 {
		t.Fatalf("called %d times before Retry-After passed", calls)
	}
	for i := 0; i < 10; i++ {
		f.advance(3 * time.Hour)
		f.cycle()
	}
	failed := f.event(store.StatusFailed)
	if len(failed) != 1 || failed[0].Attempts != 8 || !strings.Contains(failed[0].LastError, "429") {
		t.Fatalf("want one failed event after 8 attempts: %+v (calls %d)", failed, calls)
	}
	// A person's retry gives the engine its 8 tries again; the total keeps
	// every try, so the failed event shows its real count (issue 19).
	if err := f.st.RetryEvent(f.ctx, failed[0].ID); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		f.cycle()
		f.advance(3 * time.Hour)
	}
	failed = f.event(store.StatusFailed)
	if len(failed) != 1 || failed[0].Attempts != 8 || failed[0].TotalAttempts != 16 {
		t.Fatalf("after a retry and 8 more tries: %+v, want attempts 8 of 16 in all", failed)
	}
}

// Changes made while a connection is paused are queued, not lost; resuming
// applies them in order.
func TestPauseQueuesResumeApplies(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle()
	if err := f.st.SetActive(f.ctx, f.conn.ID, false); err != nil {
		t.Fatal(err)
	}
	f.exec(f.support, "UPDATE tickets SET subject = 'during pause 1' WHERE id = 1")
	f.cycle()
	f.exec(f.support, "UPDATE tickets SET subject = 'during pause 2' WHERE id = 1")
	f.cycle()
	if got := f.one(f.eng2, "SELECT title FROM issues WHERE ticket_ref = 'T-1'"); got != "Checkout fails with a 500" {
		t.Fatalf("applied while paused: %q", got)
	}
	if n := len(f.event(store.StatusQueued)); n != 2 {
		t.Fatalf("%d events queued during the pause, want 2", n)
	}
	if err := f.st.SetActive(f.ctx, f.conn.ID, true); err != nil {
		t.Fatal(err)
	}
	f.settle()
	if got := f.one(f.eng2, "SELECT title FROM issues WHERE ticket_ref = 'T-1'"); got != "during pause 2" {
		t.Fatalf("after resume: %q", got)
	}
}

func TestBackoffHasJitterAndCap(t *testing.T) {
	b := engine.ExponentialBackoff(time.Second, time.Minute)
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		d := b(3) // 4 s before jitter
		if d < 2*time.Second || d > 4*time.Second {
			t.Fatalf("attempt 3: %v outside [2s, 4s]", d)
		}
		seen[d] = true
		if c := b(30); c > time.Minute || c < 30*time.Second {
			t.Fatalf("attempt 30: %v outside the cap", c)
		}
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct delays in 50 draws: no jitter", len(seen))
	}
}

// A crash between creating the counterpart and recording it does not create
// a second one on retry: the correlation key finds the first.
func TestCreateIsNotRepeatedAfterACrash(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	crashes := 0
	f.setFault(func(system, op string) error {
		if system == "engineering" && op == "after-create" && crashes < 1 {
			crashes++
			return fmt.Errorf("connection reset after the create: %w", connectors.ErrUnavailable)
		}
		return nil
	})
	f.cycle()
	for i := 0; i < 3; i++ {
		f.advance(time.Hour)
		f.cycle()
	}
	f.settle()
	if crashes != 1 {
		t.Fatalf("fault fired %d times, want 1", crashes)
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'"); n != 1 {
		t.Fatalf("%d issues for T-1 after an interrupted create, want 1", n)
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issue_comments WHERE issue_id = ?", f.issueOf("1")); n != 1 {
		t.Fatalf("%d comments copied, want 1", n)
	}
}

// With on_unmatch=unlink, a ticket whose label is removed is unlinked; with
// the default it keeps syncing.
func TestTriggerStopsMatching(t *testing.T) {
	for _, tc := range []struct {
		options    string
		wantLinked bool
	}{{"", true}, {`{"on_unmatch":"unlink"}`, false}} {
		t.Run(tc.options, func(t *testing.T) {
			f := newFixture(t, testdb.SQLite(t), time.Second)
			if tc.options != "" {
				if err := f.st.SetOptions(f.ctx, f.conn.ID, tc.options); err != nil {
					t.Fatal(err)
				}
			}
			f.settle()
			f.exec(f.support, "UPDATE tickets SET labels = 'billing', subject = 'no longer escalated' WHERE id = 1")
			f.settle()
			_, err := f.st.TwinBy(f.ctx, f.conn.ID, store.SideA, "1")
			if linked := err == nil; linked != tc.wantLinked {
				t.Fatalf("linked=%v, want %v (%v)", linked, tc.wantLinked, err)
			}
			title := f.one(f.eng2, "SELECT title FROM issues WHERE ticket_ref = 'T-1'")
			if tc.wantLinked != (title == "no longer escalated") {
				t.Fatalf("issue title %q with linked=%v", title, tc.wantLinked)
			}
		})
	}
}

// A deleted ticket is unlinked (default), or its issue deleted or closed,
// as the connection says; nothing echoes and nothing fails.
func TestDeletePolicies(t *testing.T) {
	for _, tc := range []struct {
		options, wantState string
		wantDeleted        bool
		wantLinked         bool
	}{
		{"", "new", false, false},
		{`{"on_delete":"delete"}`, "new", true, true},
		{`{"on_delete":"close","close":{"b":{"state":"closed"}}}`, "closed", false, true},
	} {
		t.Run(tc.options, func(t *testing.T) {
			f := newFixture(t, testdb.SQLite(t), time.Second)
			if tc.options != "" {
				if err := f.st.SetOptions(f.ctx, f.conn.ID, tc.options); err != nil {
					t.Fatal(err)
				}
			}
			f.settle()
			f.exec(f.support, "UPDATE tickets SET deleted_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = 1")
			f.settle()
			state := f.one(f.eng2, "SELECT state FROM issues WHERE ticket_ref = 'T-1'")
			deleted := f.one(f.eng2, "SELECT deleted_at FROM issues WHERE ticket_ref = 'T-1'") != ""
			_, err := f.st.TwinBy(f.ctx, f.conn.ID, store.SideA, "1")
			if state != tc.wantState || deleted != tc.wantDeleted || (err == nil) != tc.wantLinked {
				t.Fatalf("issue state %q deleted %v linked %v; want %q %v %v", state, deleted, err == nil, tc.wantState, tc.wantDeleted, tc.wantLinked)
			}
			before := f.writes.Load()
			for i := 0; i < 10; i++ {
				f.cycle()
			}
			if w := f.writes.Load() - before; w != 0 {
				t.Fatalf("%d writes after the delete settled: an echo", w)
			}
		})
	}
}

// A comment added just before a crash (or a lost answer) is recognised by its
// text on the retry and linked, not added a second time, and it does not
// echo back.
func TestCommentNotRepeatedAfterLostAnswer(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle()
	lost := 0
	f.setFault(func(system, op string) error {
		if system == "engineering" && op == "after-comment" && lost == 0 {
			lost++
			return fmt.Errorf("connection reset: %w", connectors.ErrUnavailable)
		}
		return nil
	})
	f.exec(f.support, "INSERT INTO ticket_comments (ticket_id, author, body) VALUES (1, 'ana@example.com', 'Any news?')")
	f.cycle()
	f.advance(time.Hour)
	f.settle()
	if lost != 1 {
		t.Fatalf("fault fired %d times", lost)
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issue_comments WHERE body = '[support] ana@example.com: Any news?'"); n != 1 {
		t.Fatalf("comment on the issue %d times, want 1", n)
	}
	if n := f.count(f.support, "SELECT COUNT(*) FROM ticket_comments WHERE body LIKE '[engineering]%'"); n != 0 {
		t.Fatalf("the relinked comment echoed back to the ticket %d times", n)
	}
}

// Content Duplex wrote, changed away by a person and then back, is the
// person's change the second time too: the echo hash is forgotten once a
// change of that side is accepted.
func TestChangedAwayAndBackIsNotAnEcho(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle() // Duplex created the issue with state "new"
	issue := f.issueOf("1")
	f.exec(f.eng2, "UPDATE issues SET state = 'resolved' WHERE id = ?", issue)
	f.settle()
	if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "solved" {
		t.Fatalf("status %q after resolve", got)
	}
	f.exec(f.eng2, "UPDATE issues SET state = 'new' WHERE id = ?", issue) // exactly what Duplex wrote
	f.settle()
	if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "escalated" {
		t.Fatalf("status %q: reopening the issue was taken for Duplex's own write", got)
	}
}

// A person's edit that is on the target when Duplex writes to it, but not
// synced yet, is not swallowed as part of Duplex's write (its echo).
func TestUnsyncedEditSurvivesAWriteToTheSameEntity(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle()
	issue := f.issueOf("1")
	f.exec(f.eng2, "UPDATE issues SET state = 'resolved' WHERE id = ?", issue)
	f.exec(f.eng2, "INSERT INTO issue_comments (issue_id, author, body) VALUES (?, 'dev', 'on it')", issue)
	f.exec(f.support, "UPDATE tickets SET subject = 'Checkout fails again' WHERE id = 1")
	// Only the support side is polled: Duplex writes the issue while the
	// engineer's edits on it are not synced yet.
	f.poll(f.conn.SystemAID)
	if _, err := f.eng.WorkOnce(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.settle()
	if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "solved" {
		t.Errorf("ticket status %q: the engineer's state change was taken for Duplex's echo", got)
	}
	if n := f.count(f.support, "SELECT COUNT(*) FROM ticket_comments WHERE body = '[engineering] dev: on it'"); n != 1 {
		t.Errorf("engineer's comment reached the ticket %d times, want 1", n)
	}
	if got := f.one(f.eng2, "SELECT title FROM issues WHERE id = ?", issue); got != "Checkout fails again" {
		t.Errorf("issue title %q", got)
	}
}

// A connection's own script deadline applies instead of the runner's.
func TestConnectionScriptTimeout(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), 10*time.Second)
	if err := f.st.SetOptions(f.ctx, f.conn.ID, `{"script_timeout_ms":100}`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideB, store.KindIncoming, "while (true) {}", "t"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f.cycle()
	if d := time.Since(start); d > loadscale.Duration(5*time.Second) {
		t.Fatalf("the cycle took %v: the connection's 100 ms deadline was not used", d)
	}
	failed := f.event(store.StatusFailed)
	if len(failed) != 1 || !strings.Contains(failed[0].LastError, "deadline") {
		t.Fatalf("failed events: %+v", failed)
	}
}

// A replica over the size limit fails its event with a clear error and
// reaches neither the queue nor the other system.
func TestReplicaSizeLimit(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideA, store.KindOutgoing, "replica.title = 'x'.repeat(2 << 20);", "t"); err != nil {
		t.Fatal(err)
	}
	f.cycle()
	failed := f.event(store.StatusFailed)
	if len(failed) != 1 || !strings.Contains(failed[0].LastError, "over the 1048576 byte limit") || failed[0].Replica != "" {
		t.Fatalf("failed events: %+v", failed)
	}
	if w := f.writes.Load(); w != 0 {
		t.Fatalf("%d writes", w)
	}
}

// A person edits the new issue between an interrupted create and its retry:
// the retry finds the issue by its correlation key and must neither write
// the create's fields over that edit nor take the edit for its own echo.
func TestEditAfterInterruptedCreateIsKept(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	crashes := 0
	f.setFault(func(system, op string) error {
		if system == "engineering" && op == "after-create" && crashes < 1 {
			crashes++
			f.exec(f.eng2, "UPDATE issues SET state = 'resolved' WHERE ticket_ref = 'T-1'")
			return fmt.Errorf("connection reset after the create: %w", connectors.ErrUnavailable)
		}
		return nil
	})
	f.cycle()
	for i := 0; i < 3; i++ {
		f.advance(time.Hour)
		f.cycle()
	}
	time.Sleep(50 * time.Millisecond) // past the sql connector's settle window
	f.settle()
	if crashes != 1 {
		t.Fatalf("fault fired %d times, want 1", crashes)
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'"); n != 1 {
		t.Fatalf("%d issues for T-1, want 1", n)
	}
	if got := f.one(f.eng2, "SELECT state FROM issues WHERE ticket_ref = 'T-1'"); got != "resolved" {
		t.Fatalf("issue state %q: the retry wrote over the engineer's edit", got)
	}
	if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "solved" {
		t.Fatalf("ticket status %q: the engineer's edit was taken for Duplex's own echo", got)
	}
}

// The same window, with an engineer's comment instead of an edit: the
// comment reaches the ticket.
func TestCommentAfterInterruptedCreateIsKept(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	crashes := 0
	f.setFault(func(system, op string) error {
		if system == "engineering" && op == "after-create" && crashes < 1 {
			crashes++
			f.exec(f.eng2, "INSERT INTO issue_comments (issue_id, author, body) SELECT id, 'dev', 'seen it' FROM issues WHERE ticket_ref = 'T-1'")
			return fmt.Errorf("connection reset after the create: %w", connectors.ErrUnavailable)
		}
		return nil
	})
	f.cycle()
	for i := 0; i < 3; i++ {
		f.advance(time.Hour)
		f.cycle()
	}
	time.Sleep(50 * time.Millisecond)
	f.settle()
	if n := f.count(f.support, "SELECT COUNT(*) FROM ticket_comments WHERE ticket_id = 1 AND body LIKE '%seen it%'"); n != 1 {
		t.Fatalf("the engineer's comment reached the ticket %d times, want 1", n)
	}
}

// An update whose answer was lost (or a crash after the write, before the
// record) is retried, finds the target already as wanted and writes
// nothing; the sides agree on that value, and the base must say so, or the
// next change of the field is taken for a conflict with Duplex's own write.
func TestUpdateAnswerLostThenNextChangeApplies(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle()
	lost := 0
	f.setFault(func(system, op string) error {
		if system == "support-desk" && op == "after-update" && lost < 1 {
			lost++
			return fmt.Errorf("connection reset after the update: %w", connectors.ErrUnavailable)
		}
		return nil
	})
	f.exec(f.eng2, "UPDATE issues SET state = 'in_progress' WHERE ticket_ref = 'T-1'")
	time.Sleep(50 * time.Millisecond)
	for i := 0; i < 3; i++ {
		f.advance(time.Hour)
		f.cycle()
	}
	f.settle()
	if lost != 1 {
		t.Fatalf("fault fired %d times, want 1", lost)
	}
	if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "escalated" {
		t.Fatalf("status %q after the retried update", got)
	}
	f.exec(f.eng2, "UPDATE issues SET state = 'resolved' WHERE ticket_ref = 'T-1'")
	time.Sleep(50 * time.Millisecond)
	f.advance(time.Hour)
	f.settle()
	if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "solved" {
		t.Fatalf("status %q: the resolve was taken for a conflict with Duplex's own earlier write", got)
	}
}

// A support edit lands between the engineering poll and the apply of the
// engineering change to the ticket: the incoming script passes the new
// subject through untouched, and that must not be taken as agreed (it would
// become the ticket's echo reference and the edit would never be sent).
func TestEditDuringTheOtherDirectionsApplyIsSent(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle()
	f.exec(f.eng2, "UPDATE issues SET state = 'in_progress' WHERE ticket_ref = 'T-1'")
	time.Sleep(50 * time.Millisecond)
	f.poll(f.conn.SystemBID)
	f.exec(f.support, "UPDATE tickets SET subject = 'Edited while engineering synced' WHERE id = 1")
	if _, err := f.eng.WorkOnce(f.ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	f.settle()
	if got := f.one(f.eng2, "SELECT title FROM issues WHERE ticket_ref = 'T-1'"); got != "Edited while engineering synced" {
		t.Fatalf("issue title %q: the support edit was taken for an echo", got)
	}
	if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "escalated" {
		t.Fatalf("ticket status %q", got)
	}
}

// An outgoing script that fails at intake counts as one attempt; each
// person's retry reruns it and adds to the total, and once the script is
// fixed the retried event is applied (issue 19: it showed 0 attempts).
func TestOutgoingFailureCountsAttempts(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle()
	cur, err := f.st.CurrentScripts(f.ctx, f.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	good := cur[store.SideA][store.KindOutgoing].Source
	save := func(src string) {
		if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideA, store.KindOutgoing, src, "test"); err != nil {
			t.Fatal(err)
		}
	}
	save("if (entity.key == 'T-3') fail('T-3 is not ready');\n" + good)
	f.exec(f.support, "UPDATE tickets SET labels = 'export,todev' WHERE id = 3")
	f.cycle()
	failed := f.event(store.StatusFailed)
	if len(failed) != 1 || failed[0].Attempts != 1 || failed[0].TotalAttempts != 1 {
		t.Fatalf("after the script failed once: %+v", failed)
	}
	id := failed[0].ID
	if err := f.st.RetryEvent(f.ctx, id); err != nil {
		t.Fatal(err)
	}
	f.cycle()
	ev, err := f.st.GetEvent(f.ctx, id)
	if err != nil || ev.Status != store.StatusFailed || ev.Attempts != 1 || ev.TotalAttempts != 2 {
		t.Fatalf("after a retry that failed again: %+v (%v), want attempts 1 of 2", ev, err)
	}
	save(good)
	if err := f.st.RetryEvent(f.ctx, id); err != nil {
		t.Fatal(err)
	}
	f.settle()
	if ev, _ = f.st.GetEvent(f.ctx, id); ev.Status != store.StatusDone || ev.TotalAttempts != 3 {
		t.Fatalf("after the fix and a retry: %+v, want done after 3 attempts", ev)
	}
}

// An attempt wrote to the ticket and its answer was lost (as when the
// process is killed between the write and the record), and the retry reads
// the issue again and carries a newer state. The ticket's value is Duplex's
// own unrecorded write, not a person's edit: the retry moves it to the new
// state instead of taking it for a conflict or for a field the source did
// not change.
func TestRetryAfterAnUnrecordedWriteCarriesTheNewState(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			issue := f.inProgress()
			// Queued in the past: Duplex's writes to the issue at settle are
			// later, so every attempt reads the issue again.
			f.advance(-time.Hour)
			f.exec(f.eng2, "UPDATE issues SET state = 'resolved' WHERE id = ?", issue)
			f.poll(f.conn.SystemBID)
			f.now.Store(nil)
			var lost atomic.Bool
			f.setFault(func(system, op string) error {
				if system == "support-desk" && op == "after-update" && lost.CompareAndSwap(false, true) {
					return fmt.Errorf("%w: answer lost", connectors.ErrUnavailable)
				}
				return nil
			})
			if _, err := f.eng.WorkOnce(f.ctx); err != nil {
				t.Fatal(err)
			}
			if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); !lost.Load() || got != "solved" {
				t.Fatalf("ticket %q (answer lost: %v): the first attempt should have written solved", got, lost.Load())
			}
			f.exec(f.eng2, "UPDATE issues SET state = 'in_progress' WHERE id = ?", issue)
			f.advance(2 * time.Minute) // the retry is due
			f.settle()
			if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "escalated" {
				t.Errorf("ticket status %q, want escalated: Duplex's unrecorded write was kept as a person's", got)
			}
			if n := len(f.event(store.StatusConflict)); n != 0 {
				t.Errorf("%d conflicts, want none", n)
			}
		})
	}
}

// The close (or delete) of a deleted ticket's issue is Duplex's own write
// also before its record: a poll of engineering between the write and the
// record (the peer link's fault run saw one under load, 1 run in 9) took the
// closed issue for a person's change and sent it back to the deleted
// ticket, or the deleted issue for a person's delete. Both record an intent
// first, as every other write does.
func TestADeletePolicyWritePolledBeforeItsRecordIsAnEcho(t *testing.T) {
	for _, tc := range []struct{ options, op string }{
		{`{"on_delete":"close","close":{"b":{"state":"closed"}}}`, "after-update"},
		{`{"on_delete":"delete"}`, "after-delete"},
	} {
		for _, b := range testdb.Backends(t) {
			t.Run(tc.op+"/"+b.Name, func(t *testing.T) {
				f := newFixture(t, b.Open(t), time.Second)
				if err := f.st.SetOptions(f.ctx, f.conn.ID, tc.options); err != nil {
					t.Fatal(err)
				}
				f.settle()
				before := f.fromEngineering()
				polled := 0
				f.setFault(func(system, op string) error {
					if system != "engineering" || op != tc.op || polled > 0 {
						return nil
					}
					polled++
					time.Sleep(settle) // the sql connector reports a change once it is this old
					if _, err := f.eng.PollOnce(f.ctx, f.conn.SystemBID); err != nil {
						t.Error(err)
					}
					return nil
				})
				f.exec(f.support, "UPDATE tickets SET deleted_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = 1")
				deletedAt := f.one(f.support, "SELECT deleted_at FROM tickets WHERE id = 1")
				f.settle()
				if polled != 1 {
					t.Fatalf("engineering polled %d times between the write and its record, want 1", polled)
				}
				if got := f.fromEngineering(); got != before {
					t.Errorf("%d events from engineering after the write, want %d: Duplex's write came back as a person's change", got, before)
				}
				if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got == "solved" {
					t.Errorf("the deleted ticket's status is %q: the close was sent back to it", got)
				}
				if got := f.one(f.support, "SELECT deleted_at FROM tickets WHERE id = 1"); got != deletedAt {
					t.Errorf("the ticket's deleted_at moved from %s to %s: the delete was sent back to it", deletedAt, got)
				}
			})
		}
	}
}

// An event whose claim another process took over while this one stalled
// in its write (past the lease) is applied by that process; this one drops
// its result at the record and counts it (Engine.ClaimsLost, the metric
// duplex_event_claims_lost_total), and the event is done once. PostgreSQL
// only: a SQLite store belongs to one process, which claims nothing there.
func TestAClaimTakenOverDuringTheWriteIsCounted(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			if !st.Shared() {
				t.Skip("a SQLite store has one process: no claim to take over")
			}
			f := newFixture(t, st, time.Second)
			f.settle()
			other := f.newEngine()
			took := 0
			f.setFault(func(system, op string) error {
				if system != "engineering" || op != "after-update" || took > 0 {
					return nil
				}
				took++
				f.advance(time.Minute) // this engine stalls past its lease (30 s)
				if n, err := other.WorkOnce(f.ctx); err != nil || n != 1 {
					t.Errorf("the other engine took %d events (%v), want the stalled one", n, err)
				}
				return nil
			})
			f.exec(f.support, "UPDATE tickets SET subject = 'moved on' WHERE id = 1")
			if _, err := f.eng.PollOnce(f.ctx, f.conn.SystemAID); err != nil {
				t.Fatal(err)
			}
			_, _ = f.eng.WorkOnce(f.ctx) // its record finds the claim gone
			if took != 1 {
				t.Fatalf("the write ran %d times with the fault, want 1", took)
			}
			if got, other := f.eng.ClaimsLost(), other.ClaimsLost(); got != 1 || other != 0 {
				t.Errorf("claims lost: %d here, %d by the other engine; want 1 and 0", got, other)
			}
			done := 0
			for _, ev := range f.event(store.StatusDone) {
				if ev.Direction == store.AToB && strings.Contains(ev.Replica, "moved on") {
					done++
				}
			}
			if done != 1 {
				t.Errorf("%d done events carry the change, want 1", done)
			}
		})
	}
}

// An editor's trigger that fails at run time fails the changes people make
// on its side, not Duplex's own writes read back from there: before the
// echo check came first, every write Duplex made to engineering's issues
// came back as a failed event ("trigger: …") in the error list.
func TestBrokenTriggerFailsNoEcho(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle()
	if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideB, store.KindTrigger, `int(title) > 0`, "editor"); err != nil {
		t.Fatal(err)
	}
	f.eng = f.newEngine()
	f.exec(f.support, "UPDATE tickets SET subject = 'Checkout fails again' WHERE id = 1")
	time.Sleep(settle)
	f.settle() // fails on any failed event
	if got := f.one(f.eng2, "SELECT title FROM issues WHERE id = ?", f.issueOf("1")); got != "Checkout fails again" {
		t.Fatalf("issue title %q: the edit was not written", got)
	}
	f.exec(f.eng2, "UPDATE issues SET state = 'in_progress' WHERE id = ?", f.issueOf("1"))
	time.Sleep(settle)
	for i := 0; i < 5; i++ {
		f.cycle()
	}
	evs, err := f.st.ListEvents(f.ctx, store.EventFilter{Status: store.StatusFailed})
	if err != nil || len(evs) != 1 || !strings.Contains(evs[0].LastError, "trigger") {
		t.Fatalf("failed events %+v %v; want one, the engineer's edit, failed by the trigger", evs, err)
	}
}
