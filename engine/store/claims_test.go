package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// claimFixture is a connection with events queued on a few twins.
type claimFixture struct {
	ctx  context.Context
	st   *store.Store
	conn store.Connection
	sys  [2]int64
	now  time.Time
}

func newClaimFixture(t *testing.T, st *store.Store) *claimFixture {
	t.Helper()
	f := &claimFixture{ctx: context.Background(), st: st, now: time.Now().UTC().Truncate(time.Millisecond)}
	for i, name := range []string{"desk", "tracker"} {
		s := store.System{Name: name, Kind: "sql"}
		if err := st.CreateSystem(f.ctx, &s); err != nil {
			t.Fatal(err)
		}
		f.sys[i] = s.ID
	}
	f.conn = store.Connection{Name: "c", SystemAID: f.sys[0], SystemBID: f.sys[1], Active: true}
	if err := st.CreateConnection(f.ctx, &f.conn, nil, "t"); err != nil {
		t.Fatal(err)
	}
	return f
}

// queue adds one event for entity id of side a, due now, and returns its id.
func (f *claimFixture) queue(t *testing.T, entity string) int64 {
	t.Helper()
	tw, err := f.st.EnsureTwin(f.ctx, f.conn.ID, store.SideA, entity)
	if err != nil {
		t.Fatal(err)
	}
	evs := []store.SyncEvent{{ConnectionID: f.conn.ID, TwinID: tw.ID, Direction: store.AToB, SourceID: entity,
		Replica: "{}", NextAttemptAt: f.now.Add(-time.Second)}}
	if err := f.st.InsertEvents(f.ctx, evs); err != nil {
		t.Fatal(err)
	}
	return evs[0].ID
}

func (f *claimFixture) claim(by string, after time.Duration) store.Claim {
	now := f.now.Add(after)
	return store.Claim{By: by, Now: now, Until: now.Add(30 * time.Second)}
}

func ids(evs []store.SyncEvent) []int64 {
	out := make([]int64, len(evs))
	for i := range evs {
		out[i] = evs[i].ID
	}
	return out
}

// Two processes claiming the same queue: neither takes what the other
// holds, a twin's later event waits for its earlier one, a finished event
// frees its twin, a retry stays with its claimer until released, and a lapsed
// lease is taken over (and counted).
func TestClaimEvents(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			if !f.st.Shared() {
				t.Skip("SQLite: one process per store, so event claims are not written there (its worker leaves out the events in hand by id)")
			}
			e1 := f.queue(t, "1") // twin 1
			e2 := f.queue(t, "1") // twin 1, after e1
			e3 := f.queue(t, "2") // twin 2

			got, taken, err := f.st.ClaimEvents(f.ctx, f.claim("A", 0), 10, nil)
			if err != nil || !slices.Equal(ids(got), []int64{e1, e3}) || taken != 0 {
				t.Fatalf("A claims %v (takeovers %d) %v; want [%d %d]", ids(got), taken, err, e1, e3)
			}
			got, _, err = f.st.ClaimEvents(f.ctx, f.claim("B", 0), 10, nil)
			if err != nil || len(got) != 0 {
				t.Fatalf("B claims %v %v; want nothing (A holds e1 and e3, e2 waits for e1)", ids(got), err)
			}

			// A finishes e1 (done) and e3 (a retry, due again at once).
			ev1, _ := f.st.GetEvent(f.ctx, e1)
			ev1.Status = store.StatusDone
			ev3, _ := f.st.GetEvent(f.ctx, e3)
			ev3.Attempts = 1
			for _, ev := range []*store.SyncEvent{&ev1, &ev3} {
				if err := f.st.SaveEvent(f.ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
			got, _, err = f.st.ClaimEvents(f.ctx, f.claim("B", 0), 10, nil)
			if err != nil || !slices.Equal(ids(got), []int64{e2}) {
				t.Fatalf("B claims %v %v; want [%d] (e1 done; e3 still A's)", ids(got), err, e2)
			}
			got, _, err = f.st.ClaimEvents(f.ctx, f.claim("A", 0), 10, []int64{e1, e3})
			if err != nil || !slices.Equal(ids(got), []int64{e3}) {
				t.Fatalf("A claims %v %v after releasing its batch; want the retry [%d]", ids(got), err, e3)
			}

			// B dies holding e2: after its lease A takes it over.
			got, _, _ = f.st.ClaimEvents(f.ctx, f.claim("A", 29*time.Second), 10, nil)
			if len(got) != 0 {
				t.Fatalf("A claims %v while B's lease holds", ids(got))
			}
			got, taken, err = f.st.ClaimEvents(f.ctx, f.claim("A", 31*time.Second), 10, nil)
			// (A's own lease on e3 lapsed too: it is A's again, no takeover.)
			if err != nil || !slices.Equal(ids(got), []int64{e2, e3}) || taken != 1 {
				t.Fatalf("A claims %v (takeovers %d) %v after B's lease; want [%d %d], 1", ids(got), taken, err, e2, e3)
			}

			// A stops gracefully: what it holds is free for B at once.
			if n, err := f.st.ReleaseClaims(f.ctx, "A"); err != nil || n != 2 {
				t.Fatalf("release: %d %v; want 2 queued events", n, err)
			}
			got, taken, err = f.st.ClaimEvents(f.ctx, f.claim("B", 31*time.Second), 10, nil)
			if err != nil || !slices.Equal(ids(got), []int64{e2, e3}) || taken != 0 {
				t.Fatalf("B claims %v (takeovers %d) %v after A released; want [%d %d]", ids(got), taken, err, e2, e3)
			}
		})
	}
}

