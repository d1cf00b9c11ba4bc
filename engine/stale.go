package engine

import (
	"context"
	"sync"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// A page read before Duplex wrote to one of its entities, and taken in
// after that write was recorded, holds a state older than the write: the
// twin as read after the page has the write's echo hash, which the old state
// does not match. Taken for a person's change, it clears the echo hash (or
// is queued), and the next read of Duplex's own write goes back to where it
// came from. The engine's item service test saw this in 1 run of 40: polls
// and writes run side by side on one system. readStale reads such entities
// again before intake, so what is taken in is a state from after the record.
//
// A record that lands after the twins were read needs nothing: the twin as
// read then still has the echo hash of the write before, which a state from
// before the new write matches (unless a person changed it, and then it is
// a person's change). Nor does the enqueue refuse a state read before a
// recorded write: a person's change made between Duplex's write and its
// record is such a state, and its hash must be cleared, or the person
// moving back to Duplex's state would pass for an echo
// (TestRereadDoesNotOverwriteANewerQueuedChange).

// rereads are the entities of a page read again, with when each read
// started (their candidates' readAt).
type rereads map[string]time.Time

// stamp gives the candidates of entities read again their read's time.
func (r rereads) stamp(cands []candidate) {
	if len(r) == 0 {
		return
	}
	for i := range cands {
		if at, ok := r[cands[i].entityID]; ok {
			cands[i].readAt = at
		}
	}
}

// readStale reads again, from st, the entities of ents that Duplex wrote to
// after readAt and that are not in the state it wrote, and puts their new
// state and twins in ents and twins. An entity that cannot be read is left
// as it was (taken in as before this check; an event queued from it is
// stale, and the worker reads its source again): a poll does not fail for
// it.
func (e *Engine) readStale(ctx context.Context, st *systemState, uses []use, ents []connectors.Entity, twins pageTwins, readAt time.Time) rereads {
	var idx []int
	for i := range ents {
		if staleRead(ents[i], uses, twins, readAt) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	at := e.opts.Now()
	got := make([]*connectors.Entity, len(idx))
	sem := make(chan struct{}, e.opts.Workers)
	var wg sync.WaitGroup
	for j, i := range idx {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ent, err := st.conn.Get(ctx, ents[i].ID)
			if err != nil {
				e.log.Warn("reading again an entity read before Duplex's write", "entity", ents[i].ID, "err", err)
				return
			}
			got[j] = &ent
		}()
	}
	wg.Wait()
	var fresh []connectors.Entity
	var pos []int
	for j, ent := range got {
		if ent != nil && ent.ID == ents[idx[j]].ID {
			fresh, pos = append(fresh, *ent), append(pos, idx[j])
		}
	}
	// Their twins are read after them, as a page's are (twinsOfPage).
	more, err := e.twinsOfPage(ctx, uses, fresh)
	if err != nil {
		e.log.Warn("reading the twins of entities read again", "err", err)
		return nil
	}
	e.reread.Add(int64(len(fresh)))
	out := make(rereads, len(fresh))
	for j, ent := range fresh {
		ents[pos[j]] = ent
		out[ent.ID] = at
		for _, u := range uses {
			k := twinKey{u.plan.conn.ID, u.side, ent.ID}
			if t, ok := more[k]; ok {
				twins[k] = t
			} else {
				delete(twins, k) // unlinked since
			}
		}
	}
	return out
}

// ReadAgain counts the entities read again because a page held a state
// from before Duplex's write to them (readStale).
func (e *Engine) ReadAgain() int64 { return e.reread.Load() }

// staleRead says whether ent, read from readAt on, may be older than a write
// of Duplex's to it: one of its twins records a write (or a read for an
// event) after readAt, and ent is not in the state that write left.
func staleRead(ent connectors.Entity, uses []use, twins pageTwins, readAt time.Time) bool {
	if ent.Deleted {
		return false
	}
	hash := ""
	for _, u := range uses {
		t, ok := twins[twinKey{u.plan.conn.ID, u.side, ent.ID}]
		if !ok || t.WrittenAt(u.side) == nil || !t.WrittenAt(u.side).After(readAt) {
			continue
		}
		if hash == "" {
			hash = contentHash(ent)
		}
		if t.Hash(u.side) != hash {
			return true
		}
	}
	return false
}
