package sandbox

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/duplexsync/duplex/scripting"
)

// The mapping of scripting's BenchmarkOutgoing: ten fields, a value map, a
// filter, a nested read.
const benchScript = `
replica.title = entity.subject;
replica.body = entity.description || "";
replica.state = entity.status === "closed" ? "done" : "open";
replica.priority = ({low: 1, normal: 2, high: 3, urgent: 4})[entity.priority] || 2;
replica.labels = entity.tags.filter(t => !t.startsWith("internal:"));
replica.assignee = entity.assignee ? entity.assignee.login : null;
replica.due = entity.due_date || null;
replica.estimate = entity.estimate_hours * 60;
replica.project = entity.project.key;
replica.external_id = String(entity.id);
if (previous && previous.title !== replica.title) log("title changed", previous.title, "->", replica.title);
`

func benchEntity() map[string]any {
	return map[string]any{
		"id": 4711, "subject": "Crash on save", "description": "Steps: ...", "status": "open",
		"priority": "high", "tags": []any{"bug", "internal:triage", "todev"},
		"assignee": map[string]any{"login": "ann", "name": "Ann"}, "due_date": "2025-01-31",
		"estimate_hours": 1.5, "project": map[string]any{"key": "CORE", "name": "Core"},
		"created": "2024-12-01T10:00:00Z", "updated": "2024-12-02T10:00:00Z",
	}
}

// BenchmarkInProcess is the baseline: the same run in this process's
// runtime pool (scripting.Runner).
func BenchmarkInProcess(b *testing.B) {
	r := scripting.NewRunner(scripting.Options{MaxRuntimes: 1})
	s := mustCompile(b, scripting.KindOutgoing, benchScript)
	entity, previous := benchEntity(), map[string]any{"title": "Crash on load"}
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		res, err := r.Outgoing(ctx, s, entity, previous, scripting.Meta{Connection: "c", Side: "a"})
		if err != nil || len(res.Replica) < 10 {
			b.Fatal(res, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/run")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/run")
}

// BenchmarkPool runs the same script in one worker process, batch runs to
// a message; ns/run is the figure to compare with BenchmarkInProcess.
func BenchmarkPool(b *testing.B) {
	for _, batch := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			p := newPool(b, Options{Workers: 1, RecycleRuns: 1 << 30, Timeout: 10 * time.Second})
			s := mustCompile(b, scripting.KindOutgoing, benchScript)
			entity, previous := benchEntity(), map[string]any{"title": "Crash on load"}
			ctx := context.Background()
			meta := scripting.Meta{Connection: "c", Side: "a"}
			// Start the worker and send it the script before timing.
			if _, err := p.Outgoing(ctx, s, entity, previous, meta); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0, wcpu0 := cpuTime(), p.workerCPU()
			for b.Loop() {
				if batch == 1 {
					res, err := p.Outgoing(ctx, s, entity, previous, meta)
					if err != nil || len(res.Replica) < 10 {
						b.Fatal(res, err)
					}
					continue
				}
				runs := make([]*Run, batch)
				for i := range runs {
					runs[i] = p.OutgoingRun(s, entity, previous, meta)
				}
				if err := p.Do(ctx, runs); err != nil {
					b.Fatal(err)
				}
				for _, r := range runs {
					if res, err := r.Result(); err != nil || len(res.Replica) < 10 {
						b.Fatal(res, err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/run")
			// CPU time of both processes: wall time on a busy machine
			// favours the pool (two processes get two shares of the CPU).
			cpu := (cpuTime() - cpu0) + (p.workerCPU() - wcpu0)
			b.ReportMetric(float64(cpu)/float64(b.N*batch), "cpu-ns/run")
		})
	}
}
