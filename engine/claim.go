package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexsync/duplex/engine/store"
)

// Several processes may share one PostgreSQL store. Each takes work through
// claims (store.Claim): its process id and a lease on the rows it works. The
// worker claims due events (FOR UPDATE SKIP LOCKED, one per twin, a twin's
// earliest only), the hook loop pending deliveries, the backfill loop running
// jobs, and each system's poller runs only in the process holding its lease.
// A finished batch's claims are released with the next claim (no extra
// transaction); a stopping process releases all of its own; a killed
// process's claims lapse with their lease and are taken over.

// NewProcessID names a process: host, pid and a random part (a restarted
// process, or a container reusing pid 1, is a different claimer).
func NewProcessID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Handed counts the events intake handed straight to this process's
// worker (handoff.go); Claimed those the worker took by a claim round.
func (e *Engine) Handed() int64  { return e.claims.handed.Load() }
func (e *Engine) Claimed() int64 { return e.claims.claimed.Load() }

// ClaimsLost counts the events whose claim another process took over
// before this one recorded them (a stall past the lease): this process's
// result was dropped and the other applies them again.
func (e *Engine) ClaimsLost() int64 { return e.claims.lost.Load() }

// ProcessID is the id this engine claims work under.
func (e *Engine) ProcessID() string { return e.opts.ProcessID }

// claimState is what the engine remembers between claim rounds.
type claimState struct {
	mu         sync.Mutex
	events     []int64 // claimed events whose batch is recorded: released with the next claim
	deliveries []int64 // the same for webhook deliveries

	takeovers atomic.Int64 // events and pollers taken from a lapsed holder
	claimed   atomic.Int64 // events the worker took by a claim round
	handed    atomic.Int64 // events intake handed to the worker (handoff.go)
	lost      atomic.Int64 // events of a batch taken over by another process before the batch was recorded
}

// Takeovers counts the claims this engine took over from processes whose
// lease lapsed (events, and pollers).
func (e *Engine) Takeovers() int64 { return e.claims.takeovers.Load() }

func (e *Engine) claim() store.Claim {
	now := e.opts.Now()
	return store.Claim{By: e.opts.ProcessID, Now: now, Until: now.Add(e.opts.Lease)}
}

// claimEvents takes the worker's next batch. done must be called once the
// batch is recorded (or abandoned): it stops renewing the batch's lease and
// lets the next claim release it.
func (e *Engine) claimEvents(ctx context.Context) ([]store.SyncEvent, func(), error) {
	due, err := e.takeEvents(ctx, e.opts.BatchSize, store.Busy{})
	if err != nil || len(due) == 0 {
		return nil, func() {}, err
	}
	ids := make([]int64, len(due))
	for i := range due {
		ids[i] = due[i].ID
	}
	// A batch that runs long (a slow system) keeps its claim alive.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.renewEvents(context.WithoutCancel(ctx), stop, func() []int64 { return ids })
	}()
	return due, func() {
		close(stop)
		wg.Wait()
		e.claims.mu.Lock()
		e.claims.events = append(e.claims.events, ids...)
		e.claims.mu.Unlock()
	}, nil
}

// takeEvents claims up to limit due events but busy's, releasing the
// recorded ones of earlier rounds.
func (e *Engine) takeEvents(ctx context.Context, limit int, busy store.Busy) ([]store.SyncEvent, error) {
	e.claims.mu.Lock()
	release := e.claims.events
	e.claims.events = nil
	e.claims.mu.Unlock()
	due, taken, err := e.st.ClaimEventsExcept(ctx, e.claim(), limit, release, busy)
	if err != nil {
		e.claims.mu.Lock()
		e.claims.events = append(e.claims.events, release...) // try again next round
		e.claims.mu.Unlock()
		return nil, err
	}
	e.claims.claimed.Add(int64(len(due)))
	if taken > 0 {
		e.claims.takeovers.Add(int64(taken))
		e.log.Info("took over events whose claim lapsed", "process", e.opts.ProcessID, "events", taken)
	}
	return due, nil
}

// releaseEvents lets the next claim release events that are recorded.
func (e *Engine) releaseEvents(ids ...int64) {
	e.claims.mu.Lock()
	e.claims.events = append(e.claims.events, ids...)
	e.claims.mu.Unlock()
}

