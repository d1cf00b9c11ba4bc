package engine_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripting/sandbox"
)

// The test binary is its own script worker.
func TestMain(m *testing.M) {
	sandbox.ServeIfWorker()
	os.Exit(m.Run())
}

// newPoolFixture is the demo fixture with the engine running every script,
// trigger and rule in sandbox worker processes, as `duplex serve` does.
func newPoolFixture(t *testing.T, timeout time.Duration, workers int) (*fixture, *sandbox.Pool) {
	f := newFixture(t, testdb.SQLite(t), timeout)
	pool, err := sandbox.NewPool(sandbox.Options{Workers: workers, Timeout: timeout, Memory: 512 << 20, Grace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pool.Stop(ctx)
	})
	f.runner = pool
	_ = f.eng.Close()
	f.eng = f.newEngine()
	return f, pool
}

// The demo syncs through the pool (trigger, outgoing, rules, incoming in
// workers), and nothing per event compiles, in the server or in the worker
// (one, so that it has seen every script after the first sync).
func TestPoolSync(t *testing.T) {
	f, pool := newPoolFixture(t, time.Second, 1)
	f.settle()
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'"); n != 1 {
		t.Fatalf("issues for T-1: %d, want 1", n)
	}
	before, sent := scripting.Compilations(), pool.Stats().CodeSent
	for i := range 5 {
		f.exec(f.support, "UPDATE tickets SET subject = ? WHERE id = 1", "subject "+string(rune('a'+i)))
		f.settle()
		if got := f.one(f.eng2, "SELECT title FROM issues WHERE ticket_ref = 'T-1'"); got != "subject "+string(rune('a'+i)) {
			t.Fatalf("round %d: title %q", i, got)
		}
	}
	if n := scripting.Compilations() - before; n != 0 {
		t.Fatalf("%d compilations in the server for 5 changes", n)
	}
	if n := pool.Stats().CodeSent - sent; n != 0 {
		t.Fatalf("sources sent %d more times for 5 changes: the workers recompiled", n)
	}
	f.noFailures()
}

// A script that kills its worker (memory) or outruns the deadline in a
// regular expression fails its own event with the named limit; the other
// changes sync and the server process is untouched.
func TestPoolHostileScriptFailsItsEvent(t *testing.T) {
	if !sandbox.MemoryLimited() {
		t.Skip("workers have no address-space limit here (race detector or not Linux)")
	}
	f, pool := newPoolFixture(t, 300*time.Millisecond, 2)
	f.settle()
	cur, err := f.st.CurrentScripts(f.ctx, f.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	src := "if (replica.title.includes('BOOM')) { new ArrayBuffer(2**40) }\n" +
		"if (replica.title.includes('HANG')) { /(a+)+(?=c)c/.test('a'.repeat(34) + 'b') }\n" +
		cur[store.SideB][store.KindIncoming].Source
	if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideB, store.KindIncoming, src, "test"); err != nil {
		t.Fatal(err)
	}
	f.exec(f.support, "UPDATE tickets SET subject = 'BOOM' WHERE id = 1")
	f.exec(f.support, "UPDATE tickets SET labels = 'export,todev', subject = 'HANG' WHERE id = 3")
	f.exec(f.support, "UPDATE tickets SET labels = 'export,todev' WHERE id = 2")
	for range 3 {
		f.cycle()
	}
	failed, err := f.st.ListEvents(f.ctx, store.EventFilter{Status: store.StatusFailed})
	if err != nil {
		t.Fatal(err)
	}
	var memory, deadline int
	for _, ev := range failed {
		switch {
		case strings.Contains(ev.LastError, "script exceeded its memory limit"):
			memory++
		case strings.Contains(ev.LastError, "script ran past its 300 ms deadline"):
			deadline++
		default:
			t.Errorf("failed event: %s", ev.LastError)
		}
	}
	if memory != 1 || deadline != 1 {
		t.Fatalf("failed events %d memory, %d deadline; want one each: %+v", memory, deadline, failed)
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-2'"); n != 1 {
		t.Fatalf("the healthy change was not applied (%d issues for T-2)", n)
	}
	// Whether the worker was killed (the OS limit) or the run was stopped
	// inside it first (the guards) does not matter here; scripting/sandbox
	// tests the kill itself.
	t.Logf("pool stats %+v", pool.Stats())
}
