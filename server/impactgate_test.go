package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// TestImpactGate: while an impact preview of a connection runs, a second one
// of the same connection answers 429 busy with Retry-After, and so does a
// third connection's while two run; the refused requests never reach the
// engine, and once a replay ends its connection is admitted again.
func TestImpactGate(t *testing.T) {
	e := newFakeEnv(t, testdb.SQLite(t))
	e.eng.impactHold, e.eng.impactIn = make(chan struct{}), make(chan int64, 8)
	ctx := context.Background()
	sysA, sysB := store.System{Name: "a", Kind: "sql"}, store.System{Name: "b", Kind: "sql"}
	for _, s := range []*store.System{&sysA, &sysB} {
		if err := e.st.CreateSystem(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	conns := make([]int64, 3)
	for i := range conns {
		var c struct{ ID int64 }
		e.json("POST", "/api/connections", fmt.Sprintf(`{"name":"c%d","system_a_id":%d,"system_b_id":%d}`, i, sysA.ID, sysB.ID), 201, &c)
		conns[i] = c.ID
	}
	draft := `{"direction":"a_to_b","incoming":"entity.title = replica.title;"}`
	impact := func(id int64) (int, []byte) {
		return e.call("POST", fmt.Sprintf("/api/connections/%d/impact", id), draft)
	}
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); codes[i], _ = impact(conns[i]) }(i)
	}
	running := map[int64]bool{<-e.eng.impactIn: true, <-e.eng.impactIn: true}
	if !running[conns[0]] || !running[conns[1]] {
		t.Fatalf("running %v, want connections %d and %d", running, conns[0], conns[1])
	}
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(e.eng.impactHold) }) })
	for _, id := range []int64{conns[0], conns[2]} {
		done := make(chan string, 1)
		go func() {
			code, body := impact(id)
			var ae struct{ Code string }
			_ = json.Unmarshal(body, &ae)
			done <- fmt.Sprintf("%d %s", code, ae.Code)
		}()
		select {
		case got := <-done:
			if got != "429 busy" {
				t.Errorf("connection %d while two run: %s, want 429 busy", id, got)
			}
		case got := <-e.eng.impactIn:
			t.Fatalf("connection %d's preview reached the engine while two ran", got)
		}
	}
	release.Do(func() { close(e.eng.impactHold) })
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Fatalf("admitted previews answered %v", codes)
	}
	go func() { <-e.eng.impactIn }()
	if code, body := impact(conns[0]); code != http.StatusOK {
		t.Fatalf("after the replays ended: %d %s", code, body)
	}
}
