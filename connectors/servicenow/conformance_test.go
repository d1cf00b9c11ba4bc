package servicenow_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/conntest"
	"github.com/duplexsync/duplex/connectors/servicenow"
)

// TestConformance runs the shared suite against the documented-payload fake
// (its clock stands still, so every incident shares its sys_updated_on;
// Settle moves the Date header past it).
func TestConformance(t *testing.T) {
	var f *fake
	conntest.Run(t, conntest.Harness{
		Spec: servicenow.Spec(),
		Open: func(t *testing.T) connectors.Connector {
			f = newFake(t)
			return open(t, f)
		},
		Fields: func(n int) map[string]any {
			return map[string]any{"short_description": fmt.Sprintf("incident %d", n), "description": "keep me"}
		},
		UpdateField: "short_description", UpdateValue: "renamed", KeepField: "description",
		Settle: func(t *testing.T) {
			f.mu.Lock()
			f.now = f.now.Add(2 * time.Second)
			f.mu.Unlock()
		},
		MissingID: sysID("no such incident"),
	})
}
