package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// claimCounting is a store that counts the hook loop's claims of deliveries.
type claimCounting struct {
	*store.Store
	claims atomic.Int64
}

func (c *claimCounting) ClaimDeliveriesExcept(ctx context.Context, cl store.Claim, limit int, release, busy []int64) ([]store.WebhookDelivery, error) {
	c.claims.Add(1)
	return c.Store.ClaimDeliveriesExcept(ctx, cl, limit, release, busy)
}

// The deliveries a running engine receives go to its hook loop in memory,
// claimed as they are recorded: taking one in costs no claim of the store
// (a write transaction, and a read, between the sender's answer and the
// intake). The loop still claims once at start and once a second (retries,
// lapsed claims of other processes); before, each delivery cost at least
// one claim, and the end of its group another.
func TestOwnDeliveriesAreTakenInWithoutAClaim(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			f.wrap = func(system string, c connectors.Connector) connectors.Connector {
				if system == "support-desk" {
					return &hookedConn{Connector: c}
				}
				return c
			}
			f.settle()
			st := &claimCounting{Store: f.st}
			eng := engine.New(engine.Options{Store: st, Connectors: f.reg, Runner: f.runner, Secrets: f.box})
			ctx, cancel := context.WithCancel(f.ctx)
			ran := make(chan error, 1)
			go func() { ran <- eng.Run(ctx) }()
			defer func() { cancel(); <-ran; _ = eng.Close() }()

			const n = 8
			start := time.Now()
			for i := range n {
				res, err := f.support.Exec(`INSERT INTO tickets (subject, labels, priority) VALUES (?, 'todev', 'high')`, fmt.Sprint("hooked ", i))
				if err != nil {
					t.Fatal(err)
				}
				id, _ := res.LastInsertId()
				if _, err := eng.Hook(f.ctx, f.conn.SystemAID, http.Header{}, []byte(fmt.Sprint(id))); err != nil {
					t.Fatal(err)
				}
				for deadline := time.Now().Add(10 * time.Second); f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = ?", fmt.Sprint("T-", id)) == 0; time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("ticket %d not synced by its webhook within 10 s", id)
					}
				}
			}
			elapsed := time.Since(start)
			claims := st.claims.Load()
			if most := 2 + int64(elapsed/time.Second); claims > most {
				t.Errorf("%d claims of deliveries for %d webhooks in %v; want at most %d (at start and once a second)", claims, n, elapsed.Round(time.Millisecond), most)
			}
			var done int64
			if err := f.st.DB().Raw("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'done'").Scan(&done).Error; err != nil || done != n {
				t.Errorf("%d deliveries done (%v), want %d", done, err, n)
			}
		})
	}
}
