package engine

import (
	"context"
	"sync"
	"time"
)

// Run polls every system on its interval and works the queue until ctx ends.
// Systems added later are picked up within refresh; a failing system or
// connection is logged and retried, and never stops the others.
func (e *Engine) Run(ctx context.Context) error {
	e.state.running.Store(true)
	defer e.state.running.Store(false)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); e.workLoop(ctx) }()
	go func() { defer wg.Done(); e.backfillLoop(ctx) }()
	go func() { defer wg.Done(); e.hookLoop(ctx) }()

	pollers := map[int64]context.CancelFunc{}
	const refresh = 2 * time.Second
	t := time.NewTicker(refresh)
	defer t.Stop()
	for {
		systems, err := e.st.ListSystems(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Error("list systems", "err", err)
		}
		seen := map[int64]bool{}
		for _, s := range systems {
			seen[s.ID] = true
			if _, ok := pollers[s.ID]; ok {
				continue
			}
			pctx, cancel := context.WithCancel(ctx)
			pollers[s.ID] = cancel
			wg.Add(1)
			go func(id int64, every time.Duration) { defer wg.Done(); e.pollLoop(pctx, id, every) }(s.ID, interval(s.PollIntervalMS))
		}
		for id, cancel := range pollers {
			if !seen[id] {
				cancel()
				delete(pollers, id)
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

func (e *Engine) pollLoop(ctx context.Context, systemID int64, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for {
			res, err := e.PollOnce(ctx, systemID)
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
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *Engine) workLoop(ctx context.Context) {
	const idle = time.Second // also the bound on how late a retry runs
	for {
		n, err := e.WorkOnce(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Error("worker", "err", err)
		}
		if n > 0 && err == nil {
			continue // more may be due right away
		}
		wait := idle
		if err != nil {
			wait = 5 * time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case <-time.After(wait):
		}
	}
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
