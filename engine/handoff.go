package engine

import (
	"sync"

	"github.com/duplexsync/duplex/engine/store"
)

// Hand-over: the events a poll or a webhook queues for new entities (a
// create on the other side, the common case of a stream of changes) go
// straight to this process's worker, claimed in the intake's own
// transaction (store.InsertEventsClaimed), instead of waiting in the queue
// for the worker's next claim round: no claim query for them, and no wait
// for the round (3–4 ms at the median under load, docs/performance.md).
//
// Only a new twin's first event is handed over: it is its twin's earliest
// event by construction, so per-twin order holds as a claim would keep it,
// and the claim it is born with keeps every other claim (this worker's next
// round, another process's) off it. An event is handed over only when its
// connection's lanes have a free place (and MaxHeld is not reached): it
// starts at once. Otherwise it waits in the queue as before, which is where
// a backlog belongs: claim rounds share the worker between connections,
// oldest first. (Handing over up to what a connection may hold, holdMax,
// cost about 5 % against a remote that answers after 20 ms: make
// bench-cluster.) A process killed between the commit and
// the hand-over leaves claims that lapse with their lease, as a killed
// worker's claims do (SQLite: cleared at start).
type handoff struct {
	mu       sync.Mutex
	open     bool
	limit    int // events held and reserved at most (MaxHeld)
	perConn  int // the width of a connection without a lane (InFlight)
	held     int
	heldOf   map[int64]int // per connection: events in its lanes, running or waiting
	capOf    map[int64]int // and the lanes' widths
	reserved map[int64]int // reserved by an intake, not yet taken
	nres     int
	ready    []store.SyncEvent // committed, for the worker to take
	signal   chan struct{}     // cap 1: ready has events
	gen      int               // counts the worker's runs: a reservation is for one
}

func newHandoff() *handoff {
	return &handoff{heldOf: map[int64]int{}, reserved: map[int64]int{}, signal: make(chan struct{}, 1)}
}

// start opens the hand-over for a running worker; stop closes it. What an
// intake delivers after that is dropped: those events keep their claim
// until the process releases its claims as it stops (or the lease lapses),
// and are then claimed like any other.
func (h *handoff) start(limit, perConn int) {
	h.mu.Lock()
	h.open, h.limit, h.perConn = true, limit, perConn
	h.held, h.heldOf, h.capOf = 0, map[int64]int{}, nil
	h.nres, h.reserved, h.ready = 0, map[int64]int{}, nil
	h.mu.Unlock()
}

func (h *handoff) stop() {
	h.mu.Lock()
	if h.open {
		h.open = false
		h.gen++
	}
	h.mu.Unlock()
}

// reserve takes room for one event of conn, if the worker has it, and
// reports the worker's run it is for.
func (h *handoff) reserve(conn int64) (int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	most, ok := h.capOf[conn]
	if !ok {
		most = h.perConn
	}
	if !h.open || h.held+h.nres >= h.limit || h.heldOf[conn]+h.reserved[conn] >= most {
		return h.gen, false
	}
	h.reserved[conn]++
	h.nres++
	return h.gen, true
}

// unreserve gives back the room of events that were not committed.
func (h *handoff) unreserve(gen int, conns []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if gen != h.gen || !h.open {
		return // that run's counts are gone
	}
	for _, c := range conns {
		h.unreserveLocked(c)
	}
}

func (h *handoff) unreserveLocked(c int64) {
	if h.reserved[c]--; h.reserved[c] <= 0 {
		delete(h.reserved, c)
	}
	h.nres--
}

// deliver passes committed events (each reserved for run gen) to the
// worker, unless it stopped meanwhile.
func (h *handoff) deliver(gen int, evs []store.SyncEvent) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	if gen != h.gen || !h.open {
		h.mu.Unlock()
		return
	}
	h.ready = append(h.ready, evs...)
	h.mu.Unlock()
	select {
	case h.signal <- struct{}{}:
	default:
	}
}

// running reports whether the worker's run gen still takes hand-overs.
func (h *handoff) running(gen int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.open && h.gen == gen
}

// take is the worker's: the events delivered since its last take. Their
// room stays counted, now as held (setHeld follows).
func (h *handoff) take() []store.SyncEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	evs := h.ready
	h.ready = nil
	for i := range evs {
		h.unreserveLocked(evs[i].ConnectionID)
		h.heldOf[evs[i].ConnectionID]++
		h.held++
	}
	return evs
}

// freed is the worker's: an event of conn left its lane (finished), so a
// place there is free for a hand-over before the next setHeld.
func (h *handoff) freed(conn int64) {
	h.mu.Lock()
	if h.heldOf[conn] > 0 {
		h.heldOf[conn]--
	}
	h.mu.Unlock()
}

// setHeld is the worker's: the events in each connection's lanes, the
// lanes' widths, and the events it holds in all.
func (h *handoff) setHeld(perConn, caps map[int64]int, total int) {
	h.mu.Lock()
	h.heldOf, h.capOf, h.held = perConn, caps, total
	h.mu.Unlock()
}

// handing is one intake transaction's side of the hand-over: the events it
// reserved room for and queued claimed. A transaction run again starts it
// again (reset); one that fails gives the room back (done).
type handing struct {
	e      *Engine
	claim  store.Claim
	gen    int               // the worker's run reserved in
	conns  []int64           // reserved, by connection
	evs    []store.SyncEvent // queued claimed, ids set at commit
	queued int               // events queued in all
}

// handingFor starts an intake transaction's hand-over. A nil handing (the
// backfill's) hands nothing over.
func (e *Engine) handingFor() *handing { return &handing{e: e, claim: e.claim()} }

func (g *handing) reserve(conn int64) bool {
	if g == nil {
		return false
	}
	gen, ok := g.e.hand.reserve(conn)
	if ok && len(g.conns) > 0 && gen != g.gen { // the worker ran again meanwhile
		g.e.hand.unreserve(gen, []int64{conn})
		return false
	}
	if !ok {
		return false
	}
	g.gen, g.conns = gen, append(g.conns, conn)
	return true
}

func (g *handing) reset() {
	if g == nil {
		return
	}
	g.e.hand.unreserve(g.gen, g.conns)
	g.conns, g.evs, g.queued = nil, nil, 0
}

// done ends the hand-over after the transaction: committed (err nil), its
// events go to the worker, which is woken to claim the others it queued;
// otherwise their room is given back.
func (g *handing) done(err error) {
	if err != nil {
		g.reset()
		return
	}
	g.e.hand.deliver(g.gen, g.evs)
	if g.queued > len(g.evs) || len(g.evs) > 0 && !g.e.hand.running(g.gen) {
		g.e.Wake()
	}
	g.conns, g.evs, g.queued = nil, nil, 0
}
