package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// A person's unlink keeps the pair's events, marked, and skips the waiting
// ones; the engine's unlink (DeleteTwin) still deletes them.
func TestUnlinkKeepsHistory(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			a := store.System{Name: "a", Kind: "sql"}
			bb := store.System{Name: "b", Kind: "sql"}
			for _, s := range []*store.System{&a, &bb} {
				if err := st.CreateSystem(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			c := store.Connection{Name: "c", SystemAID: a.ID, SystemBID: bb.ID}
			if err := st.CreateConnection(ctx, &c, nil, "t"); err != nil {
				t.Fatal(err)
			}
			pair := func(aID, bID string) (store.Twin, []store.SyncEvent) {
				tw, err := st.LinkTwin(ctx, c.ID, aID, bID)
				if err != nil {
					t.Fatal(err)
				}
				evs := []store.SyncEvent{
					{ConnectionID: c.ID, TwinID: tw.ID, Direction: store.AToB, SourceID: aID, Replica: "{}", Status: store.StatusDone, NextAttemptAt: time.Now()},
					{ConnectionID: c.ID, TwinID: tw.ID, Direction: store.AToB, SourceID: aID, Replica: "{}", Status: store.StatusQueued, NextAttemptAt: time.Now()},
				}
				if err := st.InsertEvents(ctx, evs); err != nil {
					t.Fatal(err)
				}
				return tw, evs
			}
			kept, _ := pair("1", "T-1")
			gone, _ := pair("2", "T-2")
			if _, err := st.UnlinkTwin(ctx, kept.ID); err != nil {
				t.Fatal(err)
			}
			var evs []store.SyncEvent
			if err := st.DB().Where("twin_id = ?", kept.ID).Order("id").Find(&evs).Error; err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("twin %d (a 1, b T-1)", kept.ID)
			if len(evs) != 2 || evs[0].Status != store.StatusDone || evs[1].Status != store.StatusSkipped ||
				evs[0].UnlinkedPair == nil || *evs[0].UnlinkedPair != want || evs[1].UnlinkedPair == nil {
				t.Fatalf("events after unlink: %+v", evs)
			}
			if _, err := st.TwinBy(ctx, c.ID, store.SideA, "1"); err == nil {
				t.Fatal("the twin is still there")
			}
			// The same entities can be linked again.
			if _, err := st.LinkTwin(ctx, c.ID, "1", "T-1"); err != nil {
				t.Fatal(err)
			}
			if _, err := st.DeleteTwin(ctx, gone.ID); err != nil {
				t.Fatal(err)
			}
			var n int64
			if err := st.DB().Model(&store.SyncEvent{}).Where("twin_id = ?", gone.ID).Count(&n).Error; err != nil || n != 0 {
				t.Fatalf("DeleteTwin left %d events (%v)", n, err)
			}
		})
	}
}
