package engine

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

// The worker of a running engine (Run) is a flow, not a loop of WorkOnce:
// a WorkOnce batch ends when its slowest event does, so one event copying
// 120 notes to a slow system held every other connection's events behind it
// (an unrelated escalation waited 146 s instead of 2). The flow keeps
// claiming while events run:
//
//   - each connection has a lane per direction, of at most InFlight events
//     applied at once (laneWidth), so a slow system fills only its own lane,
//     and a slow target is written to by many events at once, not Workers:
//     an event mostly waits for the target, the store and the sandbox. A
//     target that takes writes in batches gets a lane as wide as a batch;
//   - a claim leaves out the events in hand, and so (the store takes only a
//     twin's earliest queued event) their twins' later events: per-twin
//     order holds; and it leaves out connections that already hold
//     BatchSize claimed events (or twice their widest lane, holdMax), so
//     one busy connection cannot take all;
//   - finished events are recorded together, in one transaction, when
//     nothing else runs, when BatchSize are waiting, or at the latest
//     flushAfter after the first finished: batching is kept for a fast
//     stream, and a slow event delays no other event's record.
type flow struct {
	e       *Engine
	held    map[int64]*flowItem // claimed and not yet recorded, by event id
	mu      sync.Mutex
	ids     []int64 // held's keys, for the lease renewal (under mu)
	lanes   map[laneKey]*lane
	done    chan flowDone
	running int
	pending []flowDone // finished, not yet recorded
	first   time.Time  // when the oldest of pending finished

	starting []*flowItem   // taken from their lanes to start, twins not read yet
	reading  bool          // a read of started events' twins runs (begin)
	read     chan struct{} // its end
}

// flushAfter bounds how long a finished event waits for others to be
// recorded with it.
const flushAfter = 100 * time.Millisecond

type flowItem struct {
	ev    *store.SyncEvent
	plans *batchPlans
}

// laneKey names a lane: a connection's events of one direction, whose
// target is one system.
type laneKey struct {
	conn int64
	dir  store.Direction
}

func laneOf(ev *store.SyncEvent) laneKey { return laneKey{ev.ConnectionID, ev.Direction} }

type lane struct {
	waiting []*flowItem // claimed, not started, oldest first
	running int
	width   int // events of the lane run at once at most (laneWidth)
}

type flowDone struct {
	it *flowItem
	r  result
	ok bool // false: interrupted by shutdown, stays queued as it was
}

// runFlow is the worker loop. ctx ends the taking of new work; work (which
// outlives ctx by up to Drain, see workLoop) is what started events run
// under.
func (e *Engine) runFlow(ctx, work context.Context) {
	f := &flow{e: e, held: map[int64]*flowItem{}, lanes: map[laneKey]*lane{}, done: make(chan flowDone), read: make(chan struct{}, 1)}
	// Claims that run long (a slow system) are kept alive, all in one.
	stopRenew := make(chan struct{})
	var renewing sync.WaitGroup
	renewing.Add(1)
	go func() {
		defer renewing.Done()
		e.renewEvents(context.WithoutCancel(ctx), stopRenew, f.heldIDs)
	}()
	e.hand.start(e.opts.MaxHeld, e.opts.InFlight)
	defer func() {
		e.hand.stop() // what it still delivers keeps its claim until releaseClaims
		close(stopRenew)
		renewing.Wait()
		f.giveBack()
	}()
	const idle = time.Second // also the bound on how late a retry runs
	tick := time.NewTicker(idle)
	defer tick.Stop()
	stop := ctx.Done()
	handed := e.hand.signal
	wantClaim := true
	var pauseUntil time.Time // after an error
	for {
		stopping := ctx.Err() != nil
		if !stopping && wantClaim && !time.Now().Before(pauseUntil) {
			full, err := f.claim(work)
			if err != nil {
				if ctx.Err() == nil {
					e.log.Error("worker", "err", err)
				}
				pauseUntil = time.Now().Add(5 * time.Second)
			}
			wantClaim = full // more may be due right away
		}
		if !stopping {
			f.start(work)
		}
		if len(f.pending) > 0 && (f.running == 0 || len(f.pending) >= e.opts.BatchSize || time.Since(f.first) >= flushAfter) {
			if err := f.record(work); err != nil {
				e.log.Error("worker", "err", err)
				pauseUntil = time.Now().Add(5 * time.Second)
			}
			wantClaim = true // lanes have room: claim and start before waiting
			continue
		}
		if stopping && f.running == 0 {
			return
		}
		if wantClaim && !stopping && !time.Now().Before(pauseUntil) {
			continue
		}
		flush, ft := f.flushTimer()
		select {
		case d := <-f.done:
			f.finish(d)
		case <-f.read:
			f.reading = false
			f.launch(work) // what was started meanwhile, stopping or not
		case <-flush:
		case <-e.wake:
			wantClaim = true
		case <-handed:
			f.takeHanded(work)
		case <-tick.C:
			wantClaim = true
		case <-stop:
			stop = nil // from now on only finishing what runs
			handed = nil
			e.hand.stop() // intake queues new events unclaimed again
		}
		if ft != nil {
			ft.Stop()
		}
	}
}

