package httpconn_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/conntest"
	"github.com/duplexsync/duplex/connectors/httpconn"
	"github.com/duplexsync/duplex/internal/itemsvc"
)

// TestConformance runs the shared suite against the real item service.
func TestConformance(t *testing.T) {
	var svc *itemsvc.Service
	conntest.Run(t, conntest.Harness{
		Spec: httpconn.Spec(),
		Open: func(t *testing.T) connectors.Connector {
			svc = itemsvc.New()
			c := open(t, svc, map[string]any{"webhook_id_path": "item.id"}, map[string]string{"webhook_secret": "hush"})
			t.Cleanup(func() { c.Close() })
			return c
		},
		Fields: func(n int) map[string]any {
			return map[string]any{"title": fmt.Sprintf("item %d", n), "state": "open"}
		},
		UpdateField: "title", UpdateValue: "renamed", KeepField: "state",
		TieStamps: func(t *testing.T, ids []string) {
			at := time.Now().Add(-time.Minute)
			for _, id := range ids {
				svc.Stamp(id, at)
			}
		},
		MissingID: "404",
		Webhook: func(t *testing.T, id string, signed bool) (http.Header, []byte) {
			body := []byte(fmt.Sprintf(`{"item":{"id":%q}}`, id))
			secret := "hush"
			if !signed {
				secret = "guess"
			}
			return http.Header{"X-Signature-256": {httpconn.Sign([]byte(secret), body)}, "X-Delivery-Id": {"d-" + id}}, body
		},
	})
}
