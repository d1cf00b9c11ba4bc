package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
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

// The claim's raw read of events gives what gorm's read of the same rows
// gives, every nullable column set in one and empty in the other, and
// names a lapsed claim's holder (a takeover).
func TestClaimedEventsMatchGorm(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			c := newConnection(t, st)
			c.Active = true
			if err := st.DB().Model(&c).Update("active", true).Error; err != nil {
				t.Fatal(err)
			}
			past := time.Date(2026, 12, 6, 10, 11, 12, 13000000, time.UTC)
			str := func(s string) *string { return &s }
			var evs []store.SyncEvent
			for i, full := range []bool{true, false} {
				tw, err := st.EnsureTwin(ctx, c.ID, store.SideA, fmt.Sprint(i))
				if err != nil {
					t.Fatal(err)
				}
				ev := store.SyncEvent{ConnectionID: c.ID, TwinID: tw.ID, Direction: store.AToB, SourceID: fmt.Sprint(i),
					Replica: `{"t":"é"}`, Status: store.StatusQueued, NextAttemptAt: past, Attempts: 2, TotalAttempts: 3,
					LastError: "boom", Log: "line", CreatedAt: past, UpdatedAt: past.Add(time.Second)}
				if full {
					at := past.Add(-time.Minute)
					ev.Action, ev.Previous, ev.SourceFields, ev.SourceUpdatedAt = "delete", str(`{"t":"a"}`), str(`{"f":{}}`), &at
					ev.Conflicts, ev.Resolution, ev.UnlinkedPair, ev.Partial = str(`[]`), str(`{}`), str("twin 7"), str(`{"applied":[]}`)
				}
				evs = append(evs, ev)
			}
			if err := st.InsertEvents(ctx, evs); err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			got, takeovers, err := st.ClaimEventsExcept(ctx, store.Claim{By: "p", Now: now, Until: now.Add(time.Minute)}, 10, nil, store.Busy{})
			if err != nil || len(got) != 2 || takeovers != 0 {
				t.Fatalf("claim: %d events, %d takeovers, %v", len(got), takeovers, err)
			}
			for _, ev := range got {
				want, err := st.GetEvent(ctx, ev.ID) // gorm
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(ev, want) {
					t.Errorf("claimed event %d:\n%+v\nwant\n%+v", ev.ID, ev, want)
				}
			}
			if got[0].Previous == nil || got[0].SourceUpdatedAt == nil || got[0].Partial == nil || got[1].Previous != nil {
				t.Errorf("nullable columns: %+v / %+v", got[0], got[1])
			}
			if st.Shared() { // a lapsed claim of another process: taken over
				later := now.Add(2 * time.Minute)
				_, takeovers, err = st.ClaimEventsExcept(ctx, store.Claim{By: "q", Now: later, Until: later.Add(time.Minute)}, 10, nil, store.Busy{})
				if err != nil || takeovers != 2 {
					t.Errorf("takeover: %d %v; want 2", takeovers, err)
				}
			}
		})
	}
}

// TwinsOf on PostgreSQL looks each id up in the connection's unique index,
// even on statistics taken when the table was empty (a new store filling
// with a backlog, before autovacuum's first ANALYZE). "IN (…)" was planned
// there as a read of every twin of the connection, filtered: 5–20 ms a
// page in make bench-cluster, growing with the table.
func TestTwinsOfLooksUpEachIDOnStaleStatistics(t *testing.T) {
	if os.Getenv(testdb.PostgresEnv) == "" {
		t.Skipf("PostgreSQL only: set %s", testdb.PostgresEnv)
	}
	ctx := context.Background()
	st := testdb.Postgres(t)
	c := newConnection(t, st)
	for _, side := range []string{"a", "b"} {
		if err := st.DB().Exec(`INSERT INTO twins (connection_id, `+side+`_id, created_at, updated_at)
			SELECT ?, '`+side+`' || g, now(), now() FROM generate_series(1, 5000) AS g`, c.ID).Error; err != nil {
			t.Fatal(err)
		}
	}
	for _, side := range []store.Side{store.SideA, store.SideB} {
		ids := make([]string, 100)
		for i := range ids {
			ids[i] = fmt.Sprint(side, 4900+i)
		}
		plan, err := store.TwinsOfPlan(ctx, st, c.ID, side, ids)
		if err != nil {
			t.Fatal(err)
		}
		index := "twins_connection_id_" + string(side) + "_id_key"
		if !strings.Contains(plan, "Index Scan using "+index) || strings.Contains(plan, "Bitmap") || strings.Contains(plan, "Seq Scan") {
			t.Errorf("side %s: want one look-up in %s per id, got:\n%s", side, index, plan)
		}
		got, err := st.TwinsOf(ctx, c.ID, side, append(ids, "none"))
		if err != nil || len(got) != len(ids) {
			t.Fatalf("side %s: %d twins, %v; want %d", side, len(got), err, len(ids))
		}
	}
}
