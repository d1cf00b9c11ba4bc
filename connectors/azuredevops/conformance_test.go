package azuredevops_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/azuredevops"
	"github.com/duplexsync/duplex/connectors/conntest"
)

// TestConformance runs the shared suite against the documented-payload fake.
// The fake's clock moves 300ms a change, so TieStamps gives the entities one
// ChangedDate; Settle moves the clock (WIQL's asOf) past it.
func TestConformance(t *testing.T) {
	var f *fake
	conntest.Run(t, conntest.Harness{
		Spec: azuredevops.Spec(),
		Open: func(t *testing.T) connectors.Connector {
			f = newFake(t)
			return open(t, f)
		},
		Fields: func(n int) map[string]any {
			return map[string]any{"title": fmt.Sprintf("work item %d", n), "description": "keep me"}
		},
		UpdateField: "title", UpdateValue: "renamed", KeepField: "description",
		TieStamps: func(t *testing.T, ids []string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, id := range ids {
				n, _ := strconv.ParseInt(id, 10, 64)
				f.items[n]["fields"].(map[string]any)["System.ChangedDate"] = f.now.Format("2006-01-02T15:04:05.000Z")
			}
		},
		Settle: func(t *testing.T) {
			f.mu.Lock()
			f.now = f.now.Add(2 * time.Second)
			f.mu.Unlock()
		},
		MissingID: "424242",
		Webhook: func(t *testing.T, id string, signed bool) (http.Header, []byte) {
			body := []byte(strings.Replace(string(load(t, "hook_workitem_updated.json")), `"workItemId": 5,`, `"workItemId": `+id+`,`, 1))
			r, _ := http.NewRequest("POST", "/", nil)
			if signed {
				r.SetBasicAuth("duplex", hookPassword)
			} else {
				r.SetBasicAuth("duplex", "guess")
			}
			return r.Header, body
		},
	})
}
