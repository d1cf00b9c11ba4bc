package engine_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// heldPage runs hook, once armed, between reading a page from the system
// and handing it to the poll: what happens then is newer than the page.
// An armed read also starts from the beginning, so the page holds every
// entity, in its state before the hook.
type heldPage struct {
	connectors.Connector
	hook *atomic.Pointer[func()]
}

func (h heldPage) Changes(ctx context.Context, cursor string, limit int) (connectors.Page, error) {
	f := h.hook.Swap(nil)
	if f == nil {
		return h.Connector.Changes(ctx, cursor, limit)
	}
	page, err := h.Connector.Changes(ctx, "", limit)
	(*f)()
	return page, err
}

// A poll that read an issue before Duplex wrote to it, and is taken in after
// that write was recorded, holds the issue's older state. It is not a
// person's change: taken for one, it cleared the echo hash, and the next
// poll sent Duplex's own write back to the ticket (the item service test saw
// this 1 run in 40). The poll reads such an entity again (stale.go).
func TestAPageReadBeforeDuplexsWriteIsReadAgain(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			var hook atomic.Pointer[func()]
			f.wrap = func(system string, c connectors.Connector) connectors.Connector {
				if system != "engineering" {
					return c
				}
				return heldPage{Connector: c, hook: &hook}
			}
			f.eng = f.newEngine()
			f.settle()
			issue := f.issueOf("1")
			before := f.fromEngineering()

			f.exec(f.support, "UPDATE tickets SET subject = 'Renamed' WHERE id = 1")
			f.poll(f.conn.SystemAID)
			applied := 0
			h := func() { // Duplex writes the new title and records it
				n, err := f.eng.WorkOnce(f.ctx)
				if err != nil {
					t.Error(err)
				}
				applied = n
			}
			hook.Store(&h)
			f.poll(f.conn.SystemBID)
			if applied != 1 {
				t.Fatalf("%d events applied while the page was held, want 1", applied)
			}
			f.settle()
			if got := f.one(f.eng2, "SELECT title FROM issues WHERE id = ?", issue); got != "Renamed" {
				t.Errorf("issue title %q, want Renamed", got)
			}
			if got := f.fromEngineering(); got != before {
				t.Errorf("%d events from engineering after the held page, want %d: Duplex's write came back", got, before)
			}
		})
	}
}

// fromEngineering counts the connection's events from engineering.
func (f *fixture) fromEngineering() int {
	f.t.Helper()
	evs, err := f.st.ListEvents(f.ctx, store.EventFilter{ConnectionID: f.conn.ID})
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Direction == store.BToA {
			n++
		}
	}
	return n
}

// A write whose answer was lost (or whose process was killed before its
// record) is found in place by the retry, which writes nothing. The target
// then holds Duplex's write, and the retry's record sets the echo reference
// to it, as the lost record would have: before, it kept the one from before
// the write, and the next poll took Duplex's write for a person's change
// (the cluster run, after a takeover: a new issue's first poll went back and
// escalated its ticket). The poll must find the issue to be Duplex's echo,
// which leaves its echo reference in place.
func TestAWriteFoundInPlaceByItsRetryIsAnEcho(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			f.settle()
			issue := f.issueOf("1")
			before := f.fromEngineering()

			f.exec(f.support, "UPDATE tickets SET subject = 'Renamed' WHERE id = 1")
			f.poll(f.conn.SystemAID)
			var lost atomic.Bool
			f.setFault(func(system, op string) error {
				if system == "engineering" && op == "after-update" && lost.CompareAndSwap(false, true) {
					return fmt.Errorf("%w: answer lost", connectors.ErrUnavailable)
				}
				return nil
			})
			if _, err := f.eng.WorkOnce(f.ctx); err != nil {
				t.Fatal(err)
			}
			f.setFault(func(string, string) error { return nil })
			if got := f.one(f.eng2, "SELECT title FROM issues WHERE id = ?", issue); !lost.Load() || got != "Renamed" {
				t.Fatalf("issue title %q (answer lost: %v): the first attempt should have written it", got, lost.Load())
			}
			f.advance(2 * time.Minute) // the retry is due
			if n, err := f.eng.WorkOnce(f.ctx); err != nil || n != 1 {
				t.Fatalf("retry: %d applied, %v", n, err)
			}
			f.poll(f.conn.SystemBID)
			tw := f.twinOf(issue)
			if tw.BHash == "" {
				t.Error("the poll after the retry took Duplex's write for a person's change (the echo reference was cleared)")
			}
			f.settle()
			if got := f.fromEngineering(); got != before {
				t.Errorf("%d events from engineering, want %d", got, before)
			}
		})
	}
}

// twinOf reads the twin of an engineering issue.
func (f *fixture) twinOf(issue string) store.Twin {
	f.t.Helper()
	m, err := f.st.TwinsOf(f.ctx, f.conn.ID, store.SideB, []string{issue})
	if err != nil || len(m) != 1 {
		f.t.Fatalf("twin of issue %s: %v (%d)", issue, err, len(m))
	}
	return m[issue]
}
