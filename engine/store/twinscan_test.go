package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// The raw twin reads (TwinBy, TwinsOf, TwinsByID) give what gorm's read of
// the same rows gives, every column set and every nullable one empty.
func TestTwinReadsMatchGorm(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			c := newConnection(t, st)
			full, err := st.EnsureTwin(ctx, c.ID, store.SideA, "1")
			if err != nil {
				t.Fatal(err)
			}
			empty, err := st.EnsureTwin(ctx, c.ID, store.SideB, "2")
			if err != nil {
				t.Fatal(err)
			}
			full.SetEntityID(store.SideB, "x-1")
			full.CommentLinks = `{"a:1":"b:2"}`
			full.SetBase(store.SideA, `{"f":{"t":"é"},"c":[]}`)
			full.SetBase(store.SideB, `{"f":{},"c":["1"]}`)
			full.SetHash(store.SideA, "ha")
			full.SetHash(store.SideB, "hb")
			w := time.Date(2026, 12, 6, 10, 11, 12, 13000000, time.UTC)
			full.SetWrittenAt(store.SideA, w)
			full.SetWrittenAt(store.SideB, w.Add(time.Second))
			full.SetScripts(store.AToB, `{"i":"x"}`)
			full.SetScripts(store.BToA, `{"o":"y"}`)
			if err := st.SaveTwin(ctx, &full, store.SideA, store.SideB); err != nil {
				t.Fatal(err)
			}
			for _, d := range []store.Direction{store.AToB, store.BToA} {
				if err := st.SetSentClearing(ctx, full.ID, d, `{"r":"`+string(d)+`"}`); err != nil {
					t.Fatal(err)
				}
			}
			listed, err := st.ListTwins(ctx, c.ID, 10, 0) // gorm
			if err != nil || len(listed) != 2 {
				t.Fatalf("list: %v %v", listed, err)
			}
			want := map[int64]store.Twin{}
			for _, tw := range listed {
				want[tw.ID] = tw
			}
			if w := want[full.ID]; w.SentAB == nil || w.SentBA == nil || w.BaseA == nil || w.ScriptsBA == nil || w.BWrittenAt == nil || w.BID == nil {
				t.Fatalf("not every column set: %+v", w)
			}
			byID, err := st.TwinsByID(ctx, []int64{full.ID, empty.ID, 999})
			if err != nil || len(byID) != 2 {
				t.Fatalf("by id: %v %v", byID, err)
			}
			for id, tw := range byID {
				if !reflect.DeepEqual(*tw, want[id]) {
					t.Errorf("TwinsByID %d:\n%+v\nwant\n%+v", id, *tw, want[id])
				}
			}
			for _, tw := range []store.Twin{want[full.ID], want[empty.ID]} {
				side := tw.Origin
				got, err := st.TwinBy(ctx, c.ID, side, tw.EntityID(side))
				if err != nil || !reflect.DeepEqual(got, tw) {
					t.Errorf("TwinBy:\n%+v %v\nwant\n%+v", got, err, tw)
				}
				of, err := st.TwinsOf(ctx, c.ID, side, []string{tw.EntityID(side), "none"})
				if err != nil || len(of) != 1 || !reflect.DeepEqual(of[tw.EntityID(side)], tw) {
					t.Errorf("TwinsOf: %+v %v", of, err)
				}
			}
			if _, err := st.TwinBy(ctx, c.ID, store.SideA, "none"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("missing twin: %v", err)
			}
		})
	}
}
