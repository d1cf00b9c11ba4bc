package engine_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
	"github.com/duplexsync/duplex/connectors/sqlconn"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/demo"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
)

// crowd holds each write to the system behind it until want writes are
// held at once (or a few seconds passed), and remembers the most it held.
type crowd struct {
	next      http.Handler
	want      int
	full      chan struct{}
	held      chan struct{} // closed at the first write
	once      sync.Once
	first     sync.Once
	mu        sync.Mutex
	now, peak int
}

func (c *crowd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		c.mu.Lock()
		c.now++
		c.peak = max(c.peak, c.now)
		c.first.Do(func() { close(c.held) })
		if c.now >= c.want {
			c.once.Do(func() { close(c.full) })
		}
		c.mu.Unlock()
		select {
		case <-c.full:
		case <-time.After(3 * time.Second): // the lane is narrower: the peak tells
		}
		c.mu.Lock()
		c.now--
		c.mu.Unlock()
	}
	c.next.ServeHTTP(w, r)
}

// A slow target is written to by up to InFlight events of one connection at
// once, not Workers; a system with a rate limit bounds that to its burst.
// Either way each twin's changes stay in order: an edit queued while its
// create is held waits for it (one item per ticket, the last title).
func TestSlowTargetManyInFlight(t *testing.T) {
	cases := []struct {
		name        string
		rate        float64
		burst, want int
	}{
		{"no rate limit: InFlight", 0, 0, 8},
		{"rate limit: its burst", 1000, 3, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			items := &itemStore{items: map[string]*item{}}
			c := &crowd{next: items, want: tc.want, full: make(chan struct{}), held: make(chan struct{})}
			srv := httptest.NewServer(c)
			defer srv.Close()
			st, support := slowTargetFixture(t, tc.rate, tc.burst)
			const tickets = 12
			addTodev(t, support, tickets)
			defer runSlowTarget(t, st, slowTargetRegistry(srv.URL), engine.Options{InFlight: 8})()

			select {
			case <-c.held:
			case <-time.After(30 * time.Second):
				t.Fatal("the slow system never held a write")
			}
			// Edits of held tickets wait for their creates.
			if _, err := support.Exec(`UPDATE tickets SET subject = subject || ' edited' WHERE subject IN ('t0', 't1')`); err != nil {
				t.Fatal(err)
			}
			titles := func() map[string]int {
				items.mu.Lock()
				defer items.mu.Unlock()
				m := map[string]int{}
				for _, it := range items.items {
					m[it.Title]++
				}
				return m
			}
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				got := titles()
				queued, err := st.ListEvents(ctx, store.EventFilter{Status: store.StatusQueued})
				if err == nil && len(queued) == 0 && got["t0 edited"] == 1 && got["t1 edited"] == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not applied after 30 s: %v", got)
				}
			}
			got := titles()
			if len(items.items) != tickets || got["t0"] != 0 || got["t1"] != 0 {
				t.Fatalf("items %v, want %d, one per ticket, the edits last", got, tickets)
			}
			c.mu.Lock()
			peak := c.peak
			c.mu.Unlock()
			if peak != tc.want {
				t.Fatalf("at most %d writes of the connection at once, want %d", peak, tc.want)
			}
			if failed, _ := st.ListEvents(ctx, store.EventFilter{Status: store.StatusFailed}); len(failed) != 0 {
				t.Fatalf("failed events: %+v", failed)
			}
		})
	}
}

func testBox(t *testing.T) *secret.Box {
	t.Helper()
	box, err := secret.LoadOrCreate(t.TempDir() + "/k")
	if err != nil {
		t.Fatal(err)
	}
	return box
}

func slowTargetRegistry(base string) *connectors.Registry {
	reg := connectors.NewRegistry()
	_ = reg.Register("sql", sqlconn.New)
	_ = reg.Register("slow", func(context.Context, connectors.Config) (connectors.Connector, error) {
		return itemsConn{&httpx.Client{Base: base, Timeout: time.Minute}}, nil
	})
	return reg
}