// flushTimer fires when the finished events waiting are due for their
// record; nil when none wait.
func (f *flow) flushTimer() (<-chan time.Time, *time.Timer) {
	if len(f.pending) == 0 {
		return nil, nil
	}
	ft := time.NewTimer(flushAfter - time.Since(f.first))
	return ft.C, ft
}

func (f *flow) heldIDs() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ids
}

func (f *flow) setHeld() {
	ids := slices.Collect(maps.Keys(f.held))
	f.mu.Lock()
	f.ids = ids
	f.mu.Unlock()
	f.publish()
}

// publish tells the hand-over how full the lanes are: per connection, the
// events in its lanes (running and waiting) against their widths.
func (f *flow) publish() {
	inLane, widths := map[int64]int{}, map[int64]int{}
	for k, l := range f.lanes {
		inLane[k.conn] += l.running + len(l.waiting)
		widths[k.conn] += l.width
	}
	f.e.hand.setHeld(inLane, widths, len(f.held))
}

// takeHanded takes in the events intake handed over (handoff.go): claimed
// already, each its twin's first.
func (f *flow) takeHanded(ctx context.Context) {
	evs := f.e.hand.take()
	if len(evs) == 0 {
		return
	}
	plans := &batchPlans{m: map[int64]*plan{}}
	n := 0
	for i := range evs {
		if f.held[evs[i].ID] != nil {
			// A claim round of this worker took it over first: its lease
			// lapsed while it waited here (the process stalled longer than
			// the lease). In hand already; added twice it would be applied
			// and recorded twice (the cluster run saw 8 such events).
			continue
		}
		f.add(ctx, &flowItem{ev: &evs[i], plans: plans})
		n++
	}
	f.e.claims.handed.Add(int64(n))
	f.setHeld()
}

// add puts a claimed event in its lane's queue.
func (f *flow) add(ctx context.Context, it *flowItem) {
	f.held[it.ev.ID] = it
	k := laneOf(it.ev)
	l := f.lanes[k]
	if l == nil {
		l = &lane{width: f.e.laneWidth(ctx, it.plans, k)}
		f.lanes[k] = l
	}
	l.waiting = append(l.waiting, it)
}

// maxHeldLimit bounds Options.MaxHeld well under the parameters one
// statement takes (SQLite: 32,766): a claim names every held event.
const maxHeldLimit = 16384

// claim takes due events the lanes do not already hold, at most as many as
// MaxHeld leaves room for. full: the claim took as many as it asked for.
func (f *flow) claim(ctx context.Context) (full bool, err error) {
	limit := min(f.e.opts.BatchSize, f.e.opts.MaxHeld-len(f.held))
	if limit <= 0 {
		return false, nil // a recorded batch makes room, and claims again
	}
	busy := store.Busy{Events: slices.Collect(maps.Keys(f.held))}
	perConn := map[int64]int{}
	for _, it := range f.held {
		perConn[it.ev.ConnectionID]++
	}
	most := f.holdMax()
	for c, k := range perConn {
		if k >= max(most[c], f.e.opts.BatchSize) { // a connection without a lane now: BatchSize
			busy.Connections = append(busy.Connections, c)
		}
	}
	due, err := f.e.takeEvents(ctx, limit, busy)
	if err != nil || len(due) == 0 {
		return false, err
	}
	plans := &batchPlans{m: map[int64]*plan{}}
	for i := range due {
		f.add(ctx, &flowItem{ev: &due[i], plans: plans})
	}
	f.setHeld()
	return len(due) == limit, nil
}

// holdMax is how many claimed events each connection holds at most:
// BatchSize, or twice its widest lane (so that lane is refilled while it
// runs). Either way one busy connection cannot take every claim.
func (f *flow) holdMax() map[int64]int {
	m := make(map[int64]int, len(f.lanes))
	for k, l := range f.lanes {
		m[k.conn] = max(m[k.conn], f.e.opts.BatchSize, 2*l.width)
	}
	return m
}