// Many processes claiming at once (PostgreSQL: FOR UPDATE SKIP LOCKED) never
// take one event twice, and every twin's events come out one at a time.
func TestClaimEventsConcurrent(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			if !f.st.Shared() {
				t.Skip("SQLite: one process per store, so event claims are not written there (its worker leaves out the events in hand by id)")
			}
			const twins, perTwin = 40, 3
			for i := 0; i < perTwin; i++ {
				for tw := 0; tw < twins; tw++ {
					f.queue(t, fmt.Sprint(tw))
				}
			}
			var (
				mu    sync.Mutex
				seen  = map[int64]string{}
				twin  = map[int64]int{}
				wg    sync.WaitGroup
				twice []string
			)
			for p := 0; p < 6; p++ {
				wg.Add(1)
				go func(by string) {
					defer wg.Done()
					got, _, err := f.st.ClaimEvents(f.ctx, f.claim(by, 0), 15, nil)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					for _, ev := range got {
						if other, ok := seen[ev.ID]; ok {
							twice = append(twice, fmt.Sprintf("event %d by %s and %s", ev.ID, other, by))
						}
						seen[ev.ID] = by
						twin[ev.TwinID]++
					}
				}(fmt.Sprint("P", p))
			}
			wg.Wait()
			if len(twice) > 0 {
				t.Fatalf("claimed twice: %v", twice)
			}
			for id, n := range twin {
				if n > 1 {
					t.Fatalf("twin %d: %d events claimed at once", id, n)
				}
			}
			if len(seen) != twins {
				t.Fatalf("claimed %d events; want one per twin, %d", len(seen), twins)
			}
		})
	}
}

// One poller per system: the lease holder renews, another process is
// refused until the lease lapses, then takes over; a released lease is free.
func TestPollerLease(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			sys := f.sys[0]
			check := func(by string, after time.Duration, wantHeld bool, wantPrev string) {
				t.Helper()
				held, prev, err := f.st.LeasePoller(f.ctx, sys, f.claim(by, after))
				if err != nil || held != wantHeld || prev != wantPrev {
					t.Fatalf("%s at +%s: held=%v prev=%q %v; want %v %q", by, after, held, prev, err, wantHeld, wantPrev)
				}
			}
			check("A", 0, true, "")
			check("B", time.Second, false, "")
			check("A", 10*time.Second, true, "") // renewed until +40 s
			check("B", 35*time.Second, false, "")
			check("B", 41*time.Second, true, "A") // A died: B takes over
			check("A", 42*time.Second, false, "")
			if _, err := f.st.ReleaseClaims(f.ctx, "B"); err != nil {
				t.Fatal(err)
			}
			check("A", 43*time.Second, true, "")
		})
	}
}

// TestPollerLeaseHeldElsewhereDoesNotWait: another process's check of a
// lease it does not hold is answered while the holder's poll transaction,
// which updates the same row (the cursor), is still open.
func TestPollerLeaseHeldElsewhereDoesNotWait(t *testing.T) {
	st := testdb.Postgres(t) // SQLite: one process, one connection
	f := newClaimFixture(t, st)
	sys := f.sys[0]
	if held, _, err := st.LeasePoller(f.ctx, sys, f.claim("A", 0)); err != nil || !held {
		t.Fatalf("A: held=%v %v", held, err)
	}
	polling, done := make(chan struct{}), make(chan struct{})
	go func() {
		_ = st.Tx(f.ctx, func(tx *store.Store) error {
			if err := tx.SetCursor(f.ctx, sys, "A's poll"); err != nil {
				t.Error(err)
			}
			close(polling)
			<-done // A's poll goes on while B checks
			return nil
		})
	}()
	<-polling
	ctx, cancel := context.WithTimeout(f.ctx, 2*time.Second)
	held, _, err := st.LeasePoller(ctx, sys, f.claim("B", time.Second))
	cancel()
	close(done)
	if err != nil || held {
		t.Fatalf("B, while A polls: held=%v %v; want not held, at once", held, err)
	}
}

