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
// round, another process's) off it. The worker takes an event only within
// its bounds (MaxHeld, and per connection what a claim round would let it
// hold: holdMax); a full worker leaves the events to the queue, unclaimed,
// as before. A process killed between the commit and
// the hand-over leaves claims that lapse with their lease, as a killed
// worker's claims do (SQLite: cleared at start).
type handoff struct {
	mu       sync.Mutex
	open     bool
	limit    int // events held and reserved at most (MaxHeld)
	perConn  int // per connection without a lane (BatchSize)
	held     int
	heldOf   map[int64]int // the worker's held events per connection
	capOf    map[int64]int // and how many it holds at most (holdMax)
	reserved map[int64]int // reserved by an intake, not yet taken
	nres     int
	ready    []store.SyncEvent // committed, for the worker to take
	signal   chan struct{}     // cap 1: ready has events
}

func newHandoff() *handoff {
	return &handoff{heldOf: map[int64]int{}, reserved: map[int64]int{}, signal: make(chan struct{}, 1)}
}

// start opens the hand-over for a running worker; stop closes it (what is
// ready and not taken then keeps its claim until the process releases its
// claims, as it stops).
func (h *handoff) start(limit, perConn int) {
	h.mu.Lock()
	h.open, h.limit, h.perConn = true, limit, perConn
	h.mu.Unlock()
}

func (h *handoff) stop() {
	h.mu.Lock()
	h.open = false
	h.mu.Unlock()
}

// reserve takes room for one event of conn, if the worker has it.
func (h *handoff) reserve(conn int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	most, ok := h.capOf[conn]
	if !ok {
		most = h.perConn
	}
	if !h.open || h.held+h.nres >= h.limit || h.heldOf[conn]+h.reserved[conn] >= most {
		return false
	}
	h.reserved[conn]++
	h.nres++
	return true
}

// unreserve gives back the room of events that were not committed.
func (h *handoff) unreserve(conns []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
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

// deliver passes committed events (each reserved) to the worker.
func (h *handoff) deliver(evs []store.SyncEvent) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	h.ready = append(h.ready, evs...)
	h.mu.Unlock()
	select {
	case h.signal <- struct{}{}:
	default:
	}
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

// setHeld is the worker's count of held events, per connection, and the
// most each of them holds (holdMax).
func (h *handoff) setHeld(perConn, caps map[int64]int, total int) {
	h.mu.Lock()
	h.heldOf, h.capOf, h.held = perConn, caps, total
	h.mu.Unlock()
}

// handing is one intake transaction's side of the hand-over: the events it
// reserved room for and queued claimed. A transaction run again starts it
// again (reset); one that fails gives the room back (abandon).
type handing struct {
	e      *Engine
	claim  store.Claim
	conns  []int64           // reserved, by connection
	evs    []store.SyncEvent // queued claimed, ids set at commit
	queued int               // events queued in all
}

// handingFor starts an intake transaction's hand-over. A nil handing (the
// backfill's) hands nothing over.
func (e *Engine) handingFor() *handing { return &handing{e: e, claim: e.claim()} }

func (g *handing) reserve(conn int64) bool {
	if g == nil || !g.e.hand.reserve(conn) {
		return false
	}
	g.conns = append(g.conns, conn)
	return true
}

func (g *handing) reset() {
	if g == nil {
		return
	}
	g.e.hand.unreserve(g.conns)
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
	g.e.hand.deliver(g.evs)
	if g.queued > len(g.evs) {
		g.e.Wake()
	}
	g.conns, g.evs, g.queued = nil, nil, 0
}
