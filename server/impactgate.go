package server

import (
	"fmt"
	"sync"
	"time"
)

// impactGate admits one impact replay per connection and a few in all. A
// replay runs many scripts on the sandbox's interactive lane, which the test
// runs and trigger previews of every team share: without the gate one editor
// sending replays in parallel would make everyone else's test runs wait.
type impactGate struct {
	mu      sync.Mutex
	running map[int64]bool
	max     int
}

// errBusy refuses work that would wait behind the same kind of work: 429
// with Retry-After.
type errBusy struct {
	what  string
	retry time.Duration
}

func (e *errBusy) Error() string {
	return fmt.Sprintf("%s; try again in %d s", e.what, int(e.retry.Seconds()+0.999))
}

// enter admits connection id or says why not; leave must follow an admission.
func (g *impactGate) enter(id int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running == nil {
		g.running = map[int64]bool{}
	}
	switch {
	case g.running[id]:
		return &errBusy{what: "an impact preview of this connection is running", retry: 5 * time.Second}
	case len(g.running) >= g.max:
		return &errBusy{what: fmt.Sprintf("%d impact previews are running", len(g.running)), retry: 5 * time.Second}
	}
	g.running[id] = true
	return nil
}

func (g *impactGate) leave(id int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.running, id)
}
