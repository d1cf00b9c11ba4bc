package engine

import (
	"cmp"
	"slices"
	"sync"

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
// claimed for a lease (Options.Lease), and one that waited past it could be
// claimed by another process too. Rows of a system the loop is busy with
// wait here for it, like a system's claimed deliveries.
type handedDeliveries struct {
	mu       sync.Mutex
	open     bool                              // the hook loop is running
	slots    int                               // reserved or queued
	bySystem map[int64][]store.WebhookDelivery // queued, oldest first
}

// handedMax bounds the deliveries reserved or queued: two pages.
const handedMax = 2 * hookPage

// setOpen opens the queue when the hook loop starts and closes it when the
// loop ends; it returns what was queued (claimed rows nobody will take: the
// engine releases its claims when it stops).
func (h *handedDeliveries) setOpen(open bool) []store.WebhookDelivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open = open
	var left []store.WebhookDelivery
	if !open {
		for _, ds := range h.bySystem {
			left = append(left, ds...)
		}
		h.bySystem = nil
	}
	return left
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
func (h *handedDeliveries) put(d store.WebhookDelivery) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.open {
		h.slots--
		return false
	}
	if h.bySystem == nil {
		h.bySystem = map[int64][]store.WebhookDelivery{}
	}
	h.bySystem[d.SystemID] = append(h.bySystem[d.SystemID], d)
	return true
}

// take removes up to hookPage queued deliveries of each system for which
// idle is true, and returns them by system, systems in order of their
// oldest delivery (as bySystem orders claimed ones).
func (h *handedDeliveries) take(idle func(int64) bool) (map[int64][]store.WebhookDelivery, []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var groups map[int64][]store.WebhookDelivery
	var order []int64
	for sys, ds := range h.bySystem {
		if !idle(sys) {
			continue
		}
		n := min(len(ds), hookPage)
		if groups == nil {
			groups = map[int64][]store.WebhookDelivery{}
		}
		groups[sys] = ds[:n:n]
		if n == len(ds) {
			delete(h.bySystem, sys)
		} else {
			h.bySystem[sys] = ds[n:]
		}
		h.slots -= n
		order = append(order, sys)
	}
	slices.SortFunc(order, func(a, b int64) int { return cmp.Compare(groups[a][0].ID, groups[b][0].ID) })
	return groups, order
}
