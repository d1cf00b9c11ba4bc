package jira

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/conntest"
)

// TestConformance runs the shared suite against the documented-payload fake.
func TestConformance(t *testing.T) {
	var f *fakeJira
	const secret = "It's a Secret to Everybody"
	conntest.Run(t, conntest.Harness{
		Spec: Spec(),
		Open: func(t *testing.T) connectors.Connector {
			f = newFake(t)
			return open(t, f, map[string]any{"correlation_field": "Duplex key", "private_comment_role": "Developers"})
		},
		Fields: func(n int) map[string]any {
			return map[string]any{"summary": fmt.Sprintf("issue %d", n), "description": "keep me"}
		},
		UpdateField: "summary", UpdateValue: "renamed", KeepField: "description",
		Settle:    func(t *testing.T) { f.tick(2 * time.Second) },
		MissingID: "EX-4242",
		Webhook: func(t *testing.T, id string, signed bool) (http.Header, []byte) {
			body := []byte(strings.ReplaceAll(string(readTestdata(t, "webhook_issue_updated.json")), `"EX-1"`, `"`+id+`"`))
			h := http.Header{}
			h.Set("X-Atlassian-Webhook-Identifier", "d-"+id)
			if signed {
				h.Set("X-Hub-Signature", sign(secret, body))
			} else {
				h.Set("X-Hub-Signature", sign("guess", body))
			}
			return h, body
		},
	})
}
