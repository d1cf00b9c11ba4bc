package store_test

import (
	"context"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// A remembered pair comes back under its id with its state, once; not when
// its counterpart was linked to something else meanwhile.
func TestRememberAndRestoreUnlinked(t *testing.T) {
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
			unlink := func(aID, bID string) store.Twin {
				tw, err := st.LinkTwin(ctx, c.ID, aID, bID)
				if err != nil {
					t.Fatal(err)
				}
				tw.SetBase(store.SideB, `{"f":{"title":"x"}}`)
				if err := st.SaveTwin(ctx, &tw, store.SideB); err != nil {
					t.Fatal(err)
				}
				if err := st.RememberUnlinked(ctx, tw.ID); err != nil {
					t.Fatal(err)
				}
				if _, err := st.DeleteTwin(ctx, tw.ID); err != nil {
					t.Fatal(err)
				}
				return tw
			}
			tw := unlink("1", "ENG-1")
			mem, ok, err := st.UnlinkedTwin(ctx, c.ID, store.SideA, "1")
			if err != nil || !ok || mem.ID != tw.ID || mem.EntityID(store.SideB) != "ENG-1" {
				t.Fatalf("remembered: %+v %v %v", mem, ok, err)
			}
			if ok, err := st.RestoreUnlinked(ctx, tw.ID); err != nil || !ok {
				t.Fatalf("restore: %v %v", ok, err)
			}
			got, err := st.TwinBy(ctx, c.ID, store.SideA, "1")
			if err != nil || got.ID != tw.ID || got.EntityID(store.SideB) != "ENG-1" || got.Base(store.SideB) == nil || *got.Base(store.SideB) != `{"f":{"title":"x"}}` {
				t.Fatalf("restored: %+v, %v", got, err)
			}
			if ok, err := st.RestoreUnlinked(ctx, tw.ID); err != nil || ok {
				t.Fatalf("restored twice: %v %v", ok, err)
			}
			// ENG-2 linked to another ticket while 2 was unlinked: 2's pair stays forgotten.
			tw2 := unlink("2", "ENG-2")
			if _, err := st.LinkTwin(ctx, c.ID, "3", "ENG-2"); err != nil {
				t.Fatal(err)
			}
			if ok, err := st.RestoreUnlinked(ctx, tw2.ID); err != nil || ok {
				t.Fatalf("restored over a person's link: %v %v", ok, err)
			}
			if _, err := st.TwinBy(ctx, c.ID, store.SideA, "2"); err == nil {
				t.Fatal("ticket 2 is linked again")
			}
		})
	}
}
