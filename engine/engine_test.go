package engine_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/sqlconn"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/demo"
	"github.com/duplexsync/duplex/internal/loadscale"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
)

// counting wraps a real connector, counts the writes made through it, and
// lets a test inject a failure before a write reaches the database.
type counting struct {
	connectors.Connector
	system string
	writes *atomic.Int64
	many   *atomic.Int64 // GetMany calls
	fault  *atomic.Pointer[func(system, op string) error]
}

// GetMany passes the batched read through (the sql connector has it), so
// the engine tests run the worker's batched target reads.
func (c counting) GetMany(ctx context.Context, ids []string) (map[string]connectors.Entity, error) {
	if err := c.inject("getmany"); err != nil {
		return nil, err
	}
	c.many.Add(1)
	return c.Connector.(connectors.BatchReader).GetMany(ctx, ids)
}

// WriteMany passes the batched write through (the sql connector has it),
// with the faults of Create and Update injected per write: a write the
// fault refuses does not reach the database, and one after the write loses
// only that write's answer.
func (c counting) WriteMany(ctx context.Context, ws []connectors.Write) []connectors.WriteResult {
	out := make([]connectors.WriteResult, len(ws))
	var pass []connectors.Write
	var at []int
	for i, w := range ws {
		if err := c.inject(writeOp(w)); err != nil {
			out[i].Err = err
			continue
		}
		pass, at = append(pass, w), append(at, i)
	}
	if len(pass) == 0 {
		return out
	}
	for k, r := range c.Connector.(connectors.BatchWriter).WriteMany(ctx, pass) {
		if r.Err == nil && !r.Found {
			c.writes.Add(1)
			r.Err = c.inject("after-" + writeOp(pass[k]))
		}
		out[at[k]] = r
	}
	return out
}

func writeOp(w connectors.Write) string {
	if w.ID == "" {
		return "create"
	}
	return "update"
}

func (c counting) inject(op string) error {
	if h := c.fault.Load(); h != nil {
		return (*h)(c.system, op)
	}
	return nil
}

func (c counting) Create(ctx context.Context, f map[string]any) (connectors.Entity, error) {
	if err := c.inject("create"); err != nil {
		return connectors.Entity{}, err
	}
	c.writes.Add(1)
	return c.Connector.Create(ctx, f)
}

func (c counting) CreateCorrelated(ctx context.Context, key string, f map[string]any) (connectors.Entity, error) {
	if err := c.inject("create"); err != nil {
		return connectors.Entity{}, err
	}
	c.writes.Add(1)
	e, err := c.Connector.(connectors.Correlating).CreateCorrelated(ctx, key, f)
	if err == nil {
		err = c.inject("after-create") // a crash after the create, before Duplex records it
	}
	return e, err
}

func (c counting) FindCorrelated(ctx context.Context, key string) (connectors.Entity, bool, error) {
	return c.Connector.(connectors.Correlating).FindCorrelated(ctx, key)
}

func (c counting) FindBy(ctx context.Context, field, value string, limit int) ([]connectors.Entity, error) {
	if err := c.inject("find"); err != nil {
		return nil, err
	}
	return c.Connector.(connectors.Finder).FindBy(ctx, field, value, limit)
}

func (c counting) Delete(ctx context.Context, id string) error {
	if err := c.inject("delete"); err != nil {
		return err
	}
	c.writes.Add(1)
	if err := c.Connector.(connectors.Deleter).Delete(ctx, id); err != nil {
		return err
	}
	return c.inject("after-delete") // deleted, but the answer is lost
}

func (c counting) Update(ctx context.Context, id string, f map[string]any) (connectors.Entity, error) {
	if err := c.inject("update"); err != nil {
		return connectors.Entity{}, err
	}
	c.writes.Add(1)
	e, err := c.Connector.Update(ctx, id, f)
	if err == nil {
		err = c.inject("after-update") // written, but the answer is lost
	}
	return e, err
}

func (c counting) AddComment(ctx context.Context, id string, cm connectors.Comment) (connectors.Comment, error) {
	if err := c.inject("comment"); err != nil {
		return connectors.Comment{}, err
	}
	c.writes.Add(1)
	out, err := c.Connector.AddComment(ctx, id, cm)
	if err == nil {
		err = c.inject("after-comment") // added, but the answer is lost
	}
	return out, err
}

