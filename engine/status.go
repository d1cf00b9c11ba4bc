package engine

import "sync/atomic"

// runState is what readiness reports: Run is going and how many pollers
// it keeps. Atomics, because /readyz reads them from request goroutines.
type runState struct {
	running atomic.Bool
	pollers atomic.Int64
}

// Status is the engine's part of readiness.
type Status struct {
	Running bool  `json:"running"`
	Pollers int64 `json:"pollers"` // one per system
}

// Status reports whether Run is active and how many systems it polls.
func (e *Engine) Status() Status {
	return Status{Running: e.state.running.Load(), Pollers: e.state.pollers.Load()}
}
