package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// Intents added at the same time share statements and commits (the group
// commit): each still gets its own row and id back, and one that cannot be
// stored (its twin is gone) fails alone, not the group it travelled in.
func TestAddIntentConcurrent(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			const n = 60
			twins := make([]int64, n)
			for i := range twins {
				tw, err := f.st.EnsureTwin(f.ctx, f.conn.ID, store.SideA, fmt.Sprint("e", i))
				if err != nil {
					t.Fatal(err)
				}
				twins[i] = tw.ID
			}
			bad := func(i int) bool { return i%7 == 3 }
			ins := make([]store.Intent, n)
			errs := make(chan error, n)
			for i := range ins {
				ins[i] = store.Intent{TwinID: twins[i], EventID: int64(1000 + i), ConnectionID: f.conn.ID, SystemID: f.sys[1],
					Side: store.SideB, Action: "update", EntityID: fmt.Sprint("t", i), Expected: fmt.Sprintf(`{"f":{"n":%d}}`, i),
					Comments: "[]", Echo: true}
				if bad(i) {
					ins[i].TwinID = twins[n-1] + 1000 // no such twin: the foreign key refuses it
				}
				go func() { errs <- f.st.AddIntent(f.ctx, &ins[i]) }()
			}
			failed := 0
			for range ins {
				if err := <-errs; err != nil {
					failed++
				}
			}
			want := 0
			for i := range ins {
				if bad(i) {
					want++
				}
			}
			if failed != want {
				t.Fatalf("%d intents failed, want %d (only the ones without a twin)", failed, want)
			}
			got, err := f.st.OpenIntents(f.ctx, f.sys[1], time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			byID := map[int64]store.Intent{}
			for _, in := range got {
				byID[in.ID] = in
			}
			if len(got) != n-want {
				t.Fatalf("%d intents stored, want %d", len(got), n-want)
			}
			for i, in := range ins {
				if bad(i) {
					continue
				}
				s, ok := byID[in.ID]
				if !ok || s.EventID != in.EventID || s.Expected != in.Expected || s.TwinID != in.TwinID {
					t.Errorf("intent %d: id %d holds %+v", i, in.ID, s)
				}
			}
			// The creates' answers, at the same time: each twin gets its
			// new entity's id and each intent the entity as created. A
			// group holds answers for both sides (one statement each).
			side := func(i int) store.Side {
				if i%3 == 0 {
					return store.SideA
				}
				return store.SideB
			}
			for i := range ins {
				go func() {
					if bad(i) {
						errs <- nil
						return
					}
					errs <- f.st.IntentCreated(f.ctx, ins[i].ID, twins[i], side(i), fmt.Sprint("new", i), fmt.Sprintf(`{"f":{"c":%d}}`, i), true)
				}()
			}
			for range ins {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			got, err = f.st.OpenIntents(f.ctx, f.sys[1], time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			tws, err := f.st.TwinsByID(f.ctx, twins)
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range got {
				i := int(in.EventID - 1000)
				if in.EntityID != fmt.Sprint("new", i) || in.Expected != fmt.Sprintf(`{"f":{"c":%d}}`, i) || in.Partial {
					t.Errorf("intent %d after its create: %+v", i, in)
				}
				if tw := tws[twins[i]]; tw == nil || tw.EntityID(side(i)) != fmt.Sprint("new", i) {
					t.Errorf("twin %d after its create on side %s: %+v", i, side(i), tw)
				}
			}
		})
	}
}

// A create's answer waits a little for an intent to share its commit (they
// come one after the other under a stream of creates) when its caller
// expects one, not longer than that when none comes, and not at all when
// its caller expects none.
func TestCreatedAnswerSharesTheNextIntentsCommit(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			intent := func(i int) *store.Intent {
				tw, err := f.st.EnsureTwin(f.ctx, f.conn.ID, store.SideA, fmt.Sprint("e", i))
				if err != nil {
					t.Fatal(err)
				}
				return &store.Intent{TwinID: tw.ID, EventID: int64(100 + i), ConnectionID: f.conn.ID, SystemID: f.sys[1],
					Side: store.SideB, Action: "create", CorrelationKey: fmt.Sprint("k", i), Expected: `{"f":{}}`, Partial: true, Comments: "[]", Echo: true}
			}
			first := intent(1)
			if err := f.st.AddIntent(f.ctx, first); err != nil {
				t.Fatal(err)
			}
			second := intent(2)
			store.SetCreatedLinger(f.st, time.Minute)
			answer := func(coming bool) error {
				return f.st.IntentCreated(f.ctx, first.ID, first.TwinID, store.SideB, "new1", `{"f":{"a":1}}`, coming)
			}
			answered := make(chan error, 1)
			commits := f.st.Stats().Commits.Load()
			go func() { answered <- answer(true) }()
			select {
			case err := <-answered:
				t.Fatalf("the answer was committed alone (%v), before any intent came", err)
			case <-time.After(100 * time.Millisecond):
			}
			if err := f.st.AddIntent(f.ctx, second); err != nil {
				t.Fatal(err)
			}
			if err := <-answered; err != nil {
				t.Fatal(err)
			}
			if got := f.st.Stats().Commits.Load() - commits; got != 1 {
				t.Errorf("%d commits for an answer and the intent after it, want 1", got)
			}
			tw, err := f.st.TwinsByID(f.ctx, []int64{first.TwinID})
			if err != nil || tw[first.TwinID] == nil || tw[first.TwinID].EntityID(store.SideB) != "new1" {
				t.Fatalf("twin after the answer: %+v %v", tw[first.TwinID], err)
			}

			start := time.Now()
			if err := answer(false); err != nil {
				t.Fatal(err)
			}
			if waited := time.Since(start); waited >= time.Minute/2 {
				t.Errorf("an answer whose caller expects no intent waited %v", waited)
			}
			store.SetCreatedLinger(f.st, 50*time.Millisecond)
			start = time.Now()
			if err := answer(true); err != nil {
				t.Fatal(err)
			}
			if waited := time.Since(start); waited < 50*time.Millisecond || waited > 10*time.Second {
				t.Errorf("an answer with no intent coming was committed after %v, want after its linger (50 ms)", waited)
			}
		})
	}
}
