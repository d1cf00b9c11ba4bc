package zendesk_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/conntest"
	"github.com/duplexsync/duplex/connectors/zendesk"
)

// TestConformance runs the shared suite against the documented-payload fake
// (its clock stands still, so every ticket shares its update stamp; the
// export's cursor is a position in the fake's change log, as Zendesk's is).
func TestConformance(t *testing.T) {
	var f *fake
	conntest.Run(t, conntest.Harness{
		Spec: zendesk.Spec(),
		Open: func(t *testing.T) connectors.Connector {
			f = newFake(t)
			return open(t, f)
		},
		Fields: func(n int) map[string]any {
			return map[string]any{"subject": fmt.Sprintf("ticket %d", n), "description": "keep me"}
		},
		UpdateField: "subject", UpdateValue: "renamed", KeepField: "description",
		MissingID: "424242",
		Webhook: func(t *testing.T, id string, signed bool) (http.Header, []byte) {
			body := []byte(strings.ReplaceAll(string(load(t, "webhook_ticket_status_changed.json")), `"id": "5158"`, `"id": "`+id+`"`))
			const ts = "2025-01-08T10:12:08Z"
			h := http.Header{}
			h.Set("X-Zendesk-Webhook-Signature-Timestamp", ts)
			h.Set("X-Zendesk-Webhook-Invocation-Id", "inv-"+id)
			if signed {
				h.Set("X-Zendesk-Webhook-Signature", sign(webhookSecret, ts, body))
			} else {
				h.Set("X-Zendesk-Webhook-Signature", sign("guess", ts, body))
			}
			return h, body
		},
	})
}
