package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/duplexsync/duplex/internal/metrics"
	"github.com/duplexsync/duplex/scripting/sandbox"
)

// sandboxFlags size the pool of script worker processes (serve and demo).
type sandboxFlags struct {
	workers, interactive int
	memoryMiB            int
	perConnection        int
}

func (s *sandboxFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&s.workers, "script-workers", envInt("DUPLEX_SCRIPT_WORKERS", 2),
		"worker processes that run scripts, triggers and rules for the sync (env DUPLEX_SCRIPT_WORKERS)")
	fs.IntVar(&s.interactive, "script-interactive-workers", envInt("DUPLEX_SCRIPT_INTERACTIVE_WORKERS", 1),
		"worker processes for test runs and trigger previews, apart from the sync's (env DUPLEX_SCRIPT_INTERACTIVE_WORKERS)")
	fs.IntVar(&s.perConnection, "script-per-connection", envInt("DUPLEX_SCRIPT_PER_CONNECTION", 0),
		"messages (batches of runs) of one connection in flight at once; 0: all workers but one, so one connection's slow scripts cannot hold every worker (env DUPLEX_SCRIPT_PER_CONNECTION)")
	fs.IntVar(&s.memoryMiB, "script-memory", envInt("DUPLEX_SCRIPT_MEMORY", 1024),
		"MiB of memory each script worker may use; a script that needs more fails with \"script exceeded its memory limit\" (env DUPLEX_SCRIPT_MEMORY)")
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return n
	}
	return def
}

// memory is each worker's memory limit in bytes: the flag's value, or its
// default for a command that has no sandbox flags (apply --dry-run's
// impact previews run under the same limit as the server's runs; with the
// 64 MiB floor alone their workers sometimes died at start).
func (s sandboxFlags) memory() uint64 {
	mib := s.memoryMiB
	if mib == 0 {
		mib = envInt("DUPLEX_SCRIPT_MEMORY", 1024)
	}
	return uint64(max(mib, 64)) << 20
}

// newPool starts nothing yet: workers start on the first run.
func (s sandboxFlags) newPool(logger *slog.Logger, m *metrics.Metrics) (*sandbox.Pool, error) {
	return sandbox.NewPool(sandbox.Options{
		Workers: s.workers, Interactive: s.interactive, Memory: s.memory(), PerConnection: s.perConnection,
		Timeout: time.Second, Observe: m.ObserveScript, Logger: logger,
	})
}

// poolMetrics counts worker starts and deaths for /metrics.
func poolMetrics(m *metrics.Metrics, p *sandbox.Pool) {
	m.Counter("duplex_script_workers_started_total", "Script worker processes started (first start, replacement after a limit, recycling).",
		func() float64 { return float64(p.Stats().Starts) })
	m.Counter("duplex_script_workers_killed_total", "Script worker processes killed at a run's deadline or dead of their memory limit or a crash.",
		func() float64 { return float64(p.Stats().Kills) })
}

// stopPool kills the workers; a worker in an endless script never delays
// the server's exit.
func stopPool(p *sandbox.Pool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.Stop(ctx)
	st := p.Stats()
	slog.Default().Info("script workers stopped", "script_runs", st.Runs, "script_messages", st.Messages, "script_worker_starts", st.Starts)
}
