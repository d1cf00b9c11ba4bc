package engine_test

import (
	"errors"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// TestRelinkAfterUnmatch: with on_unmatch "unlink", a ticket that stops
// matching is unlinked; when it matches again it goes on with the issue it
// had (updated, with the comment added meanwhile, the old comment not
// copied twice), never a second issue.
func TestRelinkAfterUnmatch(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			if err := f.st.SetOptions(f.ctx, f.conn.ID, `{"on_unmatch":"unlink"}`); err != nil {
				t.Fatal(err)
			}
			f.settle()
			issue := f.issueOf("1")
			issues := f.count(f.eng2, "SELECT COUNT(*) FROM issues")
			before, err := f.st.TwinBy(f.ctx, f.conn.ID, store.SideA, "1")
			if err != nil {
				t.Fatal(err)
			}
			f.exec(f.support, "UPDATE tickets SET labels = 'billing' WHERE id = 1")
			f.settle()
			if _, err := f.st.TwinBy(f.ctx, f.conn.ID, store.SideA, "1"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("still linked after the label went: %v", err)
			}
			// Escalated again, with a new subject and a comment.
			f.exec(f.support, "UPDATE tickets SET labels = 'billing,todev', subject = 'Checkout fails again' WHERE id = 1")
			f.exec(f.support, "INSERT INTO ticket_comments (ticket_id, author, body) VALUES (1, 'ana@example.com', 'Still broken')")
			f.settle()
			if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'"); n != 1 {
				t.Fatalf("%d issues for ticket 1 after re-escalation, want the one it had", n)
			}
			if got := f.one(f.eng2, "SELECT title FROM issues WHERE id = ?", issue); got != "Checkout fails again" {
				t.Fatalf("the issue was not updated on re-escalation: title %q", got)
			}
			after, err := f.st.TwinBy(f.ctx, f.conn.ID, store.SideA, "1")
			if err != nil || after.ID != before.ID || after.EntityID(store.SideB) != issue {
				t.Fatalf("pair after re-escalation: twin %d (b %s), %v; want twin %d with b %s", after.ID, after.EntityID(store.SideB), err, before.ID, issue)
			}
			if n := f.count(f.eng2, "SELECT COUNT(*) FROM issue_comments WHERE issue_id = ?", issue); n != 2 {
				t.Fatalf("%d comments on the issue, want the first one once and the new one", n)
			}
			// Unlinked and escalated again with nothing else changed: the
			// pair comes back all the same, and nothing is written.
			f.exec(f.support, "UPDATE tickets SET labels = 'billing' WHERE id = 1")
			f.settle()
			writes := f.writes.Load()
			f.exec(f.support, "UPDATE tickets SET labels = 'billing,todev' WHERE id = 1")
			f.settle()
			if again, err := f.st.TwinBy(f.ctx, f.conn.ID, store.SideA, "1"); err != nil || again.ID != before.ID {
				t.Fatalf("pair after a plain re-escalation: %+v, %v", again, err)
			}
			if w := f.writes.Load(); w != writes {
				t.Fatalf("a plain re-escalation wrote %d times", w-writes)
			}
			if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues"); n != issues {
				t.Fatalf("%d issues in all, %d before", n, issues)
			}
		})
	}
}