// Webhook deliveries and backfill jobs: one process at a time.
func TestClaimDeliveriesAndBackfills(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			for i := 0; i < 3; i++ {
				if _, err := f.st.RecordDelivery(f.ctx, f.sys[0], fmt.Sprint("d", i), []string{"1"}, ""); err != nil {
					t.Fatal(err)
				}
			}
			a, err := f.st.ClaimDeliveries(f.ctx, f.claim("A", 0), 2, nil)
			if err != nil || len(a) != 2 {
				t.Fatalf("A: %d deliveries %v; want 2", len(a), err)
			}
			bs, err := f.st.ClaimDeliveries(f.ctx, f.claim("B", 0), 10, nil)
			if err != nil || len(bs) != 1 || bs[0].ID == a[0].ID || bs[0].ID == a[1].ID {
				t.Fatalf("B: %+v %v; want the third delivery only", bs, err)
			}
			if err := f.st.FinishDelivery(f.ctx, a[0].ID, nil, 8); err != nil {
				t.Fatal(err)
			}
			again, err := f.st.ClaimDeliveries(f.ctx, f.claim("A", 0), 10, []int64{a[0].ID, a[1].ID})
			if err != nil || len(again) != 1 || again[0].ID != a[1].ID {
				t.Fatalf("A after its round: %+v %v; want its pending delivery %d again", again, err, a[1].ID)
			}
			late, err := f.st.ClaimDeliveries(f.ctx, f.claim("A", 31*time.Second), 10, nil)
			if err != nil || len(late) != 2 {
				t.Fatalf("A after B's lease: %d %v; want 2 (its own and B's)", len(late), err)
			}

			job, err := f.st.StartBackfill(f.ctx, f.conn.ID, store.SideA)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				by    string
				after time.Duration
				want  int
			}{{"A", 0, 1}, {"B", 0, 0}, {"A", 20 * time.Second, 1}, {"B", 45 * time.Second, 0}, {"B", 51 * time.Second, 1}, {"A", 52 * time.Second, 0}} {
				jobs, err := f.st.ClaimBackfills(f.ctx, f.claim(c.by, c.after))
				if err != nil || len(jobs) != c.want || (c.want == 1 && jobs[0].ID != job.ID) {
					t.Fatalf("%s at +%s: %d jobs %v; want %d", c.by, c.after, len(jobs), err, c.want)
				}
			}
		})
	}
}

// An event whose claim another process took over (the holder's lease
// lapsed) is not recorded by its former holder, and renewing or releasing
// it does nothing; its holder still records it.
func TestSaveClaimedEventAfterTakeover(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			e1, e2 := f.queue(t, "1"), f.queue(t, "2")
			got, _, err := f.st.ClaimEvents(f.ctx, f.claim("A", 0), 10, nil)
			if err != nil || len(got) != 2 {
				t.Fatalf("claim: %v %v", got, err)
			}
			if !f.st.Shared() {
				held, err := f.st.SaveClaimedEvent(f.ctx, &got[0], "A")
				if err != nil || !held {
					t.Fatalf("sqlite: held=%v err=%v", held, err)
				}
				return
			}
			// A's lease lapses; B takes both over.
			taken, n, err := f.st.ClaimEvents(f.ctx, f.claim("B", 31*time.Second), 10, nil)
			if err != nil || len(taken) != 2 || n != 2 {
				t.Fatalf("takeover: %v %d %v", taken, n, err)
			}
			if err := f.st.RenewEvents(f.ctx, f.claim("A", 32*time.Second), []int64{e1, e2}); err != nil {
				t.Fatal(err)
			}
			lost, err := f.st.LostClaims(f.ctx, []int64{e1, e2}, "A")
			if err != nil || !lost[e1] || !lost[e2] {
				t.Fatalf("lost claims: %v %v", lost, err)
			}
			ev := got[0]
			ev.Status = store.StatusDone
			held, err := f.st.SaveClaimedEvent(f.ctx, &ev, "A")
			if err != nil || held {
				t.Fatalf("A recorded an event B holds: held=%v err=%v", held, err)
			}
			if cur, _ := f.st.GetEvent(f.ctx, ev.ID); cur.Status != store.StatusQueued {
				t.Fatalf("status %s, want queued", cur.Status)
			}
			if held, err = f.st.SaveClaimedEvent(f.ctx, &ev, "B"); err != nil || !held {
				t.Fatalf("B: held=%v err=%v", held, err)
			}
			// Recorded, e1's claim is done with (cleared by the save, not
			// by a later release); e2 is still B's.
			if cur, _ := f.st.GetEvent(f.ctx, ev.ID); cur.Status != store.StatusDone {
				t.Fatalf("status %s after B's save, want done", cur.Status)
			}
			if lost, _ := f.st.LostClaims(f.ctx, []int64{e1, e2}, "B"); !lost[e1] || lost[e2] {
				t.Fatalf("B's claims after its save of e1: lost %v, want e1 only", lost)
			}
		})
	}
}

