package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// Issue 16, window (a): the process dies right after a create, once the
// twin holds the new entity's id but before the batch is recorded. The
// restarted process must not take the new issue for a person's (sending it
// back flipped the ticket open → escalated), must audit sync.create once,
// and must give the twin the issue's state as created, or every comment
// copied there later bounces back as a no-op event.
func TestKillAfterCreateIsNoBounce(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			// The kill: the goroutine applying T-1's event ends at its first
			// comment on the new issue (the create and the twin's new id
			// are saved by then), so nothing of its batch is recorded.
			var killed atomic.Bool
			f.setFault(func(system, op string) error {
				if system == "engineering" && op == "comment" && killed.CompareAndSwap(false, true) {
					runtime.Goexit()
				}
				return nil
			})
			if res, err := f.eng.PollOnce(f.ctx, f.conn.SystemAID); err != nil || res.Enqueued == 0 {
				t.Fatalf("poll support: %+v %v", res, err)
			}
			if _, err := f.eng.WorkOnce(f.ctx); err != nil {
				t.Fatal(err)
			}
			if !killed.Load() {
				t.Fatal("the apply was not killed")
			}
			f.fault.Store(nil)
			f.eng = f.newEngine()  // the restarted process
			f.advance(time.Minute) // past the dead process's lease (PostgreSQL)
			issue := f.issueOf("1")
			if issue == "" {
				t.Fatal("the issue was not created before the kill")
			}
			time.Sleep(settle)
			if res, err := f.eng.PollOnce(f.ctx, f.conn.SystemBID); err != nil || res.Enqueued != 0 {
				t.Errorf("poll of engineering after the restart: %+v %v, want nothing queued (the new issue is Duplex's)", res, err)
			}
			f.settle()
			if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "open" {
				t.Errorf("ticket status %q, want open (nobody touched the issue)", got)
			}
			if n := f.count(f.eng2, "SELECT COUNT(*) FROM issue_comments WHERE issue_id = ?", issue); n != 1 {
				t.Errorf("%d comments on the issue, want 1", n)
			}
			if n := f.audits("sync.create"); n != 1 { // T-1 is the demo's only escalated ticket
				t.Errorf("sync.create audited %d times, want 1", n)
			}
			// A comment copied there later is no change of the issue's.
			f.exec(f.support, "INSERT INTO ticket_comments (ticket_id, author, body) VALUES (1, 'ana', 'Any news?')")
			f.settle()
			if n := f.count(f.eng2, "SELECT COUNT(*) FROM issue_comments WHERE issue_id = ?", issue); n != 2 {
				t.Errorf("%d comments on the issue, want 2", n)
			}
			f.noBounce()
			f.noIntents()
		})
	}
}

// Issue 16, window (b): a poll of the target that reads Duplex's write
// before the batch is recorded takes it for Duplex's own, for an update, a
// create (before and after the twin knows the new id) and a comment.
func TestPollBetweenWriteAndRecordIsNoBounce(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		for _, at := range []string{"after-create", "after-comment", "after-update"} {
			t.Run(b.Name+"/"+at, func(t *testing.T) {
				f := newFixture(t, b.Open(t), time.Second)
				if at != "after-create" && at != "after-comment" {
					f.settle()
					f.exec(f.support, "UPDATE tickets SET subject = 'Renamed' WHERE id = 1")
				}
				var polled atomic.Int64
				var once atomic.Bool
				hook := func(system, op string) error {
					if system != "engineering" || op != at || !once.CompareAndSwap(false, true) {
						return nil
					}
					time.Sleep(settle) // the sql connector reports a change once it is this old
					res, err := f.eng.PollOnce(f.ctx, f.conn.SystemBID)
					if err != nil {
						t.Errorf("poll mid-apply: %v", err)
					}
					polled.Store(int64(res.Enqueued) + 1)
					return nil
				}
				f.setFault(hook)
				f.settle()
				f.fault.Store(nil)
				if polled.Load() == 0 {
					t.Fatalf("no %s write to engineering", at)
				}
				if n := polled.Load() - 1; n != 0 {
					t.Errorf("the poll between write and record queued %d event(s), want 0", n)
				}
				if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "open" {
					t.Errorf("ticket status %q, want open (nobody touched the issue)", got)
				}
				if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'"); n != 1 {
					t.Errorf("%d issues for T-1, want 1", n)
				}
				f.noBounce()
				f.noIntents()
			})
		}
	}
}

