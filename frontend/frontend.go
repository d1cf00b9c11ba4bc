// Package frontend serves the browser app: the Vite build in dist/ (made by
// `make build` from app/), or, when the app has not been built (a fresh
// clone, `go test` without npm), the small hand-written page in placeholder/
// that lists connections and events and says how to build the app.
package frontend

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed all:dist placeholder
var files embed.FS

// Built reports whether the embedded files are the Vite build.
func Built() bool {
	_, err := fs.Stat(files, "dist/index.html")
	return err == nil
}

// Handler serves the app's static files. Hashed assets under /assets/ are
// cached for good; index.html is revalidated so a new binary's app is seen
// at the next load.
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/assets/") {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		if r.URL.Path == "/.keep" {
			http.NotFound(w, r)
			return
		}
		fsrv.ServeHTTP(w, r)
	})
}
