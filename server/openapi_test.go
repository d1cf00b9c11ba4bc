package server_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/internal/testdb"
)

// /api/openapi.json is a valid OpenAPI 3 document that describes exactly the
// routes Gin registers: none missing, none extra.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newFakeEnv(t, testdb.SQLite(t))
	req := httptest.NewRequest("GET", "/api/openapi.json", nil) // public: no token
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	doc, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("not OpenAPI: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("invalid OpenAPI: %v", err)
	}
	described := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			described[method+" "+regexp.MustCompile(`\{(\w+)\}`).ReplaceAllString(path, ":$1")] = true
			if op.Summary == "" || op.Responses == nil || op.Responses.Len() == 0 {
				t.Errorf("%s %s has no summary or responses", method, path)
			}
		}
	}
	registered := map[string]bool{}
	for _, r := range e.h.(*gin.Engine).Routes() {
		registered[r.Method+" "+r.Path] = true
		if !described[r.Method+" "+r.Path] {
			t.Errorf("route %s %s is not in /api/openapi.json", r.Method, r.Path)
		}
	}
	for k := range described {
		if !registered[k] {
			t.Errorf("/api/openapi.json describes %s, which is not a route", k)
		}
	}
	// Public routes say so; the rest need a token or the session.
	var raw map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &raw)
	login := raw["paths"].(map[string]any)["/api/auth/login"].(map[string]any)["post"].(map[string]any)
	if sec, ok := login["security"].([]any); !ok || len(sec) != 0 {
		t.Errorf("sign-in is described as needing a sign-in: %v", login["security"])
	}
	if s := doc.Components.Schemas["ServerSystemIn"]; s == nil || s.Value.Properties["secrets"] == nil ||
		!strings.Contains(rec.Body.String(), `"csrf_token"`) {
		t.Errorf("schemas are not derived from the handlers' types")
	}
}
