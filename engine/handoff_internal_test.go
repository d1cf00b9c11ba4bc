package engine

import (
	"testing"

	"github.com/duplexsync/duplex/engine/store"
)

// The hand-over takes an event only while the worker runs and has room:
// under MaxHeld in all (held and reserved), and a free place in its
// connection's lanes (InFlight for a connection without a lane yet); a
// transaction that fails gives its room back.
func TestHandoffRoom(t *testing.T) {
	h := newHandoff()
	ok := func(_ int, ok bool) bool { return ok }
	if ok(h.reserve(1)) {
		t.Fatal("reserved before the worker started")
	}
	h.start(4, 2)
	gen := h.gen
	for i, want := range []bool{true, true, false} { // connection 1: 2 without a lane
		if got := ok(h.reserve(1)); got != want {
			t.Fatalf("connection 1, reservation %d: %v, want %v", i+1, got, want)
		}
	}
	h.setHeld(map[int64]int{2: 1}, map[int64]int{2: 3}, 1) // connection 2: 1 in its lane of 3
	if !ok(h.reserve(2)) {
		t.Fatal("connection 2 refused with 1 of 3 held")
	}
	if ok(h.reserve(3)) {
		t.Fatal("reserved past MaxHeld: 1 held and 3 reserved of 4")
	}
	h.unreserve(gen, []int64{1}) // a transaction that failed
	if !ok(h.reserve(3)) {
		t.Fatal("the room given back was not taken")
	}
	h.deliver(gen, []store.SyncEvent{{ID: 7, ConnectionID: 1}, {ID: 8, ConnectionID: 2}, {ID: 9, ConnectionID: 3}})
	select {
	case <-h.signal:
	default:
		t.Fatal("deliver did not signal the worker")
	}
	if got := h.take(); len(got) != 3 || h.nres != 0 || h.held != 4 || h.heldOf[1] != 1 || h.heldOf[2] != 2 {
		t.Fatalf("take: %d events, %d reserved, %d held (%v)", len(got), h.nres, h.held, h.heldOf)
	}
	if ok(h.reserve(4)) {
		t.Fatal("reserved with MaxHeld held")
	}
	h.setHeld(map[int64]int{}, map[int64]int{}, 0) // recorded
	if !ok(h.reserve(4)) {
		t.Fatal("refused with nothing held")
	}
	h.stop()
	if ok(h.reserve(4)) {
		t.Fatal("reserved after the worker stopped")
	}
	// What was reserved before the stop is not delivered to the next run:
	// its events' claims are released when the process releases its own.
	h.start(4, 2)
	h.deliver(gen, []store.SyncEvent{{ID: 10, ConnectionID: 4}})
	if got := h.take(); len(got) != 0 || h.nres != 0 {
		t.Fatalf("the next run took %d events of the last one (%d reserved)", len(got), h.nres)
	}
}

// An event handed over whose lease lapsed before the worker took it (the
// process stalled) may have been taken over by the worker's own claim round
// meanwhile: the worker holds it once, not twice.
func TestHandedEventHeldAlreadyIsTakenOnce(t *testing.T) {
	e := &Engine{hand: newHandoff()}
	e.hand.start(4, 2)
	held := &flowItem{ev: &store.SyncEvent{ID: 7, ConnectionID: 1}}
	f := &flow{e: e, held: map[int64]*flowItem{7: held}, lanes: map[laneKey]*lane{laneOf(held.ev): {waiting: []*flowItem{held}, width: 2}}}
	if _, ok := e.hand.reserve(1); !ok {
		t.Fatal("no room for the hand-over")
	}
	e.hand.deliver(e.hand.gen, []store.SyncEvent{{ID: 7, ConnectionID: 1}})
	f.takeHanded(t.Context())
	if l := f.lanes[laneOf(held.ev)]; len(l.waiting) != 1 || f.held[7] != held || e.Handed() != 0 {
		t.Fatalf("after the hand-over of an event held already: %d waiting in its lane, held as the claimed one: %v, %d handed",
			len(l.waiting), f.held[7] == held, e.Handed())
	}
}