// A person's change of the side being written, taken in while the write is
// in flight, supersedes the write's intent: the person changing the side
// back to exactly what Duplex wrote is a change too, not an echo.
func TestPersonsChangeSupersedesIntent(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle()
	issue := f.issueOf("1")
	f.exec(f.support, "UPDATE tickets SET subject = 'Renamed' WHERE id = 1")
	var once atomic.Bool
	f.setFault(func(system, op string) error {
		if system != "engineering" || op != "after-update" || !once.CompareAndSwap(false, true) {
			return nil
		}
		f.exec(f.eng2, "UPDATE issues SET state = 'in_progress' WHERE id = ?", issue)
		if res, err := f.eng.PollOnce(f.ctx, f.conn.SystemBID); err != nil || res.Enqueued != 1 {
			t.Errorf("poll of a person's change mid-apply: %+v %v, want one event", res, err)
		}
		// Back to what Duplex wrote, still before the batch is recorded.
		f.exec(f.eng2, "UPDATE issues SET state = 'new' WHERE id = ?", issue)
		if res, err := f.eng.PollOnce(f.ctx, f.conn.SystemBID); err != nil || res.Enqueued != 1 {
			t.Errorf("poll of the change back mid-apply: %+v %v, want one event", res, err)
		}
		return nil
	})
	f.settle()
	f.fault.Store(nil)
	if !once.Load() {
		t.Fatal("the title was not written")
	}
	if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "escalated" {
		t.Errorf("ticket status %q, want escalated (the issue went new → in_progress → new)", got)
	}
}

// noBounce fails the test if any event came from engineering: in these
// tests nobody there changes anything.
func (f *fixture) noBounce() {
	f.t.Helper()
	evs, err := f.st.ListEvents(f.ctx, store.EventFilter{ConnectionID: f.conn.ID})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Direction == store.BToA {
			f.t.Errorf("event %d (%s, %s) came back from engineering: %s", ev.ID, ev.Status, ev.Action, ev.Replica)
		}
	}
}

// noIntents fails the test if a write's intent is left once all is settled.
func (f *fixture) noIntents() {
	f.t.Helper()
	n, err := f.st.DeleteIntentsBefore(f.ctx, time.Now().Add(time.Hour))
	if err != nil {
		f.t.Fatal(err)
	}
	if n != 0 {
		f.t.Errorf("%d write intents left after the events were recorded", n)
	}
}

func (f *fixture) audits(action string) int {
	f.t.Helper()
	es, err := f.st.ListAuditFor(f.ctx, store.AuditFilter{ConnectionID: f.conn.ID, Action: action, Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	return len(es)
}

// A person changes the new issue in the moment between Duplex's create and
// its saving the issue's id on the twin, and a poll of engineering reads it
// then: unlinked, and unlike what the create sent, it could pass for a
// person's new issue, which engineering's trigger does not sync, and the
// change would be lost. The poll waits for the create instead.
func TestChangeOfANewEntityBeforeItsLinkIsSaved(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			id, ref := f.newEscalation()
			var polled atomic.Bool
			var pollErr error
			f.setFault(func(system, op string) error {
				if system == "engineering" && op == "after-create" && polled.CompareAndSwap(false, true) {
					f.exec(f.eng2, "UPDATE issues SET state = 'resolved' WHERE ticket_ref = ?", ref)
					_, pollErr = f.eng.PollOnce(f.ctx, f.conn.SystemBID)
				}
				return nil
			})
			if _, err := f.eng.WorkOnce(f.ctx); err != nil {
				t.Fatal(err)
			}
			if !polled.Load() || pollErr != nil {
				t.Fatalf("the poll during the create did not run (%v)", pollErr)
			}
			f.fault.Store(nil)
			f.settle()
			if got := f.one(f.support, "SELECT status FROM tickets WHERE id = ?", id); got != "solved" {
				t.Errorf("ticket status %q, want solved: the engineer's change of the new issue was lost", got)
			}
		})
	}
}

