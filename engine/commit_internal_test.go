package engine

import (
	"context"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// A commit reads its candidates' existing twins in one statement and
// writes their last sent replicas and cleared echo hashes in one (twinBook),
// and a second change of the same entity in the same commit compares with
// what the first one queued, not with the twin as read before it, on every
// store.
func TestCommitReadsTwinsOnceAndEachForOneChange(t *testing.T) {
	for _, be := range testdb.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			st, ctx := be.Open(t), context.Background()
			var sys [2]int64
			for i, name := range []string{"desk", "tracker"} {
				s := store.System{Name: name, Kind: "sql"}
				if err := st.CreateSystem(ctx, &s); err != nil {
					t.Fatal(err)
				}
				sys[i] = s.ID
			}
			conn := store.Connection{Name: "c", SystemAID: sys[0], SystemBID: sys[1], Active: true}
			if err := st.CreateConnection(ctx, &conn, nil, "t"); err != nil {
				t.Fatal(err)
			}
			twins := map[string]store.Twin{}
			for _, id := range []string{"1", "2", "3", "4"} {
				tw, err := st.EnsureTwin(ctx, conn.ID, store.SideA, id)
				if err != nil {
					t.Fatal(err)
				}
				if err := st.SetSent(ctx, tw.ID, store.AToB, `{"v":0}`); err != nil {
					t.Fatal(err)
				}
				tw.SetHash(store.SideA, "echo-"+id)
				if err := st.SaveTwin(ctx, &tw, store.SideA); err != nil {
					t.Fatal(err)
				}
				twins[id] = tw
			}
			cand := func(id, replica string) candidate {
				return candidate{connID: conn.ID, side: store.SideA, entityID: id, twinID: twins[id].ID, replica: replica}
			}
			cands := []candidate{
				cand("1", `{"v":1}`), // a change
				cand("1", `{"v":1}`), // the same state again: already queued by the first
				cand("2", `{"v":0}`), // unchanged since sent
				cand("3", `{"v":3}`), // a change
			}
			stats := st.Stats()
			before := stats.Statements.Load()
			var n int
			err := st.Tx(ctx, func(tx *store.Store) error {
				var err error
				n, err = commit(ctx, tx, cands, nil)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Fatalf("queued %d events, want 2 (entity 1 once, entity 3)", n)
			}
			for id, want := range map[string]string{"1": `{"v":1}`, "2": `{"v":0}`, "3": `{"v":3}`, "4": `{"v":0}`} {
				tw, err := st.TwinBy(ctx, conn.ID, store.SideA, id)
				if err != nil {
					t.Fatal(err)
				}
				if got := tw.Sent(store.AToB); got == nil || *got != want {
					t.Errorf("entity %s: last sent %v, want %s", id, got, want)
				}
				// A person's change (all but 4, untouched) clears the
				// echo hash: Duplex's earlier write is history.
				if wantHash := map[bool]string{true: "", false: "echo-4"}[id != "4"]; tw.Hash(store.SideA) != wantHash {
					t.Errorf("entity %s: echo hash %q, want %q", id, tw.Hash(store.SideA), wantHash)
				}
			}
			// One read for the three twins, one write for them, the events,
			// and the transaction's own: 7 on SQLite (12 with a read and a
			// write each), one more on PostgreSQL (the lock, by id).
			most := int64(7)
			if be.Name != "sqlite" {
				most = 8
			}
			if got := stats.Statements.Load() - before; got > most {
				t.Errorf("%d statements for 4 candidates of 3 twins", got)
			}
		})
	}
}
