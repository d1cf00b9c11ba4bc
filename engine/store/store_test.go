package store_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

func TestStore(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)

			a := store.System{Name: "desk", Kind: "sql", Settings: `{"x":1}`, Secrets: []byte{1, 2, 3}, PollIntervalMS: 1000}
			bb := store.System{Name: "tracker", Kind: "sql"}
			for _, s := range []*store.System{&a, &bb} {
				if err := st.CreateSystem(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			dup := store.System{Name: "desk", Kind: "sql"}
			if err := st.CreateSystem(ctx, &dup); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("duplicate system name: got %v, want ErrConflict", err)
			}
			got, err := st.GetSystem(ctx, a.ID)
			if err != nil || string(got.Secrets) != "\x01\x02\x03" || got.PollIntervalMS != 1000 {
				t.Fatalf("get system: %+v %v", got, err)
			}
			if _, err := st.GetSystem(ctx, 999); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("missing system: %v", err)
			}

			c := store.Connection{Name: "esc", SystemAID: a.ID, SystemBID: bb.ID, Active: true}
			scripts := map[store.Side]map[store.ScriptKind]string{
				store.SideA: {store.KindTrigger: `"todev" in labels`, store.KindOutgoing: "replica.x = 1", store.KindIncoming: ""},
				store.SideB: {store.KindTrigger: "", store.KindOutgoing: "replica.y = 2", store.KindIncoming: "entity.y = replica.y"},
			}
			if err := st.CreateConnection(ctx, &c, scripts, "alice"); err != nil {
				t.Fatal(err)
			}
			if err := st.DeleteSystem(ctx, a.ID); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("delete used system: %v", err)
			}
			v2, err := st.SaveScript(ctx, c.ID, store.SideA, store.KindOutgoing, "replica.x = 2", "bob")
			if err != nil || v2.Version != 2 {
				t.Fatalf("save v2: %+v %v", v2, err)
			}
			same, err := st.SaveScript(ctx, c.ID, store.SideA, store.KindOutgoing, "replica.x = 2", "bob")
			if err != nil || same.ID != v2.ID {
				t.Fatalf("unchanged save made a new version: %+v %v", same, err)
			}
			cur, err := st.CurrentScripts(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if cur[store.SideA][store.KindOutgoing].Source != "replica.x = 2" || cur[store.SideB][store.KindIncoming].Source != "entity.y = replica.y" {
				t.Fatalf("current scripts: %+v", cur)
			}
			hist, _ := st.ScriptHistory(ctx, c.ID, store.SideA, store.KindOutgoing)
			if len(hist) != 2 || hist[0].Author != "bob" || hist[1].Author != "alice" {
				t.Fatalf("history: %+v", hist)
			}

			// Two intakes of one new entity share one twin.
			t1, err := st.EnsureTwin(ctx, c.ID, store.SideA, "7")
			if err != nil {
				t.Fatal(err)
			}
			t2, err := st.EnsureTwin(ctx, c.ID, store.SideA, "7")
			if err != nil || t1.ID != t2.ID {
				t.Fatalf("ensure twin twice: %d %d %v", t1.ID, t2.ID, err)
			}

			// Per-twin order: the second event of a twin waits for the first.
			now := time.Now().UTC()
			t3, _ := st.EnsureTwin(ctx, c.ID, store.SideB, "x")
			evs := []store.SyncEvent{
				{ConnectionID: c.ID, TwinID: t1.ID, Direction: store.AToB, SourceID: "7", Replica: `{"n":1}`, NextAttemptAt: now.Add(time.Hour)},
				{ConnectionID: c.ID, TwinID: t1.ID, Direction: store.AToB, SourceID: "7", Replica: `{"n":2}`},
				{ConnectionID: c.ID, TwinID: t3.ID, Direction: store.BToA, SourceID: "x", Replica: `{"n":3}`},
			}
			if err := st.InsertEvents(ctx, evs); err != nil {
				t.Fatal(err)
			}
			due, err := st.DueEvents(ctx, now.Add(time.Second), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(due) != 1 || due[0].Replica != `{"n":3}` {
				t.Fatalf("due events: %+v", due)
			}
			if err := st.SetActive(ctx, c.ID, false); err != nil {
				t.Fatal(err)
			}
			if due, _ := st.DueEvents(ctx, now.Add(time.Second), 10); len(due) != 0 {
				t.Fatalf("paused connection's events are due: %+v", due)
			}
			if err := st.SetActive(ctx, c.ID, true); err != nil {
				t.Fatal(err)
			}
			evs[0].Status = store.StatusFailed
			if err := st.SaveEvent(ctx, &evs[0]); err != nil {
				t.Fatal(err)
			}
			due, _ = st.DueEvents(ctx, now.Add(time.Second), 10)
			if len(due) != 2 || due[0].Replica != `{"n":2}` {
				t.Fatalf("after failing the first: %+v", due)
			}
			if err := st.RetryEvent(ctx, evs[0].ID); err != nil {
				t.Fatal(err)
			}
			if err := st.RetryEvent(ctx, evs[1].ID); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("retry of a queued event: %v", err)
			}
			counts, _ := st.EventCounts(ctx, c.ID)
			if counts[store.StatusQueued] != 3 {
				t.Fatalf("counts: %v", counts)
			}
			// Rollback leaves nothing behind.
			boom := errors.New("boom")
			err = st.Tx(ctx, func(tx *store.Store) error {
				if err := tx.SetCursor(ctx, a.ID, "moved"); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatal(err)
			}
			got, _ = st.GetSystem(ctx, a.ID)
			if got.Cursor != "" {
				t.Fatalf("cursor survived a rollback: %q", got.Cursor)
			}
		})
	}
}

