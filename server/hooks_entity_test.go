package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
)

// entityEnv: side a's webhooks carry the item at the body's root
// (webhook_item_path "."), b's trigger is on (so Duplex also writes to a),
// and side a's single-item reads (GET /items/{id}) are counted.
type entityEnv struct {
	*hookEnv
	gets atomic.Int64
}

func newEntityEnv(t *testing.T) *entityEnv {
	e := &entityEnv{}
	e.hookEnv = newHookEnvWith(t, hookOpts{
		settingsA: map[string]any{"webhook_item_path": "."},
		triggerB:  "true",
		maxBody:   1 << 20,
		wrapA: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/items/") {
					e.gets.Add(1)
				}
				next.ServeHTTP(w, r)
			})
		},
	})
	return e
}

func item(id, title string, at time.Time) string {
	b, _ := json.Marshal(map[string]any{"id": id, "title": title, "updated_at": at.UTC().Format(time.RFC3339Nano)})
	return string(b)
}

// deliver posts a signed delivery for side a and runs the hook loop and the
// worker once.
func (e *entityEnv) deliver(body, delivery string) {
	e.t.Helper()
	if code, out := e.post(e.sysA, signed(body, delivery), []byte(body)); code != 202 {
		e.t.Fatalf("delivery %s: %d %+v", delivery, code, out)
	}
	e.process()
}

