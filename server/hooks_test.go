package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpconn"
	"github.com/duplexsync/duplex/connectors/sqlconn"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/demo"
	"github.com/duplexsync/duplex/internal/itemsvc"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
	"github.com/duplexsync/duplex/server"
)

// hookEnv: two item services, each a generic HTTP system, and a connection
// copying titles from a to b; webhooks arrive for system a.
type hookEnv struct {
	*env
	a, b     *itemsvc.Service
	sysA     int64
	sysB     int64
	sqlSysID int64
	limits   server.Limits
}

func newHookEnv(t *testing.T) *hookEnv { return newHookEnvWith(t, hookOpts{}) }

// hookOpts vary the hook environment: settings added to side a's, a wrapper
// around side a's service (to count its requests), b's trigger, the body limit.
type hookOpts struct {
	settingsA map[string]any
	wrapA     func(http.Handler) http.Handler
	triggerB  string
	maxBody   int64
	// unsignedIDs: side a's sender signs the body only (no
	// sign_delivery_id), so deliveries are known by their body.
	unsignedIDs bool
	// limits are the server's (and, in limits_test.go, its http.Server's).
	limits server.Limits
}

func newHookEnvWith(t *testing.T, o hookOpts) *hookEnv {
	if o.triggerB == "" {
		o.triggerB = "false"
	}
	if o.maxBody == 0 {
		o.maxBody = 4 << 10
	}
	st := testdb.SQLite(t)
	box, err := secret.LoadOrCreate(t.TempDir() + "/k")
	if err != nil {
		t.Fatal(err)
	}
	reg := connectors.NewRegistry()
	_ = reg.Register("http", httpconn.New)
	_ = reg.Register("sql", sqlconn.New)
	eng := engine.New(engine.Options{Store: st, Connectors: reg, Secrets: box, Runner: scripting.NewRunner(scripting.Options{})})
	t.Cleanup(func() { _ = eng.Close() })
	lib, _ := scripts.Builtin()
	h := server.New(server.Options{Store: st, Engine: eng, Secrets: box, Templates: lib, MaxBodyBytes: o.maxBody, Limits: o.limits})
	e := &hookEnv{env: &env{t: t, st: st, eng: eng, h: h, tok: rootToken(t, st)}, a: itemsvc.New(), b: itemsvc.New(), limits: o.limits}
	for _, p := range []struct {
		svc *itemsvc.Service
		id  *int64
	}{{e.a, &e.sysA}, {e.b, &e.sysB}} {
		var handler http.Handler = p.svc
		settings := map[string]any{"list_path": "/items?since={since}", "get_path": "/items/{id}",
			"create_path": "/items", "update_path": "/items/{id}", "comment_path": "/items/{id}/comments"}
		if !o.unsignedIDs || p.svc != e.a {
			settings["sign_delivery_id"] = true
		}
		if p.svc == e.a {
			for k, v := range o.settingsA {
				settings[k] = v
			}
			if o.wrapA != nil {
				handler = o.wrapA(handler)
			}
		}
		srv := httptest.NewServer(handler)
		t.Cleanup(srv.Close)
		settings["url"] = srv.URL
		var out struct{ ID int64 }
		code := e.do("POST", "/api/systems", mustJSON(map[string]any{"name": srv.URL, "kind": "http",
			"settings": settings,
			"secrets":  map[string]string{"webhook_secret": "hush"}}), &out)
		if code != 201 {
			t.Fatalf("create system: %d", code)
		}
		*p.id = out.ID
	}
	var c struct{ ID int64 }
	if code := e.do("POST", "/api/connections", mustJSON(map[string]any{"name": "hooks", "system_a_id": e.sysA, "system_b_id": e.sysB, "active": true,
		"scripts": map[string]map[string]string{
			"a": {"trigger": "true", "outgoing": "replica.title = entity.title;", "incoming": "entity.title = replica.title;"},
			"b": {"trigger": o.triggerB, "outgoing": "replica.title = entity.title;", "incoming": "entity.title = replica.title;"},
		}}), &c); code != 201 {
		t.Fatalf("create connection: %d", code)
	}
	return e
}

