package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// TestPostgresKeepsItsConnections: bursts of concurrent transactions, as the
// engine's goroutines make, reuse the connections the first burst opened.
// With database/sql's default of 2 idle connections, every burst closed the
// rest and opened new ones: a new server process each on PostgreSQL, which
// cut one process's throughput by more than half (docs/performance.md).
func TestPostgresKeepsItsConnections(t *testing.T) {
	st := testdb.Postgres(t)
	sqlDB, err := st.DB().DB()
	if err != nil {
		t.Fatal(err)
	}
	const width = 8
	for round := 0; round < 3; round++ {
		var inside, wg sync.WaitGroup
		inside.Add(width)
		for i := 0; i < width; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := st.Tx(context.Background(), func(tx *store.Store) error {
					var one int
					err := tx.DB().Raw(`SELECT 1`).Scan(&one).Error
					inside.Done()
					inside.Wait() // all width transactions hold a connection at once
					return err
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	stats := sqlDB.Stats()
	if stats.MaxIdleClosed != 0 || stats.OpenConnections < width {
		t.Fatalf("connections closed after use: %d, open now: %d (want 0 closed, %d open)", stats.MaxIdleClosed, stats.OpenConnections, width)
	}
}
