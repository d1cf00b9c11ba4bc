// Package loadscale stretches the few time limits a test cannot do without
// (a server must answer "soon", stalled clients must be dropped "soon") on
// a loaded machine, the way the browser tests do (frontend/app/e2e/harness.mjs):
// ×1 up to two runnable tasks per core, then half the load average per
// core, at most ×4. DUPLEX_TEST_TIMEOUT_SCALE sets it. With ~7 sessions on
// two cores (load average 20-40) a fixed 1 s bound failed runs that were
// only slow (issue 19: make test must not lose a run to one hiccup).
//
// Stretching is for bounds that only catch a run that never ends. A test
// of which limit stops a run, or of the order runs are served in, must not
// race the clock at all: it moves the wall-clock limits out of the way of
// the counted ones (scripting's guardDeadline and exprTimeout) and waits
// for the state it needs, not for time to pass (sandbox's
// TestPoolFairness).
package loadscale

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Factor is the stretch for the current load: from DUPLEX_TEST_TIMEOUT_SCALE
// when set, else from /proc/loadavg (1 where it cannot be read).
func Factor() float64 {
	if v, err := strconv.ParseFloat(os.Getenv("DUPLEX_TEST_TIMEOUT_SCALE"), 64); err == nil && v > 0 {
		return v
	}
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 1
	}
	return fromLoad(string(b), runtime.NumCPU())
}

// fromLoad reads the 1-minute load average from a /proc/loadavg line.
func fromLoad(loadavg string, cpus int) float64 {
	f := strings.Fields(loadavg)
	if len(f) == 0 || cpus < 1 {
		return 1
	}
	load, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 1
	}
	return min(4, max(1, load/float64(cpus)/2))
}

// Duration is d stretched by Factor.
func Duration(d time.Duration) time.Duration {
	return time.Duration(float64(d) * Factor())
}