// A worker claiming more while it still has events in hand: the busy events
// (and, through them, their twins' later events) and busy connections are
// left out, on SQLite where nothing marks them claimed too.
func TestClaimEventsExcept(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			e1 := f.queue(t, "1")
			e2 := f.queue(t, "1") // after e1, same twin
			e3 := f.queue(t, "2")
			got, _, err := f.st.ClaimEventsExcept(f.ctx, f.claim("A", 0), 10, nil, store.Busy{Events: []int64{e1}})
			if err != nil || !slices.Equal(ids(got), []int64{e3}) {
				t.Fatalf("claims %v %v; want [%d]: e1 busy, e2 waits for it", ids(got), err, e3)
			}
			if _, err := f.st.ReleaseClaims(f.ctx, "A"); err != nil {
				t.Fatal(err)
			}
			got, _, err = f.st.ClaimEventsExcept(f.ctx, f.claim("A", 0), 10, nil, store.Busy{Connections: []int64{f.conn.ID}})
			if err != nil || len(got) != 0 {
				t.Fatalf("claims %v %v; want nothing of a busy connection", ids(got), err)
			}
			got, _, err = f.st.ClaimEventsExcept(f.ctx, f.claim("A", 0), 10, nil, store.Busy{Connections: []int64{f.conn.ID + 1000}})
			if err != nil || !slices.Equal(ids(got), []int64{e1, e3}) {
				t.Fatalf("claims %v %v; want [%d %d]", ids(got), err, e1, e3)
			}
			_ = e2
		})
	}
}

// Deliveries of several systems are claimed oldest first across them, a
// busy system's are passed however many wait, and the limit keeps the
// oldest of all (the claim reads per system: it must still pick the same
// deliveries one ordered query over all systems would).
func TestClaimDeliveriesAcrossSystems(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			third := store.System{Name: "third", Kind: "sql"}
			if err := f.st.CreateSystem(f.ctx, &third); err != nil {
				t.Fatal(err)
			}
			// Interleaved: desk, tracker, third, desk, tracker, third, ...
			var all []int64
			bySys := map[int64][]int64{}
			for i := 0; i < 12; i++ {
				sys := []int64{f.sys[0], f.sys[1], third.ID}[i%3]
				if _, err := f.st.RecordDelivery(f.ctx, sys, fmt.Sprint("d", i), []string{"1"}, ""); err != nil {
					t.Fatal(err)
				}
			}
			ds, err := f.st.PendingDeliveries(f.ctx, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				all = append(all, d.ID)
				bySys[d.SystemID] = append(bySys[d.SystemID], d.ID)
			}
			dids := func(ds []store.WebhookDelivery) []int64 {
				out := make([]int64, len(ds))
				for i := range ds {
					out[i] = ds[i].ID
				}
				return out
			}
			got, err := f.st.ClaimDeliveriesExcept(f.ctx, f.claim("A", 0), 5, nil, nil)
			if err != nil || !slices.Equal(dids(got), all[:5]) {
				t.Fatalf("no system busy: %v %v; want the 5 oldest %v", dids(got), err, all[:5])
			}
			want := append(append([]int64(nil), bySys[f.sys[1]]...), bySys[third.ID]...)
			slices.Sort(want)
			got, err = f.st.ClaimDeliveriesExcept(f.ctx, f.claim("B", 0), 4, nil, []int64{f.sys[0]})
			var free []int64
			for _, id := range want {
				if !slices.Contains(all[:5], id) {
					free = append(free, id)
				}
			}
			if err != nil || !slices.Equal(dids(got), free[:4]) {
				t.Fatalf("desk busy: %v %v; want the 4 oldest unclaimed of the others %v", dids(got), err, free[:4])
			}
			got, err = f.st.ClaimDeliveriesExcept(f.ctx, f.claim("C", 0), 10, nil, []int64{f.sys[0], f.sys[1], third.ID})
			if err != nil || len(got) != 0 {
				t.Fatalf("every system busy: %v %v; want none", dids(got), err)
			}
		})
	}
}

