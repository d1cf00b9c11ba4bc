package engine

import (
	"context"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

type nopConn struct {
	connectors.Connector
	calls int
}

func (n *nopConn) Get(context.Context, string) (connectors.Entity, error) {
	n.calls++
	return connectors.Entity{}, nil
}

// A system's budget holds: with 20 requests/s and a burst of 2, a third call
// waits for a token, and a cancelled context stops the wait.
func TestRateLimit(t *testing.T) {
	inner := &nopConn{}
	c := withLimit(inner, 20, 2)
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < 4; i++ {
		if _, err := c.Get(ctx, "x"); err != nil {
			t.Fatal(err)
		}
	}
	// 2 from the burst, 2 more at 50 ms each: at least ~100 ms.
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Fatalf("4 calls in %v: the budget was not enforced", d)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Get(cctx, "x"); err == nil {
		t.Fatal("a cancelled wait still called the system")
	}
	if inner.calls != 4 {
		t.Fatalf("%d calls reached the system, want 4", inner.calls)
	}
	if withLimit(inner, 0, 0) != connectors.Connector(inner) {
		t.Fatal("no budget should mean no wrapper")
	}
}
