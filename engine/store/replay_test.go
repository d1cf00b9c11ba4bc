package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// A delivery known by its body (the sender does not sign its id) is a
// duplicate within the replay window, done or not; after it, a done row is
// re-armed with the new entities (one row, never two), a pending one is not.
// A claim passes the deliveries of busy systems.
func TestDeliveryReplayWindowAndBusyClaim(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			a, c := store.System{Name: "a", Kind: "http"}, store.System{Name: "c", Kind: "http"}
			if err := st.CreateSystem(ctx, &a); err != nil {
				t.Fatal(err)
			}
			if err := st.CreateSystem(ctx, &c); err != nil {
				t.Fatal(err)
			}
			const window = 200 * time.Millisecond
			record := func(ids ...string) bool {
				t.Helper()
				isNew, err := st.RecordDeliveryOnce(ctx, a.ID, "sha256:x", ids, "", window)
				if err != nil {
					t.Fatal(err)
				}
				return isNew
			}
			rows := func() []store.WebhookDelivery {
				t.Helper()
				ds, err := st.ListDeliveries(ctx, a.ID, 10)
				if err != nil {
					t.Fatal(err)
				}
				return ds
			}
			if !record("1") || record("1") {
				t.Fatal("first new, second a duplicate")
			}
			time.Sleep(window + 50*time.Millisecond)
			if record("2") {
				t.Fatal("a pending row was re-armed")
			}
			ds := rows()
			if err := st.FinishDeliveries(ctx, []int64{ds[0].ID}); err != nil {
				t.Fatal(err)
			}
			if !record("3") {
				t.Fatal("a done row older than the window was not re-armed")
			}
			ds = rows()
			ids, _ := ds[0].IDs()
			if len(ds) != 1 || ds[0].Status != store.DeliveryPending || len(ids) != 1 || ids[0] != "3" {
				t.Fatalf("after the re-arm: %+v %v", ds, ids)
			}
			if err := st.FinishDeliveries(ctx, []int64{ds[0].ID}); err != nil {
				t.Fatal(err)
			}
			if record("4") {
				t.Fatal("re-armed again within the window")
			}

			// Claims pass busy systems.
			if _, err := st.RecordDelivery(ctx, a.ID, "a-1", []string{"1"}, ""); err != nil {
				t.Fatal(err)
			}
			if _, err := st.RecordDelivery(ctx, c.ID, "c-1", []string{"1"}, ""); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			got, err := st.ClaimDeliveriesExcept(ctx, store.Claim{By: "p", Now: now, Until: now.Add(time.Minute)}, 10, nil, []int64{a.ID})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].SystemID != c.ID {
				t.Fatalf("claimed %+v, want c's only", got)
			}
		})
	}
}