// fixture is a demo installation: a store, the two demo SQLite databases
// opened directly (as a person with a SQLite client would), and an engine.
type fixture struct {
	t       testing.TB
	ctx     context.Context
	st      *store.Store
	reg     *connectors.Registry
	box     *secret.Box
	runner  engine.Scripts
	eng     *engine.Engine
	conn    store.Connection
	support *sql.DB
	eng2    *sql.DB
	writes  atomic.Int64
	many    atomic.Int64 // GetMany calls
	fault   atomic.Pointer[func(system, op string) error]
	now     atomic.Pointer[time.Time] // the engine's clock when set
	page    int                       // engine page size (0 = default)
	ahead   int                       // events a backfill keeps queued at most (0 = default)
	files   *fileStore                // set before the first poll: the systems carry files
	paths   demo.Paths                // the demo databases
	// wrap, when set before the first poll, wraps each system's connector.
	wrap func(system string, c connectors.Connector) connectors.Connector
}

func newFixture(t testing.TB, st *store.Store, timeout time.Duration) *fixture {
	t.Helper()
	return newFixtureOn(t, st, timeout, nil)
}

// newFixtureOn is newFixture on the given demo databases (nil: new ones).
func newFixtureOn(t testing.TB, st *store.Store, timeout time.Duration, on *demo.Paths) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), st: st}
	var err error
	f.box, err = secret.LoadOrCreate(t.TempDir() + "/secret.key")
	if err != nil {
		t.Fatal(err)
	}
	f.reg = connectors.NewRegistry()
	if err := f.reg.Register("sql", func(ctx context.Context, cfg connectors.Config) (connectors.Connector, error) {
		c, err := sqlconn.New(ctx, cfg)
		if err != nil {
			return nil, err
		}
		var out connectors.Connector = counting{Connector: c, system: cfg.Name, writes: &f.writes, many: &f.many, fault: &f.fault}
		if f.files != nil { // attach_test.go: the demo tables with files
			out = filed{Connector: out, system: cfg.Name, fs: f.files, fault: &f.fault}
		}
		if f.wrap != nil {
			out = f.wrap(cfg.Name, out)
		}
		return out, nil
	}); err != nil {
		t.Fatal(err)
	}
	f.runner = scripting.NewRunner(scripting.Options{Timeout: timeout})
	paths, err := demo.CreateDatabases(f.ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if on != nil {
		paths = *on
	}
	f.paths = paths
	time.Sleep(settle) // let the sample rows settle
	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if f.conn, err = demo.Install(f.ctx, st, f.box, lib, paths, 100); err != nil {
		t.Fatal(err)
	}
	f.support = openSQLite(t, paths.Support)
	f.eng2 = openSQLite(t, paths.Engineering)
	f.eng = f.newEngine()
	return f
}

func (f *fixture) newEngine() *engine.Engine {
	e := engine.New(engine.Options{Store: f.st, Connectors: f.reg, Runner: f.runner, Secrets: f.box, PageSize: f.page, BackfillPage: f.page, BackfillAhead: f.ahead,
		Backoff: func(attempt int) time.Duration { return time.Duration(attempt) * time.Minute },
		Now: func() time.Time {
			if t := f.now.Load(); t != nil {
				return *t
			}
			return time.Now().UTC()
		}})
	f.t.Cleanup(func() { _ = e.Close() })
	return e
}

