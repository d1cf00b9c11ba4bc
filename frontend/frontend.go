// Package frontend serves the browser app. For now it is one hand-written
// placeholder page; the Vite build (issue #6) will replace placeholder/ with
// dist/ behind the same Handler.
package frontend

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed placeholder
var files embed.FS

// Handler serves the app's static files.
func Handler() http.Handler {
	sub, err := fs.Sub(files, "placeholder")
	if err != nil { // the embed pattern above guarantees the folder
		panic(err)
	}
	return http.FileServer(http.FS(sub))
}
