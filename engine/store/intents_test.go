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
					errs <- f.st.IntentCreated(f.ctx, ins[i].ID, twins[i], side(i), fmt.Sprint("new", i), fmt.Sprintf(`{"f":{"c":%d}}`, i))
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