func openSQLite(t testing.TB, path string) *sql.DB {
	db, err := sql.Open("sqlite3", store.SQLiteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// cycle polls both systems once and works the queue once; it returns how
// many events were queued and handled.
func (f *fixture) cycle() int {
	f.t.Helper()
	n := 0
	for _, id := range []int64{f.conn.SystemAID, f.conn.SystemBID} {
		res, err := f.eng.PollOnce(f.ctx, id)
		if err != nil {
			f.t.Fatalf("poll %d: %v", id, err)
		}
		n += res.Enqueued
	}
	w, err := f.eng.WorkOnce(f.ctx)
	if err != nil {
		f.t.Fatalf("work: %v", err)
	}
	return n + w
}

// settle runs cycles until two in a row do nothing.
func (f *fixture) settle() {
	f.t.Helper()
	quiet := 0
	for i := 0; i < 50 && quiet < 2; i++ {
		if f.cycle() == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
	if quiet < 2 {
		f.t.Fatal("sync did not settle in 50 cycles (a loop?)")
	}
	f.noFailures()
}

func (f *fixture) noFailures() {
	f.t.Helper()
	evs, err := f.st.ListEvents(f.ctx, store.EventFilter{Status: store.StatusFailed})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, ev := range evs {
		f.t.Errorf("failed event %d (%s): %s", ev.ID, ev.Direction, ev.LastError)
	}
}

func (f *fixture) exec(db *sql.DB, q string, args ...any) {
	f.t.Helper()
	// The demo tables keep millisecond timestamps; an edit in the same
	// millisecond as Duplex's last write would share its cursor position.
	time.Sleep(3 * time.Millisecond)
	if _, err := db.ExecContext(f.ctx, q, args...); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	time.Sleep(settle) // the sql connector reports a change once it is this old
}

// settle is a little over the sql connector's default settle time.
const settle = 25 * time.Millisecond

func (f *fixture) one(db *sql.DB, q string, args ...any) string {
	f.t.Helper()
	var s sql.NullString
	if err := db.QueryRowContext(f.ctx, q, args...).Scan(&s); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

func (f *fixture) count(db *sql.DB, q string, args ...any) int {
	f.t.Helper()
	var n int
	if err := db.QueryRowContext(f.ctx, q, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// issueOf returns the engineering issue id created for a support ticket.
func (f *fixture) issueOf(ticket string) string {
	f.t.Helper()
	return f.one(f.eng2, "SELECT id FROM issues WHERE ticket_ref = ?", "T-"+ticket)
}

func TestEndToEnd(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			f.settle()

			// Ticket 1 carries "todev": exactly one issue, mapped by the template.
			if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'"); n != 1 {
				t.Fatalf("issues for T-1: %d, want 1", n)
			}
			issue := f.issueOf("1")
			if got := f.one(f.eng2, "SELECT title FROM issues WHERE id = ?", issue); got != "Checkout fails with a 500" {
				t.Errorf("title %q", got)
			}
			if got := f.one(f.eng2, "SELECT priority FROM issues WHERE id = ?", issue); got != "critical" {
				t.Errorf("priority %q, want the mapped value critical", got)
			}
			if got := f.one(f.eng2, "SELECT body FROM issue_comments WHERE issue_id = ?", issue); got != "[support] ana@example.com: It happens with every card type." {
				t.Errorf("copied comment %q", got)
			}
			// Tickets without the label stay on their side.
			if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues"); n != 2 {
				t.Fatalf("engineering has %d issues, want 2 (its own and T-1's)", n)
			}

			// Echo: the issue Duplex created is not sent back as a change...
			evs, err := f.st.ListEvents(f.ctx, store.EventFilter{ConnectionID: f.conn.ID})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if ev.Direction == store.BToA {
					t.Fatalf("Duplex's own write came back as event %d: %s", ev.ID, ev.Replica)
				}
			}
			// ...and twenty more cycles write nothing anywhere.
			before := f.writes.Load()
			for i := 0; i < 20; i++ {
				f.cycle()
			}
			if w := f.writes.Load() - before; w != 0 {
				t.Fatalf("%d writes in 20 idle cycles: an echo loop", w)
			}

			// Support edits the subject: the issue title follows.
			f.exec(f.support, "UPDATE tickets SET subject = 'Checkout fails with HTTP 500' WHERE id = 1")
			f.settle()
			if got := f.one(f.eng2, "SELECT title FROM issues WHERE id = ?", issue); got != "Checkout fails with HTTP 500" {
				t.Errorf("title after update %q", got)
			}

			// Engineering resolves it and comments: both come back to support.
			f.exec(f.eng2, "UPDATE issues SET state = 'resolved' WHERE id = ?", issue)
			f.exec(f.eng2, "INSERT INTO issue_comments (issue_id, author, body) VALUES (?, 'dev', 'Fixed in build 42')", issue)
			f.settle()
			if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "solved" {
				t.Errorf("ticket status %q, want solved", got)
			}
			if n := f.count(f.support, "SELECT COUNT(*) FROM ticket_comments WHERE ticket_id = 1 AND body = '[engineering] dev: Fixed in build 42'"); n != 1 {
				t.Errorf("engineering comment on the ticket %d times, want 1", n)
			}
			// A new support comment reaches engineering once; nothing doubles.
			f.exec(f.support, "INSERT INTO ticket_comments (ticket_id, author, body) VALUES (1, 'ana@example.com', 'Thanks!')")
			f.settle()
			if n := f.count(f.eng2, "SELECT COUNT(*) FROM issue_comments WHERE issue_id = ?", issue); n != 3 {
				t.Errorf("issue has %d comments, want 3 (two from support, one its own)", n)
			}
			if n := f.count(f.support, "SELECT COUNT(*) FROM ticket_comments WHERE ticket_id = 1"); n != 3 {
				t.Errorf("ticket has %d comments, want 3", n)
			}
			before = f.writes.Load()
			for i := 0; i < 20; i++ {
				f.cycle()
			}
			if w := f.writes.Load() - before; w != 0 {
				t.Fatalf("%d writes in 20 idle cycles after two-way edits", w)
			}

			// A ticket outside the trigger is not synced, even when edited...
			f.exec(f.support, "UPDATE tickets SET priority = 'high' WHERE id = 2")
			f.settle()
			if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-2'"); n != 0 {
				t.Fatalf("untriggered ticket synced")
			}
			// ...until it matches; two edits before the worker runs give one issue.
			f.exec(f.support, "UPDATE tickets SET labels = 'account,todev' WHERE id = 2")
			if _, err := f.eng.PollOnce(f.ctx, f.conn.SystemAID); err != nil {
				t.Fatal(err)
			}
			f.exec(f.support, "UPDATE tickets SET description = 'Still no mail.' WHERE id = 2")
			if _, err := f.eng.PollOnce(f.ctx, f.conn.SystemAID); err != nil {
				t.Fatal(err)
			}
			f.settle()
			if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-2'"); n != 1 {
				t.Fatalf("issues for T-2: %d, want 1", n)
			}
			if got := f.one(f.eng2, "SELECT body FROM issues WHERE ticket_ref = 'T-2'"); !strings.HasPrefix(got, "Still no mail.") {
				t.Errorf("T-2 issue body %q: the later edit was lost", got)
			}
			audit, err := f.st.ListAudit(f.ctx, f.conn.ID, 100)
			if err != nil || len(audit) == 0 {
				t.Fatalf("audit log empty: %v", err)
			}
		})
	}
}

