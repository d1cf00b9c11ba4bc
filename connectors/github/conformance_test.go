package github_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/conntest"
	"github.com/duplexsync/duplex/connectors/github"
)

// TestConformance runs the shared suite against the documented-payload fake
// (its clock stands still, so every issue shares its update stamp).
func TestConformance(t *testing.T) {
	var f *fake
	conntest.Run(t, conntest.Harness{
		Spec: github.Spec(),
		Open: func(t *testing.T) connectors.Connector {
			f = newFake(t, "Codertocat", "Hello-World")
			return open(t, f)
		},
		Settle: func(t *testing.T) { f.setNow(f.now.Add(2 * time.Second)) },
		Fields: func(n int) map[string]any {
			return map[string]any{"title": fmt.Sprintf("issue %d", n), "body": "keep me"}
		},
		UpdateField: "title", UpdateValue: "renamed", KeepField: "body",
		MissingID: "424242",
		Webhook: func(t *testing.T, id string, signed bool) (http.Header, []byte) {
			var p map[string]any
			if err := json.Unmarshal(load(t, "webhook-issues-opened.json"), &p); err != nil {
				t.Fatal(err)
			}
			n, _ := strconv.Atoi(id)
			p["issue"].(map[string]any)["number"] = n
			body, _ := json.Marshal(p)
			sig := sign(body)
			if !signed {
				sig = sign([]byte("something else"))
			}
			return hdr("issues", sig, "d-"+id), body
		},
	})
}
