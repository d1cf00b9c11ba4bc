package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/duplexsync/duplex/frontend"
	"github.com/duplexsync/duplex/internal/testdb"
)

// The editor's endpoints against real SQLite systems: drafts are checked
// without being saved, a trigger preview counts what it matches, and a system
// test reports a broken system without failing the request.
func TestEditorEndpoints(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			ctx := context.Background()
			sa, sb := e.systems()
			var conn struct {
				ID int64 `json:"id"`
			}
			body := mustJSON(map[string]any{"name": "esc", "system_a_id": sa, "system_b_id": sb, "template": "support-escalation"})
			if code := e.do("POST", "/api/connections", body, &conn); code != http.StatusCreated {
				t.Fatalf("create connection: %d", code)
			}
			base := fmt.Sprintf("/api/connections/%d", conn.ID)

			// Validate: a draft's error has its position; nothing is saved.
			cases := []struct {
				name, path, body string
				status           int
				code             string
				line, col        int
			}{
				{"trigger ok", "/scripts/a/trigger/validate", `{"source":"\"todev\" in labels"}`, 200, "", 0, 0},
				{"trigger syntax", "/scripts/a/trigger/validate", `{"source":"\"todev\" in labels &&"}`, 422, "script_invalid", 1, 20},
				{"trigger unknown field", "/scripts/a/trigger/validate", `{"source":"\n  nosuchfield == 1"}`, 422, "script_invalid", 2, 3},
				{"script syntax", "/scripts/b/incoming/validate", `{"source":"entity.title = replica.title;\nentity.x = ;"}`, 422, "script_invalid", 2, 12},
				{"script ok", "/scripts/b/incoming/validate", `{"source":"entity.title = replica.title;"}`, 200, "", 0, 0},
				{"no source", "/scripts/a/outgoing/validate", `{}`, 400, "bad_request", 0, 0},
				{"bad kind", "/scripts/a/webhook/validate", `{"source":""}`, 400, "bad_request", 0, 0},
			}
			for _, c := range cases {
				var got apiErr
				code := e.do("POST", base+c.path, c.body, &got)
				if code != c.status || got.Code != c.code || got.Line != c.line || (c.col != 0 && got.Column != c.col) {
					t.Errorf("%s: %d %+v, want %d %s at %d:%d", c.name, code, got, c.status, c.code, c.line, c.col)
				}
			}
			if code := e.do("POST", "/api/connections/99/scripts/a/trigger/validate", `{"source":"true"}`, nil); code != 404 {
				t.Errorf("validate on a missing connection: %d", code)
			}
			var versions []struct{ Version int }
			e.do("GET", base+"/scripts/a/trigger/versions", "", &versions)
			if len(versions) != 1 {
				t.Fatalf("validate saved a version: %+v", versions)
			}

			// Preview: the demo has three tickets, one labelled todev. The sql
			// connector reports rows only once they are older than its settle
			// time (20 ms); the demo rows were written just now.
			time.Sleep(50 * time.Millisecond)
			var pv struct {
				Scanned, Matched int
				Sample           []struct {
					ID     string         `json:"id"`
					Fields map[string]any `json:"fields"`
				}
			}
			if code := e.do("POST", base+"/trigger-preview", `{"side":"a"}`, &pv); code != 200 || pv.Scanned != 3 || pv.Matched != 1 ||
				len(pv.Sample) != 1 || pv.Sample[0].ID != "1" {
				t.Fatalf("saved trigger preview: %d %+v", code, pv)
			}
			if code := e.do("POST", base+"/trigger-preview", `{"side":"a","source":"priority != \"low\""}`, &pv); code != 200 || pv.Matched != 3 || len(pv.Sample) != 3 {
				t.Fatalf("draft trigger preview: %d %+v", code, pv)
			}
			if code := e.do("POST", base+"/trigger-preview", `{"side":"b"}`, &pv); code != 200 || pv.Scanned != 1 || pv.Matched != 0 {
				t.Fatalf("side b preview (trigger false): %d %+v", code, pv)
			}
			var bad apiErr
			if code := e.do("POST", base+"/trigger-preview", `{"side":"a","source":"labels &&"}`, &bad); code != 422 || bad.Code != "script_invalid" || bad.Line != 1 {
				t.Fatalf("preview of a broken trigger: %d %+v", code, bad)
			}
			if code := e.do("POST", base+"/trigger-preview", `{"side":"x"}`, &bad); code != 400 {
				t.Fatalf("preview with a bad side: %d", code)
			}

			// Test connection: fine, then broken (table gone), then fine again.
			var res struct {
				OK      bool   `json:"ok"`
				Code    string `json:"code"`
				Message string `json:"message"`
				Schema  struct {
					Fields []struct{ Name string } `json:"fields"`
				} `json:"schema"`
			}
			if code := e.do("POST", fmt.Sprintf("/api/systems/%d/test", sa), "", &res); code != 200 || !res.OK || len(res.Schema.Fields) == 0 {
				t.Fatalf("test of a working system: %d %+v", code, res)
			}
			db, err := sql.Open("sqlite3", e.paths.Engineering)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, "ALTER TABLE issues RENAME TO issues_gone"); err != nil {
				t.Fatal(err)
			}
			res.OK, res.Message = true, ""
			if code := e.do("POST", fmt.Sprintf("/api/systems/%d/test", sb), "", &res); code != 200 || res.OK || res.Message == "" || res.Code == "" {
				t.Fatalf("test of a broken system: %d %+v", code, res)
			}
			if _, err := db.ExecContext(ctx, "ALTER TABLE issues_gone RENAME TO issues"); err != nil {
				t.Fatal(err)
			}
			if code := e.do("POST", fmt.Sprintf("/api/systems/%d/test", sb), "", &res); code != 200 || !res.OK {
				t.Fatalf("test after repair: %d %+v", code, res)
			}
			if code := e.do("POST", "/api/systems/99/test", "", nil); code != 404 {
				t.Fatalf("test of a missing system: %d", code)
			}
		})
	}
}

// The app's assets come through the router (its fallback route) with 200,
// plain and gzipped.
func TestAppAssets(t *testing.T) {
	if !frontend.Built() {
		t.Skip("app not built (make build runs npm); the placeholder is embedded")
	}
	e := newEnv(t, testdb.SQLite(t))
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	refs := regexp.MustCompile(`src="(/assets/[^"]+\.js)"`).FindStringSubmatch(rec.Body.String())
	if rec.Code != 200 || refs == nil {
		t.Fatalf("GET /: %d, no script in %.200s", rec.Code, rec.Body.String())
	}
	for _, enc := range []string{"", "gzip"} {
		req := httptest.NewRequest("GET", refs[1], nil)
		req.Header.Set("Accept-Encoding", enc)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Header().Get("Content-Encoding") != enc || rec.Body.Len() == 0 {
			t.Errorf("GET %s (Accept-Encoding %q): %d, Content-Encoding %q, %d bytes", refs[1], enc, rec.Code, rec.Header().Get("Content-Encoding"), rec.Body.Len())
		}
	}
	rec = httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest("GET", "/assets/nope.js", nil))
	if rec.Code != 404 {
		t.Errorf("missing asset: %d", rec.Code)
	}
}