// Stopping the engine between enqueue and apply loses nothing and repeats
// nothing: a new engine on the same store applies the queued change once.
func TestRestartBetweenEnqueueAndApply(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			res, err := f.eng.PollOnce(f.ctx, f.conn.SystemAID)
			if err != nil || res.Enqueued != 1 {
				t.Fatalf("poll: %+v %v", res, err)
			}
			_ = f.eng.Close() // "crash": the event is queued, nothing applied
			if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues"); n != 1 {
				t.Fatalf("applied before the worker ran: %d issues", n)
			}
			f.eng = f.newEngine()
			f.settle()
			if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'"); n != 1 {
				t.Fatalf("after restart: %d issues for T-1, want exactly 1", n)
			}
			// The cursor survived too: a new poll finds nothing new.
			res, err = f.eng.PollOnce(f.ctx, f.conn.SystemAID)
			if err != nil || res.Enqueued != 0 {
				t.Fatalf("poll after restart re-queued work: %+v %v", res, err)
			}
		})
	}
}

// A script that never ends fails its own event at the deadline, with the
// script's name in the error; the next events on the same runner pool run.
func TestRunawayScriptFailsOnlyItsEvent(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), 200*time.Millisecond)
	f.settle()
	cur, err := f.st.CurrentScripts(f.ctx, f.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	src := "if (replica.title.includes('LOOP')) { while (true) {} }\n" + cur[store.SideB][store.KindIncoming].Source
	if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideB, store.KindIncoming, src, "test"); err != nil {
		t.Fatal(err)
	}
	f.exec(f.support, "UPDATE tickets SET subject = 'LOOP forever' WHERE id = 1")
	f.exec(f.support, "UPDATE tickets SET labels = 'export,todev' WHERE id = 3")
	start := time.Now()
	for i := 0; i < 5; i++ {
		f.cycle()
	}
	if d := time.Since(start); d > loadscale.Duration(5*time.Second) {
		t.Fatalf("five cycles took %v: the runaway script was not interrupted", d)
	}
	failed, err := f.st.ListEvents(f.ctx, store.EventFilter{Status: store.StatusFailed})
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || !strings.Contains(failed[0].LastError, "support-escalation/b.incoming.js") ||
		!strings.Contains(failed[0].LastError, "deadline") {
		t.Fatalf("want one failed event naming the script and the deadline, got %+v", failed)
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-3'"); n != 1 {
		t.Fatalf("the healthy change after the runaway one was not applied (%d issues for T-3)", n)
	}
	if got := f.one(f.eng2, "SELECT title FROM issues WHERE ticket_ref = 'T-1'"); got == "LOOP forever" {
		t.Fatal("the failed event was applied")
	}
}

