package engine

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

// fakeReader is a connector with GetMany; block (when set) holds every
// GetMany until it is closed.
type fakeReader struct {
	connectors.Connector
	block chan struct{}
	fail  bool
	calls atomic.Int64
	gets  atomic.Int64
}

func (f *fakeReader) GetMany(ctx context.Context, ids []string) (map[string]connectors.Entity, error) {
	f.calls.Add(1)
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.fail {
		return nil, errors.New("down")
	}
	out := map[string]connectors.Entity{}
	for _, id := range ids {
		if id != "gone" {
			out[id] = connectors.Entity{ID: id, Fields: map[string]any{"via": "many"}}
		}
	}
	return out, nil
}

func (f *fakeReader) Get(ctx context.Context, id string) (connectors.Entity, error) {
	f.gets.Add(1)
	return connectors.Entity{ID: id, Fields: map[string]any{"via": "get"}}, nil
}

// The targets of a batch are read per target system, and an event waits
// only for its own system's read: a system whose read hangs holds no event
// of another system. A failed read, or an entity it did not return, leaves
// the event to its own Get; an entity read ahead serves only its event's id.
func TestReadTargetsPerSystem(t *testing.T) {
	slow := &fakeReader{block: make(chan struct{})}
	fast := &fakeReader{}
	down := &fakeReader{fail: true}
	e := &Engine{systems: map[int64]*systemState{
		10: {conn: slow}, 20: {conn: withLimit(fast, 1000, 10)}, 30: {conn: down},
	}}
	plans := &batchPlans{m: map[int64]*plan{}}
	for conn, sys := range map[int64]int64{1: 10, 2: 20, 3: 30} {
		plans.m[conn] = &plan{conn: store.Connection{ID: conn, SystemAID: 100, SystemBID: sys}}
	}
	base := "{}"
	twins := map[int64]*store.Twin{}
	var evs []*store.SyncEvent
	add := func(conn, twin int64, bID string) {
		a := "a"
		twins[twin] = &store.Twin{ID: twin, ConnectionID: conn, AID: &a, BID: &bID, BaseB: &base}
		evs = append(evs, &store.SyncEvent{ID: twin, TwinID: twin, ConnectionID: conn, Direction: store.AToB})
	}
	add(1, 1, "s1")
	add(1, 2, "s2")
	add(2, 3, "f1")
	add(2, 4, "gone")
	add(2, 5, "f3")
	add(3, 6, "d1")
	add(3, 7, "d2")
	ctx := context.Background()
	reads := e.readTargets(ctx, plans, twins, evs)

	read := func(i int, conn connectors.Connector) connectors.Entity {
		t.Helper()
		done := make(chan connectors.Entity, 1)
		go func() {
			ent, _ := readTarget(reads[i].wait(ctx), conn, *twins[evs[i].TwinID].BID)
			done <- ent
		}()
		select {
		case ent := <-done:
			return ent
		case <-time.After(10 * time.Second): // only proves "it did not wait for the slow system"
			t.Fatalf("event %d waited for another system's read", i)
			return connectors.Entity{}
		}
	}
	if ent := read(2, fast); ent.Fields["via"] != "many" {
		t.Errorf("fast system's entity came from %v, want the batched read", ent.Fields["via"])
	}
	if ent := read(3, fast); ent.Fields["via"] != "get" {
		t.Errorf("an entity the batched read did not return came from %v, want Get", ent.Fields["via"])
	}
	if ent := read(5, down); ent.Fields["via"] != "get" {
		t.Errorf("after a failed batched read the entity came from %v, want Get", ent.Fields["via"])
	}
	if fast.calls.Load() != 1 || down.calls.Load() != 1 {
		t.Errorf("GetMany calls fast %d, down %d; want one per system", fast.calls.Load(), down.calls.Load())
	}
	// Another id than the one read ahead (the twin changed) is read anew.
	if ent, _ := readTarget(reads[2].wait(ctx), fast, "other"); ent.Fields["via"] != "get" {
		t.Errorf("another id came from %v, want Get", ent.Fields["via"])
	}
	close(slow.block)
	if ent := read(0, slow); ent.Fields["via"] != "many" {
		t.Errorf("slow system's entity came from %v, want the batched read", ent.Fields["via"])
	}
	if slow.gets.Load() != 0 {
		t.Errorf("slow system: %d Gets, want none", slow.gets.Load())
	}
}