// slowTargetFixture is the demo's support desk (no ticket matching yet)
// connected one way to the slow item system, whose budget is rate/burst.
func slowTargetFixture(t *testing.T, rate float64, burst int) (*store.Store, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	st := testdb.SQLite(t)
	paths, err := demo.CreateDatabases(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(demo.SupportSettings(paths.Support))
	desk := store.System{Name: "desk", Kind: "sql", Settings: string(raw), PollIntervalMS: 100}
	slow := store.System{Name: "slow", Kind: "slow", Settings: "{}", PollIntervalMS: 100, RatePerSecond: rate, RateBurst: burst}
	for _, s := range []*store.System{&desk, &slow} {
		if err := st.CreateSystem(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	scripts := map[store.Side]map[store.ScriptKind]string{
		store.SideA: {store.KindTrigger: `"todev" in labels`, store.KindOutgoing: "replica.title = entity.subject;",
			store.KindIncoming: "entity.subject = replica.title;"},
		store.SideB: {store.KindTrigger: "false", store.KindOutgoing: "replica.title = entity.title;",
			store.KindIncoming: "entity.title = replica.title;"},
	}
	conn := store.Connection{Name: "to-slow", SystemAID: desk.ID, SystemBID: slow.ID, Active: true}
	if err := st.CreateConnection(ctx, &conn, scripts, "t"); err != nil {
		t.Fatal(err)
	}
	support := openSQLite(t, paths.Support)
	if _, err := support.Exec(`UPDATE tickets SET labels = '' WHERE labels LIKE '%todev%'`); err != nil {
		t.Fatal(err)
	}
	return st, support
}

// addTodev adds n tickets for engineering to the support desk.
func addTodev(t *testing.T, support *sql.DB, n int) {
	t.Helper()
	for i := range n {
		if _, err := support.Exec(`INSERT INTO tickets (subject, labels) VALUES (?, 'todev')`, fmt.Sprint("t", i)); err != nil {
			t.Fatal(err)
		}
	}
}

// runSlowTarget runs an engine on st with opts' lane bounds (InFlight,
// MaxHeld), retrying at once; the returned func stops it.
func runSlowTarget(t *testing.T, st *store.Store, reg *connectors.Registry, opts engine.Options) (stop func()) {
	t.Helper()
	_, stop = runEngine(t, st, reg, opts)
	return stop
}

// runEngine is runSlowTarget that also returns the engine.
func runEngine(t *testing.T, st *store.Store, reg *connectors.Registry, opts engine.Options) (*engine.Engine, func()) {
	t.Helper()
	eng := engine.New(engine.Options{Store: st, Connectors: reg, Secrets: testBox(t),
		Runner: scripting.NewRunner(scripting.Options{}), Workers: 2, InFlight: opts.InFlight, MaxHeld: opts.MaxHeld,
		Backoff: func(int) time.Duration { return 0 }})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- eng.Run(ctx) }()
	return eng, func() {
		cancel()
		<-ran
		_ = eng.Close()
	}
}

// waitFor waits until the store holds n items, 30 s at most.
func (s *itemStore) waitFor(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s.mu.Lock()
		got := len(s.items)
		s.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d items after 30 s", got, n)
		}
	}
}

// batchedItems is the item system with WriteMany: each call's size is
// kept, and the first call is held a while, so the writes that reach the
// system meanwhile show how many events of the lane ran at once.
type batchedItems struct {
	itemsConn
	mu    sync.Mutex
	sizes []int
}

func (b *batchedItems) WriteMany(ctx context.Context, ws []connectors.Write) []connectors.WriteResult {
	b.mu.Lock()
	first := len(b.sizes) == 0
	b.sizes = append(b.sizes, len(ws))
	b.mu.Unlock()
	if first {
		select {
		case <-time.After(3 * time.Second):
		case <-ctx.Done():
		}
	}
	out := make([]connectors.WriteResult, len(ws))
	for i, w := range ws {
		if w.ID != "" {
			out[i].Entity, out[i].Err = b.Update(ctx, w.ID, w.Fields)
			continue
		}
		out[i].Entity, out[i].Err = b.CreateCorrelated(ctx, w.Key, w.Fields)
	}
	return out
}

