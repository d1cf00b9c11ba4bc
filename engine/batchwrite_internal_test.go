package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// fakeBatch answers each write with its fields' "id", or an error for
// "fail"; its first call blocks until release is closed.
type fakeBatch struct {
	mu      sync.Mutex
	sizes   []int
	release chan struct{}
	ctxs    []context.Context
}

func (f *fakeBatch) WriteMany(ctx context.Context, ws []connectors.Write) []connectors.WriteResult {
	f.mu.Lock()
	first := len(f.sizes) == 0
	f.sizes = append(f.sizes, len(ws))
	f.ctxs = append(f.ctxs, ctx)
	f.mu.Unlock()
	out := make([]connectors.WriteResult, len(ws))
	if first {
		select {
		case <-f.release:
		case <-ctx.Done(): // called off: nothing written
			for i := range out {
				out[i].Err = ctx.Err()
			}
			return out
		}
	}
	for i, w := range ws {
		if w.Fields["id"] == "fail" {
			out[i].Err = errors.New("refused")
			continue
		}
		out[i].Entity = connectors.Entity{ID: fmt.Sprint(w.Fields["id"])}
	}
	return out
}

// Writes that arrive while a batch is being written go together in the
// next one; each gets its own result (a refused one its error alone).
func TestWriteBatchesGroupAndFailAlone(t *testing.T) {
	var b writeBatches
	f := &fakeBatch{release: make(chan struct{})}
	ctx := context.Background()
	firstDone := make(chan connectors.WriteResult)
	go func() { firstDone <- b.write(ctx, f, connectors.Write{Fields: map[string]any{"id": "0"}}) }()
	waitUntil(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.sizes) == 1 })
	ids := []string{"1", "2", "fail", "3"}
	res := make([]connectors.WriteResult, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); res[i] = b.write(ctx, f, connectors.Write{Fields: map[string]any{"id": id}}) }()
	}
	waitUntil(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.groups[f].queue) == len(ids)
	})
	close(f.release)
	wg.Wait()
	if r := <-firstDone; r.Err != nil || r.Entity.ID != "0" {
		t.Fatalf("first write: %+v", r)
	}
	for i, id := range ids {
		if id == "fail" {
			if res[i].Err == nil {
				t.Errorf("the refused write succeeded")
			}
		} else if res[i].Err != nil || res[i].Entity.ID != id {
			t.Errorf("write %s: %+v", id, res[i])
		}
	}
	if fmt.Sprint(f.sizes) != "[1 4]" {
		t.Errorf("batches %v, want [1 4]", f.sizes)
	}
	if b.writes.Load() != 5 || b.batches.Load() != 2 {
		t.Errorf("counted %d writes in %d batches", b.writes.Load(), b.batches.Load())
	}
	// The group retires once its queue is empty: its goroutine checks that
	// after the last batch's results went out, so wait for it (the race
	// run saw the check come first).
	waitUntil(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.groups) == 0
	})
}

// A caller that stops waiting gets its context's error; the batch's own
// context ends only once every caller in it has stopped waiting.
func TestWriteBatchesContext(t *testing.T) {
	var b writeBatches
	f := &fakeBatch{release: make(chan struct{})}
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	errs1, errs2 := make(chan error, 1), make(chan error, 1)
	go func() { errs1 <- b.write(ctx1, f, connectors.Write{Fields: map[string]any{"id": "1"}}).Err }()
	waitUntil(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.sizes) == 1 })
	// The second joins the next batch; cancel the first's caller.
	go func() { errs2 <- b.write(ctx2, f, connectors.Write{Fields: map[string]any{"id": "2"}}).Err }()
	cancel1()
	if err := <-errs1; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled caller got %v", err)
	}
	f.mu.Lock()
	batchCtx := f.ctxs[0]
	f.mu.Unlock()
	select {
	case <-batchCtx.Done(): // its only caller left: the write is called off
	case <-time.After(5 * time.Second):
		t.Fatal("the batch's context outlived its callers")
	}
	if err := <-errs2; err != nil {
		t.Fatalf("the second write: %v", err)
	}
	cancel2()
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
