package engine_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/internal/testdb"
)

// A person's change of the side Duplex is writing to, polled while the
// worker's batch is in flight (after its write, before its record), must not
// be followed by the worker setting its echo reference: that reference is
// the side as Duplex left it, so the person changing the side back to it
// later would be taken for Duplex's echo and never synced. The cluster run
// found this: an issue moved in_progress → resolved → in_progress while a
// title change was being applied to it ended in_progress, its ticket solved.
func TestEchoReferenceNotSetOverAPersonsChange(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			issue := f.inProgress()

			// Support renames the ticket; while Duplex applies that to the
			// issue, engineering resolves it and the poller takes that in.
			f.exec(f.support, "UPDATE tickets SET subject = 'Renamed' WHERE id = 1")
			if res, err := f.eng.PollOnce(f.ctx, f.conn.SystemAID); err != nil || res.Enqueued != 1 {
				t.Fatalf("poll support: %+v %v", res, err)
			}
			var once atomic.Bool
			hook := func(system, op string) error {
				if system != "engineering" || op != "after-update" || !once.CompareAndSwap(false, true) {
					return nil
				}
				f.exec(f.eng2, "UPDATE issues SET state = 'resolved' WHERE id = ?", issue)
				res, err := f.eng.PollOnce(f.ctx, f.conn.SystemBID)
				if err != nil || res.Enqueued != 1 {
					t.Errorf("poll engineering mid-apply: %+v %v", res, err)
				}
				return nil
			}
			f.fault.Store(&hook)
			if _, err := f.eng.WorkOnce(f.ctx); err != nil {
				t.Fatal(err)
			}
			f.fault.Store(nil)
			if !once.Load() {
				t.Fatal("the title was not written to the issue")
			}

			// Engineering moves it back: a person's change, not an echo.
			f.exec(f.eng2, "UPDATE issues SET state = 'in_progress' WHERE id = ?", issue)
			if res, err := f.eng.PollOnce(f.ctx, f.conn.SystemBID); err != nil || res.Enqueued != 1 {
				t.Errorf("poll after moving back: %+v %v, want one event queued", res, err)
			}
			f.settle()
			if got := f.one(f.eng2, "SELECT title FROM issues WHERE id = ?", issue); got != "Renamed" {
				t.Errorf("issue title %q, want Renamed", got)
			}
			if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "escalated" {
				t.Errorf("ticket status %q, want escalated (the issue is in_progress again)", got)
			}
		})
	}
}

// inProgress syncs ticket 1, moves its issue to in_progress and syncs that
// (the ticket escalated); it returns the issue's id.
func (f *fixture) inProgress() string {
	f.t.Helper()
	f.settle()
	issue := f.issueOf("1")
	f.exec(f.eng2, "UPDATE issues SET state = 'in_progress' WHERE id = ?", issue)
	f.settle()
	if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "escalated" {
		f.t.Fatalf("ticket status %q, want escalated", got)
	}
	return issue
}

// poll polls one system once; an error ends the test.
func (f *fixture) poll(systemID int64) {
	f.t.Helper()
	if _, err := f.eng.PollOnce(f.ctx, systemID); err != nil {
		f.t.Fatalf("poll %d: %v", systemID, err)
	}
}
