package confdir

import (
	"context"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// A peer link's stand-in system and its connection are made by an
// invitation, not by a folder: export leaves them out, and apply --prune
// of that folder neither changes nor deletes them.
func TestPeerLinksStayOutOfFolders(t *testing.T) {
	ctx := context.Background()
	st, box := testdb.SQLite(t), newBox(t)
	seed(t, st, box)
	systems, err := st.ListSystems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var desk store.System
	for _, s := range systems {
		if s.Name == "desk" {
			desk = s
		}
	}
	stand := store.System{Name: "peer: partner", Kind: "peer", TeamID: desk.TeamID, Settings: "{}"}
	if err := st.CreateSystem(ctx, &stand); err != nil {
		t.Fatal(err)
	}
	conn := store.Connection{Name: "partner", TeamID: desk.TeamID, SystemAID: desk.ID, SystemBID: stand.ID}
	if err := st.CreateConnection(ctx, &conn, nil, "test"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exportTo(t, st, box, dir)
	for p := range tree(t, dir) {
		if strings.Contains(p, "partner") {
			t.Errorf("exported %s", p)
		}
	}
	p := plan(t, st, box, dir, Options{Prune: true, Getenv: env(nil)})
	if len(p.Changes) != 0 || len(p.Problems) != 0 {
		t.Fatalf("plan of its own export: changes %+v, problems %v", p.Changes, p.Problems)
	}
	if err := p.Apply(ctx, st); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetConnection(ctx, conn.ID); err != nil {
		t.Fatalf("the link's connection after apply --prune: %v", err)
	}
	if _, err := st.GetSystem(ctx, stand.ID); err != nil {
		t.Fatalf("the stand-in after apply --prune: %v", err)
	}
}
