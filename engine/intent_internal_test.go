package engine

import (
	"context"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

func TestExpectationMatches(t *testing.T) {
	update := expectation{snap: snapshot{F: map[string]any{"title": "New", "state": "new"}, C: []string{"1"}},
		comments: []string{"[support] ana: hi"}, files: 1}
	create := expectation{snap: snapshot{F: map[string]any{"title": "New"}}, partial: true, comments: []string{"[support] ana: hi"}}
	ent := func(f map[string]any, cs ...connectors.Comment) connectors.Entity {
		return connectors.Entity{ID: "7", Fields: f, Comments: cs}
	}
	c1 := connectors.Comment{ID: "1", Body: "old"}
	ours := connectors.Comment{ID: "9", Body: "[support] ana: hi"}
	for _, tc := range []struct {
		name string
		x    expectation
		ent  connectors.Entity
		want bool
	}{
		{"the write, comment not added yet", update, ent(map[string]any{"title": "New", "state": "new"}, c1), true},
		{"the write with its comment", update, ent(map[string]any{"title": "New", "state": "new"}, c1, ours), true},
		{"a person's edit of another field", update, ent(map[string]any{"title": "New", "state": "resolved"}, c1, ours), false},
		{"before the write", update, ent(map[string]any{"title": "Old", "state": "new"}, c1), false},
		{"a field more than expected", update, ent(map[string]any{"title": "New", "state": "new", "x": 1}, c1), false},
		{"a person's comment", update, ent(map[string]any{"title": "New", "state": "new"}, c1, connectors.Comment{ID: "10", Body: "mine"}), false},
		{"our comment twice", update, ent(map[string]any{"title": "New", "state": "new"}, c1, ours, connectors.Comment{ID: "11", Body: ours.Body}), false},
		{"a known comment gone", update, ent(map[string]any{"title": "New", "state": "new"}), false},
		{"deleted", update, connectors.Entity{ID: "7", Deleted: true, Fields: map[string]any{"title": "New", "state": "new"}}, false},
		{"created: the system's own fields too", create, ent(map[string]any{"title": "New", "state": "new", "id": 7}, ours), true},
		{"created: a field the create set is changed", create, ent(map[string]any{"title": "Other"}), false},
		{"created: a person's comment", create, ent(map[string]any{"title": "New"}, c1), false},
	} {
		if got := tc.x.matches(tc.ent); got != tc.want {
			t.Errorf("%s: matches = %v, want %v", tc.name, got, tc.want)
		}
	}

	files := expectation{snap: snapshot{F: map[string]any{}, A: []string{"f1"}}, files: 1}
	att := func(ids ...string) connectors.Entity {
		e := connectors.Entity{ID: "7", Fields: map[string]any{}}
		for _, id := range ids {
			e.Attachments = append(e.Attachments, connectors.Attachment{ID: id})
		}
		return e
	}
	if !files.matches(att("f1", "f2")) || files.matches(att("f1", "f2", "f3")) || files.matches(att("f2")) {
		t.Error("attachments: the known ones must stay and at most the planned number be added")
	}
}

// An intent round-trips through its stored form.
func TestExpectationStored(t *testing.T) {
	x := expectation{snap: snapshot{F: map[string]any{"n": 3, "s": "x"}, C: []string{"2", "1"}}, comments: []string{"a"}, files: 2}
	in, err := x.intent()
	if err != nil {
		t.Fatal(err)
	}
	back, ok := expectationOf(in)
	if !ok || !back.matches(connectors.Entity{Fields: map[string]any{"n": 3, "s": "x"},
		Comments: []connectors.Comment{{ID: "1"}, {ID: "2"}, {ID: "3", Body: "a"}}}) {
		t.Fatalf("stored intent %+v does not match the state it expects", in)
	}
}

// A page entity that matches an open intent gets its own hash as echo
// reference; one not linked yet that matches a create's intent gets a
// stand-in twin; others are left as they are.
func TestMarkOwnWrites(t *testing.T) {
	enc := func(s snapshot) string { e, _ := s.encode(); return e }
	intents := []store.Intent{
		{ID: 1, TwinID: 9, ConnectionID: 1, Side: store.SideB, Action: "create", Partial: true,
			Expected: enc(snapshot{F: map[string]any{"title": "New"}}), Comments: "[]", Echo: true},
		{ID: 2, TwinID: 8, ConnectionID: 1, Side: store.SideB, Action: "update", EntityID: "6",
			Expected: enc(snapshot{F: map[string]any{"title": "Renamed"}}), Comments: "[]", Echo: true},
	}
	created := connectors.Entity{ID: "5", Fields: map[string]any{"title": "New", "state": "new"}}
	persons := connectors.Entity{ID: "7", Fields: map[string]any{"title": "Mine"}}
	updated := connectors.Entity{ID: "6", Fields: map[string]any{"title": "Renamed"}}
	linked := store.Twin{ID: 8, ConnectionID: 1}
	linked.SetEntityID(store.SideB, "6")
	twins := pageTwins{{1, store.SideB, "6"}: linked}
	e := &Engine{}
	e.markOwnWrites(context.Background(), intents, []use{{&plan{conn: store.Connection{ID: 1}}, store.SideB}},
		[]connectors.Entity{created, persons, updated}, twins)

	if got, ok := twins[twinKey{1, store.SideB, "5"}]; !ok || got.ID != 9 || got.Hash(store.SideB) != contentHash(created) {
		t.Errorf("the create's answer: twin %+v (found %v), want a stand-in for twin 9 with its hash", got, ok)
	}
	if _, ok := twins[twinKey{1, store.SideB, "7"}]; ok {
		t.Error("a person's new entity got a twin")
	}
	if got := twins[twinKey{1, store.SideB, "6"}]; got.Hash(store.SideB) != contentHash(updated) {
		t.Errorf("the update in flight: hash %q, want its content hash", got.Hash(store.SideB))
	}
}

// A replica that differs from the last one sent only by comments Duplex put
// on that side is no change of the side's; anything more is.
func TestOnlyOwnComments(t *testing.T) {
	twin := store.Twin{CommentLinks: `{"a:1":"b:20","b:30":"a:2"}`}
	sent := `{"comments":[{"body":"x","id":"10"}],"state":"in_progress"}`
	for _, tc := range []struct {
		name, replica string
		want          bool
	}{
		{"Duplex's copy added", `{"comments":[{"body":"x","id":"10"},{"body":"[support] y","id":"20"}],"state":"in_progress"}`, true},
		{"the same", sent, false},
		{"a person's comment (copied the other way) added", `{"comments":[{"body":"x","id":"10"},{"body":"z","id":"30"}],"state":"in_progress"}`, false},
		{"a new comment", `{"comments":[{"body":"x","id":"10"},{"body":"z","id":"31"}],"state":"in_progress"}`, false},
		{"Duplex's copy and a field", `{"comments":[{"body":"x","id":"10"},{"body":"[support] y","id":"20"}],"state":"resolved"}`, false},
		{"a comment edited", `{"comments":[{"body":"x2","id":"10"},{"body":"[support] y","id":"20"}],"state":"in_progress"}`, false},
		{"a comment gone", `{"comments":[{"body":"[support] y","id":"20"}],"state":"in_progress"}`, false},
		{"a key more", `{"comments":[{"body":"x","id":"10"},{"body":"[support] y","id":"20"}],"state":"in_progress","x":1}`, false},
	} {
		if got := onlyOwnComments(&twin, store.SideB, sent, tc.replica); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Only an entity changed after (or about when) a create's intent was
// recorded can be that create's; a create with its id saved, another
// connection's or side's, or an update, never holds a page back.
func TestCreateInFlight(t *testing.T) {
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	k := twinKey{conn: 1, side: store.SideB, id: "9"}
	create := store.Intent{ConnectionID: 1, Side: store.SideB, Action: "create", CreatedAt: at}
	for _, c := range []struct {
		name    string
		in      store.Intent
		updated time.Time
		want    bool
	}{
		{"changed after the intent", create, at.Add(time.Second), true},
		{"a system clock a little behind", create, at.Add(-30 * time.Second), true},
		{"changed long before: a person's own", create, at.Add(-time.Hour), false},
		{"no change time", create, time.Time{}, true},
		{"its id is saved", func() store.Intent { in := create; in.EntityID = "9"; return in }(), at, false},
		{"another connection", func() store.Intent { in := create; in.ConnectionID = 2; return in }(), at, false},
		{"the other side", func() store.Intent { in := create; in.Side = store.SideA; return in }(), at, false},
		{"an update", func() store.Intent { in := create; in.Action = "update"; return in }(), at, false},
	} {
		if got := createInFlight([]store.Intent{c.in}, k, c.updated); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// A system defers at most maxPollDeferrals polls in a row for creates in
// flight (another connection's creates on a shared system included); then
// one poll takes its page, and a decided poll starts the count again.
func TestDeferPollIsBounded(t *testing.T) {
	e := &Engine{}
	for i := 0; i < maxPollDeferrals; i++ {
		if !e.deferPoll(7) {
			t.Fatalf("poll %d not deferred", i+1)
		}
	}
	if e.deferPoll(7) {
		t.Fatalf("poll %d deferred: over the bound of %d", maxPollDeferrals+1, maxPollDeferrals)
	}
	if !e.deferPoll(7) || !e.deferPoll(8) {
		t.Fatal("after the bound the count starts again, and other systems count alone")
	}
	e.pollDecided(7)
	for i := 0; i < maxPollDeferrals; i++ {
		if !e.deferPoll(7) {
			t.Fatalf("after a decided poll, poll %d not deferred", i+1)
		}
	}
}

// linkPending links the entity's comments that its own open intents add,
// and nothing another intent adds (another twin's write of the same text).
func TestLinkPendingTakesOnlyTheEntitysIntents(t *testing.T) {
	intents := []store.Intent{
		{ID: 1, TwinID: 7, Comments: `["[support] ana: mine"]`},
		{ID: 2, TwinID: 8, Comments: `["[support] ana: other"]`},
		{ID: 3, TwinID: 7, Comments: `[]`},
	}
	ent := connectors.Entity{ID: "12", Comments: []connectors.Comment{
		{ID: "40", Body: "[support] ana: mine"}, {ID: "41", Body: "[support] ana: other"}, {ID: "42", Body: "a person's"}}}
	tw := linkPending(store.Twin{ID: 7}, store.SideB, ent, intents, []int64{1, 3})
	links := loadLinks(&tw)
	if !linked(links, store.SideB, "40") || linked(links, store.SideB, "41") || linked(links, store.SideB, "42") {
		t.Fatalf("links %v: want comment 40 only", links)
	}
}

// BenchmarkLinkPending is one entity of a page against a system with 1,000
// open intents (a remote with many creates in flight): it reads its own.
func BenchmarkLinkPending(b *testing.B) {
	intents := make([]store.Intent, 1000)
	for i := range intents {
		intents[i] = store.Intent{ID: int64(i + 1), TwinID: int64(i + 1), Comments: `["[support] ana: a note"]`,
			Expected: `{"f":{"title":"ticket","state":"new","priority":"high","body":"text"},"c":["1","2"]}`}
	}
	ent := connectors.Entity{ID: "12", Comments: []connectors.Comment{{ID: "40", Body: "[support] ana: a note"}}}
	b.ReportAllocs()
	for b.Loop() {
		linkPending(store.Twin{ID: 500}, store.SideB, ent, intents, []int64{500})
	}
}