// renewEvents keeps a batch's claims alive until stop is closed: every
// third of the lease, well before it lapses. A renewal that fails (a lost
// race, a connection dropped) is tried again at once and then every tenth
// of the lease, not a third later: by then the lease could have lapsed and
// another process taken over events this one is still applying.
func (e *Engine) renewEvents(ctx context.Context, stop <-chan struct{}, held func() []int64) {
	every := e.opts.Lease / 3
	t := time.NewTimer(every)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ids := held()
		err := e.st.RenewEvents(ctx, e.claim(), ids)
		if err != nil && store.Retryable(err) {
			err = e.st.RenewEvents(ctx, e.claim(), ids) // lost a race: at once
		}
		next := every
		if err != nil {
			failures++
			e.log.Warn("renew event claims", "process", e.opts.ProcessID, "events", len(ids), "failures", failures, "err", err)
			next = e.opts.Lease / 10
		} else {
			failures = 0
		}
		t.Reset(next)
	}
}

// claimDeliveries takes the hook loop's next page of deliveries, passing
// those of the systems in busy. Each must be handed to releaseDeliveries
// once processed (done, or waiting for its retry like any other): the next
// claim releases it then, not while it is still being worked on.
func (e *Engine) claimDeliveries(ctx context.Context, busy []int64) ([]store.WebhookDelivery, error) {
	e.claims.mu.Lock()
	release := e.claims.deliveries
	e.claims.deliveries = nil
	e.claims.mu.Unlock()
	ds, err := e.st.ClaimDeliveriesExcept(ctx, e.claim(), hookPage, release, busy)
	if err != nil {
		e.releaseDeliveries(release) // try again next round
		return nil, err
	}
	return ds, nil
}

// releaseDeliveries lets the next claim release processed deliveries.
func (e *Engine) releaseDeliveries(ids []int64) {
	e.claims.mu.Lock()
	e.claims.deliveries = append(e.claims.deliveries, ids...)
	e.claims.mu.Unlock()
}

// pollLease keeps one system's poller lease: held reports whether this
// process may poll the system now. It renews the lease when a third of it
// has passed, and takes it when its holder let it lapse.
type pollLease struct {
	e        *Engine
	systemID int64
	held     bool
	renewAt  time.Time
}

func (l *pollLease) ok(ctx context.Context) bool {
	now := l.e.opts.Now()
	if l.held && now.Before(l.renewAt) {
		return true
	}
	c := l.e.claim()
	held, prev, err := l.e.st.LeasePoller(ctx, l.systemID, c)
	if err != nil {
		if ctx.Err() == nil {
			l.e.log.Warn("poller lease", "system", l.systemID, "err", err)
		}
		// Unsure: poll only while the lease last taken surely holds.
		l.held = l.held && now.Before(l.renewAt.Add(l.e.opts.Lease/3))
		return l.held
	}
	switch {
	case held && !l.held && prev != "":
		l.e.claims.takeovers.Add(1)
		l.e.log.Info("took over a system's poller whose lease lapsed", "process", l.e.opts.ProcessID, "system", l.systemID, "from", prev)
	case held && !l.held:
		l.e.log.Info("polling system", "process", l.e.opts.ProcessID, "system", l.systemID)
	case !held && l.held:
		l.e.log.Warn("another process took this system's poller; stopped polling it", "process", l.e.opts.ProcessID, "system", l.systemID)
	}
	l.held = held
	l.renewAt = now.Add(l.e.opts.Lease / 3)
	return held
}

// releaseClaims gives back everything this process holds, when it stops;
// loud says to log it even when nothing was held.
func (e *Engine) releaseClaims(loud bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := e.st.ReleaseClaims(ctx, e.opts.ProcessID)
	for try := 1; err != nil && store.Retryable(err) && try < 3 && ctx.Err() == nil; try++ {
		// Lost a lock race with another process's claim: nothing was
		// released, and the others would wait a whole lease for it.
		n, err = e.st.ReleaseClaims(ctx, e.opts.ProcessID)
	}
	if err != nil {
		e.log.Error("release claims", "process", e.opts.ProcessID, "err", err)
		return
	}
	e.claims.mu.Lock()
	e.claims.events, e.claims.deliveries = nil, nil
	e.claims.mu.Unlock()
	if loud || n > 0 {
		e.log.Info("released claims", "process", e.opts.ProcessID, "queued_events", n)
	}
}
