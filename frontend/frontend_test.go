package frontend_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/frontend"
)

// The page at / is whichever is embedded: the app when it was built, the
// placeholder otherwise. Both must be self-contained (no network access).
func TestPage(t *testing.T) {
	rec := httptest.NewRecorder()
	frontend.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	if rec.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("index must be revalidated, got Cache-Control %q", rec.Header().Get("Cache-Control"))
	}
	want := []string{"<title>Duplex</title>", `"/api/connections"`, "setInterval(refresh, 2000)"}
	if frontend.Built() {
		want = []string{"<title>Duplex</title>", `<div id="app">`, `type="module"`}
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %s", w)
		}
	}
	for _, bad := range []string{"http://", "https://", `src="//`, `href="//`} {
		if strings.Contains(body, bad) {
			t.Errorf("page references an external asset (%s)", bad)
		}
	}
	// The setup link (/setup?token=…) opens the same page.
	for _, p := range []string{"/setup?token=abc", "/setup/"} {
		rec := httptest.NewRecorder()
		frontend.Handler().ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != 200 || rec.Body.String() != body || rec.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: %d, Cache-Control %q, same page %v", p, rec.Code, rec.Header().Get("Cache-Control"), rec.Body.String() == body)
		}
	}
	if rec := httptest.NewRecorder(); true {
		frontend.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/.keep", nil))
		if rec.Code != 404 {
			t.Errorf("/.keep: %d", rec.Code)
		}
	}
}

// When built, every asset the index names is embedded, served with a long
// cache lifetime, and nothing in the bundle loads code from another host.
func TestBuiltAssets(t *testing.T) {
	if !frontend.Built() {
		t.Skip("app not built (make build runs npm); the placeholder is embedded")
	}
	rec := httptest.NewRecorder()
	frontend.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	refs := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(rec.Body.String(), -1)
	if len(refs) == 0 {
		t.Fatal("index names no assets")
	}
	for _, m := range refs {
		rec := httptest.NewRecorder()
		frontend.Handler().ServeHTTP(rec, httptest.NewRequest("GET", m[1], nil))
		if rec.Code != 200 || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") || rec.Header().Get("Content-Encoding") != "" {
			t.Errorf("%s: %d %q %q", m[1], rec.Code, rec.Header().Get("Cache-Control"), rec.Header().Get("Content-Encoding"))
		}
		// Gzipped for clients that accept it, the same bytes once inflated.
		req := httptest.NewRequest("GET", m[1], nil)
		req.Header.Set("Accept-Encoding", "br, gzip;q=0.9")
		zrec := httptest.NewRecorder()
		frontend.Handler().ServeHTTP(zrec, req)
		if zrec.Header().Get("Content-Encoding") != "gzip" || zrec.Body.Len() >= rec.Body.Len() {
			t.Errorf("%s gzipped: %q, %d bytes vs %d plain", m[1], zrec.Header().Get("Content-Encoding"), zrec.Body.Len(), rec.Body.Len())
			continue
		}
		if ct := zrec.Header().Get("Content-Type"); ct != rec.Header().Get("Content-Type") {
			t.Errorf("%s gzipped: Content-Type %q, plain %q", m[1], ct, rec.Header().Get("Content-Type"))
		}
		zr, err := gzip.NewReader(zrec.Body)
		if err != nil {
			t.Fatal(err)
		}
		inflated, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(inflated, rec.Body.Bytes()) {
			t.Errorf("%s: gzipped body does not inflate to the file (%v)", m[1], err)
		}
	}
	err := fs.WalkDir(os.DirFS("dist"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err
		}
		b, err := os.ReadFile("dist/" + p)
		if err != nil {
			return err
		}
		for _, bad := range []string{`importScripts("http`, `import("http`, `from "http`} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s loads code from the network (%s)", p, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
