package engine_test

import (
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/service"
	"github.com/duplexsync/duplex/internal/testdb"
)

// "Sync existing" after a trigger change picks up entities that match now,
// queues nothing for those already in sync, and resumes after a restart
// without starting over.
func TestBackfillResumes(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			f.settle()
			if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideA, store.KindTrigger, `"todev" in labels || "export" in labels`, "t"); err != nil {
				t.Fatal(err)
			}
			f.page = 1 // one entity per page, to stop in the middle
			f.eng = f.newEngine()
			job, err := f.st.StartBackfill(f.ctx, f.conn.ID, store.SideA)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.eng.BackfillOnce(f.ctx); err != nil {
				t.Fatal(err)
			}
			_ = f.eng.Close() // a restart in the middle of the job
			f.eng = f.newEngine()
			for i := 0; i < 10; i++ {
				if _, err := f.eng.BackfillOnce(f.ctx); err != nil {
					t.Fatal(err)
				}
			}
			jobs, err := f.st.ListBackfills(f.ctx, f.conn.ID)
			if err != nil || len(jobs) != 1 || jobs[0].ID != job.ID {
				t.Fatalf("jobs %+v %v", jobs, err)
			}
			first := jobs[0]
			if first.Status != "done" || first.Queued != 1 {
				t.Fatalf("job %+v: want done with 1 queued (T-3 only)", first)
			}
			f.settle()
			// The same walk without a restart scans exactly as much (so the
			// restart resumed instead of starting over) and, everything being
			// in sync now, queues nothing.
			if _, err := f.st.StartBackfill(f.ctx, f.conn.ID, store.SideA); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 10; i++ {
				if _, err := f.eng.BackfillOnce(f.ctx); err != nil {
					t.Fatal(err)
				}
			}
			jobs, _ = f.st.ListBackfills(f.ctx, f.conn.ID)
			if again := jobs[0]; again.Status != "done" || again.Scanned != first.Scanned || again.Queued != 0 {
				t.Fatalf("second walk %+v vs first %+v", again, first)
			}
			if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-3'"); n != 1 {
				t.Fatalf("T-3 issues: %d", n)
			}
			if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'"); n != 1 {
				t.Fatalf("T-1 issues: %d", n)
			}
		})
	}
}

// "Link existing" pairs entities by a key without writing anything; the pair
// then syncs like any other.
func TestLinkExisting(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.exec(f.eng2, "INSERT INTO issues (title, ticket_ref) VALUES ('Made by hand for T-2', 'T-2')")
	// As the API does: the engine matches, the service links and audits.
	link := func() (int, error) {
		pairs, err := f.eng.MatchExisting(f.ctx, f.conn.ID, "key", "ticket_ref")
		if err != nil {
			return 0, err
		}
		return service.New(f.st, nil, nil).LinkExisting(f.ctx, "test", f.conn.ID, "key", "ticket_ref", pairs)
	}
	n, err := link()
	if err != nil || n != 1 {
		t.Fatalf("linked %d, %v; want 1", n, err)
	}
	if w := f.writes.Load(); w != 0 {
		t.Fatalf("linking wrote %d times", w)
	}
	if n, _ := link(); n != 0 {
		t.Fatalf("linking again made %d more pairs", n)
	}
	f.settle()
	f.exec(f.support, "UPDATE tickets SET subject = 'Password reset mail' WHERE id = 2")
	f.settle()
	if got := f.one(f.eng2, "SELECT title FROM issues WHERE ticket_ref = 'T-2'"); got != "Password reset mail" {
		t.Fatalf("linked issue title %q", got)
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-2'"); n != 1 {
		t.Fatalf("%d issues for T-2: the link did not prevent a duplicate", n)
	}
}
