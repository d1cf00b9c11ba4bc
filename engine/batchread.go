package engine

import (
	"context"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

// Batched reads of the targets. The worker starts events together (a
// WorkOnce batch, or what the flow starts at once); before each is applied,
// the targets of those that update an existing entity are read with the
// target system's connectors.BatchReader, one call per target system (the
// sql connector: one query for the rows and one for their comments),
// instead of one Get (two queries) each in apply.
//
// An event waits only for the read of its own target system, never for
// another system's or another connection's: a slow system holds only the
// events that write to it. An entity read this way is used once, by the
// apply it was read for; anything the read could not give (an error, a
// missing row) is left to apply's own Get, which says what is wrong.

// prefetchKey carries the entity read for one event in its context.
type prefetchKey struct{}

type prefetched struct {
	id  string
	ent connectors.Entity
}

// readTarget is apply's read of the target: the entity read for this event
// by readTargets, or else one Get.
func readTarget(ctx context.Context, conn connectors.Connector, id string) (connectors.Entity, error) {
	if p, ok := ctx.Value(prefetchKey{}).(*prefetched); ok && p.id == id {
		return p.ent, nil
	}
	return conn.Get(ctx, id)
}

// targetRead is one event's share of a batched read: ready closes when its
// system's read is done.
type targetRead struct {
	ready chan struct{}
	got   *prefetched
}

// wait returns ctx with the event's entity, once its system's read is done
// (or ctx ends: then apply reads it itself, or stops).
func (r *targetRead) wait(ctx context.Context) context.Context {
	if r == nil {
		return ctx
	}
	select {
	case <-r.ready:
	case <-ctx.Done():
		return ctx
	}
	if r.got == nil {
		return ctx
	}
	return context.WithValue(ctx, prefetchKey{}, r.got)
}

// readTargets starts the batched reads for evs (twins by twin id) and
// returns each event's share, nil where nothing is read ahead. It returns at
// once; the reads run in their own goroutines, one per target system.
func (e *Engine) readTargets(ctx context.Context, plans *batchPlans, twins map[int64]*store.Twin, evs []*store.SyncEvent) []*targetRead {
	out := make([]*targetRead, len(evs))
	type group struct {
		reader connectors.BatchReader
		ids    []string
		reads  []*targetRead
	}
	groups := map[int64]*group{}
	for i, ev := range evs {
		tw := twins[ev.TwinID]
		if tw == nil || ev.Action == actionDelete {
			continue
		}
		dst := ev.Direction.Source().Other()
		id := tw.EntityID(dst)
		if id == "" || tw.Base(dst) == nil { // a create, or a create to complete (pendingCreate)
			continue
		}
		p, err := plans.get(ctx, e, ev.ConnectionID)
		if err != nil {
			continue // apply reports it
		}
		sysID := p.conn.SystemID(dst)
		g := groups[sysID]
		if g == nil {
			target, err := e.system(ctx, sysID)
			if err != nil {
				continue
			}
			g = &group{reader: batchReader(target.conn)}
			groups[sysID] = g
		}
		if g.reader == nil {
			continue
		}
		r := &targetRead{ready: make(chan struct{}), got: &prefetched{id: id}}
		out[i] = r
		g.ids = append(g.ids, id)
		g.reads = append(g.reads, r)
	}
	for _, g := range groups {
		if len(g.reads) < 2 { // one entity: apply's Get is the same two queries, and later
			for _, r := range g.reads {
				r.got = nil
				close(r.ready)
			}
			continue
		}
		go func(g *group) {
			ents, err := g.reader.GetMany(ctx, g.ids)
			for _, r := range g.reads {
				ent, ok := ents[r.got.id]
				if err != nil || !ok {
					r.got = nil
				} else {
					r.got.ent = ent
				}
				close(r.ready)
			}
		}(g)
	}
	return out
}

// batchReader finds the BatchReader capability, through the rate limit
// wrapper (one token for the whole read: it is one request to the system).
func batchReader(conn connectors.Connector) connectors.BatchReader {
	if l, ok := conn.(*limited); ok {
		br, ok := l.next.(connectors.BatchReader)
		if !ok {
			return nil
		}
		return limitedBatch{l: l, next: br}
	}
	br, _ := conn.(connectors.BatchReader)
	return br
}

type limitedBatch struct {
	l    *limited
	next connectors.BatchReader
}

func (b limitedBatch) GetMany(ctx context.Context, ids []string) (map[string]connectors.Entity, error) {
	if err := b.l.wait(ctx); err != nil {
		return nil, err
	}
	return b.next.GetMany(ctx, ids)
}
