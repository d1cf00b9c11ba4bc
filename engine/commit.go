package engine

import (
	"cmp"
	"context"
	"slices"

	"github.com/duplexsync/duplex/engine/store"
)

// twinBook is what a commit (intake.go) knows of its candidates' existing
// twins and writes to them. They are read in one statement at its start
// (an update's twin was a query each), and kept as the commit's own writes
// leave them, so a second change of an entity in the same commit compares
// with what the first queued. The writes (the last replica sent, a cleared
// echo hash) wait in the book and go in one statement per direction
// (store.SetSentMany) before the new twins are made (the lock order:
// existing twins first, by id), before an unlink or a relink writes twins
// its own way, and at the end.
type twinBook struct {
	twins map[int64]*store.Twin
	sets  map[store.Direction][]store.SentSet
}

// readTwins reads the existing twins of cands in one statement (none for a
// single one: the general path's one query is as good).
func readTwins(ctx context.Context, tx *store.Store, cands []candidate) (*twinBook, error) {
	b := &twinBook{twins: map[int64]*store.Twin{}, sets: map[store.Direction][]store.SentSet{}}
	var ids []int64
	for _, c := range cands {
		if c.twinID != 0 && c.unlink == 0 && c.relink == 0 {
			ids = append(ids, c.twinID)
		}
	}
	if len(ids) < 2 {
		return b, nil
	}
	got, err := tx.TwinsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	b.twins = got
	return b, nil
}

// twin is c's twin as this commit left it: the one read if it still holds
// c's entity on c's side, else ensured in the store (made if missing).
func (b *twinBook) twin(ctx context.Context, tx *store.Store, c candidate) (store.Twin, error) {
	if t := b.twins[c.twinID]; t != nil && t.ConnectionID == c.connID && t.EntityID(c.side) == c.entityID {
		return *t, nil
	}
	t, err := tx.EnsureTwin(ctx, c.connID, c.side, c.entityID)
	if err != nil {
		return store.Twin{}, err
	}
	if kept := b.twins[t.ID]; kept != nil && b.pending(t.ID) {
		return *kept, nil // read before the book's writes reached the row: theirs apply
	}
	b.twins[t.ID] = &t
	return t, nil
}

func (b *twinBook) pending(twinID int64) bool {
	for _, sets := range b.sets {
		if slices.ContainsFunc(sets, func(s store.SentSet) bool { return s.TwinID == twinID }) {
			return true
		}
	}
	return false
}

// set notes a write: replica as the last sent in direction d (nil: keep
// it) and the source's echo hash cleared.
func (b *twinBook) set(twinID int64, d store.Direction, replica *string) {
	if t := b.twins[twinID]; t != nil {
		if replica != nil {
			t.SetSent(d, *replica)
		}
		t.SetHash(d.Source(), "")
	}
	sets := b.sets[d]
	if i := slices.IndexFunc(sets, func(s store.SentSet) bool { return s.TwinID == twinID }); i >= 0 {
		if replica != nil {
			sets[i].Replica = replica
		}
		return
	}
	b.sets[d] = append(sets, store.SentSet{TwinID: twinID, Replica: replica})
}

// flush makes the waiting writes, in twin id order.
func (b *twinBook) flush(ctx context.Context, tx *store.Store) error {
	for _, d := range []store.Direction{store.AToB, store.BToA} {
		sets := b.sets[d]
		if len(sets) == 0 {
			continue
		}
		slices.SortFunc(sets, func(x, y store.SentSet) int { return cmp.Compare(x.TwinID, y.TwinID) })
		if err := tx.SetSentMany(ctx, d, sets); err != nil {
			return err
		}
		delete(b.sets, d)
	}
	return nil
}

// newTwins makes the new twins of cands[order] (intake.go) after the
// waiting writes: existing twins are locked first.
func (b *twinBook) newTwins(ctx context.Context, tx *store.Store, cands []candidate, order []int) (map[int]store.Twin, error) {
	if err := b.flush(ctx, tx); err != nil {
		return nil, err
	}
	return newTwins(ctx, tx, cands, order)
}

// relinking runs c's unlink or relink (relink.go) after the waiting writes,
// and forgets the twins it touches. skip: c queues nothing more.
func (b *twinBook) relinking(ctx context.Context, tx *store.Store, c candidate) (skip bool, err error) {
	if err := b.flush(ctx, tx); err != nil {
		return false, err
	}
	for _, id := range []int64{c.twinID, c.unlink, c.relink} {
		delete(b.twins, id)
	}
	if c.unlink != 0 {
		return true, unlinkRemembering(ctx, tx, c)
	}
	_, err = relinkPair(ctx, tx, c)
	return c.relinkOnly(), err
}
