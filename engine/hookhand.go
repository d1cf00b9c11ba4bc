package engine

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/duplexsync/duplex/engine/store"
)

// handedDeliveries carries the webhook deliveries this process received to
// its own hook loop in memory. Each row went into the store already claimed
// by this process (store.RecordDeliveryClaimed), so the loop takes it in
// without a claim: no write transaction and no read between the answer to
// the sender and the delivery's intake. What is not handed (the loop is not
// running, the queue is full, the row came back without its id) is pending
// in the store, unclaimed, and the loop claims it as before.
//
// The bound keeps the memory small and the wait short: a handed row is
// claimed for a lease (Options.Lease). One that waited here past half of it
// is not taken from memory: it is released at the loop's next claim and
// claimed from the store like any other, so its claim cannot lapse while
// it waits here and another process take it too. Rows of a system the loop
// is busy with wait here for it, like a system's claimed deliveries.
type handedDeliveries struct {
	mu       sync.Mutex
	open     bool               // the hook loop is running
	slots    int                // reserved or queued
	bySystem map[int64][]handed // queued, oldest first
}

type handed struct {
	d        store.WebhookDelivery
	takeFrom time.Time // taken from memory until then (half of its lease)
}

// handedMax bounds the deliveries reserved or queued: two pages.
const handedMax = 2 * hookPage

// setOpen opens the queue when the hook loop starts and closes it when the
// loop ends, forgetting what was queued (the engine releases its claims when
// it stops: they are pending for the next run or another process).
func (h *handedDeliveries) setOpen(open bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open = open
	if !open {
		h.bySystem = nil
		h.slots = 0
	}
}

// reserve takes a slot for a delivery about to be recorded, or reports that
// it must go in unclaimed.
func (h *handedDeliveries) reserve() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.open || h.slots >= handedMax {
		return false
	}
	h.slots++
	return true
}

// unreserve gives back a slot that was not used.
func (h *handedDeliveries) unreserve() {
	h.mu.Lock()
	h.slots--
	h.mu.Unlock()
}

// put queues a delivery recorded in a reserved slot. It reports false when
// the loop stopped meanwhile (the row stays claimed until the engine
// releases its claims, or its lease lapses).
func (h *handedDeliveries) put(d store.WebhookDelivery, takeBy time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.open {
		h.slots--
		return false
	}
	if h.bySystem == nil {
		h.bySystem = map[int64][]handed{}
	}
	h.bySystem[d.SystemID] = append(h.bySystem[d.SystemID], handed{d: d, takeFrom: takeBy})
	return true
}

// take removes up to hookPage queued deliveries of each system for which
// idle is true, and returns them by system, systems in order of their
// oldest delivery (as bySystem orders claimed ones). Those it finds past
// their time in memory it removes and returns as stale.
func (h *handedDeliveries) take(idle func(int64) bool, now time.Time) (groups map[int64][]store.WebhookDelivery, order []int64, stale []store.WebhookDelivery) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sys, q := range h.bySystem {
		if !idle(sys) {
			continue
		}
		n := min(len(q), hookPage)
		var ds []store.WebhookDelivery
		for _, x := range q[:n] {
			if now.After(x.takeFrom) {
				stale = append(stale, x.d)
			} else {
				ds = append(ds, x.d)
			}
		}
		if n == len(q) {
			delete(h.bySystem, sys)
		} else {
			h.bySystem[sys] = q[n:]
		}
		h.slots -= n
		if len(ds) == 0 {
			continue
		}
		if groups == nil {
			groups = map[int64][]store.WebhookDelivery{}
		}
		groups[sys] = ds
		order = append(order, sys)
	}
	slices.SortFunc(order, func(a, b int64) int { return cmp.Compare(groups[a][0].ID, groups[b][0].ID) })
	return groups, order, stale
}
