package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/loadscale"
)

func deliveryStatus(t *testing.T, st *store.Store, system int64) map[string]string {
	t.Helper()
	ds, err := st.ListDeliveries(context.Background(), system, 100)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range ds {
		out[d.DeliveryID] = d.Status
	}
	return out
}

// TestHookFairness: a delivery naming 1,000 entities of a slow system (each
// read back takes 200 ms) does not hold up a delivery to another system,
// which is taken and done while the slow one still runs; a delivery naming
// more than engine.MaxDeliveryEntities is refused whole (413
// too_many_entities) and records nothing.
func TestHookFairness(t *testing.T) {
	var slowReads atomic.Int64
	e := newHookEnvWith(t, hookOpts{
		triggerB: "true",
		maxBody:  1 << 20,
		wrapA: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/items/") {
					slowReads.Add(1)
					select {
					case <-time.After(200 * time.Millisecond):
					case <-r.Context().Done():
						return
					}
				}
				next.ServeHTTP(w, r)
			})
		},
	})
	ids := make([]string, engine.MaxDeliveryEntities+1)
	for i := range ids {
		ids[i] = strconv.Itoa(i + 1)
	}
	tooMany, _ := json.Marshal(map[string]any{"id": ids})
	if code, out := e.post(e.sysA, signed(string(tooMany), "too-many"), tooMany); code != 413 || out.Code != "too_many_entities" {
		t.Fatalf("%d ids: %d %+v", len(ids), code, out)
	}
	if n := e.deliveries(); n != 0 {
		t.Fatalf("a refused delivery recorded %d rows", n)
	}
	big, _ := json.Marshal(map[string]any{"id": ids[:engine.MaxDeliveryEntities]})
	if code, out := e.post(e.sysA, signed(string(big), "big"), big); code != 202 {
		t.Fatalf("1,000 ids: %d %+v", code, out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.eng.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// Once the slow delivery is being read, one arrives for system b.
	deadline := time.Now().Add(10 * time.Second)
	for slowReads.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if slowReads.Load() == 0 {
		t.Fatal("the slow delivery was not started")
	}
	id := e.b.Put("", map[string]any{"title": "from b"})
	body := `{"id":"` + id + `"}`
	sent := time.Now()
	if code, out := e.post(e.sysB, signed(body, "quick"), []byte(body)); code != 202 {
		t.Fatalf("b: %d %+v", code, out)
	}
	var took time.Duration
	for time.Now().Before(sent.Add(20 * time.Second)) {
		if deliveryStatus(t, e.st, e.sysB)["quick"] == store.DeliveryDone {
			took = time.Since(sent)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	slow := deliveryStatus(t, e.st, e.sysA)["big"]
	t.Logf("fairness: b's delivery done %v after it was sent; a's 1,000-id delivery %s after %d slow reads (%v of remote reads at 4 at once)",
		took.Round(time.Millisecond), slow, slowReads.Load(), 1000*200*time.Millisecond/4)
	if took == 0 {
		t.Fatal("b's delivery was not done within 20 s while a's slow one ran")
	}
	if slow == store.DeliveryDone {
		t.Fatal("a's delivery finished first: the test proves nothing (the fake is not slow enough)")
	}
	// A generous bound: the slow delivery alone needs about 50 s.
	if took > loadscale.Duration(5*time.Second) {
		t.Fatalf("b's delivery took %v behind a's slow one", took)
	}
}

// TestHookReplayAndIDs: where the sender does not sign its delivery ids
// (GitHub, Jira, the http connector without sign_delivery_id), the same
// body with a fresh id is a duplicate and adds no row; where it signs them,
// a fresh id breaks the signature. An object, a list, a boolean or a
// fraction as an id is refused with 400 and nothing is recorded.
func TestHookReplayAndIDs(t *testing.T) {
	e := newHookEnvWith(t, hookOpts{unsignedIDs: true})
	id := e.a.Put("", map[string]any{"title": "x"})
	body := `{"id":"` + id + `"}`
	for i, d := range []string{"d-1", "d-2", "fresh-3", ""} {
		code, _ := e.post(e.sysA, bodySigned(body, d), []byte(body))
		if code != 202 {
			t.Fatalf("delivery %d: %d", i, code)
		}
	}
	if n := e.deliveries(); n != 1 {
		t.Fatalf("one body sent with four delivery ids recorded %d rows", n)
	}
	for _, bad := range []string{`{"id":{"a":1}}`, `{"id":[{"a":1}]}`, `{"id":true}`, `{"id":1.5}`, `{"id":["1",["2"]]}`} {
		code, out := e.post(e.sysA, bodySigned(bad, "bad"), []byte(bad))
		if code != 400 || out.Code != "bad_request" {
			t.Fatalf("%s: %d %+v", bad, code, out)
		}
	}
	if n := e.deliveries(); n != 1 {
		t.Fatalf("refused ids recorded rows: %d", n)
	}
	// A number is an id.
	if code, _ := e.post(e.sysA, bodySigned(`{"id":7}`, "n"), []byte(`{"id":7}`)); code != 202 {
		t.Fatalf("numeric id: %d", code)
	}
	ds, _ := e.st.ListDeliveries(context.Background(), e.sysA, 10)
	for _, d := range ds {
		ids, _ := d.IDs()
		for _, x := range ids {
			if strings.Contains(x, "map[") || strings.Contains(x, "[") {
				t.Fatalf("stored id %q", x)
			}
		}
	}

	// Signed delivery ids (side b signs them): a replay under a fresh id
	// does not verify, and records nothing.
	bodyB := `{"id":"1"}`
	if code, _ := e.post(e.sysB, signed(bodyB, "b-1"), []byte(bodyB)); code != 202 {
		t.Fatal(code)
	}
	hdr := signed(bodyB, "b-1")
	hdr.Set("X-Delivery-Id", "b-2")
	if code, out := e.post(e.sysB, hdr, []byte(bodyB)); code != 401 || out.Code != "signature_invalid" {
		t.Fatalf("replay with a fresh signed id: %d %+v", code, out)
	}
	if n := len(deliveryStatus(t, e.st, e.sysB)); n != 1 {
		t.Fatalf("b has %d deliveries, want 1", n)
	}
}

// TestHookAnonymousRefusals: to an anonymous sender, an unknown system, a
// system without webhook secret, a system whose connector takes no webhooks
// and a wrong signature answer byte for byte the same, naming nothing.
func TestHookAnonymousRefusals(t *testing.T) {
	e := newHookEnv(t)
	var noSecret struct{ ID int64 }
	if code := e.do("POST", "/api/systems", mustJSON(map[string]any{"name": "secret-less tracker", "kind": "http",
		"settings": map[string]any{"url": "http://127.0.0.1:1", "list_path": "/items", "get_path": "/items/{id}"}}), &noSecret); code != 201 {
		t.Fatalf("system: %d", code)
	}
	broken := store.System{Name: "broken-settings", Kind: "http", Settings: `{"list_path":"/x"}`} // no url: cannot be opened
	if err := e.st.CreateSystem(context.Background(), &broken); err != nil {
		t.Fatal(err)
	}
	body := `{"id":"1"}`
	answer := func(system string, hdr http.Header) (int, string) {
		req := httptest.NewRequest("POST", "/hooks/"+system, bytes.NewReader([]byte(body)))
		for k, v := range hdr {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	wrong := bodySigned(body, "x")
	wrong.Set("X-Signature-256", "sha256=00")
	code, want := answer(strconv.FormatInt(e.sysA, 10), wrong)
	if code != 401 {
		t.Fatalf("wrong signature: %d %s", code, want)
	}
	for name, c := range map[string]struct {
		system string
		hdr    http.Header
	}{
		"no signature":      {strconv.FormatInt(e.sysA, 10), http.Header{}},
		"unknown system":    {"99999", signed(body, "x")},
		"not a number":      {"abc", signed(body, "x")},
		"no webhook secret": {strconv.FormatInt(noSecret.ID, 10), signed(body, "x")},
		"cannot be opened":  {strconv.FormatInt(broken.ID, 10), signed(body, "x")},
	} {
		code, got := answer(c.system, c.hdr)
		if code != 401 || got != want {
			t.Errorf("%s: %d %s, want 401 %s", name, code, got, want)
		}
	}
	for _, leak := range []string{"secret-less", "broken", "http", "127.0.0.1", "webhook_secret", "configured", "url"} {
		if strings.Contains(want, leak) {
			t.Errorf("the refusal names %q: %s", leak, want)
		}
	}
	if n := e.deliveries(); n != 0 {
		t.Fatalf("%d deliveries recorded", n)
	}
}
