package outbound

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/internal/tlsconf"
)

// TestRedirectsFollowThePolicy: an allowed system that answers an
// attachment download (or any request) with a redirect to an address the
// policy refuses (another loopback port, the metadata address) gets a
// refusal naming the rule, and the refused address is never reached,
// through both transports a connector may get: Config.RoundTripper (the
// guard alone) and the engine's (tlsconf.WithDial, cmd/duplex).
func TestRedirectsFollowThePolicy(t *testing.T) {
	var inner atomic.Int64
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.Add(1)
		_, _ = io.WriteString(w, "internal secret")
	}))
	defer internal.Close()
	var target string
	system := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target, http.StatusFound)
	}))
	defer system.Close()
	u, _ := url.Parse(system.URL)
	// Only the system's own port is allowed on loopback.
	g := NewGuards(policy(t, `{"allow":[{"network":"127.0.0.1","ports":[`+u.Port()+`]}]}`), Fence{}, nil).For(1)
	transports := map[string]http.RoundTripper{
		"guard":    connectors.Config{Guard: g}.RoundTripper(),
		"engine's": tlsconf.WithDial(http.DefaultTransport, g.DialContext),
	}
	for name, rt := range transports {
		client := &http.Client{Transport: rt}
		for to, want := range map[string]string{
			internal.URL + "/secret":                   "loopback",
			"http://169.254.169.254/latest/meta-data/": "metadata",
			"http://10.1.2.3/":                         "private",
		} {
			target = to
			resp, err := client.Get(system.URL + "/attachments/download/1")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("%s: a redirect to %s was followed: %d", name, to, resp.StatusCode)
			}
			if got := rule(t, err); got != want {
				t.Fatalf("%s: a redirect to %s refused by rule %q, want %q", name, to, got, want)
			}
		}
	}
	if inner.Load() != 0 {
		t.Fatalf("the refused address was reached %d times", inner.Load())
	}
}
