package httpconn_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpconn"
	"github.com/duplexsync/duplex/internal/itemsvc"
)

func open(t *testing.T, svc *itemsvc.Service, extra map[string]any, secrets map[string]string) connectors.Connector {
	t.Helper()
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	s := map[string]any{"url": srv.URL, "list_path": "/items?since={since}", "get_path": "/items/{id}",
		"create_path": "/items", "update_path": "/items/{id}", "comment_path": "/items/{id}/comments"}
	for k, v := range extra {
		s[k] = v
	}
	raw, _ := json.Marshal(s)
	c, err := httpconn.New(context.Background(), connectors.Config{Settings: raw, Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	svc := itemsvc.New()
	svc.Token = "Bearer s3cret"
	c := open(t, svc, nil, map[string]string{"token": "Bearer s3cret"})
	e, err := c.Create(ctx, map[string]any{"title": "hello", "state": "open"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Fields["title"] != "hello" || e.ID == "" || e.UpdatedAt.IsZero() {
		t.Fatalf("created: %+v", e)
	}
	if _, ok := e.Fields["updated_at"]; ok {
		t.Fatal("the update time is not a field")
	}
	got, err := c.Update(ctx, e.ID, map[string]any{"state": "closed"})
	if err != nil || got.Fields["state"] != "closed" || got.Fields["title"] != "hello" {
		t.Fatalf("update: %v %+v", err, got.Fields)
	}
	cm, err := c.AddComment(ctx, e.ID, connectors.Comment{Body: "note", Private: true})
	if err != nil || cm.ID == "" || !cm.Private {
		t.Fatalf("comment: %+v %v", cm, err)
	}
	got, _ = c.Get(ctx, e.ID)
	if len(got.Comments) != 1 || got.Comments[0].Body != "note" {
		t.Fatalf("comments: %+v", got.Comments)
	}
	if _, err := c.Get(ctx, "404"); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	wrong := open(t, svc, nil, map[string]string{"token": "Bearer wrong"})
	if _, err := wrong.Get(ctx, e.ID); !errors.Is(err, connectors.ErrBadConfig) {
		t.Fatalf("wrong token: %v", err)
	}
}

// TestChangesKeyset: items sharing an update time are not skipped across
// small pages, and a quiet poll returns nothing.
func TestChangesKeyset(t *testing.T) {
	ctx := context.Background()
	svc := itemsvc.New()
	c := open(t, svc, nil, nil)
	for i := 0; i < 7; i++ {
		svc.Put("", map[string]any{"title": fmt.Sprint(i)})
	}
	seen := map[string]int{}
	cur := ""
	for i := 0; i < 10; i++ {
		p, err := c.Changes(ctx, cur, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entities {
			seen[e.ID]++
		}
		if p.Cursor != "" {
			cur = p.Cursor
		}
		if !p.More {
			break
		}
	}
	if len(seen) != 7 {
		t.Fatalf("seen %v", seen)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("item %s taken %d times", id, n)
		}
	}
	if p, _ := c.Changes(ctx, cur, 3); len(p.Entities) != 0 {
		t.Fatalf("quiet poll: %d", len(p.Entities))
	}
	svc.Put("3", map[string]any{"title": "edited"})
	if p, _ := c.Changes(ctx, cur, 3); len(p.Entities) != 1 || p.Entities[0].Fields["title"] != "edited" {
		t.Fatalf("after an edit: %+v", p.Entities)
	}
}

func TestWebhook(t *testing.T) {
	svc := itemsvc.New()
	c := open(t, svc, map[string]any{"webhook_id_path": "item.id"}, map[string]string{"webhook_secret": "hush"})
	h := c.(connectors.Hooked)
	body := []byte(`{"item":{"id":"42"}}`)
	hdr := http.Header{"X-Signature-256": {httpconn.Sign([]byte("hush"), body)}, "X-Delivery-Id": {"d-1"}}
	d, err := h.Webhook(hdr, body)
	if err != nil || d.ID != "d-1" || len(d.EntityIDs) != 1 || d.EntityIDs[0] != "42" {
		t.Fatalf("good delivery: %+v %v", d, err)
	}
	for name, tc := range map[string]struct {
		hdr  http.Header
		body []byte
		want error
	}{
		"missing signature": {http.Header{}, body, connectors.ErrSignature},
		"wrong secret":      {http.Header{"X-Signature-256": {httpconn.Sign([]byte("other"), body)}}, body, connectors.ErrSignature},
		"body changed":      {hdr, []byte(`{"item":{"id":"43"}}`), connectors.ErrSignature},
		"not hex":           {http.Header{"X-Signature-256": {"sha256=zz"}}, body, connectors.ErrSignature},
		"malformed":         {http.Header{"X-Signature-256": {httpconn.Sign([]byte("hush"), []byte("{"))}}, []byte("{"), connectors.ErrInvalid},
		"no id":             {http.Header{"X-Signature-256": {httpconn.Sign([]byte("hush"), []byte(`{}`))}}, []byte(`{}`), connectors.ErrInvalid},
	} {
		if _, err := h.Webhook(tc.hdr, tc.body); !errors.Is(err, tc.want) {
			t.Errorf("%s: want %v, got %v", name, tc.want, err)
		}
	}
	noSecret := open(t, svc, nil, nil).(connectors.Hooked)
	if _, err := noSecret.Webhook(hdr, body); !errors.Is(err, connectors.ErrSignature) {
		t.Errorf("no secret configured must refuse every delivery: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, raw := range map[string]string{
		"bad url":  `{"url":"x","list_path":"/i","get_path":"/i/{id}"}`,
		"no paths": `{"url":"http://127.0.0.1:1"}`,
		"not json": `{`,
	} {
		if _, err := httpconn.New(context.Background(), connectors.Config{Settings: json.RawMessage(raw)}); !errors.Is(err, connectors.ErrBadConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestWebhookItem: with webhook_item_path the delivery carries the items,
// mapped as Get maps them; a body without the item names ids as before.
func TestWebhookItem(t *testing.T) {
	svc := itemsvc.New()
	c := open(t, svc, map[string]any{"webhook_item_path": "data.item", "webhook_id_path": "data.id"}, map[string]string{"webhook_secret": "hush"})
	h := c.(connectors.Hooked)
	deliver := func(body string) (connectors.Delivery, error) {
		return h.Webhook(http.Header{"X-Signature-256": {httpconn.Sign([]byte("hush"), []byte(body))}}, []byte(body))
	}
	d, err := deliver(`{"data":{"item":{"id":7,"updated_at":"2026-01-02T03:04:05.5Z","title":"t","comments":[{"id":"c1","body":"hi"}]}}}`)
	if err != nil || len(d.Entities) != 1 || len(d.EntityIDs) != 0 {
		t.Fatalf("%+v %v", d, err)
	}
	if e := d.Entities[0]; e.ID != "7" || e.Fields["title"] != "t" || len(e.Comments) != 1 || e.UpdatedAt.Nanosecond() != 5e8 {
		t.Fatalf("entity: %+v", e)
	}
	if _, ok := d.Entities[0].Fields["updated_at"]; ok {
		t.Fatal("the update time is not a field")
	}
	d, err = deliver(`{"data":{"item":[{"id":"1","updated_at":"2026-01-02T03:04:05Z"},{"id":"2"}]}}`)
	if err != nil || len(d.Entities) != 1 || d.Entities[0].ID != "1" || len(d.EntityIDs) != 1 || d.EntityIDs[0] != "2" {
		t.Fatalf("a list, one item without its update time (read back): %+v %v", d, err)
	}
	d, err = deliver(`{"data":{"id":"9"}}`)
	if err != nil || len(d.Entities) != 0 || len(d.EntityIDs) != 1 || d.EntityIDs[0] != "9" {
		t.Fatalf("no item: %+v %v", d, err)
	}
	if _, err := deliver(`{"data":{"item":{"title":"no id"}}}`); !errors.Is(err, connectors.ErrInvalid) {
		t.Fatalf("item without id: %v", err)
	}
	root := open(t, svc, map[string]any{"webhook_item_path": "."}, map[string]string{"webhook_secret": "hush"}).(connectors.Hooked)
	body := `{"id":"5","updated_at":"2026-01-02T03:04:05Z","title":"root"}`
	if d, err := root.Webhook(http.Header{"X-Signature-256": {httpconn.Sign([]byte("hush"), []byte(body))}}, []byte(body)); err != nil || len(d.Entities) != 1 || d.Entities[0].Fields["title"] != "root" {
		t.Fatalf("root item: %+v %v", d, err)
	}
}
