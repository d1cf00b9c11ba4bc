// Package frontend serves the browser app: the Vite build in dist/ (made by
// `make build` from app/), or, when the app has not been built (a fresh
// clone, `go test` without npm), the small hand-written page in placeholder/
// that lists connections and events and says how to build the app.
package frontend

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

//go:embed all:dist placeholder
var files embed.FS

// Built reports whether the embedded files are the Vite build.
func Built() bool {
	_, err := fs.Stat(files, "dist/index.html")
	return err == nil
}

// Handler serves the app's static files. Hashed assets under /assets/ are
// cached for good and sent gzipped to clients that accept it (compressed
// once, on first request); index.html is revalidated so a new binary's app is
// seen at the next load.
func Handler() http.Handler {
	dir := "placeholder"
	if Built() {
		dir = "dist"
	}
	sub, err := fs.Sub(files, dir)
	if err != nil { // the embed pattern above guarantees the folder
		panic(err)
	}
	fsrv := http.FileServer(http.FS(sub))
	gz := &gzipped{fsys: sub, cache: map[string][]byte{}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.keep" {
			http.NotFound(w, r)
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/assets/") {
			w.Header().Set("Cache-Control", "no-cache")
			if appPaths[strings.TrimSuffix(r.URL.Path, "/")] {
				serveIndex(w, r, sub)
				return
			}
			fsrv.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Add("Vary", "Accept-Encoding")
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && acceptsGzip(r) && gz.serve(w, r) {
			return
		}
		fsrv.ServeHTTP(w, r)
	})
}

// appPaths are the app's routes outside the URL hash: the first-run setup
// link that `duplex serve` prints is /setup?token=…; the index answers there.
var appPaths = map[string]bool{"/setup": true}

func serveIndex(w http.ResponseWriter, r *http.Request, fsys fs.FS) {
	b, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	// Explicit, as for gzipped assets: Gin's NoRoute starts at 404.
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if strings.TrimSpace(strings.SplitN(part, ";", 2)[0]) == "gzip" {
			return true
		}
	}
	return false
}

// gzipped keeps the compressed form of text assets (the editor and its
// workers are megabytes of JavaScript that shrink about fourfold).
type gzipped struct {
	fsys  fs.FS
	mu    sync.Mutex
	cache map[string][]byte
}

var compressible = map[string]bool{".js": true, ".css": true, ".svg": true, ".json": true, ".ttf": true}

// serve writes the gzipped asset and reports true, or false to let the plain
// file server answer (unknown file, not worth compressing).
func (g *gzipped) serve(w http.ResponseWriter, r *http.Request) bool {
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	ext := path.Ext(name)
	if !compressible[ext] {
		return false
	}
	g.mu.Lock()
	body, ok := g.cache[name]
	g.mu.Unlock()
	if !ok {
		raw, err := fs.ReadFile(g.fsys, name)
		if err != nil {
			return false
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(raw)
		_ = zw.Close()
		body = buf.Bytes()
		g.mu.Lock()
		g.cache[name] = body
		g.mu.Unlock()
	}
	ct := mime.TypeByExtension(ext)
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Encoding", "gzip")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	// Explicit: a router may have set another status before handing over
	// (Gin's NoRoute starts at 404).
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return true
	}
	_, _ = w.Write(body)
	return true
}
