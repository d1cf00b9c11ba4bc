package engine

import (
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

// TestEchoEndsBeforeTheTrigger: a linked entity whose state is Duplex's
// own write ends at intake's head, before its trigger is evaluated, but
// not where the trigger's answer could unlink it (on_unmatch=unlink on the
// twin's origin side), and not when the state differs from the write.
func TestEchoEndsBeforeTheTrigger(t *testing.T) {
	ent := connectors.Entity{ID: "7", Fields: map[string]any{"title": "Checkout fails"}}
	enc, err := snapshotOf(ent).encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		unmatch  string
		origin   store.Side
		hash     string
		wantDone bool
	}{
		{"echo", "keep", store.SideB, textDigest(enc), true},
		{"echo on the other side of its origin, unlink", "unlink", store.SideB, textDigest(enc), true},
		{"echo on its origin side, unlink", "unlink", store.SideA, textDigest(enc), false},
		{"echo on its origin side, keep", "keep", store.SideA, textDigest(enc), true},
		{"a person's change", "keep", store.SideB, textDigest(enc + " "), false},
		{"never written", "keep", store.SideB, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e Engine
			p := &plan{conn: store.Connection{ID: 1}, options: Lifecycle{OnUnmatch: tc.unmatch}}
			tw := store.Twin{ID: 3, ConnectionID: 1, Origin: tc.origin}
			tw.SetHash(store.SideA, tc.hash)
			twins := pageTwins{{1, store.SideA, "7"}: tw}
			in, done, ok := e.intakeHead(p, store.SideA, ent, twins)
			if done != tc.wantDone || ok {
				t.Fatalf("done=%v ok=%v; want done=%v ok=false", done, ok, tc.wantDone)
			}
			if !in.encoded && tc.hash != "" && tc.wantDone {
				t.Fatal("the state was not encoded for the echo check")
			}
		})
	}
}