// hookedConn gives a sql system webhooks: a body names the changed row's
// id, and no signature is checked (the engine's part is under test).
type hookedConn struct {
	connectors.Connector
	n atomic.Int64
}

// The creates keep their correlation keys (and the fixture's "after-create"
// fault, which the correlated create injects).
func (h *hookedConn) CreateCorrelated(ctx context.Context, key string, f map[string]any) (connectors.Entity, error) {
	return h.Connector.(connectors.Correlating).CreateCorrelated(ctx, key, f)
}

func (h *hookedConn) FindCorrelated(ctx context.Context, key string) (connectors.Entity, bool, error) {
	return h.Connector.(connectors.Correlating).FindCorrelated(ctx, key)
}

func (h *hookedConn) Webhook(_ http.Header, body []byte) (connectors.Delivery, error) {
	return connectors.Delivery{ID: fmt.Sprint("d", h.n.Add(1)), IDSigned: true, EntityIDs: []string{string(body)}}, nil
}

// TestChangeOfANewEntityBeforeItsLinkIsSaved with the change heard by
// webhook: the delivery waits for the create's answer (without using up
// an attempt), and the engineer's change reaches the ticket.
func TestWebhookOfANewEntityBeforeItsLinkIsSaved(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			f.wrap = func(system string, c connectors.Connector) connectors.Connector {
				if system == "engineering" {
					return &hookedConn{Connector: c}
				}
				return c
			}
			f.eng = f.newEngine()
			id, ref := f.newEscalation()
			var heard atomic.Bool
			hooks := make(chan error, 1)
			f.setFault(func(system, op string) error {
				if system != "engineering" || op != "after-create" || !heard.CompareAndSwap(false, true) {
					return nil
				}
				issue := f.one(f.eng2, "SELECT id FROM issues WHERE ticket_ref = ?", ref)
				f.exec(f.eng2, "UPDATE issues SET state = 'resolved' WHERE ticket_ref = ?", ref)
				if _, err := f.eng.Hook(f.ctx, f.conn.SystemBID, http.Header{}, []byte(fmt.Sprint(issue))); err != nil {
					hooks <- err
					return nil
				}
				go func() { _, err := f.eng.HooksOnce(f.ctx); hooks <- err }()
				// The create's answer is saved after this returns: keep the
				// delivery's processing inside the window.
				time.Sleep(150 * time.Millisecond)
				return nil
			})
			if _, err := f.eng.WorkOnce(f.ctx); err != nil {
				t.Fatal(err)
			}
			if !heard.Load() {
				t.Fatal("the create did not run")
			}
			if err := <-hooks; err != nil {
				t.Fatalf("the webhook during the create: %v", err)
			}
			f.fault.Store(nil)
			for range 3 {
				if _, err := f.eng.WorkOnce(f.ctx); err != nil {
					t.Fatal(err)
				}
			}
			if got := f.one(f.support, "SELECT status FROM tickets WHERE id = ?", id); got != "solved" {
				t.Errorf("ticket status %q, want solved: the engineer's change of the new issue, heard by webhook, was lost", got)
			}
		})
	}
}

