package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
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

// gate holds every write to the system behind it until opened, and says
// when the first write is held.
type gate struct {
	next    http.Handler
	open    chan struct{}
	held    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	writes  int
	waiting int
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		g.mu.Lock()
		g.writes++
		g.waiting++
		g.mu.Unlock()
		g.once.Do(func() { close(g.held) })
		<-g.open
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
	}
	g.next.ServeHTTP(w, r)
}

// A connection whose system hangs does not hold up another connection: the
// running engine keeps taking new events while one is stuck, and records
// the other connection's events at once. The stuck connection keeps its
// twins' order: an edit queued behind a create waits for it.
func TestSlowConnectionHoldsOnlyItself(t *testing.T) {
	ctx := context.Background()
	slowItems := &itemStore{items: map[string]*item{}}
	fastItems := &itemStore{items: map[string]*item{}}
	g := &gate{next: slowItems, open: make(chan struct{}), held: make(chan struct{})}
	slowSrv, fastSrv := httptest.NewServer(g), httptest.NewServer(fastItems)
	defer slowSrv.Close()
	defer fastSrv.Close()
	opened := false
	defer func() {
		if !opened {
			close(g.open)
		}
	}()

	st := testdb.SQLite(t)
	box, _ := secret.LoadOrCreate(t.TempDir() + "/k")
	reg := connectors.NewRegistry()
	_ = reg.Register("sql", sqlconn.New)
	for kind, srv := range map[string]*httptest.Server{"slow": slowSrv, "fast": fastSrv} {
		base := srv.URL
		_ = reg.Register(kind, func(context.Context, connectors.Config) (connectors.Connector, error) {
			return itemsConn{&httpx.Client{Base: base, Timeout: time.Minute}}, nil
		})
	}
	paths, err := demo.CreateDatabases(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(demo.SupportSettings(paths.Support))
	desk := store.System{Name: "desk", Kind: "sql", Settings: string(raw), PollIntervalMS: 200}
	slow := store.System{Name: "slow", Kind: "slow", Settings: "{}", PollIntervalMS: 200}
	fast := store.System{Name: "fast", Kind: "fast", Settings: "{}", PollIntervalMS: 200}
	for _, s := range []*store.System{&desk, &slow, &fast} {
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
	toSlow := store.Connection{Name: "to-slow", SystemAID: desk.ID, SystemBID: slow.ID, Active: true}
	toFast := store.Connection{Name: "to-fast", SystemAID: desk.ID, SystemBID: fast.ID, Active: true}
	for _, c := range []*store.Connection{&toSlow, &toFast} {
		if err := st.CreateConnection(ctx, c, scripts, "t"); err != nil {
			t.Fatal(err)
		}
	}
	support := openSQLite(t, paths.Support)
	if _, err := support.Exec(`UPDATE tickets SET labels = '' WHERE labels LIKE '%todev%'`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(settle)
	insert := func(subject string) int64 {
		t.Helper()
		res, err := support.Exec(`INSERT INTO tickets (subject, labels) VALUES (?, 'todev')`, subject)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.LastInsertId()
		return id
	}
	first := insert("first")

	eng := engine.New(engine.Options{Store: st, Connectors: reg, Secrets: box, Runner: scripting.NewRunner(scripting.Options{}),
		Backoff: func(int) time.Duration { return 0 }})
	defer eng.Close()
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- eng.Run(runCtx) }()
	defer func() {
		stop()
		<-ran
	}()

	// waitFor polls cond; the bound only proves "it did not hang".
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 30 s", what)
			}
		}
	}
	doneFor := func(conn store.Connection, source int64) bool {
		evs, err := st.ListEvents(ctx, store.EventFilter{ConnectionID: conn.ID, Status: store.StatusDone})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.SourceID == fmt.Sprint("T-", source) || ev.SourceID == fmt.Sprint(source) {
				return true
			}
		}
		return false
	}

	select {
	case <-g.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow system never got the first create")
	}
	// The first ticket's create hangs in the slow system. The fast
	// connection's event of the same ticket is recorded meanwhile.
	waitFor("the fast connection's event of the first ticket recorded", func() bool {
		return fastItems.hasTitle("first") && doneFor(toFast, first)
	})
	// An edit of the stuck ticket, and a new ticket: the new one flows to
	// the fast system (a new claim while the slow event runs); the edit
	// waits for the stuck create of its twin.
	if _, err := support.Exec(`UPDATE tickets SET subject = 'first, edited' WHERE id = ?`, first); err != nil {
		t.Fatal(err)
	}
	second := insert("second")
	waitFor("a new ticket reaches the fast system while the slow one hangs", func() bool {
		return fastItems.hasTitle("second") && doneFor(toFast, second) && fastItems.hasTitle("first, edited")
	})
	g.mu.Lock()
	stuck := g.waiting
	g.mu.Unlock()
	if stuck == 0 {
		t.Fatal("the slow system holds no write: the test proves nothing")
	}

	close(g.open)
	opened = true
	waitFor("the slow system catches up", func() bool {
		return slowItems.hasTitle("first, edited") && slowItems.hasTitle("second")
	})
	waitFor("every event recorded", func() bool {
		evs, err := st.ListEvents(ctx, store.EventFilter{Status: store.StatusQueued})
		return err == nil && len(evs) == 0
	})
	slowItems.mu.Lock()
	n := len(slowItems.items)
	slowItems.mu.Unlock()
	if n != 2 {
		t.Fatalf("slow system has %d items, want 2 (the edit must wait for its create, not make its own)", n)
	}
	if failed, _ := st.ListEvents(ctx, store.EventFilter{Status: store.StatusFailed}); len(failed) != 0 {
		t.Fatalf("failed events: %+v", failed)
	}
}