func (e *hookEnv) post(system int64, hdr http.Header, body []byte) (int, apiErr) {
	e.t.Helper()
	req := httptest.NewRequest("POST", "/hooks/"+strconv.FormatInt(system, 10), bytes.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var out apiErr
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func (e *hookEnv) deliveries() int {
	ds, err := e.st.ListDeliveries(context.Background(), e.sysA, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(ds)
}

// signed signs a delivery as a sender with sign_delivery_id does.
func signed(body string, delivery string) http.Header {
	return http.Header{"X-Signature-256": {httpconn.SignDelivery([]byte("hush"), delivery, []byte(body))}, "X-Delivery-Id": {delivery}}
}

// bodySigned signs the body only, as GitHub and Jira do.
func bodySigned(body string, delivery string) http.Header {
	return http.Header{"X-Signature-256": {httpconn.Sign([]byte("hush"), []byte(body))}, "X-Delivery-Id": {delivery}}
}

func TestWebhookIntake(t *testing.T) {
	e := newHookEnv(t)
	ctx := context.Background()
	id := e.a.Put("", map[string]any{"title": "from a webhook"})
	body := `{"id":"` + id + `"}`

	// Refusals record nothing.
	for name, tc := range map[string]struct {
		hdr  http.Header
		body string
		code int
		api  string
	}{
		"missing signature": {http.Header{}, body, 401, "signature_invalid"},
		"wrong signature":   {http.Header{"X-Signature-256": {httpconn.Sign([]byte("nope"), []byte(body))}}, body, 401, "signature_invalid"},
		"malformed":         {signed("{", "m"), "{", 400, "bad_request"},
		"too large":         {signed(strings.Repeat(" ", 5<<10)+body, "big"), strings.Repeat(" ", 5<<10) + body, 413, "too_large"},
	} {
		code, out := e.post(e.sysA, tc.hdr, []byte(tc.body))
		if code != tc.code || out.Code != tc.api {
			t.Errorf("%s: %d %s (%s), want %d %s", name, code, out.Code, out.Message, tc.code, tc.api)
		}
	}
	if n := e.deliveries(); n != 0 {
		t.Fatalf("refused requests recorded %d deliveries", n)
	}
	if code, out := e.post(9999, signed(body, "x"), []byte(body)); code != 401 || out.Code != "signature_invalid" {
		t.Fatalf("unknown system: %d %s", code, out.Code)
	}

	// A good delivery, sent twice: recorded once, one item on b.
	for i := 0; i < 2; i++ {
		if code, out := e.post(e.sysA, signed(body, "d-1"), []byte(body)); code != 202 {
			t.Fatalf("delivery %d: %d %+v", i, code, out)
		}
	}
	if n := e.deliveries(); n != 1 {
		t.Fatalf("%d deliveries recorded for one delivery id", n)
	}
	if n, err := e.eng.HooksOnce(ctx); err != nil || n != 1 {
		t.Fatalf("hooks: %d %v", n, err)
	}
	if _, err := e.eng.WorkOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if e.b.Len() != 1 || e.b.Item("1")["title"] != "from a webhook" {
		t.Fatalf("b after the webhook: %d items %v", e.b.Len(), e.b.Item("1"))
	}
	// The safety-net poll finds the same item and queues nothing more.
	if res, err := e.eng.PollOnce(ctx, e.sysA); err != nil || res.Enqueued != 0 {
		t.Fatalf("poll after the webhook: %+v %v", res, err)
	}
	// A second delivery about an unchanged item queues nothing either.
	if code, _ := e.post(e.sysA, signed(body, "d-2"), []byte(body)); code != 202 {
		t.Fatal(code)
	}
	if _, err := e.eng.HooksOnce(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _ := e.st.ListEvents(ctx, store.EventFilter{})
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	var ds []store.WebhookDelivery
	if code := e.do("GET", "/api/systems/"+strconv.FormatInt(e.sysA, 10)+"/deliveries", "", &ds); code != 200 || len(ds) != 2 {
		t.Fatalf("deliveries: %d, %d rows", code, len(ds))
	}
	if ds[0].DeliveryID != "d-2" || ds[1].DeliveryID != "d-1" {
		t.Fatalf("newest first: %s, %s", ds[0].DeliveryID, ds[1].DeliveryID)
	}
	for _, d := range ds {
		if d.Status != store.DeliveryDone || d.ProcessedAt == nil {
			t.Errorf("delivery %s: %s %s", d.DeliveryID, d.Status, d.LastError)
		}
	}
	if code := e.do("GET", "/api/systems/9999/deliveries", "", nil); code != 404 {
		t.Fatalf("deliveries of a missing system: %d", code)
	}
}

// TestWebhookUnsupported: a system whose connector takes no webhooks looks
// like any refused signature to the anonymous sender.
func TestWebhookUnsupported(t *testing.T) {
	e := newHookEnv(t)
	paths, err := demo.CreateDatabases(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ ID int64 }
	if code := e.do("POST", "/api/systems", mustJSON(map[string]any{"name": "db", "kind": "sql",
		"settings": demo.SupportSettings(paths.Support)}), &out); code != 201 {
		t.Fatalf("sql system: %d", code)
	}
	if code, api := e.post(out.ID, http.Header{}, []byte(`{}`)); code != 401 || api.Code != "signature_invalid" || strings.Contains(api.Message, "sql") {
		t.Fatalf("%d %+v", code, api)
	}
}