// laneWidth is how many events of a connection and direction run at once:
// InFlight, or writeBatchMax when the target takes writes in batches (its
// events' writes reach it as one WriteMany, not as concurrent requests, and
// a wider lane fills the batches, the sandbox's messages and the store's
// group commits). When one of its systems has a rate limit, no more than
// its burst (but Workers at least): past what the system takes at once,
// more events in flight would only hold claims while they wait for its
// tokens.
func (e *Engine) laneWidth(ctx context.Context, plans *batchPlans, k laneKey) int {
	p, err := plans.get(ctx, e, k.conn)
	if err != nil {
		return e.opts.Workers // the events fail on their own; no reason to widen
	}
	w, limited, batches := e.opts.InFlight, false, false
	target := p.conn.SystemID(k.dir.Source().Other())
	for _, id := range []int64{p.conn.SystemAID, p.conn.SystemBID} {
		st, err := e.system(ctx, id)
		if err != nil {
			return e.opts.Workers
		}
		if st.sys.RatePerSecond > 0 {
			w, limited = min(w, max(e.opts.Workers, st.sys.RateBurst)), true
		}
		if _, ok := st.conn.(connectors.BatchWriter); ok && id == target {
			batches = true
		}
	}
	if batches && !limited {
		w = max(w, writeBatchMax)
	}
	return w
}

// start begins the waiting events that have room in their lane. Their twins
// are read now, in one query, not when claimed: a lane may hold an event a
// while, and its twin may change meanwhile (a relink). The read runs beside
// the loop, one at a time: events started while it runs wait for the next,
// so a stream of events finishing one by one (each freeing one place) costs
// a read per group, not per event (on PostgreSQL a round trip each, most of
// the store's statements per change before).
func (f *flow) start(ctx context.Context) {
	for _, l := range f.lanes {
		for len(l.waiting) > 0 && l.running < l.width {
			f.starting = append(f.starting, l.waiting[0])
			l.waiting = l.waiting[1:]
			l.running++
			f.running++
		}
	}
	f.launch(ctx)
}

// launch begins the started events unless a read for others runs.
func (f *flow) launch(ctx context.Context) {
	if len(f.starting) == 0 || f.reading {
		return
	}
	next := f.starting
	f.starting = nil
	f.reading = true
	go func() {
		f.begin(ctx, next)
		f.read <- struct{}{}
	}()
}

// begin reads the twins of next and their targets and runs each event.
func (f *flow) begin(ctx context.Context, next []*flowItem) {
	ids := make([]int64, len(next))
	for i, it := range next {
		ids[i] = it.ev.TwinID
	}
	twins, err := f.e.st.TwinsByID(ctx, ids)
	if err != nil && ctx.Err() == nil {
		f.e.log.Error("worker: read twins", "err", err)
	}
	var reads []*targetRead
	if err == nil {
		// Started together, their targets are read together, per target
		// system (batchread.go). The plans are the batch's: each item
		// carries the ones of its claim; one of them serves the read.
		evs := make([]*store.SyncEvent, len(next))
		for i, it := range next {
			evs[i] = it.ev
		}
		reads = f.e.readTargets(ctx, next[0].plans, twins, evs)
	}
	for i, it := range next {
		go func(i int, it *flowItem) {
			if err != nil { // not applied: stays queued as it was
				f.done <- flowDone{it: it}
				return
			}
			r, ok := f.e.process(reads[i].wait(ctx), it.plans, twins[it.ev.TwinID], it.ev)
			f.done <- flowDone{it: it, r: r, ok: ok}
		}(i, it)
	}
}

// finish takes one finished event in.
func (f *flow) finish(d flowDone) {
	f.running--
	f.lanes[laneOf(d.it.ev)].running--
	f.e.hand.freed(d.it.ev.ConnectionID) // a place in the lane is free for a hand-over
	if len(f.pending) == 0 {
		f.first = time.Now()
	}
	f.pending = append(f.pending, d)
}

// record saves the finished events in one transaction, even when ctx was
// cancelled meanwhile: their writes already reached the other system.
func (f *flow) record(ctx context.Context) error {
	results := make([]result, 0, len(f.pending))
	for _, d := range f.pending {
		if d.ok {
			results = append(results, d.r)
		}
	}
	err := f.e.record(context.WithoutCancel(ctx), results)
	// Recorded, or (on an error) left in the store as they were, to be
	// claimed again: either way no longer in hand.
	for _, d := range f.pending {
		f.drop(d.it)
	}
	f.pending = f.pending[:0]
	f.setHeld()
	return err
}

func (f *flow) drop(it *flowItem) {
	delete(f.held, it.ev.ID)
	if l := f.lanes[laneOf(it.ev)]; l != nil && l.running == 0 && len(l.waiting) == 0 {
		delete(f.lanes, laneOf(it.ev))
	}
	f.e.releaseEvents(it.ev.ID)
}

// giveBack lets go of the events taken but not started (stopping).
func (f *flow) giveBack() {
	for _, l := range f.lanes {
		waiting := l.waiting
		l.waiting = nil
		for _, it := range waiting {
			f.drop(it)
		}
	}
	f.setHeld()
}
