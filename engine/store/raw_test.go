package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// A one-row raw statement in a transaction whose context ends (a shutdown
// in the middle of a poll) fails with an error. On PostgreSQL gorm's
// prepared-statement transaction answered it with an empty sql.Row, whose
// Scan panicked: the stopped process died without releasing its claims.
func TestRawRowAfterCancelInTx(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			ctx, cancel := context.WithCancel(f.ctx)
			defer cancel()
			err := f.st.Tx(ctx, func(tx *store.Store) error {
				cancel()
				_, _, err := tx.NewTwin(ctx, f.conn.ID, store.SideA, "cancelled", store.AToB, nil)
				return err
			})
			if err == nil {
				t.Fatal("a twin made in a transaction whose context ended: no error")
			}
			if tw, err := f.st.TwinBy(f.ctx, f.conn.ID, store.SideA, "cancelled"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("after the failed transaction: twin %d, err %v; want nothing kept", tw.ID, err)
			}
		})
	}
}
