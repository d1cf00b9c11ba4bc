package engine

import (
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

func snap(t *testing.T, f map[string]any, c ...string) snapshot {
	t.Helper()
	return snapshot{F: f, C: c}
}

func enc(t *testing.T, s snapshot) string {
	t.Helper()
	e, err := s.encode()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func ptr(s string) *string { return &s }

// TestSettle covers each case docs/architecture.md lists for the new base,
// the echo reference and the source's base after an apply.
func TestSettle(t *testing.T) {
	base := snap(t, map[string]any{"title": "old", "priority": "low"}, "7")
	// A person edited priority on the target; it is not synced yet.
	local := connectors.Entity{ID: "12", Fields: map[string]any{"title": "new", "priority": "high"},
		Comments: []connectors.Comment{{ID: "7"}, {ID: "8", Body: "a person's"}}}
	updated := snap(t, map[string]any{"title": "new", "priority": "low"}, "7")
	oldSrc := snap(t, map[string]any{"subject": "s1", "team": "x"})
	curSrc := snap(t, map[string]any{"subject": "s2", "team": "y"})
	queued := enc(t, curSrc)

	cases := []struct {
		name string
		in   settleIn
		want settled // the pointers' values are compared
	}{{
		name: "update: old base changed by exactly the patch; a person's edit on the target leaves no echo reference (it could only match that edit undone)",
		in:   settleIn{action: "update", base: base, patch: map[string]any{"title": "new"}, local: local, dst: store.SideB},
		want: settled{dstBase: ptr(enc(t, updated)), dstHash: ptr(""), written: true},
	}, {
		name: "update: no person's edit on the target, the echo reference is the written state (a person's new comment does not count)",
		in: settleIn{action: "update", base: base, patch: map[string]any{"title": "new"}, dst: store.SideB,
			local: connectors.Entity{ID: "12", Fields: map[string]any{"title": "new", "priority": "low"}, Comments: local.Comments}},
		want: settled{dstBase: ptr(enc(t, updated)), dstHash: ptr(updated.hash()), written: true},
	}, {
		name: "a comment added while the target holds a person's edit: no echo reference",
		in: settleIn{action: "comment", base: base, added: []connectors.Comment{{ID: "9"}}, dst: store.SideB,
			local: connectors.Entity{ID: "12", Fields: map[string]any{"title": "old", "priority": "high"}}},
		want: settled{dstBase: ptr(enc(t, snap(t, base.F, "7", "9"))), dstHash: ptr(""), written: true},
	}, {
		name: "lost answer: the retry finds the value in place, writes nothing, the base moves, the echo reference stays",
		in:   settleIn{action: "none", base: base, agreed: map[string]any{"title": "new"}, dst: store.SideB},
		want: settled{dstBase: ptr(enc(t, updated))},
	}, {
		name: "an unrecorded attempt's write found in place (a kill or a lost answer): the echo reference moves with the base",
		in: settleIn{action: "none", base: base, agreed: map[string]any{"title": "new"}, ownAgreed: true, dst: store.SideB,
			local: connectors.Entity{ID: "12", Fields: map[string]any{"title": "new", "priority": "low"}}},
		want: settled{dstBase: ptr(enc(t, updated)), dstHash: ptr(updated.hash()), written: true},
	}, {
		name: "an unrecorded attempt's write found in place beside a person's edit: the echo reference stays",
		in:   settleIn{action: "none", base: base, agreed: map[string]any{"title": "new"}, ownAgreed: true, local: local, dst: store.SideB},
		want: settled{dstBase: ptr(enc(t, updated))},
	}, {
		name: "nothing written, nothing agreed: the twin's target state stays",
		in:   settleIn{action: "none", base: base, dst: store.SideB},
		want: settled{},
	}, {
		name: "a comment of Duplex's found in place (its write's record lost to a crash): base and echo reference hold it",
		in:   settleIn{action: "none", base: base, relinked: []connectors.Comment{{ID: "9"}}, dst: store.SideB},
		want: settled{dstBase: ptr(enc(t, snap(t, base.F, "7", "9"))), dstHash: ptr(snap(t, base.F, "7", "9").hash())},
	}, {
		name: "found in place with fields agreed: both move, the comment already in the base is not counted twice",
		in: settleIn{action: "none", base: base, agreed: map[string]any{"title": "new"},
			relinked: []connectors.Comment{{ID: "7"}, {ID: "9"}}, dst: store.SideB},
		want: settled{dstBase: ptr(enc(t, snap(t, updated.F, "7", "9"))), dstHash: ptr(snap(t, updated.F, "7", "9").hash())},
	}, {
		name: "found in place beside an update: the written state holds it",
		in: settleIn{action: "update", base: base, patch: map[string]any{"title": "new"},
			relinked: []connectors.Comment{{ID: "9"}}, dst: store.SideB},
		want: settled{dstBase: ptr(enc(t, snap(t, updated.F, "7", "9"))), dstHash: ptr(snap(t, updated.F, "7", "9").hash()), written: true},
	}, {
		name: "agreed and patched together",
		in: settleIn{action: "update", base: base, agreed: map[string]any{"title": "new"},
			patch: map[string]any{"priority": "mid"}, dst: store.SideB},
		want: settled{dstBase: ptr(enc(t, snap(t, map[string]any{"title": "new", "priority": "mid"}, "7"))),
			dstHash: ptr(snap(t, map[string]any{"title": "new", "priority": "mid"}, "7").hash()), written: true},
	}, {
		name: "comment added and file copied: their ids join the base",
		in: settleIn{action: "comment", base: base, added: []connectors.Comment{{ID: "9"}},
			fileIDs: []string{"f1"}, dst: store.SideB},
		want: settled{dstBase: ptr(enc(t, snapshot{F: base.F, C: []string{"7", "9"}, A: []string{"f1"}})),
			dstHash: ptr(snapshot{F: base.F, C: []string{"7", "9"}, A: []string{"f1"}}.hash()), written: true},
	}, {
		name: "create: the entity as the create answered",
		in: settleIn{action: "create", first: true, base: snapshot{F: map[string]any{}}, patch: map[string]any{"title": "new"},
			sent: map[string]any{"title": "new"}, local: connectors.Entity{ID: "12", Fields: map[string]any{"title": "new", "status": "open"}}, dst: store.SideB},
		want: settled{dstBase: ptr(enc(t, snap(t, map[string]any{"title": "new", "status": "open"}))),
			dstHash: ptr(snap(t, map[string]any{"title": "new", "status": "open"}).hash()), written: true},
	}, {
		name: "create found by its correlation key: the fields sent over the entity, only Duplex's comments",
		in: settleIn{action: "create", first: true, found: true, base: snapshot{F: map[string]any{}},
			sent: map[string]any{"title": "sent"}, local: local, links: commentLinks{"a:3": "b:7"}, dst: store.SideB},
		want: settled{dstBase: ptr(enc(t, snap(t, map[string]any{"title": "sent", "priority": "high"}, "7"))),
			dstHash: ptr(snap(t, map[string]any{"title": "sent", "priority": "high"}, "7").hash()), written: true},
	}, {
		name: "sync back on create: no echo reference, the base stays for merges",
		in: settleIn{action: "create", first: true, syncBack: true, base: snapshot{F: map[string]any{}},
			local: connectors.Entity{ID: "12", Fields: map[string]any{"title": "new"}}, dst: store.SideB},
		want: settled{dstBase: ptr(enc(t, snap(t, map[string]any{"title": "new"}))), dstHash: ptr(""), written: true},
	}, {
		name: "source: the state as queued becomes its base",
		in:   settleIn{action: "none", base: base, queued: &queued, srcOld: &oldSrc, srcCur: &curSrc},
		want: settled{srcBase: &queued},
	}, {
		name: "source: a change its outgoing script does not carry keeps the old base value",
		in: settleIn{action: "none", base: base, queued: &queued, srcOld: &oldSrc, srcCur: &curSrc,
			uncarried: map[string]bool{"team": true}},
		want: settled{srcBase: ptr(enc(t, snap(t, map[string]any{"subject": "s2", "team": "x"})))},
	}, {
		name: "source: an uncarried field new since the base stays out of it",
		in: settleIn{action: "none", base: base, queued: ptr(enc(t, snap(t, map[string]any{"subject": "s1", "extra": 1}))),
			srcOld: &oldSrc, srcCur: &snapshot{F: map[string]any{"subject": "s1", "extra": 1}}, uncarried: map[string]bool{"extra": true}},
		want: settled{srcBase: ptr(enc(t, snap(t, map[string]any{"subject": "s1"})))},
	}, {
		name: "source: no old base, the state as queued",
		in:   settleIn{action: "none", base: base, queued: &queued, uncarried: map[string]bool{"team": true}},
		want: settled{srcBase: &queued},
	}, {
		name: "source: the event carried no state, the base stays",
		in:   settleIn{action: "update", base: base, patch: map[string]any{"title": "new"}, dst: store.SideB},
		want: settled{dstBase: ptr(enc(t, updated)), dstHash: ptr(updated.hash()), written: true},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := settle(c.in)
			eq := func(what string, g, w *string) {
				if (g == nil) != (w == nil) || g != nil && *g != *w {
					t.Errorf("%s = %s, want %s", what, showPtr(g), showPtr(w))
				}
			}
			eq("target base", got.dstBase, c.want.dstBase)
			eq("echo hash", got.dstHash, c.want.dstHash)
			eq("source base", got.srcBase, c.want.srcBase)
			if got.written != c.want.written {
				t.Errorf("written = %v, want %v", got.written, c.want.written)
			}
		})
	}
}

// TestSettleKeepsAPersonsEditOutOfTheEcho: the echo reference after an
// update is never the entity read, so the person's edit on the target is
// seen as a change by the next poll.
func TestSettleKeepsAPersonsEditOutOfTheEcho(t *testing.T) {
	local := connectors.Entity{ID: "12", Fields: map[string]any{"title": "new", "priority": "high"}}
	s := settle(settleIn{action: "update", base: snapshot{F: map[string]any{"title": "old", "priority": "low"}},
		patch: map[string]any{"title": "new"}, local: local, dst: store.SideB})
	if s.dstHash == nil || *s.dstHash == contentHash(local) {
		t.Fatalf("echo hash %v is the hash of the target as read: the person's edit would pass as an echo", showPtr(s.dstHash))
	}
}

func showPtr(s *string) string {
	if s == nil {
		return "<unchanged>"
	}
	return *s
}