// Many intakes of one new entity at once (two pollers, two webhooks) end in
// one twin: the unique index decides and the losers read the winner's row.
func TestEnsureTwinConcurrent(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			c := newConnection(t, st)
			const n = 8
			ids := make(chan int64, n)
			errs := make(chan error, n)
			for i := 0; i < n; i++ {
				go func() {
					tw, err := st.EnsureTwin(ctx, c.ID, store.SideA, "42")
					errs <- err
					ids <- tw.ID
				}()
			}
			first := int64(0)
			for i := 0; i < n; i++ {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
				id := <-ids
				if first == 0 {
					first = id
				}
				if id != first || id == 0 {
					t.Fatalf("two twins for one entity: %d and %d", first, id)
				}
			}
			twins, _ := st.ListTwins(ctx, c.ID, 100, 0)
			if len(twins) != 1 {
				t.Fatalf("%d twins", len(twins))
			}
		})
	}
}

// Webhook deliveries recorded at once share a commit (the group commit):
// each delivery id is new exactly once however many requests carry it, and
// a delivery for a system that does not exist fails alone, not its batch.
func TestRecordDeliveryConcurrent(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			a := store.System{Name: "a", Kind: "http"}
			if err := st.CreateSystem(ctx, &a); err != nil {
				t.Fatal(err)
			}
			const ids, copies = 50, 3
			type res struct {
				id    int
				isNew bool
				err   error
			}
			out := make(chan res, ids*copies+1)
			for c := 0; c < copies; c++ {
				for i := 0; i < ids; i++ {
					go func() {
						isNew, err := st.RecordDelivery(ctx, a.ID, fmt.Sprintf("d%d", i), []string{strconv.Itoa(i)}, "")
						out <- res{i, isNew, err}
					}()
				}
			}
			go func() {
				_, err := st.RecordDelivery(ctx, a.ID+1000, "nosystem", []string{"1"}, "")
				out <- res{-1, false, err}
			}()
			news := map[int]int{}
			for n := 0; n < ids*copies+1; n++ {
				r := <-out
				if r.id < 0 {
					if r.err == nil {
						t.Error("a delivery for a missing system was recorded")
					}
					continue
				}
				if r.err != nil {
					t.Fatal(r.err)
				}
				if r.isNew {
					news[r.id]++
				}
			}
			for i := 0; i < ids; i++ {
				if news[i] != 1 {
					t.Errorf("delivery d%d new %d times, want once", i, news[i])
				}
			}
			ds, err := st.ListDeliveries(ctx, a.ID, 1000)
			if err != nil || len(ds) != ids {
				t.Fatalf("%d deliveries recorded (%v), want %d", len(ds), err, ids)
			}
			pending, err := st.PendingDeliveries(ctx, 1000)
			if err != nil || len(pending) != ids {
				t.Fatalf("%d pending (%v), want %d", len(pending), err, ids)
			}
		})
	}
}