// With a busy connection the claim reads the other connections one by one:
// still oldest first across them, a twin's later event still waits for its
// earlier one, and the limit keeps the oldest.
func TestClaimEventsPassingBusyConnections(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			busyConn := f.conn
			others := []store.Connection{{Name: "d", SystemAID: f.sys[0], SystemBID: f.sys[1], Active: true},
				{Name: "e", SystemAID: f.sys[0], SystemBID: f.sys[1], Active: true}}
			for i := range others {
				if err := f.st.CreateConnection(f.ctx, &others[i], nil, "t"); err != nil {
					t.Fatal(err)
				}
			}
			var want []int64
			for i := 0; i < 4; i++ {
				f.conn = busyConn
				f.queue(t, fmt.Sprint("b", i))
				for j, c := range others {
					f.conn = c
					id := f.queue(t, fmt.Sprint("o", j, i%2)) // two twins per connection
					if i < 2 {
						want = append(want, id) // each twin's earliest only
					}
				}
			}
			got, _, err := f.st.ClaimEventsExcept(f.ctx, f.claim("A", 0), 10, nil, store.Busy{Connections: []int64{busyConn.ID}})
			if err != nil || !slices.Equal(ids(got), want) {
				t.Fatalf("claims %v %v; want %v", ids(got), err, want)
			}
			if _, err := f.st.ReleaseClaims(f.ctx, "A"); err != nil { // PostgreSQL's claims are recorded
				t.Fatal(err)
			}
			got, _, err = f.st.ClaimEventsExcept(f.ctx, f.claim("A", 0), 3, nil, store.Busy{Connections: []int64{busyConn.ID}})
			if err != nil || !slices.Equal(ids(got), want[:3]) {
				t.Fatalf("limit 3: claims %v %v; want %v", ids(got), err, want[:3])
			}
			if _, err := f.st.ReleaseClaims(f.ctx, "A"); err != nil {
				t.Fatal(err)
			}
			got, _, err = f.st.ClaimEventsExcept(f.ctx, f.claim("A", 0), 10, nil,
				store.Busy{Connections: []int64{busyConn.ID, others[1].ID}, Events: []int64{want[0]}})
			if err != nil || !slices.Equal(ids(got), []int64{want[2]}) {
				t.Fatalf("one connection left, its first event held: claims %v %v; want [%d]", ids(got), err, want[2])
			}
		})
	}
}

// SaveClaimedEvents writes a batch's events in one statement, every field
// as SaveEvent would, and on PostgreSQL only those whose claim the writer
// still holds: the others come back as lost and keep their row.
func TestSaveClaimedEvents(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			for i := 0; i < 4; i++ {
				f.queue(t, fmt.Sprint(i))
			}
			got, _, err := f.st.ClaimEvents(f.ctx, f.claim("A", 0), 10, nil)
			if err != nil || len(got) != 4 {
				t.Fatalf("claim: %v %v", got, err)
			}
			conflicts := `[{"field":"title"}]`
			next := f.now.Add(time.Hour)
			evs := make([]*store.SyncEvent, len(got))
			for i := range got {
				ev := &got[i]
				ev.Status, ev.Attempts, ev.TotalAttempts, ev.NextAttemptAt = store.StatusQueued, i+1, i+2, next
				ev.LastError, ev.Log, ev.Replica = fmt.Sprint("err ", i), fmt.Sprint("log ", i), fmt.Sprintf(`{"n":%d}`, i)
				if i == 1 {
					ev.Status, ev.Conflicts = store.StatusConflict, &conflicts
				}
				evs[i] = ev
			}
			stolen := got[3].ID
			if f.st.Shared() { // another process holds the last one now
				if err := f.st.DB().Exec(`UPDATE sync_events SET claimed_by = 'B' WHERE id = ?`, stolen).Error; err != nil {
					t.Fatal(err)
				}
			}
			lost, err := f.st.SaveClaimedEvents(f.ctx, evs, "A")
			if err != nil {
				t.Fatal(err)
			}
			if f.st.Shared() && !slices.Equal(lost, []int64{stolen}) {
				t.Fatalf("lost %v, want [%d]", lost, stolen)
			} else if !f.st.Shared() && len(lost) != 0 {
				t.Fatalf("sqlite: lost %v", lost)
			}
			for i, ev := range evs {
				cur, err := f.st.GetEvent(f.ctx, ev.ID)
				if err != nil {
					t.Fatal(err)
				}
				if f.st.Shared() && ev.ID == stolen {
					if cur.Attempts != 0 || cur.Log != "" {
						t.Errorf("event %d held by B was written: %+v", ev.ID, cur)
					}
					continue
				}
				if cur.Status != ev.Status || cur.Attempts != i+1 || cur.TotalAttempts != i+2 || !cur.NextAttemptAt.Equal(next) ||
					cur.LastError != ev.LastError || cur.Log != ev.Log || cur.Replica != ev.Replica ||
					(ev.Conflicts == nil) != (cur.Conflicts == nil) || (ev.Conflicts != nil && *cur.Conflicts != conflicts) {
					t.Errorf("event %d stored as %+v, want %+v", ev.ID, cur, *ev)
				}
			}
		})
	}
}

