package httpx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/connectors"
)

// A server that echoes the request into its error page does not get the
// credentials into Duplex's error messages; the error kinds survive.
func TestErrorsRedactCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, fmt.Sprintf("refused %s %v", r.URL, r.Header), http.StatusForbidden)
	}))
	defer srv.Close()
	c := &Client{Base: srv.URL, Header: http.Header{
		"Authorization":      {"Bearer tok-ABCDEF123"},
		"X-Redmine-Api-Key":  {"redmine-key-987654"},
		"X-Custom-Tenant-Id": {"tenant-visible"},
	}}
	err := c.Do(context.Background(), "GET", "/items?api_key=query-secret-1&since=2026-12-01", nil, nil)
	msg := err.Error()
	for _, secret := range []string{"tok-ABCDEF123", "redmine-key-987654", "query-secret-1"} {
		if strings.Contains(msg, secret) {
			t.Fatalf("error holds %q: %s", secret, msg)
		}
	}
	if !strings.Contains(msg, "[redacted]") || !strings.Contains(msg, "since=2026-12-01") {
		t.Fatalf("message: %s", msg)
	}
	var se *StatusError
	if !errors.Is(err, connectors.ErrBadConfig) || !errors.As(err, &se) || se.Code != 403 {
		t.Fatalf("error kind lost: %v", err)
	}
	// Basic auth: the password is redacted, also when the page shows it decoded.
	req, _ := http.NewRequest("GET", "http://h/x", nil)
	req.SetBasicAuth("root", "pa55word-rt")
	if got := Redact(errors.New("echo: root:pa55word-rt"), req).Error(); strings.Contains(got, "pa55word-rt") {
		t.Fatalf("basic auth password kept: %s", got)
	}
}