// The entities seen of a system with webhooks: a stored time only moves
// forward, and entities carried by a delivery are kept with it.
func TestEntitySeen(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			a := store.System{Name: "a", Kind: "http"}
			if err := st.CreateSystem(ctx, &a); err != nil {
				t.Fatal(err)
			}
			t1 := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
			if err := st.MarkSeen(ctx, a.ID, map[string]time.Time{"1": t1, "2": t1, "zero": {}}); err != nil {
				t.Fatal(err)
			}
			if err := st.MarkSeen(ctx, a.ID, map[string]time.Time{"1": t1.Add(-time.Hour), "2": t1.Add(time.Nanosecond)}); err != nil {
				t.Fatal(err)
			}
			got, err := st.SeenOf(ctx, a.ID, []string{"1", "2", "3", "zero"})
			if err != nil || len(got) != 2 || !got["1"].Equal(t1) || !got["2"].Equal(t1.Add(time.Nanosecond)) {
				t.Fatalf("%v %v", got, err)
			}
			if _, err := st.RecordDelivery(ctx, a.ID, "d", []string{"1"}, `[{"id":"1"}]`); err != nil {
				t.Fatal(err)
			}
			ds, err := st.PendingDeliveries(ctx, 10)
			if err != nil || len(ds) != 1 || ds[0].Entities != `[{"id":"1"}]` {
				t.Fatalf("%+v %v", ds, err)
			}
		})
	}
}

