package scripting

import (
	"errors"
	"runtime/metrics"
	"sync"
	"time"
)

// ErrorMemory is the Error.Kind of a run stopped by the heap watchdog.
const ErrorMemory = "memory"

// ErrMemory is wrapped by every *Error of kind "memory".
var ErrMemory = errors.New("script used too much memory")

// heapSample is the live heap object bytes, read without stopping the world
// (runtime.ReadMemStats would, on every sample).
func heapSample() uint64 {
	heapMetric.mu.Lock()
	defer heapMetric.mu.Unlock()
	metrics.Read(heapMetric.s[:]) // its slice escapes: one for all, not one a run
	if heapMetric.s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return heapMetric.s[0].Value.Uint64()
}

var heapMetric = struct {
	mu sync.Mutex
	s  [1]metrics.Sample
}{s: [1]metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}

// watchHeap samples the Go heap every few milliseconds while a run is in
// progress and interrupts the run once it has grown by more than limit
// since the run began. goja has no allocation limit, so this is the backstop for
// scripts that grow arrays or strings in a loop faster than the deadline
// ends them. The heap is the process's, not the run's: when several runs
// are active, a growth caused by one may stop another that started before
// it; a stopped run fails its own event only, so erring that way is safe.
// Single built-in calls that allocate a lot at once are refused before they
// start by the guards installed in every runtime (see setupProgram).
//
// One sampling goroutine serves all active runs and exits when none is
// left, so a run costs one heap read and two map updates.
func watchHeap(limit uint64, sb *sandbox, gen uint64) *watch {
	w := &watch{base: heapSample(), limit: limit, sb: sb, gen: gen}
	watcher.mu.Lock()
	watcher.runs[w] = struct{}{}
	if !watcher.sampling {
		watcher.sampling = true
		go sampleLoop()
	}
	watcher.mu.Unlock()
	return w
}

// done ends the watch of a run.
func (w *watch) done() {
	watcher.mu.Lock()
	delete(watcher.runs, w)
	watcher.mu.Unlock()
}

// watch is one run's: its sandbox is interrupted for generation gen (the
// run, not a later one) once the heap grew by more than limit since base.
type watch struct {
	base, limit uint64
	sb          *sandbox
	gen         uint64
}

var watcher = struct {
	mu       sync.Mutex
	runs     map[*watch]struct{}
	sampling bool
}{runs: map[*watch]struct{}{}}

func sampleLoop() {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		h := heapSample()
		watcher.mu.Lock()
		if len(watcher.runs) == 0 {
			watcher.sampling = false
			watcher.mu.Unlock()
			return
		}
		for w := range watcher.runs {
			if h > w.base && h-w.base > w.limit {
				w.sb.interrupt(w.gen, ErrMemory)
				delete(watcher.runs, w)
			}
		}
		watcher.mu.Unlock()
	}
}
