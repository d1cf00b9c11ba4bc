package httpconn_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpconn"
)

// FuzzWebhook: a signed body of any shape, read for ids and for carried
// items, is parsed or refused with ErrInvalid, never a panic.
func FuzzWebhook(f *testing.F) {
	for _, s := range []string{`{"item":{"id":"42"}}`, `{"item":{"id":[1,"2"]}}`, `{"data":{"item":{"id":"1","updated_at":"2026-01-01T00:00:00Z","title":"x"}}}`, `[]`, `{"item":{"id":1e400}}`} {
		f.Add([]byte(s))
	}
	var hooks []connectors.Hooked
	for _, extra := range []map[string]any{{"webhook_id_path": "item.id"}, {"webhook_item_path": "data.item", "webhook_id_path": "data.item.id"}} {
		s := map[string]any{"url": "http://127.0.0.1:1", "list_path": "/l", "get_path": "/g/{id}"}
		for k, v := range extra {
			s[k] = v
		}
		raw, _ := json.Marshal(s)
		c, err := httpconn.New(context.Background(), connectors.Config{Settings: raw, Secrets: map[string]string{"webhook_secret": "s"}})
		if err != nil {
			f.Fatal(err)
		}
		hooks = append(hooks, c.(connectors.Hooked))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h := http.Header{"X-Signature-256": {httpconn.Sign([]byte("s"), body)}, "X-Delivery-Id": {"d"}}
		for _, c := range hooks {
			if _, err := c.Webhook(h, body); err != nil && !errors.Is(err, connectors.ErrInvalid) {
				t.Fatalf("a signed body failed with %v, want nil or ErrInvalid", err)
			}
		}
	})
}