// The cluster run's lost edit after the five fixes: support's comment is
// copied to the issue while the engineer's move to resolved waits in the
// queue behind it; the engineer then moves the issue back to in_progress.
// The issue now holds exactly its last synced state plus Duplex's comment,
// which is what Duplex's write would have left had nobody touched the
// issue: taken for Duplex's echo, the move back was dropped, and the
// resolved state applied later stayed on the ticket. The poll must take
// the move back in.
func TestMoveBackAfterDuplexWroteIsNoEcho(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			issue := f.inProgress()
			f.exec(f.support, "INSERT INTO ticket_comments (ticket_id, author, body) VALUES (1, 'ana', 'Any news?')")
			time.Sleep(settle)
			f.poll(f.conn.SystemAID)
			f.exec(f.eng2, "UPDATE issues SET state = 'resolved' WHERE id = ?", issue)
			time.Sleep(settle)
			f.poll(f.conn.SystemBID)
			// One event per twin at a time: the comment goes first, the
			// move to resolved stays queued.
			if n, err := f.eng.WorkOnce(f.ctx); err != nil || n != 1 {
				t.Fatalf("work: %d events, %v; want the comment's alone", n, err)
			}
			if got := f.one(f.eng2, "SELECT COUNT(*) FROM issue_comments WHERE issue_id = ? AND body LIKE '%Any news?%'", issue); got != "1" {
				t.Fatalf("%s copies of support's comment on the issue, want 1", got)
			}
			f.exec(f.eng2, "UPDATE issues SET state = 'in_progress' WHERE id = ?", issue)
			time.Sleep(settle)
			res, err := f.eng.PollOnce(f.ctx, f.conn.SystemBID)
			if err != nil {
				t.Fatal(err)
			}
			if res.Enqueued != 1 {
				t.Errorf("the engineer's move back to in_progress queued %d events, want 1: it passed for Duplex's write", res.Enqueued)
			}
			f.settle()
			if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "escalated" {
				t.Errorf("ticket status %q, want escalated (the issue is in_progress)", got)
			}
		})
	}
}

// newEscalation settles the demo, adds a ticket for engineering and polls
// support once: its create is queued, not applied. It returns the ticket's
// id and the ticket_ref its issue will carry.
func (f *fixture) newEscalation() (int64, string) {
	f.t.Helper()
	f.settle()
	res, err := f.support.Exec(`INSERT INTO tickets (subject, labels, priority) VALUES ('Refunds fail', 'todev', 'high')`)
	if err != nil {
		f.t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	time.Sleep(settle)
	f.poll(f.conn.SystemAID)
	return id, fmt.Sprint("T-", id)
}

// The engine's audit entries carry their connection's team (team admins
// read them by it), taken from the batch's plan rather than looked up by
// the record; and a record removes intents older than intentKeep.
func TestRecordAuditsTheTeamAndSweepsOldIntents(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			team := store.Team{Name: "engineering"}
			if err := f.st.Identity().CreateTeam(f.ctx, &team); err != nil {
				t.Fatal(err)
			}
			if err := f.st.DB().Exec("UPDATE connections SET team_id = ? WHERE id = ?", team.ID, f.conn.ID).Error; err != nil {
				t.Fatal(err)
			}
			f.settle()
			tw := f.twinOf(f.issueOf("1"))
			old := store.Intent{TwinID: tw.ID, EventID: 1 << 40, ConnectionID: f.conn.ID, SystemID: f.conn.SystemBID, Side: store.SideB,
				Action: "update", EntityID: tw.EntityID(store.SideB), Expected: "{}", Comments: "[]", Echo: true,
				CreatedAt: time.Now().Add(-8 * 24 * time.Hour)}
			if err := f.st.AddIntent(f.ctx, &old); err != nil {
				t.Fatal(err)
			}
			f.eng = f.newEngine() // reads the connection afresh; its first record sweeps
			f.exec(f.support, "UPDATE tickets SET subject = 'Renamed' WHERE id = 1")
			f.settle()
			var n, other int64
			f.st.DB().Raw("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'sync.%' AND team_id = ?", team.ID).Scan(&n)
			f.st.DB().Raw("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'sync.%' AND (team_id IS NULL OR team_id <> ?)", team.ID).Scan(&other)
			if n < 2 || other != 0 {
				t.Errorf("sync entries: %d of the connection's team, %d of another or none; want all (at least 2) of the team", n, other)
			}
			var left int64
			f.st.DB().Raw("SELECT COUNT(*) FROM write_intents WHERE id = ?", old.ID).Scan(&left)
			if left != 0 {
				t.Error("an intent older than a week is still there after a record")
			}
		})
	}
}
