package engine

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/duplexsync/duplex/connectors"
)

// writeBatches gathers the creates and updates that reach one target system
// at the same time into one call of its connector's WriteMany
// (connectors.BatchWriter; the sql connector makes them in one transaction,
// one commit instead of one per row). The engine applies a lane's events
// concurrently, each in its own goroutine; the writes that arrive while a
// batch is being written form the next batch, so a lone write waits for no
// timer and no other write, only for the batch in progress. Each write's
// intent is recorded before it joins a batch (apply's write stage), and
// each gets its own result: one that fails fails only its event. Per-twin
// order is untouched: a twin has one event in flight.
type writeBatches struct {
	mu     sync.Mutex
	groups map[connectors.BatchWriter]*writeGroup // a group runs while it is here

	writes, batches atomic.Int64 // WriteMany calls and the writes they carried
}

type writeGroup struct {
	queue []*pendingWrite
}

type pendingWrite struct {
	ctx  context.Context
	w    connectors.Write
	res  connectors.WriteResult
	done chan struct{}
}

// writeBatchMax bounds one WriteMany call.
const writeBatchMax = 64

// write hands w to bw's batch and waits for its result.
func (b *writeBatches) write(ctx context.Context, bw connectors.BatchWriter, w connectors.Write) connectors.WriteResult {
	p := &pendingWrite{ctx: ctx, w: w, done: make(chan struct{})}
	if !reflect.ValueOf(bw).Comparable() { // cannot key a group: a batch of its own
		writeBatch(bw, []*pendingWrite{p})
		return p.res
	}
	b.mu.Lock()
	if b.groups == nil {
		b.groups = map[connectors.BatchWriter]*writeGroup{}
	}
	g, running := b.groups[bw]
	if !running {
		g = &writeGroup{}
		b.groups[bw] = g
	}
	g.queue = append(g.queue, p)
	b.mu.Unlock()
	if !running {
		go b.run(bw, g)
	}
	select {
	case <-p.done:
		return p.res
	case <-ctx.Done():
		// The write may still land: its intent says what it is, and a
		// retry finds it (a create by its key, an update's values in place).
		return connectors.WriteResult{Err: ctx.Err()}
	}
}

// run writes g's batches until its queue is empty, then retires g.
func (b *writeBatches) run(bw connectors.BatchWriter, g *writeGroup) {
	for {
		b.mu.Lock()
		n := min(len(g.queue), writeBatchMax)
		if n == 0 {
			delete(b.groups, bw)
			b.mu.Unlock()
			return
		}
		batch := g.queue[:n:n]
		g.queue = g.queue[n:]
		b.mu.Unlock()
		b.writes.Add(int64(n))
		b.batches.Add(1)
		writeBatch(bw, batch)
	}
}

// writeBatch makes one WriteMany call. Its context ends when every caller
// of the batch has stopped waiting (shutdown), not when the first has.
func writeBatch(bw connectors.BatchWriter, batch []*pendingWrite) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waiting := atomic.Int64{}
	waiting.Store(int64(len(batch)))
	ws := make([]connectors.Write, len(batch))
	for i, p := range batch {
		ws[i] = p.w
		stop := context.AfterFunc(p.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	res := bw.WriteMany(ctx, ws)
	for i, p := range batch {
		if len(res) == len(batch) {
			p.res = res[i]
		} else {
			p.res = connectors.WriteResult{Err: fmt.Errorf("batch write: %d results for %d writes", len(res), len(batch))}
		}
		close(p.done)
	}
}

// update writes fields to entity id on conn: with the other writes reaching
// the same system in one batch when its connector can (writeBatches).
func (e *Engine) update(ctx context.Context, conn connectors.Connector, id string, fields map[string]any) (connectors.Entity, error) {
	if bw, ok := conn.(connectors.BatchWriter); ok {
		r := e.writes.write(ctx, bw, connectors.Write{ID: id, Fields: fields})
		return r.Entity, r.Err
	}
	return conn.Update(ctx, id, fields)
}
