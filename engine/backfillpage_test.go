package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

// A backfill through the sandbox pool sends a page's triggers in one
// message and its outgoing scripts in another, keeps at most about a page
// of events queued ahead of the worker (live changes are not starved behind
// the whole side), and a restart in the middle creates nothing twice.
func TestBackfillInBatches(t *testing.T) {
	// Through Changes (the fixture's wrapper hides Scan), and through the
	// sql connector's Scan.
	for _, scan := range []bool{false, true} {
		t.Run(map[bool]string{false: "changes", true: "scan"}[scan], func(t *testing.T) {
			testBackfillInBatches(t, scan)
		})
	}
}

// scanning shows the sql connector's Scan through the fixture's wrapper.
type scanning struct {
	counting
	scan interface {
		Scan(ctx context.Context, cursor string, limit int) (connectors.Page, error)
	}
}

func (s scanning) Scan(ctx context.Context, cursor string, limit int) (connectors.Page, error) {
	return s.scan.Scan(ctx, cursor, limit)
}

func testBackfillInBatches(t *testing.T, scan bool) {
	f, pool := newPoolFixture(t, time.Second, 1)
	if scan {
		f.wrap = func(_ string, c connectors.Connector) connectors.Connector {
			cc := c.(counting)
			return scanning{counting: cc, scan: cc.Connector.(interface {
				Scan(ctx context.Context, cursor string, limit int) (connectors.Page, error)
			})}
		}
		_ = f.eng.Close()
		f.eng = f.newEngine()
	}
	f.settle()
	const extra = 12
	for i := range extra {
		f.exec(f.support, `INSERT INTO tickets (subject, description, priority, labels) VALUES (?, 'x', 'high', 'export')`, fmt.Sprint("old ", i))
	}
	f.settle() // polled; the trigger does not match them yet
	if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideA, store.KindTrigger, `"todev" in labels || "export" in labels`, "t"); err != nil {
		t.Fatal(err)
	}
	f.page, f.ahead = 5, 5
	_ = f.eng.Close()
	f.eng = f.newEngine()
	if _, err := f.st.StartBackfill(f.ctx, f.conn.ID, store.SideA); err != nil {
		t.Fatal(err)
	}
	job := func() store.Backfill {
		t.Helper()
		jobs, err := f.st.ListBackfills(f.ctx, f.conn.ID)
		if err != nil || len(jobs) == 0 {
			t.Fatalf("jobs %+v %v", jobs, err)
		}
		return jobs[0] // the newest
	}

	// First page: 5 trigger runs in one message, the outgoing runs of
	// those that match (T-2 does not) in another.
	st0 := pool.Stats()
	if _, err := f.eng.BackfillOnce(f.ctx); err != nil {
		t.Fatal(err)
	}
	st1 := pool.Stats()
	j := job()
	if runs, msgs := st1.Runs-st0.Runs, st1.Messages-st0.Messages; msgs != 2 || runs <= j.Scanned || runs > 2*j.Scanned {
		t.Fatalf("first page of %d: %d runs in %d messages, want a trigger each and an outgoing run for those that match, in 2", j.Scanned, runs, msgs)
	}
	if scan && (j.Scanned != 5 || !strings.HasPrefix(j.Cursor, "scan:")) {
		t.Fatalf("a page through Scan: %+v", j)
	}
	// With the worker idle the backfill stops once 5 (f.ahead) wait.
	for range 5 {
		if _, err := f.eng.BackfillOnce(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	held := job()
	n, err := f.st.QueuedEvents(f.ctx, f.conn.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	if held.Status != "running" || held.Scanned >= 3+extra || n < 5 || n >= 10 {
		t.Fatalf("with the worker idle: %+v, %d events queued; want running, held back with 5 to 9 queued", held, n)
	}
	if _, err := f.eng.BackfillOnce(f.ctx); err != nil {
		t.Fatal(err)
	}
	if j := job(); j.Scanned != held.Scanned {
		t.Fatalf("moved with the queue full: %+v", j)
	}

	_ = f.eng.Close() // a restart in the middle of the job
	f.eng = f.newEngine()
	for range 20 {
		if _, err := f.eng.BackfillOnce(f.ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.eng.WorkOnce(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if j := job(); j.Status != "done" || j.Scanned != 3+extra || j.Queued != 1+extra {
		t.Fatalf("job %+v: want done, %d scanned, %d queued", j, 3+extra, 1+extra)
	}
	f.settle()
	for i := range extra {
		if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE title = ?", fmt.Sprint("old ", i)); n != 1 {
			t.Errorf("issues for old %d: %d, want 1", i, n)
		}
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'"); n != 1 {
		t.Errorf("T-1 issues: %d (linked before the backfill)", n)
	}
	// Everything in sync: a second walk queues nothing.
	if _, err := f.st.StartBackfill(f.ctx, f.conn.ID, store.SideA); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := f.eng.BackfillOnce(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if j := job(); j.Status != "done" || j.Queued != 0 {
		t.Fatalf("second walk %+v: want done, 0 queued", j)
	}
}
