package peering

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
)

type fakeEngine struct{ woken, reloaded int }

func (f *fakeEngine) Wake()        { f.woken++ }
func (f *fakeEngine) Reload(int64) { f.reloaded++ }
func (f *fakeEngine) CheckScript(_ context.Context, _ store.Connection, name string, kind scripting.Kind, src string) error {
	_, err := scripting.Compile(name, kind, src)
	return err
}

// receiving is a store with an active link whose peer holds key.
func receiving(t *testing.T, st *store.Store, rate float64, burst int) (*Service, store.PeerLink, func(id string) ([]byte, string)) {
	t.Helper()
	ctx := context.Background()
	box, err := secret.LoadOrCreate(t.TempDir() + "/key")
	if err != nil {
		t.Fatal(err)
	}
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
	peerPub, peerPriv, _ := NewKey()
	l := store.PeerLink{TeamID: 1, Name: "l", ConnectionID: conn.ID, SystemID: sb.ID, PeerSide: store.SideB,
		LocalNode: "me", RemoteNode: "them", PrivateKey: []byte{1}, PublicKey: []byte{2}, RemoteKey: peerPub, Status: store.PeerActive}
	if err := st.CreatePeerLink(ctx, &l, nil); err != nil {
		t.Fatal(err)
	}
	svc := New(Options{Store: st, Box: box, Engine: &fakeEngine{}, Rate: rate, Burst: burst})
	msg := func(id string) ([]byte, string) {
		body, sig, err := Sign(Envelope{From: "them", To: "me", ID: id, Time: time.Now(), Kind: KindReplica,
			Pair: "them.1", Replica: json.RawMessage(`{"title":"t"}`), Waiting: 2}, peerPriv)
		if err != nil {
			t.Fatal(err)
		}
		return body, sig
	}
	return svc, l, msg
}

func TestReceiveLimitsEachLinkAndRefusesWhilePaused(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			svc, l, msg := receiving(t, st, 0.001, 3) // three, then (practically) none
			for i := range 3 {
				body, sig := msg(fmt.Sprint("m", i))
				if err := svc.Receive(ctx, body, sig); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			// The peer's own count of what it still has for us is shown.
			if got, _ := st.GetPeerLink(ctx, l.ID); got.RemoteWaiting != 2 {
				t.Errorf("remote waiting %d, want 2", got.RemoteWaiting)
			}
			body, sig := msg("m3")
			if err := svc.Receive(ctx, body, sig); !errors.Is(err, ErrRateLimited) {
				t.Fatalf("over the burst: %v, want ErrRateLimited", err)
			}
			// A redelivery of a taken message is a duplicate, not a second event.
			body, sig = msg("m0")
			if err := svc.Receive(ctx, body, sig); !errors.Is(err, ErrDuplicate) && !errors.Is(err, ErrRateLimited) {
				t.Fatalf("redelivery: %v", err)
			}
			if c, _ := st.PeerLinkCounts(ctx, l.ID); c.Received != 3 {
				t.Fatalf("received %d, want 3", c.Received)
			}

			svc2, l2, msg2 := receiving(t, b.Open(t), 50, 200)
			if _, err := svc2.SetState(ctx, "admin", l2.ID, "pause"); err != nil {
				t.Fatal(err)
			}
			body, sig = msg2("p1")
			if err := svc2.Receive(ctx, body, sig); !errors.Is(err, ErrPaused) {
				t.Fatalf("while paused: %v, want ErrPaused", err)
			}
			if _, err := svc2.SetState(ctx, "admin", l2.ID, "resume"); err != nil {
				t.Fatal(err)
			}
			if err := svc2.Receive(ctx, body, sig); err != nil {
				t.Fatalf("after resume, the same message: %v", err)
			}
		})
	}
}

func TestAllowList(t *testing.T) {
	s := New(Options{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("::1/128")}})
	for addr, ok := range map[string]bool{"10.1.2.3": true, "10.2.0.1": false, "::1": true, "::ffff:10.1.0.9": true, "127.0.0.1": false} {
		if err := s.Allowed(netip.MustParseAddr(addr)); (err == nil) != ok {
			t.Errorf("%s: %v, want allowed=%v", addr, err, ok)
		}
	}
	if err := New(Options{}).Allowed(netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Errorf("no allow-list: %v", err)
	}
}

// A team admin links only their own team's systems: naming another team's
// system (or a peer stand-in) is refused and nothing is created.
func TestInviteTakesOnlyOwnSystems(t *testing.T) {
	ctx := context.Background()
	st := testdb.SQLite(t)
	box, err := secret.LoadOrCreate(t.TempDir() + "/key")
	if err != nil {
		t.Fatal(err)
	}
	other := store.Team{Name: "other"}
	if err := st.Identity().CreateTeam(ctx, &other); err != nil {
		t.Fatal(err)
	}
	theirs := store.System{Name: "theirs", Kind: "sql", TeamID: other.ID}
	stand := store.System{Name: "stand-in", Kind: "peer", TeamID: 1}
	for _, s := range []*store.System{&theirs, &stand} {
		if err := st.CreateSystem(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	svc := New(Options{Store: st, Box: box, Engine: &fakeEngine{}})
	src := map[string]string{"trigger": "true", "outgoing": "replica.x = entity.x;", "incoming": "entity.x = replica.x;"}
	for _, id := range []int64{theirs.ID, stand.ID, 999} {
		_, err := svc.Invite(ctx, "admin", InviteIn{Setup: Setup{TeamID: 1, Name: "l", SystemID: id, Scripts: src, PublicURL: "https://x.example"}})
		if !errors.Is(err, ErrInput) {
			t.Errorf("system %d: %v, want ErrInput", id, err)
		}
	}
	if _, err := svc.Invite(ctx, "admin", InviteIn{Setup: Setup{TeamID: 1, Name: "l", SystemID: theirs.ID, Scripts: src, PublicURL: "ftp://x"}}); !errors.Is(err, ErrInput) {
		t.Errorf("bad public URL: %v", err)
	}
	if links, _ := st.ListPeerLinks(ctx); len(links) != 0 {
		t.Errorf("%d links created", len(links))
	}
	if conns, _ := st.ListConnections(ctx); len(conns) != 0 {
		t.Errorf("%d connections created", len(conns))
	}
	if systems, _ := st.ListSystems(ctx); len(systems) != 2 {
		t.Errorf("%d systems, want the 2 made here", len(systems))
	}
}
