package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// refusing saves an update's fields but one it refuses, as Redmine does
// with a status move its workflow does not allow, and records the fields
// of every update it is asked for.
type refusing struct {
	connectors.Connector
	mu      *sync.Mutex
	refuse  *string // the field refused; "" refuses nothing
	updates *[][]string
}

func (r refusing) Update(ctx context.Context, id string, f map[string]any) (connectors.Entity, error) {
	r.mu.Lock()
	*r.updates = append(*r.updates, slices.Sorted(maps.Keys(f)))
	refuse := *r.refuse
	r.mu.Unlock()
	if _, ok := f[refuse]; !ok {
		return r.Connector.Update(ctx, id, f)
	}
	rest := maps.Clone(f)
	delete(rest, refuse)
	e, err := r.Connector.Update(ctx, id, rest)
	if err != nil {
		return e, err
	}
	return e, &connectors.PartialError{Applied: slices.Sorted(maps.Keys(rest)), Refused: []string{refuse},
		Err: fmt.Errorf("%w: the workflow does not allow this %s", connectors.ErrInvalid, refuse)}
}

func (r refusing) Create(ctx context.Context, f map[string]any) (connectors.Entity, error) {
	r.mu.Lock()
	refuse := *r.refuse
	r.mu.Unlock()
	if _, ok := f[refuse]; !ok {
		return r.Connector.Create(ctx, f)
	}
	rest := maps.Clone(f)
	delete(rest, refuse)
	e, err := r.Connector.Create(ctx, rest)
	if err != nil {
		return e, err
	}
	return e, &connectors.PartialError{Applied: slices.Sorted(maps.Keys(rest)), Refused: []string{refuse},
		Err: fmt.Errorf("%w: the workflow does not allow this %s", connectors.ErrInvalid, refuse)}
}

// TestPartialApplyRetriesWhatIsLeft: an update whose title is saved and
// whose priority is refused fails its event naming both, as fields on the
// event; the retry sends only the priority, so an edit of the title made
// on the target since stands.
func TestPartialApplyRetriesWhatIsLeft(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	var mu sync.Mutex
	var refuse string
	var updates [][]string
	f.wrap = func(system string, c connectors.Connector) connectors.Connector {
		if system != "engineering" {
			return c
		}
		return refusing{Connector: c, mu: &mu, refuse: &refuse, updates: &updates}
	}
	f.eng = f.newEngine() // the wrapper applies to connectors opened from now on
	f.settle()
	issue := f.issueOf("1")
	priority := f.one(f.eng2, "SELECT priority FROM issues WHERE id = ?", issue)
	mu.Lock()
	refuse, updates = "priority", nil
	mu.Unlock()
	f.exec(f.support, "UPDATE tickets SET subject = 'Checkout down', priority = 'low' WHERE id = 1")
	for i := 0; i < 3; i++ {
		f.cycle()
	}
	evs, err := f.st.ListEvents(f.ctx, store.EventFilter{ConnectionID: f.conn.ID, Status: store.StatusFailed})
	if err != nil || len(evs) != 1 {
		t.Fatalf("failed events: %d, %v", len(evs), err)
	}
	ev := evs[0]
	var partial struct {
		TargetID string   `json:"target_id"`
		Applied  []string `json:"applied"`
		Refused  []string `json:"refused"`
	}
	if ev.Partial == nil || json.Unmarshal([]byte(*ev.Partial), &partial) != nil ||
		partial.TargetID != issue || fmt.Sprint(partial.Applied) != "[title]" || fmt.Sprint(partial.Refused) != "[priority]" {
		t.Fatalf("event %d partial %v, want title applied and priority refused on %s (error %q)", ev.ID, ev.Partial, issue, ev.LastError)
	}
	if !strings.Contains(ev.LastError, "does not allow this priority") {
		t.Fatalf("last error %q", ev.LastError)
	}
	if got := f.one(f.eng2, "SELECT title FROM issues WHERE id = ?", issue); got != "Checkout down" {
		t.Fatalf("title after the partial write: %q", got)
	}
	// An engineer renames the issue meanwhile; the workflow allows the
	// priority now. The retry sends the priority alone: the title this
	// event saved is not written again over the engineer's.
	f.exec(f.eng2, "UPDATE issues SET title = 'Checkout down (payments)' WHERE id = ?", issue)
	mu.Lock()
	refuse, updates = "", nil
	mu.Unlock()
	if err := f.st.RetryEvent(f.ctx, ev.ID); err != nil {
		t.Fatal(err)
	}
	f.settle()
	mu.Lock()
	got := fmt.Sprint(updates)
	mu.Unlock()
	if got != "[[priority]]" {
		t.Fatalf("updates of the issue on retry: %s, want one with the priority only", got)
	}
	if p := f.one(f.eng2, "SELECT priority FROM issues WHERE id = ?", issue); p != "low" || p == priority {
		t.Fatalf("priority after the retry: %q (was %q)", p, priority)
	}
	if got := f.one(f.eng2, "SELECT title FROM issues WHERE id = ?", issue); got != "Checkout down (payments)" {
		t.Fatalf("the engineer's title was overwritten by the retry: %q", got)
	}
	if after, err := f.st.GetEvent(f.ctx, ev.ID); err != nil || after.Status != store.StatusDone {
		t.Fatalf("event after the retry: %s, %v", after.Status, err)
	}
}

// TestPartialCreate: a create taken in part links the new issue at once;
// the retry updates it with what was refused, never creating a second one.
func TestPartialCreate(t *testing.T) {
	f := newFixture(t, testdb.SQLite(t), time.Second)
	var mu sync.Mutex
	refuse := "priority"
	var updates [][]string
	f.wrap = func(system string, c connectors.Connector) connectors.Connector {
		if system != "engineering" {
			return c
		}
		return refusing{Connector: c, mu: &mu, refuse: &refuse, updates: &updates}
	}
	f.eng = f.newEngine()
	for i := 0; i < 3; i++ {
		f.cycle()
	}
	evs, err := f.st.ListEvents(f.ctx, store.EventFilter{ConnectionID: f.conn.ID, Status: store.StatusFailed})
	if err != nil || len(evs) != 1 || evs[0].Partial == nil {
		t.Fatalf("failed events: %+v, %v", evs, err)
	}
	issue := f.issueOf("1")
	twin, err := f.st.TwinBy(f.ctx, f.conn.ID, store.SideA, "1")
	if err != nil || twin.EntityID(store.SideB) != issue {
		t.Fatalf("the issue created in part is not linked: twin %+v, issue %s, %v", twin, issue, err)
	}
	if !strings.Contains(*evs[0].Partial, `"refused":["priority"]`) || !strings.Contains(*evs[0].Partial, `"target_id":"`+issue+`"`) {
		t.Fatalf("partial %s", *evs[0].Partial)
	}
	mu.Lock()
	refuse, updates = "", nil
	mu.Unlock()
	if err := f.st.RetryEvent(f.ctx, evs[0].ID); err != nil {
		t.Fatal(err)
	}
	f.settle()
	mu.Lock()
	got := fmt.Sprint(updates)
	mu.Unlock()
	if got != "[[priority]]" {
		t.Fatalf("updates on retry: %s, want the priority only", got)
	}
	if n := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'"); n != 1 {
		t.Fatalf("%d issues for ticket 1", n)
	}
	if p := f.one(f.eng2, "SELECT priority FROM issues WHERE id = ?", issue); p != "critical" {
		t.Fatalf("priority after the retry: %q", p)
	}
}
