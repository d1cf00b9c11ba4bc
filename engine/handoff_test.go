package engine_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine"
)

// New tickets' events go from the poll straight to the worker, claimed as
// they are queued (handoff.go): none is taken by a claim round, each is
// applied once. A later change of one of them (its twin exists) is queued
// and claimed as before, after its twin's first event.
func TestIntakeHandsNewEventsToTheWorker(t *testing.T) {
	items := &itemStore{items: map[string]*item{}}
	srv := httptest.NewServer(items)
	defer srv.Close()
	st, support := slowTargetFixture(t, 0, 0)
	eng, stop := runEngine(t, st, slowTargetRegistry(srv.URL), engine.Options{})
	defer stop()

	const tickets = 5
	addTodev(t, support, tickets)
	items.waitFor(t, tickets)
	if h, c := eng.Handed(), eng.Claimed(); h != tickets || c != 0 {
		t.Fatalf("new tickets: %d events handed over, %d claimed; want %d and 0", h, c, tickets)
	}
	if _, err := support.Exec(`UPDATE tickets SET subject = 'changed' WHERE subject = 't0'`); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); !items.hasTitle("changed"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the change of an existing ticket did not arrive within 20 s")
		}
	}
	// The change is claimed: it is not a new twin's.
	if h, c := eng.Handed(), eng.Claimed(); h != tickets || c < 1 {
		t.Fatalf("after a change: %d handed over, %d claimed; want %d and at least 1", h, c, tickets)
	}
	items.mu.Lock()
	n := len(items.items)
	items.mu.Unlock()
	if n != tickets {
		t.Fatalf("%d items, want %d", n, tickets)
	}
	var out, left int64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := st.DB().Raw(`SELECT COUNT(*) FROM sync_events WHERE claimed_by IS NOT NULL OR status <> 'done'`).Scan(&left).Error; err != nil {
			t.Fatal(err)
		}
		if left == 0 || time.Now().After(deadline) {
			break
		}
	}
	if left != 0 {
		t.Fatalf("%d events claimed or not done 10 s after the sync", left)
	}
	if err := st.DB().Raw(`SELECT COUNT(*) FROM sync_events WHERE direction = 'a_to_b'`).Scan(&out).Error; err != nil {
		t.Fatal(err)
	}
	if out != tickets+1 {
		t.Fatalf("%d events from the desk, want %d", out, tickets+1)
	}
	// Nobody changed an item: an event the other way is Duplex's own
	// write taken for a person's change (a poll that read an item before
	// the write and was taken in after it was recorded).
	if err := st.DB().Raw(`SELECT COUNT(*) FROM sync_events WHERE direction = 'b_to_a'`).Scan(&out).Error; err != nil {
		t.Fatal(err)
	}
	if out != 0 {
		t.Fatalf("%d events from the tracker, want 0: Duplex's write came back", out)
	}
}