// A test run shows what the scripts would do and writes nothing anywhere.
func TestTestRunWritesNothing(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle()
	writes := f.writes.Load()
	evs, _ := f.st.ListEvents(f.ctx, store.EventFilter{})
	audit, _ := f.st.ListAudit(f.ctx, 0, 1000)

	// Ticket 1 is linked: a pasted edit gives a patch against the real issue.
	ent := connectors.Entity{ID: "1", Key: "T-1", Fields: map[string]any{
		"subject": "Pasted subject", "description": "d", "status": "open", "priority": "low",
		"labels": []any{"todev"}, "requester": "x"}}
	res, err := f.eng.TestRun(f.ctx, f.conn.ID, store.SideA, "", &ent)
	if err != nil || res.Error != nil {
		t.Fatalf("test run: %v %v", err, res.Error)
	}
	if !res.Matched || !res.Linked || res.TargetID == "" {
		t.Fatalf("linked ticket: %+v", res)
	}
	if res.Patch["title"] != "Pasted subject" || res.Patch["priority"] != "low" || len(res.Patch) != 3 {
		t.Fatalf("patch %v: want title, body and priority", res.Patch)
	}
	// Ticket 2 by id: no label, no twin, nothing would sync.
	res, err = f.eng.TestRun(f.ctx, f.conn.ID, store.SideA, "2", nil)
	if err != nil || res.Matched || res.WouldSync || res.TargetID != "" || res.Patch["title"] != "How do I reset my password?" {
		t.Fatalf("unlinked ticket: %+v %v", res, err)
	}
	// A script error comes back with its stage and position.
	if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideB, store.KindIncoming, "entity.title = replica.nope.x;", "t"); err != nil {
		t.Fatal(err)
	}
	res, err = f.eng.TestRun(f.ctx, f.conn.ID, store.SideA, "1", nil)
	var se *scripting.Error
	if err != nil || res.Stage != "incoming" || !errors.As(res.Error, &se) || se.Line != 1 {
		t.Fatalf("script error: %+v %v", res, err)
	}

	if w := f.writes.Load(); w != writes {
		t.Fatalf("test runs wrote %d times to the systems", w-writes)
	}
	evs2, _ := f.st.ListEvents(f.ctx, store.EventFilter{})
	audit2, _ := f.st.ListAudit(f.ctx, 0, 1000)
	if len(evs2) != len(evs) || len(audit2) != len(audit) {
		t.Fatalf("test runs changed the store: events %d→%d, audit %d→%d", len(evs), len(evs2), len(audit), len(audit2))
	}
}

