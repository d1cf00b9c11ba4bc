package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// Limit hits are counted in a window from the first one; the hit that
// reaches the threshold pauses the connection with its reason (exactly once,
// however many callers race), and activating it clears everything and
// starts a backfill of each side.
func TestRecordLimitHit(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			a, bb := store.System{Name: "desk", Kind: "sql"}, store.System{Name: "tracker", Kind: "sql"}
			for _, s := range []*store.System{&a, &bb} {
				if err := st.CreateSystem(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			c := store.Connection{Name: "esc", SystemAID: a.ID, SystemBID: bb.ID, Active: true}
			if err := st.CreateConnection(ctx, &c, nil, "alice"); err != nil {
				t.Fatal(err)
			}
			t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
			hit := func(at time.Time) store.LimitHit {
				t.Helper()
				res, err := st.RecordLimitHit(ctx, c.ID, at, time.Minute, 3, "quarantined: test")
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			if r := hit(t0); r.Hits != 1 || r.Quarantined {
				t.Fatalf("first hit: %+v", r)
			}
			if r := hit(t0.Add(30 * time.Second)); r.Hits != 2 || r.Quarantined {
				t.Fatalf("second hit: %+v", r)
			}
			// Stamped before the window's first hit (runs that started
			// together and were counted in the other order): still in it.
			// It was once taken for a new window's first hit, and a page of
			// three such runs never reached the threshold.
			if r := hit(t0.Add(-time.Millisecond)); r.Hits != 3 || !r.Quarantined {
				t.Fatalf("a hit stamped before the window's start: %+v", r)
			}
			if err := st.SetActive(ctx, c.ID, true); err != nil { // lifts it, clears the count
				t.Fatal(err)
			}
			if r := hit(t0); r.Hits != 1 || r.Quarantined {
				t.Fatalf("first hit after activating: %+v", r)
			}
			if r := hit(t0.Add(30 * time.Second)); r.Hits != 2 || r.Quarantined {
				t.Fatalf("second hit after activating: %+v", r)
			}
			// Past the window (from the first hit): a new window starts.
			if r := hit(t0.Add(61 * time.Second)); r.Hits != 1 || r.Quarantined {
				t.Fatalf("hit after the window: %+v", r)
			}
			// Racing callers: exactly one quarantines; the count holds all
			// that came before the quarantine.
			var wg sync.WaitGroup
			var mu sync.Mutex
			var quarantined, already int
			for range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := st.RecordLimitHit(ctx, c.ID, t0.Add(70*time.Second), time.Minute, 3, "quarantined: test")
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if r.Quarantined {
						quarantined++
					}
					if r.Already {
						already++
					}
				}()
			}
			wg.Wait()
			if quarantined != 1 || already != 4 {
				t.Fatalf("%d callers quarantined, %d found it done, want 1 and 4", quarantined, already)
			}
			got, err := st.GetConnection(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Active || got.PausedReason != "quarantined: test" || got.QuarantinedAt == nil || got.LimitHits != 3 {
				t.Fatalf("after quarantine: %+v", got)
			}
			// Activated inside a transaction, as `duplex apply` does.
			if err := st.Tx(ctx, func(tx *store.Store) error { return tx.SetActive(ctx, c.ID, true) }); err != nil {
				t.Fatal(err)
			}
			got, err = st.GetConnection(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Active || got.PausedReason != "" || got.QuarantinedAt != nil || got.LimitHits != 0 || got.LimitSince != nil {
				t.Fatalf("after activate: %+v", got)
			}
			jobs, err := st.ListBackfills(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(jobs) != 2 || jobs[0].Side == jobs[1].Side || jobs[0].Status != "running" {
				t.Fatalf("backfills after lifting the quarantine: %+v", jobs)
			}
			// A plain pause and resume starts none.
			if err := st.SetActive(ctx, c.ID, false); err != nil {
				t.Fatal(err)
			}
			if err := st.SetActive(ctx, c.ID, true); err != nil {
				t.Fatal(err)
			}
			if jobs, _ := st.ListBackfills(ctx, c.ID); len(jobs) != 2 {
				t.Fatalf("a plain resume started backfills: %+v", jobs)
			}
		})
	}
}