// SaveTwins writes a batch of twins in one statement with the same outcome,
// twin by twin and side by side, as SaveTwinWithSource one at a time: each
// case of a written hash (always, checked and still valid, checked and
// overtaken by a person's change) and of the source's hash (its replica
// still the last sent, or not).
func TestSaveTwinsMatchesOneByOne(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			sent, other := "sent", "other"
			base := `{"f":{}}`
			type tc struct {
				hashes []store.WrittenHash
				src    *store.SourceHash
			}
			cases := []tc{
				{},
				{hashes: []store.WrittenHash{{Side: store.SideB, Hash: "hb", Always: true}}},
				{hashes: []store.WrittenHash{{Side: store.SideB, Hash: "hb", WasHash: "old-b", WasSent: &sent}}},
				{hashes: []store.WrittenHash{{Side: store.SideB, Hash: "hb", WasHash: "old-b", WasSent: &other}}},
				{hashes: []store.WrittenHash{{Side: store.SideB, Hash: "hb", WasHash: "changed", WasSent: &sent}}},
				{src: &store.SourceHash{Side: store.SideA, Hash: "ha", Direction: store.AToB, Replica: sent}},
				{src: &store.SourceHash{Side: store.SideA, Hash: "ha", Direction: store.AToB, Replica: other}},
				{hashes: []store.WrittenHash{{Side: store.SideB, Hash: "hb", WasHash: "old-b", WasSent: &sent}},
					src: &store.SourceHash{Side: store.SideA, Hash: "ha", Direction: store.AToB, Replica: sent}},
				{hashes: []store.WrittenHash{{Side: store.SideA, Hash: "ha2", WasHash: "old-a", WasSent: &sent}}},
			}
			twin := func(id string) store.Twin {
				t.Helper()
				tw, err := f.st.EnsureTwin(f.ctx, f.conn.ID, store.SideA, id)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.st.DB().Exec(`UPDATE twins SET a_hash = 'old-a', b_hash = 'old-b', sent_ab = ?, sent_ba = ? WHERE id = ?`,
					sent, sent, tw.ID).Error; err != nil {
					t.Fatal(err)
				}
				tw.BID, tw.BaseB, tw.CommentLinks = &id, &base, `{"x":"y"}`
				return tw
			}
			var saves []store.TwinSave
			pairs := make([][2]int64, len(cases))
			for i, c := range cases {
				one, many := twin(fmt.Sprint("one", i)), twin(fmt.Sprint("many", i))
				if err := f.st.SaveTwinWithSource(f.ctx, &one, c.hashes, c.src); err != nil {
					t.Fatal(err)
				}
				saves = append(saves, store.TwinSave{Twin: &many, Hashes: c.hashes, Src: c.src})
				pairs[i] = [2]int64{one.ID, many.ID}
			}
			ids := make([]int64, len(saves))
			for i, s := range saves {
				ids[i] = s.Twin.ID
			}
			err := f.st.Tx(f.ctx, func(tx *store.Store) error {
				if err := tx.LockTwins(f.ctx, ids); err != nil {
					return err
				}
				return tx.SaveTwins(f.ctx, saves)
			})
			if err != nil {
				t.Fatal(err)
			}
			byID, err := f.st.TwinsByID(f.ctx, append(ids, func() []int64 {
				var out []int64
				for _, p := range pairs {
					out = append(out, p[0])
				}
				return out
			}()...))
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range pairs {
				one, many := byID[p[0]], byID[p[1]]
				if one.AHash != many.AHash || one.BHash != many.BHash || *many.BaseB != base || many.CommentLinks != one.CommentLinks {
					t.Errorf("case %d: one by one a=%q b=%q, in a batch a=%q b=%q base %v links %q", i,
						one.AHash, one.BHash, many.AHash, many.BHash, many.BaseB, many.CommentLinks)
				}
			}
		})
	}
}

