package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

const benchBatch = 100 // changes per poll page, as the engine's default page size

// benchFixture is a synced demo with benchBatch escalated tickets.
func benchFixture(b *testing.B) *fixture {
	return benchFixtureOn(b, testdb.SQLite(b))
}

func benchFixtureOn(b *testing.B, st *store.Store) *fixture {
	f := newFixture(b, st, time.Second)
	for i := 0; i < benchBatch; i++ {
		if _, err := f.support.Exec(`INSERT INTO tickets (subject, description, priority, labels) VALUES (?, 'bench', 'high', 'todev')`,
			fmt.Sprint("bench ticket ", i)); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(settle)
	f.settle()
	return f
}

// BenchmarkPipeline is the cost of syncing one changed entity end to end on
// SQLite: poll, trigger, echo check, outgoing script, durable event, worker,
// incoming script, read and update of the target row, twin, audit. Changes
// come benchBatch at a time, as a poller sees them.
func BenchmarkPipeline(b *testing.B) {
	benchPipeline(b, benchFixture(b))
}

// BenchmarkPipelineStores is BenchmarkPipeline on every store the machine
// offers (PostgreSQL with DUPLEX_TEST_POSTGRES), with the store's round
// trips per change: statements (gorm's and the raw ones) and commits.
// Round trips, not CPU, are what a store on another host pays for.
func BenchmarkPipelineStores(b *testing.B) {
	for _, be := range testdb.Backends(b) {
		b.Run(be.Name, func(b *testing.B) {
			benchPipeline(b, benchFixtureOn(b, be.Open(b)))
		})
	}
}

func benchPipeline(b *testing.B, f *fixture) {
	stats := f.st.Stats()
	stmts, commits := stats.Statements.Load(), stats.Commits.Load()
	b.ResetTimer()
	for done := 0; done < b.N; done += benchBatch {
		b.StopTimer()
		time.Sleep(2 * time.Millisecond) // keep the demo's millisecond cursor apart
		if _, err := f.support.Exec(`UPDATE tickets SET subject = ? WHERE labels = 'todev'`, fmt.Sprint("round ", done)); err != nil {
			b.Fatal(err)
		}
		time.Sleep(settle)
		b.StartTimer()
		res, err := f.eng.PollOnce(f.ctx, f.conn.SystemAID)
		if err != nil || res.Enqueued != benchBatch {
			b.Fatalf("poll: %+v %v", res, err)
		}
		for n := 0; n < benchBatch; {
			w, err := f.eng.WorkOnce(f.ctx)
			if err != nil || w == 0 {
				b.Fatalf("work: %d %v", w, err)
			}
			n += w
		}
	}
	b.StopTimer()
	changes := float64((b.N + benchBatch - 1) / benchBatch * benchBatch)
	b.ReportMetric(float64(stats.Statements.Load()-stmts)/changes, "stmts/change")
	b.ReportMetric(float64(stats.Commits.Load()-commits)/changes, "commits/change")
	f.noFailures()
}

// BenchmarkFloorTargetWrite is the floor the pipeline is compared with: only
// the read and update of the target row through the same connector.
func BenchmarkFloorTargetWrite(b *testing.B) {
	f := benchFixture(b)
	sys, err := f.st.GetSystem(f.ctx, f.conn.SystemBID)
	if err != nil {
		b.Fatal(err)
	}
	c, err := f.reg.Open(context.Background(), sys.Kind, connectors.Config{Name: sys.Name, Settings: []byte(sys.Settings)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprint(2 + i%benchBatch)
		if _, err := c.Get(f.ctx, id); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Update(f.ctx, id, map[string]any{"title": fmt.Sprint("t", i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreates is the cost of syncing one new entity end to end on
// SQLite (a create on the target: the correlation look-up, the create, the
// twin's new id), with the store's statements and commits per create.
// New tickets come benchBatch at a time.
func BenchmarkCreates(b *testing.B) {
	f := benchFixture(b)
	stats := f.st.Stats()
	stmts, commits := stats.Statements.Load(), stats.Commits.Load()
	b.ResetTimer()
	for done := 0; done < b.N; done += benchBatch {
		b.StopTimer()
		time.Sleep(2 * time.Millisecond) // keep the demo's millisecond cursor apart
		for i := 0; i < benchBatch; i++ {
			if _, err := f.support.Exec(`INSERT INTO tickets (subject, description, priority, labels) VALUES (?, 'bench', 'high', 'todev')`,
				fmt.Sprint("new ticket ", done+i)); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(settle)
		b.StartTimer()
		res, err := f.eng.PollOnce(f.ctx, f.conn.SystemAID)
		if err != nil || res.Enqueued != benchBatch {
			b.Fatalf("poll: %+v %v", res, err)
		}
		for n := 0; n < benchBatch; {
			w, err := f.eng.WorkOnce(f.ctx)
			if err != nil || w == 0 {
				b.Fatalf("work: %d %v", w, err)
			}
			n += w
		}
	}
	b.StopTimer()
	changes := float64((b.N + benchBatch - 1) / benchBatch * benchBatch)
	b.ReportMetric(float64(stats.Statements.Load()-stmts)/changes, "stmts/create")
	b.ReportMetric(float64(stats.Commits.Load()-commits)/changes, "commits/create")
	f.noFailures()
}