// Deliveries with and without a replay window recorded at once go in one
// group commit (a multi-row statement each): an old done row is re-armed
// once however many copies arrive, a pending one never, and a new delivery
// id is new once.
func TestRecordDeliveryBatchWithReplayWindow(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			a := store.System{Name: "a", Kind: "http"}
			if err := st.CreateSystem(ctx, &a); err != nil {
				t.Fatal(err)
			}
			const window = 100 * time.Millisecond
			for i := 0; i < 20; i++ {
				if _, err := st.RecordDeliveryOnce(ctx, a.ID, fmt.Sprint("w", i), []string{"old"}, "", window); err != nil {
					t.Fatal(err)
				}
			}
			ds, err := st.ListDeliveries(ctx, a.ID, 100)
			if err != nil {
				t.Fatal(err)
			}
			var done []int64
			for _, d := range ds {
				if n, _ := strconv.Atoi(strings.TrimPrefix(d.DeliveryID, "w")); n < 10 {
					done = append(done, d.ID)
				}
			}
			if err := st.FinishDeliveries(ctx, done); err != nil {
				t.Fatal(err)
			}
			time.Sleep(window + 50*time.Millisecond)
			news := map[string]int{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for c := 0; c < 2; c++ {
				for i := 0; i < 20; i++ {
					wg.Add(2)
					go func() {
						defer wg.Done()
						isNew, err := st.RecordDeliveryOnce(ctx, a.ID, fmt.Sprint("w", i), []string{"new"}, "", window)
						if err != nil {
							t.Error(err)
						}
						mu.Lock()
						news[fmt.Sprint("w", i)] += b2i(isNew)
						mu.Unlock()
					}()
					go func() {
						defer wg.Done()
						isNew, err := st.RecordDelivery(ctx, a.ID, fmt.Sprint("p", i), []string{"new"}, "")
						if err != nil {
							t.Error(err)
						}
						mu.Lock()
						news[fmt.Sprint("p", i)] += b2i(isNew)
						mu.Unlock()
					}()
				}
			}
			wg.Wait()
			for i := 0; i < 20; i++ {
				if want := b2i(i < 10); news[fmt.Sprint("w", i)] != want {
					t.Errorf("w%d new %d times, want %d", i, news[fmt.Sprint("w", i)], want)
				}
				if news[fmt.Sprint("p", i)] != 1 {
					t.Errorf("p%d new %d times, want once", i, news[fmt.Sprint("p", i)])
				}
			}
			ds, err = st.ListDeliveries(ctx, a.ID, 100)
			if err != nil || len(ds) != 40 {
				t.Fatalf("%d rows (%v), want 40", len(ds), err)
			}
			for _, d := range ds {
				ids, _ := d.IDs()
				n, _ := strconv.Atoi(strings.TrimLeft(d.DeliveryID, "wp"))
				rearmed := d.DeliveryID[0] == 'p' || n < 10
				if d.Status != store.DeliveryPending || (ids[0] == "new") != rearmed {
					t.Errorf("%s: %s %v", d.DeliveryID, d.Status, ids)
				}
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The SQLite store's durability is the one docs/operations.md describes:
// synchronous=NORMAL unless the DSN asks for FULL, whatever the driver's
// build default.
func TestSQLiteSynchronous(t *testing.T) {
	for dsn, want := range map[string]int{"a.db": 1, "b.db?_synchronous=FULL": 2} {
		st, err := store.Open(context.Background(), t.TempDir()+"/"+dsn)
		if err != nil {
			t.Fatal(err)
		}
		var got int
		if err := st.DB().Raw("PRAGMA synchronous").Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		_ = st.Close()
		if got != want {
			t.Errorf("%s: synchronous=%d, want %d", dsn, got, want)
		}
	}
}

// On SQLite the twin reads of the worker and of intake go to the read
// pool: they see what is committed, and they do not wait for a transaction
// that holds the store's one writing connection.
func TestTwinReadsDoNotWaitForTheWriter(t *testing.T) {
	ctx := context.Background()
	st := testdb.SQLite(t)
	c := newConnection(t, st)
	tw, err := st.EnsureTwin(ctx, c.ID, store.SideA, "42")
	if err != nil {
		t.Fatal(err)
	}
	holding, release := make(chan struct{}), make(chan struct{})
	txDone := make(chan error, 1)
	go func() {
		txDone <- st.Tx(ctx, func(tx *store.Store) error {
			if _, err := tx.EnsureTwin(ctx, c.ID, store.SideA, "43"); err != nil { // uncommitted while held
				return err
			}
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	got, err := st.TwinsByID(rctx, []int64{tw.ID, tw.ID + 1})
	cancel()
	close(release)
	if err != nil {
		t.Fatalf("a twin read while a transaction holds the writer: %v", err)
	}
	if got[tw.ID] == nil || len(got) != 1 {
		t.Fatalf("read %d twins (%v), want the committed one only", len(got), got)
	}
	if err := <-txDone; err != nil {
		t.Fatal(err)
	}
	got, err = st.TwinsByID(ctx, []int64{tw.ID, tw.ID + 1})
	if err != nil || len(got) != 2 {
		t.Fatalf("after the commit: %d twins, %v; want 2", len(got), err)
	}
}

// newConnection makes two sql systems, a and b, and a connection c between
// them, with no scripts.
func newConnection(t *testing.T, st *store.Store) store.Connection {
	t.Helper()
	ctx := context.Background()
	a, b := store.System{Name: "a", Kind: "sql"}, store.System{Name: "b", Kind: "sql"}
	for _, sys := range []*store.System{&a, &b} {
		if err := st.CreateSystem(ctx, sys); err != nil {
			t.Fatal(err)
		}
	}
	c := store.Connection{Name: "c", SystemAID: a.ID, SystemBID: b.ID}
	if err := st.CreateConnection(ctx, &c, nil, "t"); err != nil {
		t.Fatal(err)
	}
	return c
}