// An event queued claimed (an intake's hand-over to its worker) is taken by
// no claim round while its lease holds, not even its claimer's, and keeps a
// later event of its twin waiting; its lease lapsed, it is taken over. Read
// back, it is what the insert left in hand. Saved as done on SQLite, its
// claim is gone with it.
func TestInsertEventsClaimed(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			tw, err := f.st.EnsureTwin(f.ctx, f.conn.ID, store.SideA, "1")
			if err != nil {
				t.Fatal(err)
			}
			other, err := f.st.EnsureTwin(f.ctx, f.conn.ID, store.SideA, "2")
			if err != nil {
				t.Fatal(err)
			}
			at := time.Now().Add(-time.Second) // a monotonic reading, nanoseconds
			evs := []store.SyncEvent{
				{ConnectionID: f.conn.ID, TwinID: tw.ID, Direction: store.AToB, SourceID: "1", Replica: `{"n":1}`, CreatedAt: at, SourceUpdatedAt: &at},
				{ConnectionID: f.conn.ID, TwinID: other.ID, Direction: store.AToB, SourceID: "2", Replica: `{"n":2}`, CreatedAt: at},
			}
			a := store.Claim{By: "A", Now: time.Now(), Until: time.Now().Add(30 * time.Second)}
			if err := f.st.InsertEventsClaimed(f.ctx, evs, []bool{true, false}, a); err != nil {
				t.Fatal(err)
			}
			if evs[0].ID == 0 || evs[1].ID == 0 {
				t.Fatalf("ids not set: %d %d", evs[0].ID, evs[1].ID)
			}
			later := f.queue(t, "1") // the twin's next change
			got, err := f.st.GetEvent(f.ctx, evs[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.CreatedAt.Equal(evs[0].CreatedAt) || !got.NextAttemptAt.Equal(evs[0].NextAttemptAt) ||
				!got.SourceUpdatedAt.Equal(*evs[0].SourceUpdatedAt) || got.CreatedAt != evs[0].CreatedAt.In(got.CreatedAt.Location()) {
				t.Fatalf("read back %v %v %v, in hand %v %v %v", got.CreatedAt, got.NextAttemptAt, *got.SourceUpdatedAt,
					evs[0].CreatedAt, evs[0].NextAttemptAt, *evs[0].SourceUpdatedAt)
			}
			for _, by := range []string{"A", "B"} {
				due, _, err := f.st.ClaimEvents(f.ctx, f.claim(by, 2*time.Second), 10, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(due); !slices.Equal(got, []int64{evs[1].ID}) {
					t.Fatalf("claim by %s took %v, want only the unclaimed event %d (handed %d, its twin's next %d)",
						by, got, evs[1].ID, evs[0].ID, later)
				}
				if f.st.Shared() {
					break // B's claim now holds evs[1]
				}
			}
			if f.st.Shared() {
				due, taken, err := f.st.ClaimEvents(f.ctx, f.claim("B", time.Minute), 10, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(ids(due), evs[0].ID) || taken < 1 {
					t.Fatalf("after the lease: took %v (%d taken over), want %d among them", ids(due), taken, evs[0].ID)
				}
				return
			}
			evs[0].Status = store.StatusDone
			if _, err := f.st.SaveClaimedEvents(f.ctx, []*store.SyncEvent{&evs[0]}, "A"); err != nil {
				t.Fatal(err)
			}
			var claimed int64
			if err := f.st.DB().Raw(`SELECT COUNT(*) FROM sync_events WHERE claimed_by IS NOT NULL`).Scan(&claimed).Error; err != nil {
				t.Fatal(err)
			}
			if claimed != 0 {
				t.Fatalf("%d events still claimed after the handed one was saved", claimed)
			}
			due, _, err := f.st.ClaimEvents(f.ctx, f.claim("A", 2*time.Second), 10, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(ids(due), later) {
				t.Fatalf("the twin's next event %d not taken once the handed one is done: %v", later, ids(due))
			}
		})
	}
}

// TestClaimReadsTheQueueInOrder: a claim reads the due events in id order
// through an index and stops at its limit, even when the table's
// statistics are from before the queue grew (analysed at 10 events). With
// them, PostgreSQL's planner read every due event, joined and sorted them
// all to take the first few: 9-30 ms a claim with 1,200 queued.
func TestClaimReadsTheQueueInOrder(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			for i := 0; i < 1000; i++ {
				if i == 10 { // the statistics see a short queue
					if err := f.st.DB().Exec("ANALYZE").Error; err != nil {
						t.Fatal(err)
					}
				}
				f.queue(t, fmt.Sprint("e", i))
			}
			plan, err := f.st.ExplainClaim(f.ctx, f.now, 50)
			if err != nil {
				t.Fatal(err)
			}
			// In id order: the queue's index, or (PostgreSQL, when its
			// statistics say most events are queued) the primary key.
			inOrder := strings.Contains(plan, "sync_events_queue") || strings.Contains(plan, "Index Scan using sync_events_pkey on sync_events e")
			if !inOrder || strings.Contains(plan, "Sort") || strings.Contains(plan, "TEMP B-TREE") {
				t.Fatalf("the claim does not read the queue in order:\n%s", plan)
			}
		})
	}
}

