package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/demo"
	"github.com/duplexsync/duplex/internal/testdb"
)

// failOnce makes the first call of op on system fail as a lost
// connection does (the event is retried).
func failOnce(f *fixture, system, op string) *int {
	n := 0
	f.setFault(func(s, o string) error {
		if s == system && o == op && n < 1 {
			n++
			return fmt.Errorf("connection reset (%s): %w", op, connectors.ErrUnavailable)
		}
		return nil
	})
	return &n
}

// Two deployments (two stores, so the same connection and twin ids) sync
// into one engineering database. The second's create of T-1, retried after
// a failure, makes its own issue: it does not find the first deployment's
// issue by correlation key, link it and then write over it. With keys of
// connection and twin ids only (duplex:1:1 in both) it did.
func TestTwoDeploymentsDoNotFindEachOthersCreates(t *testing.T) {
	first := newFixture(t, testdb.SQLite(t), time.Second)
	first.settle()
	firstIssue := first.issueOf("1")
	twinA, err := first.st.TwinBy(first.ctx, first.conn.ID, store.SideA, "1")
	if err != nil {
		t.Fatal(err)
	}

	own, err := demo.CreateDatabases(first.ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	second := newFixtureOn(t, testdb.SQLite(t), time.Second, &demo.Paths{Support: own.Support, Engineering: first.paths.Engineering})
	fails := failOnce(second, "engineering", "create")
	second.cycle()
	for i := 0; i < 3; i++ {
		second.advance(time.Hour)
		second.cycle()
	}
	second.settle()
	twinB, err := second.st.TwinBy(second.ctx, second.conn.ID, store.SideA, "1")
	if err != nil {
		t.Fatal(err)
	}
	if twinB.ID != twinA.ID || second.conn.ID != first.conn.ID {
		t.Fatalf("the deployments' ids differ (twin %d and %d, connection %d and %d): the test shows nothing", twinA.ID, twinB.ID, first.conn.ID, second.conn.ID)
	}
	if got := twinB.EntityID(store.SideB); got == firstIssue || got == "" {
		t.Fatalf("the second deployment's twin links issue %q; the first deployment's is %s", got, firstIssue)
	}
	if *fails != 1 {
		t.Fatalf("fault fired %d times, want 1 (the create was retried)", *fails)
	}
	if n := first.count(first.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'"); n != 2 {
		t.Fatalf("%d issues for T-1, want 2 (one per deployment)", n)
	}
	keys := first.count(first.eng2, "SELECT COUNT(DISTINCT duplex_ref) FROM issues WHERE ticket_ref = 'T-1'")
	if keys != 2 {
		t.Fatalf("the two issues carry %d distinct keys, want 2", keys)
	}

	// The second deployment's edits go to its own issue only.
	second.exec(second.support, "UPDATE tickets SET subject = 'the second deployment''s ticket' WHERE id = 1")
	second.settle()
	if got := first.one(first.eng2, "SELECT title FROM issues WHERE id = ?", firstIssue); got != "Checkout fails with a 500" {
		t.Fatalf("the first deployment's issue was written over: title %q", got)
	}
	if got := first.one(first.eng2, "SELECT title FROM issues WHERE id = ?", twinB.EntityID(store.SideB)); got != "the second deployment's ticket" {
		t.Fatalf("the second deployment's issue has title %q", got)
	}
}

// interruptedCreate runs the create of T-1's issue into a crash after the
// create (its answer lost) and rewrites what it left as the code before
// deployment ids left it: the legacy key duplex:<connection>:<twin> on the
// issue. It returns the twin and the legacy key.
func interruptedCreate(t *testing.T, f *fixture) (store.Twin, string) {
	t.Helper()
	crashes := failOnce(f, "engineering", "after-create")
	f.cycle()
	if *crashes != 1 {
		t.Fatalf("fault fired %d times, want 1", *crashes)
	}
	tw, err := f.st.TwinBy(f.ctx, f.conn.ID, store.SideA, "1")
	if err != nil {
		t.Fatal(err)
	}
	if tw.EntityID(store.SideB) != "" {
		t.Fatalf("the twin has issue %q after a create whose answer was lost", tw.EntityID(store.SideB))
	}
	legacy := fmt.Sprintf("duplex:%d:%d", f.conn.ID, tw.ID)
	if n, err := f.eng2.ExecContext(f.ctx, "UPDATE issues SET duplex_ref = ? WHERE ticket_ref = 'T-1'", legacy); err != nil {
		t.Fatal(err)
	} else if c, _ := n.RowsAffected(); c != 1 {
		t.Fatalf("%d issues for T-1 after the interrupted create, want 1", c)
	}
	return tw, legacy
}

// retryAfterUpgrade restarts the engine (the upgraded binary) and works
// the queue, polling nothing, until the retried create is through.
func retryAfterUpgrade(t *testing.T, f *fixture) {
	t.Helper()
	f.eng = f.newEngine()
	for i := 0; i < 3; i++ {
		f.advance(time.Hour)
		if _, err := f.eng.WorkOnce(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.settle()
}

// A create interrupted before the upgrade (its intent records the legacy
// key) is found by that key after it: the retry does not make a new key
// for an old attempt.
func TestCreateInterruptedBeforeTheUpgradeIsFound(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	tw, legacy := interruptedCreate(t, f)
	res := f.st.DB().Exec("UPDATE write_intents SET correlation_key = ? WHERE twin_id = ? AND action = 'create'", legacy, tw.ID)
	if res.Error != nil || res.RowsAffected != 1 {
		t.Fatalf("rewrite the create's intent: %d rows, %v", res.RowsAffected, res.Error)
	}
	// The twin existed when the deployment id was made: only such a twin
	// can have an intent with the legacy key.
	if err := f.st.DB().Exec("UPDATE deployment SET legacy_twin_max = ?", tw.ID).Error; err != nil {
		t.Fatal(err)
	}
	retryAfterUpgrade(t, f)
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'"); n != 1 {
		t.Fatalf("%d issues for T-1 after the retry, want 1", n)
	}
	tw, err := f.st.TwinBy(f.ctx, f.conn.ID, store.SideA, "1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tw.EntityID(store.SideB), f.issueOf("1"); got != want {
		t.Fatalf("twin links %q, want the issue the interrupted create made, %s", got, want)
	}
}

// A twin made before the deployment id whose create's intent is gone (aged
// out) keeps the legacy key: the issue its interrupted create left is found.
func TestTwinFromBeforeTheUpgradeKeepsTheLegacyKey(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	tw, _ := interruptedCreate(t, f)
	for _, q := range []string{"DELETE FROM write_intents WHERE twin_id = ?", "UPDATE deployment SET legacy_twin_max = ?"} {
		if err := f.st.DB().Exec(q, tw.ID).Error; err != nil {
			t.Fatal(err)
		}
	}
	retryAfterUpgrade(t, f)
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'"); n != 1 {
		t.Fatalf("%d issues for T-1 after the retry, want 1", n)
	}
}

// A twin made after the upgrade gets this deployment's key, and the key
// does not change with a restart of the engine on the same store.
func TestCorrelationKeyCarriesTheDeployment(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	d, err := f.st.Deployment(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	tw, key := interruptedCreateKey(t, f)
	if want := fmt.Sprintf("duplex:%s:%d:%d", d.ID, f.conn.ID, tw.ID); key != want {
		t.Fatalf("key %q, want %q", key, want)
	}
	f.eng = f.newEngine()
	f.fault.Store(nil)
	f.advance(time.Hour)
	f.settle()
	if got := f.one(f.eng2, "SELECT duplex_ref FROM issues WHERE ticket_ref = 'T-1'"); got != key {
		t.Fatalf("after a restart the issue carries %q, want %q", got, key)
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'"); n != 1 {
		t.Fatalf("%d issues for T-1, want 1", n)
	}
}

// interruptedCreateKey runs T-1's create into a crash after the create and
// returns its twin and the key on the issue it left.
func interruptedCreateKey(t *testing.T, f *fixture) (store.Twin, string) {
	t.Helper()
	failOnce(f, "engineering", "after-create")
	f.cycle()
	tw, err := f.st.TwinBy(f.ctx, f.conn.ID, store.SideA, "1")
	if err != nil {
		t.Fatal(err)
	}
	return tw, f.one(f.eng2, "SELECT duplex_ref FROM issues WHERE ticket_ref = 'T-1'")
}
