package engine

import (
	"context"
	"sync"
	"time"
)

// refresh is how often Run lists the systems: new, deleted and changed
// systems (settings, secrets, limits, poll interval, wherever the change was
// made) are acted on within it.
const refresh = 2 * time.Second

// Run polls every system on its interval and works the queue until ctx ends.
// Systems added later are picked up within refresh, and so are changes to a
// system made by another process (refreshSystems); a connection's scripts
// and options are checked against its updated_at on every use (planFor). A
// failing system or connection is logged and retried, and never stops the
// others.
//
// Several processes may run on one PostgreSQL store: each takes events,
// deliveries and backfill jobs through claims and polls only the systems whose
// poller lease it holds (claim.go). When ctx ends Run stops claiming, lets the
// worker finish the batch it took (up to Options.Drain), and releases what it
// still holds, so the other processes go on with it at once.
func (e *Engine) Run(ctx context.Context) error {
	e.state.running.Store(true)
	defer e.state.running.Store(false)
	e.log.Info("engine started", "process", e.opts.ProcessID, "shared_store", e.st.Shared(), "lease", e.opts.Lease)
	if !e.st.Shared() {
		// One process per SQLite store: what an earlier run claimed is ours.
		if err := e.st.ClearClaims(ctx); err != nil {
			return err
		}
	}
	defer e.releaseClaims(true)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); e.workLoop(ctx) }()
	go func() { defer wg.Done(); e.backfillLoop(ctx) }()
	go func() { defer wg.Done(); e.hookLoop(ctx) }()

	type poller struct {
		cancel context.CancelFunc
		every  time.Duration
		done   chan struct{}
	}
	pollers := map[int64]poller{}
	t := time.NewTicker(refresh)
	defer t.Stop()
	for {
		systems, err := e.st.ListSystems(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Error("list systems", "err", err)
		}
		if err == nil {
			// Changes made elsewhere (another process's API, apply,
			// secrets rotate) reach the open connectors from here.
			e.refreshSystems(systems)
			seen := map[int64]bool{}
			for _, s := range systems {
				seen[s.ID] = true
				every := interval(s.PollIntervalMS)
				var prev chan struct{}
				if p, ok := pollers[s.ID]; ok {
					if p.every == every {
						continue
					}
					p.cancel() // the interval changed: poll at the new one
					prev = p.done
				}
				pctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				pollers[s.ID] = poller{cancel, every, done}
				wg.Add(1)
				go func(id int64, every time.Duration) {
					defer wg.Done()
					defer close(done)
					if prev != nil {
						<-prev // never two polls of one system at once
					}
					e.pollLoop(pctx, id, every)
				}(s.ID, every)
			}
			for id, p := range pollers {
				if !seen[id] {
					p.cancel()
					delete(pollers, id)
				}
			}
		}
		e.state.pollers.Store(int64(len(pollers)))
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

func interval(ms int64) time.Duration {
	if ms <= 0 {
		return 2 * time.Second
	}
	return time.Duration(ms) * time.Millisecond
}

// pollLoop polls one system while this process holds its poller lease (one
// poller per system across processes); otherwise it checks the lease on
// every tick and takes it over once its holder let it lapse.
func (e *Engine) pollLoop(ctx context.Context, systemID int64, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	// The lease is renewed between polls too, so a poll interval longer
	// than the lease does not hand the system to another process each time.
	renew := time.NewTicker(e.opts.Lease / 3)
	defer renew.Stop()
	lease := &pollLease{e: e, systemID: systemID}
	health := &pollHealth{e: e, systemID: systemID} // for alerts (pollhealth.go)
	for {
		for lease.ok(ctx) {
			res, err := e.PollOnce(ctx, systemID)
			health.note(ctx, err)
			if err != nil {
				if ctx.Err() == nil {
					e.log.Warn("poll failed", "system", systemID, "err", err)
				}
				break
			}
			if !res.More {
				break
			}
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				break wait
			case <-renew.C:
				lease.ok(ctx)
			}
		}
	}
}

func (e *Engine) workLoop(ctx context.Context) {
	// The events in hand are finished after ctx ends (up to Drain): a
	// stopping process takes no new work but completes what it started.
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(e.opts.Drain, cancel)
		<-work.Done()
		t.Stop()
	})
	defer stop()
	e.runFlow(ctx, work) // flow.go
}

// backfillLoop moves running "sync existing" jobs a page at a time, pausing
// between pages so live changes keep priority.
func (e *Engine) backfillLoop(ctx context.Context) {
	for {
		n, err := e.BackfillOnce(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Error("backfill", "err", err)
		}
		wait := 2 * time.Second
		if n > 0 {
			wait = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