// A delivery recorded for the process that takes it in itself goes in
// claimed and comes back with its id: no other claimer takes it while the
// claim holds, anyone does once it lapses (its process died), and a
// duplicate comes back as no row. Rows that went in otherwise are pending
// for any claimer, as before.
func TestDeliveryRecordedClaimed(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			mine := f.claim("A", 0)
			d, isNew, err := f.st.RecordDeliveryClaimed(f.ctx, f.sys[0], "d1", []string{"7"}, "", 0, mine)
			if err != nil || !isNew || d.ID == 0 || d.SystemID != f.sys[0] || d.DeliveryID != "d1" || d.Status != store.DeliveryPending {
				t.Fatalf("recorded: %+v new=%v %v; want a new pending row with its id", d, isNew, err)
			}
			if ids, err := d.IDs(); err != nil || !slices.Equal(ids, []string{"7"}) {
				t.Fatalf("entity ids %v %v", ids, err)
			}
			again, isNew, err := f.st.RecordDeliveryClaimed(f.ctx, f.sys[0], "d1", []string{"7"}, "", 0, mine)
			if err != nil || isNew || again.ID != 0 {
				t.Fatalf("the duplicate: %+v new=%v %v; want no row", again, isNew, err)
			}
			if _, err := f.st.RecordDelivery(f.ctx, f.sys[0], "d2", []string{"8"}, ""); err != nil {
				t.Fatal(err)
			}
			got, err := f.st.ClaimDeliveriesExcept(f.ctx, f.claim("B", time.Second), 10, nil, nil)
			if err != nil || len(got) != 1 || got[0].DeliveryID != "d2" {
				t.Fatalf("another claimer while the claim holds: %+v %v; want only d2", got, err)
			}
			got, err = f.st.ClaimDeliveriesExcept(f.ctx, f.claim("B", time.Minute), 10, nil, nil)
			if err != nil || len(got) != 2 || got[0].ID != d.ID {
				t.Fatalf("after the claim lapsed: %+v %v; want d1 (and d2, B's own lapsed too)", got, err)
			}
			// The sender gone before the commit: the claimed row still comes
			// back, to be handed over (else it would wait for its lease).
			gone, cancel := context.WithCancel(f.ctx)
			cancel()
			d3, isNew, err := f.st.RecordDeliveryClaimed(gone, f.sys[0], "d3", []string{"9"}, "", 0, mine)
			if err != nil || !isNew || d3.ID == 0 {
				t.Fatalf("recorded for a sender that left: %+v new=%v %v; want the row", d3, isNew, err)
			}
		})
	}
}

// TestQueueReadsUseThePartialIndexes: the queue's indexes hold only
// queued events and pending deliveries (migration 00032); every claim's
// read must still be served by one, on both stores, and the finished rows
// (most of a long-running store) must stay out of what the reads return.
func TestQueueReadsUseThePartialIndexes(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			var queued []int64
			for i := 0; i < 300; i++ {
				id := f.queue(t, fmt.Sprint("e", i))
				if _, err := f.st.RecordDelivery(f.ctx, f.sys[0], fmt.Sprint("d", i), []string{fmt.Sprint(i)}, ""); err != nil {
					t.Fatal(err)
				}
				if i%50 == 49 {
					queued = append(queued, id)
				}
			}
			// The rest is history.
			db := f.st.DB()
			for _, err := range []error{
				db.Exec(`UPDATE sync_events SET status = 'done' WHERE id NOT IN ?`, queued).Error,
				db.Exec(`UPDATE webhook_deliveries SET status = 'done' WHERE delivery_id NOT IN ('d49', 'd99', 'd149')`).Error,
				db.Exec(`ANALYZE`).Error,
			} {
				if err != nil {
					t.Fatal(err)
				}
			}
			plans, err := store.QueueReadPlans(f.ctx, f.st, f.now)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range plans {
				// SQLite's planner is told or takes the index; PostgreSQL's
				// picks among those that can serve the read by cost, and
				// with sequential scans off shows one only where none can.
				bad := !strings.Contains(p.Plan, p.Index)
				if b.Name != "sqlite" {
					bad = strings.Contains(p.Plan, "Seq Scan") || strings.Contains(p.Plan, "Sort")
				}
				if bad {
					t.Errorf("a read that %s should serve is not served by an index:\n%s", p.Index, p.Plan)
				}
			}

			pending, err := f.st.PendingDeliveries(f.ctx, 10)
			if err != nil || len(pending) != 3 || pending[0].DeliveryID != "d49" || pending[2].DeliveryID != "d149" {
				t.Fatalf("pending deliveries %+v %v; want d49, d99, d149", pending, err)
			}
			got, err := f.st.ClaimDeliveriesExcept(f.ctx, f.claim("A", 0), 10, nil, nil)
			if err != nil || len(got) != 3 {
				t.Fatalf("claimed deliveries %+v %v; want the three pending", got, err)
			}
			evs, _, err := f.st.ClaimEvents(f.ctx, f.claim("A", 0), 10, nil)
			if err != nil || !slices.Equal(ids(evs), queued) {
				t.Fatalf("claimed events %v %v; want %v", ids(evs), err, queued)
			}
		})
	}
}
