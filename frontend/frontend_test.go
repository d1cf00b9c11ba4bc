package frontend_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/frontend"
)

func TestPlaceholder(t *testing.T) {
	rec := httptest.NewRecorder()
	frontend.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{"<title>Duplex</title>", `"/api/connections"`, `"/api/events?limit=20"`, "setInterval(refresh, 2000)"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// Self-contained: the binary must serve the page without network access.
	for _, bad := range []string{"http://", "https://", `src="//`, `href="//`} {
		if strings.Contains(body, bad) {
			t.Errorf("page references an external asset (%s)", bad)
		}
	}
}