// A connection whose script never ends fails its own events at the deadline;
// a healthy connection on the same systems syncs in the same worker rounds.
func TestRunawayConnectionBesideHealthyOne(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), 200*time.Millisecond)
	bad := store.Connection{Name: "runaway", SystemAID: f.conn.SystemAID, SystemBID: f.conn.SystemBID, Active: true}
	err := f.st.CreateConnection(f.ctx, &bad, map[store.Side]map[store.ScriptKind]string{
		store.SideA: {store.KindTrigger: `"todev" in labels`, store.KindOutgoing: "replica.x = 1;"},
		store.SideB: {store.KindTrigger: "false", store.KindIncoming: "while (true) {}"},
	}, "t")
	if err != nil {
		t.Fatal(err)
	}
	f.exec(f.support, "UPDATE tickets SET labels = 'export,todev' WHERE id = 3")
	f.cycle() // both connections queue both tickets and work them once
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref IN ('T-1', 'T-3')"); n != 2 {
		t.Fatalf("healthy connection synced %d of 2 tickets in the round the runaway one failed", n)
	}
	failed, _ := f.st.ListEvents(f.ctx, store.EventFilter{ConnectionID: bad.ID, Status: store.StatusFailed})
	if len(failed) != 2 || !strings.Contains(failed[0].LastError, "runaway/b.incoming.js") {
		t.Fatalf("runaway connection: %+v", failed)
	}
	f.noFailuresOf(f.conn.ID)
}

func (f *fixture) noFailuresOf(connID int64) {
	f.t.Helper()
	evs, _ := f.st.ListEvents(f.ctx, store.EventFilter{ConnectionID: connID, Status: store.StatusFailed})
	for _, ev := range evs {
		f.t.Errorf("failed event %d: %s", ev.ID, ev.LastError)
	}
}

// Nothing on the per-event path compiles: after the first sync compiled the
// connection's plan, twenty more changes in both directions compile nothing.
func TestNoCompilationPerEvent(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	f.settle()
	before := scripting.Compilations()
	for i := 0; i < 10; i++ {
		f.exec(f.support, "UPDATE tickets SET subject = ? WHERE id = 1", fmt.Sprint("subject ", i))
		f.exec(f.eng2, "UPDATE issues SET state = ? WHERE ticket_ref = 'T-1'", []string{"in_progress", "resolved"}[i%2])
		f.settle()
		// Every round's changes arrive, though states repeat (no false echo).
		if got, want := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"), []string{"escalated", "solved"}[i%2]; got != want {
			t.Fatalf("round %d: ticket status %q, want %q", i, got, want)
		}
		if got := f.one(f.eng2, "SELECT title FROM issues WHERE ticket_ref = 'T-1'"); got != fmt.Sprint("subject ", i) {
			t.Fatalf("round %d: issue title %q", i, got)
		}
	}
	if n := scripting.Compilations() - before; n != 0 {
		t.Fatalf("%d compilations for 20 changes", n)
	}
	if done := len(f.event(store.StatusDone)); done < 20 {
		t.Fatalf("only %d events done: the changes did not flow", done)
	}
}

// TestSyncBackOnCreate: with the option, the issue Duplex created is sent
// back once (the ticket learns the engineering state), and then everything
// is quiet: the sync back is no loop.
func TestSyncBackOnCreate(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got == "escalated" {
		t.Fatalf("ticket 1 starts escalated; the test needs another status")
	}
	if err := f.st.SetOptions(f.ctx, f.conn.ID, `{"sync_back_on_create":true}`); err != nil {
		t.Fatal(err)
	}
	f.settle()
	time.Sleep(100 * time.Millisecond) // past the sql connector's settle window for the new issue
	f.settle()
	if got := f.one(f.support, "SELECT status FROM tickets WHERE id = 1"); got != "escalated" {
		evs, _ := f.st.ListEvents(f.ctx, store.EventFilter{ConnectionID: f.conn.ID})
		for _, ev := range evs {
			t.Logf("event %d %s %s %s %s", ev.ID, ev.Direction, ev.Status, ev.Replica, ev.LastError)
		}
		t.Fatalf("ticket 1 status %q: the new issue's state (new → escalated) did not come back", got)
	}
	backs := 0
	evs, err := f.st.ListEvents(f.ctx, store.EventFilter{ConnectionID: f.conn.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Direction == store.BToA {
			backs++
		}
	}
	if backs != 1 {
		t.Fatalf("%d events went back, want exactly 1", backs)
	}
	before := f.writes.Load()
	for i := 0; i < 20; i++ {
		f.cycle()
	}
	if w := f.writes.Load() - before; w != 0 {
		t.Fatalf("%d writes in 20 idle cycles after the sync back: a loop", w)
	}
}
