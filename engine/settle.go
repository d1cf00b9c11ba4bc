package engine

import (
	"maps"
	"slices"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

// settleIn is what settle looks at: what apply wrote and the states it
// started from. Nothing in it is read from a store or a system by settle.
type settleIn struct {
	action   string // the outcome's action: create, update, comment, attach, none
	first    bool   // the target entity was created (or a create completed)
	found    bool   // ... found by its correlation key, not created now
	syncBack bool   // the connection's sync back on create
	base     snapshot
	agreed   map[string]any // fields the target already held as wanted
	// ownAgreed: the agreed fields hold what an unrecorded attempt of the
	// event wrote (a kill or a lost answer between its write and record)
	ownAgreed bool
	patch     map[string]any    // the fields written
	sent      map[string]any    // a create's fields (laid over the entity found)
	local     connectors.Entity // the target entity as the create answered
	links     commentLinks      // the twin's links, after this write
	dst       store.Side
	added     []connectors.Comment
	relinked  []connectors.Comment // Duplex's comments found in place: an earlier write's record was lost
	fileIDs   []string

	// The source: its state as queued (nil: the event carried none), its
	// old base and that state decoded (nil: not decodable or no old base),
	// and its changed fields that its outgoing script does not carry.
	queued         *string
	srcOld, srcCur *snapshot
	uncarried      map[string]bool
}

// settled is what an applied event changes on its twin. A nil pointer
// leaves the twin's value as it is.
type settled struct {
	dstBase *string
	dstHash *string // "" clears the echo reference (sync back on create)
	written bool    // Duplex wrote to the target now
	srcBase *string
}

// settle computes the target's new base and echo reference and the
// source's new base after an apply (docs/architecture.md, echo suppression
// and the field-level merge):
//   - the target's new base, and the echo reference, is its old base changed
//     by exactly this write and by what the sides agree on: never a whole
//     read of the target, which may hold a person's edit not synced yet that
//     a later poll must see as a change, not as this write's echo; and when
//     the target holds such an edit there is no echo reference at all
//     (personEdited);
//   - nothing written but fields agreed (a write whose answer was lost, found
//     in place by the retry): the base moves; the echo reference stays,
//     unless the agreed values are what an unrecorded attempt of this event
//     wrote (its intent) and the target holds no person's edit: then it is
//     Duplex's write, and the echo reference moves with the base;
//   - a create: the entity as the create answered; found by its correlation
//     key, the entity as created (its fields with the create's over them,
//     of its comments only those Duplex put there); with sync back on create
//     no echo reference, so the first read goes back (the base stays for
//     merges);
//   - the source's state as queued is now in sync: it is the source's base,
//     but for the fields whose change its outgoing script does not carry,
//     which keep their old base value.
func settle(in settleIn) settled {
	var s settled
	found := missingComments(in.base, in.relinked)
	switch {
	case in.action == "none" && len(found) > 0:
		// Comments of Duplex's found in place: that earlier write is in
		// the target now, so base and echo reference hold them (else the
		// next read of the target sends them back as a person's).
		kept := in.base.with(in.agreed, nil).with(nil, found)
		h := kept.hash()
		s.dstHash, s.dstBase = &h, encoded(kept)
	case in.action == "none" && len(in.agreed) > 0:
		kept := in.base.with(in.agreed, nil)
		s.dstBase = encoded(kept)
		if in.ownAgreed && !personEdited(in.base, in.local.Fields, in.agreed) {
			// Duplex's own write, made by an earlier attempt and found in
			// place: the echo reference its record would have set. Left
			// behind, the next read of the target took that write for a
			// person's change (the cluster run, after a takeover).
			h := kept.hash()
			s.dstHash, s.written = &h, true
		}
	case in.action != "none":
		written := in.base.with(in.agreed, nil).with(in.patch, append(found, in.added...))
		if in.first {
			written = snapshotOf(in.local).with(nil, in.added)
			if in.found {
				written = asCreated(in.local, in.sent, in.links, in.dst).with(nil, in.added)
			}
		}
		written.A = append(written.A, in.fileIDs...)
		h := written.hash()
		if (in.first && in.syncBack) || (!in.first && personEdited(in.base, in.local.Fields, in.agreed, in.patch)) {
			h = ""
		}
		s.dstHash, s.written, s.dstBase = &h, true, encoded(written)
	}
	s.srcBase = sourceBase(in)
	return s
}

// personEdited says whether the target as read (or as the update answered)
// holds a field that differs from its base and that this write does not
// set: a person's edit, taken in already or not. An echo reference (or an
// intent's expectation) of the base changed by this write can then never
// match this write's echo, only the state a person reverting that edit
// would leave, which must not pass for Duplex's write: the cluster run lost
// an engineer's move back to in_progress that way. There is no echo
// reference then; a read of Duplex's write is told apart by the replica
// last sent instead (intake: unchanged, or new only by Duplex's comments).
// Comments are not compared: a person's comment is new, so it cannot be
// undone into the expected state. Without fields (a connector that answers
// an update with none) nothing can be told.
func personEdited(base snapshot, local map[string]any, set ...map[string]any) bool {
	if len(local) == 0 {
		return false
	}
	written := func(k string) bool {
		for _, m := range set {
			if _, ok := m[k]; ok {
				return true
			}
		}
		return false
	}
	for k, v := range local {
		if !written(k) && mustCanonical(v) != mustCanonical(base.F[k]) {
			return true
		}
	}
	for k, v := range base.F {
		if _, ok := local[k]; !ok && !written(k) && v != nil {
			return true
		}
	}
	return false
}

// missingComments are the comments of cs whose ids base does not hold.
func missingComments(base snapshot, cs []connectors.Comment) []connectors.Comment {
	var out []connectors.Comment
	for _, c := range cs {
		if !slices.Contains(base.C, c.ID) {
			out = append(out, c)
		}
	}
	return out
}

// sourceBase is settle's source part.
func sourceBase(in settleIn) *string {
	if in.queued == nil {
		return nil
	}
	if in.srcOld == nil || in.srcCur == nil || len(in.uncarried) == 0 {
		q := *in.queued
		return &q
	}
	keep := maps.Clone(in.srcCur.F)
	for k := range in.uncarried {
		ov, had := in.srcOld.F[k]
		setOrDelete(keep, k, ov, had) // not carried: the old base value stays
	}
	if enc := encoded(snapshot{F: keep, C: in.srcCur.C, A: in.srcCur.A}); enc != nil {
		return enc
	}
	q := *in.queued
	return &q
}

func encoded(s snapshot) *string {
	enc, err := s.encode()
	if err != nil {
		return nil
	}
	return &enc
}

// applyTo sets the settled values on the twin.
func (s settled) applyTo(t *store.Twin, dst, src store.Side, now time.Time) {
	if s.dstHash != nil {
		t.SetHash(dst, *s.dstHash)
	}
	if s.written {
		t.SetWrittenAt(dst, now)
	}
	if s.dstBase != nil {
		t.SetBase(dst, *s.dstBase)
	}
	if s.srcBase != nil {
		t.SetBase(src, *s.srcBase)
	}
}
