package engine

import (
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
)

// The handed queue: closed until the loop runs, bounded, a busy system's
// rows wait, systems come oldest first, and a row past its time in memory
// comes back as stale (to be claimed from the store) instead of taken.
func TestHandedDeliveries(t *testing.T) {
	var h handedDeliveries
	if h.reserve() {
		t.Fatal("reserved while the loop is not running")
	}
	h.setOpen(true)
	t0 := time.Now()
	put := func(id, sys int64, takeBy time.Time) {
		t.Helper()
		if !h.reserve() || !h.put(store.WebhookDelivery{ID: id, SystemID: sys}, takeBy) {
			t.Fatalf("delivery %d not queued", id)
		}
	}
	put(5, 2, t0.Add(time.Minute))
	put(3, 1, t0.Add(time.Minute))
	put(4, 1, t0.Add(time.Second))
	put(6, 1, t0.Add(time.Minute))
	busy := func(sys int64) bool { return sys != 1 }
	groups, order, stale := h.take(busy, t0)
	if len(order) != 1 || order[0] != 2 || len(groups[2]) != 1 || groups[2][0].ID != 5 || len(stale) != 0 {
		t.Fatalf("system 1 busy: %v %v %v; want only system 2's delivery 5", groups, order, stale)
	}
	groups, order, stale = h.take(func(int64) bool { return true }, t0.Add(2*time.Second))
	if len(order) != 1 || len(groups[1]) != 2 || groups[1][0].ID != 3 || groups[1][1].ID != 6 || len(stale) != 1 || stale[0].ID != 4 {
		t.Fatalf("after 2 s: %v %v %v; want 3 and 6 taken, 4 stale", groups, order, stale)
	}
	if h.slots != 0 {
		t.Fatalf("%d slots held with nothing queued", h.slots)
	}
	for i := range handedMax {
		put(int64(100+i), 3, t0.Add(time.Minute))
	}
	if h.reserve() {
		t.Fatalf("reserved past %d", handedMax)
	}
	groups, _, _ = h.take(func(int64) bool { return true }, t0)
	if len(groups[3]) != hookPage {
		t.Fatalf("took %d of one system at once, want a page (%d)", len(groups[3]), hookPage)
	}
	if !h.reserve() {
		t.Fatal("no slot after a page was taken")
	}
	h.unreserve() // a slot reserved for a duplicate is given back
	if h.slots != handedMax-hookPage {
		t.Fatalf("slots %d, want %d", h.slots, handedMax-hookPage)
	}
	h.setOpen(false)
	if h.reserve() || h.slots != 0 {
		t.Fatal("reserved after the loop stopped")
	}
}
