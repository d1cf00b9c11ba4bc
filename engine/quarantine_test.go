package engine_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/alerts"
	"github.com/duplexsync/duplex/internal/testdb"
)

// A script that runs into its deadline on every entity: the third run
// quarantines the connection (paused with a reason, audited, alerted), the
// runs after it in the same page and every poll after it run no script,
// and activating it again (script fixed) backfills what changed meanwhile.
func TestQuarantineStopsAScriptHittingItsLimit(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), 100*time.Millisecond)
	for kind, src := range map[store.ScriptKind]string{store.KindTrigger: "true", store.KindOutgoing: "while (true) {}"} {
		if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideA, kind, src, "t"); err != nil {
			t.Fatal(err)
		}
	}
	f.exec(f.support, "INSERT INTO tickets (subject, description, priority, labels, requester) VALUES ('Fourth', '', 'normal', '', 'x@example.com')")
	f.cycle() // four tickets match; the third run that times out quarantines

	c, err := f.st.GetConnection(f.ctx, f.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Active || !strings.Contains(c.PausedReason, "3 script runs hit a limit") || !strings.Contains(c.PausedReason, "timeout") || c.QuarantinedAt == nil {
		t.Fatalf("connection after 3 timeouts: active=%v reason=%q at=%v", c.Active, c.PausedReason, c.QuarantinedAt)
	}
	failed := f.event(store.StatusFailed)
	if len(failed) != 3 {
		t.Fatalf("%d failed events, want 3 (the fourth entity must not run the script)", len(failed))
	}
	audit, err := f.st.ListAudit(f.ctx, f.conn.ID, 50)
	if err != nil {
		t.Fatal(err)
	}
	var audited int
	for _, a := range audit {
		if a.Action == "connection.quarantine" && a.Actor == "engine" {
			audited++
		}
	}
	if audited != 1 {
		t.Fatalf("%d connection.quarantine audit entries, want 1", audited)
	}

	// Quarantined: more changes and more polls run no script (no new
	// failure, nothing queued); a fresh engine (a restart) neither.
	f.exec(f.support, "INSERT INTO tickets (subject, description, priority, labels, requester) VALUES ('Made during quarantine', '', 'normal', '', 'y@example.com')")
	f.cycle()
	f.eng = f.newEngine()
	f.cycle()
	if n := len(f.event(store.StatusFailed)); n != 3 {
		t.Fatalf("%d failed events after polls of the quarantined connection, want still 3", n)
	}
	if n := len(f.event(store.StatusQueued)); n != 0 {
		t.Fatalf("%d events queued for a quarantined connection", n)
	}

	ev := alerts.New(alerts.Options{Store: f.st, Logger: slog.New(slog.DiscardHandler)})
	if err := ev.Evaluate(f.ctx); err != nil {
		t.Fatal(err)
	}
	open, err := f.st.Alerts().OpenAlerts(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Kind != store.AlertQuarantined || !strings.Contains(open[0].Detail, "hit a limit") {
		t.Fatalf("open alerts: %+v", open)
	}

	// Fixed and resumed: the backfill brings what changed meanwhile (the
	// three failed events stay failed until retried).
	if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideA, store.KindOutgoing, "replica.title = entity.subject; replica.priority = entity.priority; replica.description = entity.description", "t"); err != nil {
		t.Fatal(err)
	}
	if err := f.st.SetActive(f.ctx, f.conn.ID, true); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := f.eng.BackfillOnce(f.ctx); err != nil {
			t.Fatal(err)
		}
		f.cycle()
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE title = 'Made during quarantine'"); n != 1 {
		t.Fatalf("the ticket made during the quarantine arrived %d times after resuming, want 1", n)
	}
	if n := len(f.event(store.StatusFailed)); n != 3 {
		t.Fatalf("%d failed events, want the 3 that hit the limit, still failed", n)
	}
	if err := ev.Evaluate(f.ctx); err != nil {
		t.Fatal(err)
	}
	open, err = f.st.Alerts().OpenAlerts(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range open {
		if a.Kind == store.AlertQuarantined {
			t.Fatalf("quarantine alert still open after resuming: %+v", a)
		}
	}
}

// quarantine_hits -1 switches quarantine off for a connection.
func TestQuarantineOff(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), 50*time.Millisecond)
	if err := f.st.SetOptions(f.ctx, f.conn.ID, `{"quarantine_hits":-1}`); err != nil {
		t.Fatal(err)
	}
	for kind, src := range map[store.ScriptKind]string{store.KindTrigger: "true", store.KindOutgoing: "while (true) {}"} {
		if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideA, kind, src, "t"); err != nil {
			t.Fatal(err)
		}
	}
	f.exec(f.support, "INSERT INTO tickets (subject, description, priority, labels, requester) VALUES ('Fourth', '', 'normal', '', 'x@example.com')")
	f.cycle()
	c, err := f.st.GetConnection(f.ctx, f.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Active || c.PausedReason != "" || len(f.event(store.StatusFailed)) != 4 {
		t.Fatalf("quarantine_hits -1: active=%v reason=%q failed=%d", c.Active, c.PausedReason, len(f.event(store.StatusFailed)))
	}
}

// Runs of the worker count too: an incoming script that never ends
// quarantines the connection, and the events it did not run yet stay queued.
func TestQuarantineFromTheWorker(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), 50*time.Millisecond)
	if err := f.st.SetOptions(f.ctx, f.conn.ID, `{"quarantine_hits":2}`); err != nil {
		t.Fatal(err)
	}
	for side, src := range map[store.Side]map[store.ScriptKind]string{
		store.SideA: {store.KindTrigger: "true"}, store.SideB: {store.KindIncoming: "while (true) {}"}} {
		for kind, s := range src {
			if _, err := f.st.SaveScript(f.ctx, f.conn.ID, side, kind, s, "t"); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.cycle()
	f.cycle()
	c, err := f.st.GetConnection(f.ctx, f.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Active || !strings.Contains(c.PausedReason, "2 script runs hit a limit") {
		t.Fatalf("after incoming timeouts: active=%v reason=%q", c.Active, c.PausedReason)
	}
	failed := len(f.event(store.StatusFailed))
	if failed < 2 || failed+len(f.event(store.StatusQueued)) != 3 {
		t.Fatalf("%d failed, %d queued: want at least 2 failed, and the rest of the 3 still queued", failed, len(f.event(store.StatusQueued)))
	}
}

// An expression rule that blows expr's memory budget counts as a limit hit
// (the worker path through a RuleError).
func TestQuarantineFromARule(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	if err := f.st.SetOptions(f.ctx, f.conn.ID, `{"quarantine_hits":2}`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideA, store.KindTrigger, "true", "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideB, store.KindRules,
		`[{"kind": "expr", "field": "title", "expr": "all(1..100000, { all(1..100000, { # > 0 }) })"}]`, "t"); err != nil {
		t.Fatal(err)
	}
	f.cycle()
	f.cycle()
	c, err := f.st.GetConnection(f.ctx, f.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Active || !strings.Contains(c.PausedReason, "(memory)") {
		t.Fatalf("after a rule over expr's memory budget: active=%v reason=%q", c.Active, c.PausedReason)
	}
}
