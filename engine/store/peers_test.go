package store_test

import (
	"context"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// A peer message is taken once: its id is recorded in the transaction
// that queues its event, so a redelivery queues nothing.
func TestPeerInboxTakesAMessageOnce(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			sa, sb := store.System{Name: "a", Kind: "sql"}, store.System{Name: "peer", Kind: "peer"}
			for _, s := range []*store.System{&sa, &sb} {
				if err := st.CreateSystem(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			conn := store.Connection{Name: "c", SystemAID: sa.ID, SystemBID: sb.ID, Active: true}
			if err := st.CreateConnection(ctx, &conn, nil, "test"); err != nil {
				t.Fatal(err)
			}
			l := store.PeerLink{TeamID: 1, Name: "l", ConnectionID: conn.ID, SystemID: sb.ID, PeerSide: store.SideB,
				LocalNode: "me", RemoteNode: "them", PrivateKey: []byte{1}, PublicKey: []byte{2}, Status: store.PeerActive}
			if err := st.CreatePeerLink(ctx, &l, nil); err != nil {
				t.Fatal(err)
			}
			for i, want := range []bool{false, true} {
				dup, err := st.ReceivePeerReplica(ctx, l, "them-r1", "them.7", `{"title":"x"}`)
				if err != nil || dup != want {
					t.Fatalf("delivery %d: dup=%v err=%v, want dup=%v", i+1, dup, err, want)
				}
			}
			if dup, err := st.ReceivePeerReplica(ctx, l, "them-r2", "them.7", `{"title":"y"}`); err != nil || dup {
				t.Fatalf("second message: dup=%v err=%v", dup, err)
			}
			evs, err := st.ListEvents(ctx, store.EventFilter{})
			if err != nil || len(evs) != 2 {
				t.Fatalf("events: %d, %v; want 2 (one per message)", len(evs), err)
			}
			tw, err := st.TwinBy(ctx, conn.ID, store.SideB, "them.7")
			if err != nil || tw.Origin != store.SideB {
				t.Fatalf("twin of the pair: %+v %v", tw, err)
			}
			// A delete is taken once too, as a delete event of the pair's
			// twin; one for a pair never seen records only its id.
			for i, want := range []bool{false, true} {
				dup, err := st.ReceivePeerDelete(ctx, l, "them-dthem.7", "them.7")
				if err != nil || dup != want {
					t.Fatalf("delete delivery %d: dup=%v err=%v, want dup=%v", i+1, dup, err, want)
				}
			}
			if dup, err := st.ReceivePeerDelete(ctx, l, "them-dthem.99", "them.99"); err != nil || dup {
				t.Fatalf("delete of an unknown pair: dup=%v err=%v", dup, err)
			}
			evs, err = st.ListEvents(ctx, store.EventFilter{})
			if err != nil || len(evs) != 3 || evs[0].Action != "delete" || evs[0].TwinID != tw.ID || evs[0].Direction != store.BToA {
				t.Fatalf("events after the deletes: %+v %v; want a third, the delete from the peer side", evs, err)
			}
			c, err := st.PeerLinkCounts(ctx, l.ID)
			if err != nil || c.Received != 4 {
				t.Fatalf("counts %+v %v", c, err)
			}
			// The outbox keeps one message per id: an apply run again
			// after a crash writes nothing new.
			for i, want := range []bool{true, false} {
				m := store.PeerMessage{LinkID: l.ID, MsgID: "me-r5", Kind: "replica", EventID: 5, Body: "{}"}
				ok, err := st.EnqueuePeer(ctx, &m)
				if err != nil || ok != want {
					t.Fatalf("enqueue %d: ok=%v err=%v", i+1, ok, err)
				}
			}
			m, ok, err := st.NextPeerMessage(ctx, l.ID)
			if err != nil || !ok || m.MsgID != "me-r5" {
				t.Fatalf("next: %+v %v %v", m, ok, err)
			}
			if err := st.PeerSent(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := st.NextPeerMessage(ctx, l.ID); ok {
				t.Fatal("a sent message is still waiting")
			}
		})
	}
}