// A target that takes writes in batches gets a lane as wide as a batch,
// not InFlight: its events' writes reach it as one call, not as that many
// requests at once. With a lane of InFlight no call could carry more than
// InFlight writes; held in its first call, the system is handed more in one
// (the next, or the first itself when every event was claimed before it:
// under the race detector the first held all 30 and the test, which looked
// only after the first, failed).
func TestBatchedTargetWiderLane(t *testing.T) {
	items := &itemStore{items: map[string]*item{}}
	srv := httptest.NewServer(items)
	defer srv.Close()
	st, support := slowTargetFixture(t, 0, 0)
	const tickets, inFlight = 30, 4
	addTodev(t, support, tickets)
	target := &batchedItems{itemsConn: itemsConn{&httpx.Client{Base: srv.URL, Timeout: time.Minute}}}
	reg := connectors.NewRegistry()
	_ = reg.Register("sql", sqlconn.New)
	_ = reg.Register("slow", func(context.Context, connectors.Config) (connectors.Connector, error) { return target, nil })
	defer runSlowTarget(t, st, reg, engine.Options{InFlight: inFlight})()
	items.waitFor(t, tickets)
	target.mu.Lock()
	sizes := slices.Clone(target.sizes)
	target.mu.Unlock()
	if len(sizes) == 0 || slices.Max(sizes) <= inFlight {
		t.Fatalf("batches %v: none larger than InFlight (%d)", sizes, inFlight)
	}
}

// A connection's two directions have a lane each: a target that holds
// every write (its lane full) does not hold the events going the other way.
// With one lane per connection, the change from the held system waited for
// the held writes.
func TestHeldDirectionDoesNotHoldTheOther(t *testing.T) {
	ctx := context.Background()
	items := &itemStore{items: map[string]*item{}}
	gate := make(chan struct{})
	var held atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			held.Add(1)
			select {
			case <-gate:
			case <-time.After(30 * time.Second):
			}
		}
		items.ServeHTTP(w, r)
	}))
	defer srv.Close()
	st, support := slowTargetFixture(t, 0, 0)
	conns, err := st.ListConnections(ctx)
	if err != nil || len(conns) != 1 {
		t.Fatal(conns, err)
	}
	if _, err := st.SaveScript(ctx, conns[0].ID, store.SideB, store.KindTrigger, "true", "test"); err != nil {
		t.Fatal(err)
	}
	const inFlight = 4
	addTodev(t, support, 2*inFlight)
	defer runSlowTarget(t, st, slowTargetRegistry(srv.URL), engine.Options{InFlight: inFlight})()
	defer close(gate) // first: the held writes end before the engine stops
	for deadline := time.Now().Add(15 * time.Second); held.Load() < inFlight; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes held after 15 s, want %d", held.Load(), inFlight)
		}
	}

	items.mu.Lock() // a person's new item on the held system
	items.seq++
	items.items["900"] = &item{ID: "900", Title: "from engineering", Seq: items.seq}
	items.mu.Unlock()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n int
		if err := support.QueryRow(`SELECT COUNT(*) FROM tickets WHERE subject = 'from engineering'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other direction's change not applied after 15 s while %d writes were held", held.Load())
		}
	}
}

// The worker holds at most MaxHeld events at once, however wide its lanes:
// each claim names the held events, and past a statement's parameter limit
// (SQLite 32,766) no claim went through at all. Held back at the target,
// the connection's writes never outnumber MaxHeld, and every ticket still
// arrives once the target lets them through.
func TestWorkerHoldsAtMostMaxHeld(t *testing.T) {
	items := &itemStore{items: map[string]*item{}}
	gate := make(chan struct{})
	var mu sync.Mutex
	now, peak := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			mu.Lock()
			now++
			peak = max(peak, now)
			mu.Unlock()
			select {
			case <-gate:
			case <-time.After(30 * time.Second):
			}
			mu.Lock()
			now--
			mu.Unlock()
		}
		items.ServeHTTP(w, r)
	}))
	defer srv.Close()
	st, support := slowTargetFixture(t, 0, 0)
	const tickets, maxHeld = 20, 5
	addTodev(t, support, tickets)
	defer runSlowTarget(t, st, slowTargetRegistry(srv.URL), engine.Options{InFlight: 16, MaxHeld: maxHeld})()
	var released bool
	defer func() {
		if !released {
			close(gate)
		}
	}()
	held := func() int { mu.Lock(); defer mu.Unlock(); return now }
	for deadline := time.Now().Add(15 * time.Second); held() < maxHeld; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes held after 15 s, want %d", held(), maxHeld)
		}
	}
	time.Sleep(500 * time.Millisecond) // time for more to arrive, if the bound did not hold
	mu.Lock()
	got := peak
	mu.Unlock()
	released = true
	close(gate)
	if got != maxHeld {
		t.Fatalf("at most %d writes at once, want MaxHeld (%d)", got, maxHeld)
	}
	items.waitFor(t, tickets)
}