func (e *entityEnv) process() {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.eng.HooksOnce(ctx); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.eng.WorkOnce(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// titleOnB is the title of b's only item.
func (e *entityEnv) titleOnB() any {
	e.t.Helper()
	if e.b.Len() != 1 {
		e.t.Fatalf("b has %d items, want 1", e.b.Len())
	}
	return e.b.Item("1")["title"]
}

// TestWebhookCarriesEntity: an item in the signed payload is stored with
// the delivery and applied on b without any read of side a.
func TestWebhookCarriesEntity(t *testing.T) {
	e := newEntityEnv(t)
	ctx := context.Background()
	body := item("a7", "carried", time.Now()) // side a's service does not even hold it
	if code, out := e.post(e.sysA, signed(body, "d-1"), []byte(body)); code != 202 {
		t.Fatalf("%d %+v", code, out)
	}
	// Durable before processing: the entity is in the delivery's row.
	ds, err := e.st.PendingDeliveries(ctx, 10)
	if err != nil || len(ds) != 1 || !strings.Contains(ds[0].Entities, `"carried"`) || ds[0].EntityIDs != `["a7"]` {
		t.Fatalf("pending: %v %+v", err, ds)
	}
	e.process()
	if got := e.titleOnB(); got != "carried" {
		t.Fatalf("b: %v", got)
	}
	if n := e.gets.Load(); n != 0 {
		t.Fatalf("%d reads of side a for a carried entity", n)
	}
}

// TestWebhookWithoutEntity: a payload that names the id only (the item
// path absent) is read back as before.
func TestWebhookWithoutEntity(t *testing.T) {
	e := newEntityEnv(t)
	id := e.a.Put("", map[string]any{"title": "read back"})
	e.deliver(`{"id":"`+id+`"}`, "d-1")
	if got := e.titleOnB(); got != "read back" {
		t.Fatalf("b: %v", got)
	}
	if n := e.gets.Load(); n != 1 {
		t.Fatalf("%d reads of side a, want 1", n)
	}
}

// TestWebhookEntityTooLarge: an entity over the limit is refused with a
// clear error and nothing is recorded.
func TestWebhookEntityTooLarge(t *testing.T) {
	e := newEntityEnv(t)
	body := item("a1", strings.Repeat("x", 300<<10), time.Now())
	code, out := e.post(e.sysA, signed(body, "big"), []byte(body))
	if code != 400 || !strings.Contains(out.Message, "over the limit") || !strings.Contains(out.Message, "a1") {
		t.Fatalf("%d %+v", code, out)
	}
	if n := e.deliveries(); n != 0 {
		t.Fatalf("%d deliveries recorded", n)
	}
}

// TestWebhookEntityStale: a webhook carrying an older state than one
// already taken does not overwrite the newer one (it is read back), in the
// same page (the newest is taken) and in a later one; a state with the same
// stamp is read back too.
func TestWebhookEntityStale(t *testing.T) {
	e := newEntityEnv(t)
	t0 := time.Now().Add(-time.Minute)
	id := e.a.Put("a1", map[string]any{"title": "v3"}) // the system's current state

	// Same page: v2 then v1 (late) → v2, no read.
	for i, b := range []string{item(id, "v2", t0.Add(2*time.Second)), item(id, "v1", t0.Add(time.Second))} {
		if code, _ := e.post(e.sysA, signed(b, "p"+string(rune('0'+i))), []byte(b)); code != 202 {
			t.Fatal(code)
		}
	}
	e.process()
	if got := e.titleOnB(); got != "v2" || e.gets.Load() != 0 {
		t.Fatalf("same page: b %v, %d reads", got, e.gets.Load())
	}
	// A later page with v1 (older than v2, taken) → read back: v3.
	e.deliver(item(id, "v1", t0.Add(time.Second)), "late")
	if got := e.titleOnB(); got != "v3" || e.gets.Load() != 1 {
		t.Fatalf("late older state: b %v, %d reads", got, e.gets.Load())
	}
	// The same stamp as the newest seen → read back (v3 again: nothing new).
	events := func() int {
		evs, _ := e.st.ListEvents(context.Background(), store.EventFilter{})
		return len(evs)
	}
	n := events()
	e.deliver(item(id, "v0", t0.Add(2*time.Second)), "same-stamp")
	if got := e.titleOnB(); got != "v3" || e.gets.Load() != 2 || events() != n {
		t.Fatalf("same stamp: b %v, %d reads, %d events (was %d)", got, e.gets.Load(), events(), n)
	}
	// A newer state is taken as carried again.
	e.deliver(item(id, "v4", time.Now().Add(time.Minute)), "newer")
	if got := e.titleOnB(); got != "v4" || e.gets.Load() != 2 {
		t.Fatalf("newer: b %v, %d reads", got, e.gets.Load())
	}
}

// TestWebhookEntityAfterDuplexWrite: once Duplex wrote to side a, its own
// write coming back in a webhook is recognised as the echo without a read,
// and a carried state that is not that write (it may be older than the
// write) is read back rather than taken for a person's change.
func TestWebhookEntityAfterDuplexWrite(t *testing.T) {
	e := newEntityEnv(t)
	ctx := context.Background()
	e.b.Put("", map[string]any{"title": "from b"})
	if _, err := e.eng.PollOnce(ctx, e.sysB); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.WorkOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if e.a.Len() != 1 || e.a.Item("1")["title"] != "from b" {
		t.Fatalf("a after b's change: %v", e.a.Item("1"))
	}
	events := func() int {
		evs, _ := e.st.ListEvents(ctx, store.EventFilter{})
		return len(evs)
	}
	n, reads := events(), e.gets.Load()
	// An older state of a's item (before Duplex's write, delivered late):
	// nothing seen of it yet, but Duplex wrote to it, so it is read back
	// rather than sent to b as a person's change.
	e.deliver(item("1", "before the write", time.Now().Add(-time.Hour)), "old")
	if e.gets.Load() != reads+1 || events() != n || e.b.Item("1")["title"] != "from b" {
		t.Fatalf("old state: %d reads (was %d), %d events (was %d), b %v", e.gets.Load(), reads, events(), n, e.b.Item("1"))
	}
	// Duplex's write coming back: the echo, without a read.
	e.a.Put("1", map[string]any{}) // a new stamp, the same content
	echo, _ := json.Marshal(e.a.Item("1"))
	e.deliver(string(echo), "echo")
	if events() != n || e.gets.Load() != reads+1 {
		t.Fatalf("echo: %d events (was %d), %d reads (was %d)", events(), n, e.gets.Load(), reads+1)
	}
}
