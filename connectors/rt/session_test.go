package rt

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"

	"github.com/duplexsync/duplex/connectors"
)

// TestSessionRenewed: when RT forgets the session (expiry, restart), the
// next read gets 401, logs in again and succeeds.
func TestSessionRenewed(t *testing.T) {
	u, pw := os.Getenv("DUPLEX_TEST_RT_URL"), os.Getenv("DUPLEX_TEST_RT_PASSWORD")
	if u == "" || pw == "" {
		t.Skip("DUPLEX_TEST_RT_URL/PASSWORD not set: make test-e2e")
	}
	ctx := context.Background()
	raw, _ := json.Marshal(map[string]any{"url": u, "queue": "General"})
	cc, err := New(ctx, connectors.Config{Settings: raw, Secrets: map[string]string{"user": "root", "password": pw}})
	if err != nil {
		t.Fatal(err)
	}
	c := cc.(*conn)
	base, _ := url.Parse(u)
	var names []string
	for _, ck := range c.sess.client.Jar.Cookies(base) {
		names = append(names, ck.Name)
		// A session id RT does not know: what an expired session looks like.
		c.sess.client.Jar.SetCookies(base, []*http.Cookie{{Name: ck.Name, Value: "0123456789abcdef0123456789abcdef", Path: "/"}})
	}
	if len(names) == 0 {
		t.Fatal("no session cookie after login")
	}
	if _, err := c.Describe(ctx); err != nil {
		t.Fatal(err)
	}
	var q struct{ Name string }
	if err := c.do(ctx, "GET", "/queue/General", nil, &q); err != nil || q.Name != "General" {
		t.Fatalf("read after the session was lost: %v (%+v)", err, q)
	}
	for _, ck := range c.sess.client.Jar.Cookies(base) {
		if ck.Value == "0123456789abcdef0123456789abcdef" {
			t.Fatalf("cookie %s not renewed (cookies %v)", ck.Name, fmt.Sprint(names))
		}
	}
}
