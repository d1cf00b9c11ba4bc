package server

import (
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// handle is the only way a route is registered: one without an access
// rule, without an OpenAPI summary or tag, or declared twice stops the
// server at start instead of serving an undescribed or unguarded route.
func TestHandleRefusesIncompleteDeclarations(t *testing.T) {
	noop := func(*gin.Context) error { return nil }
	cases := []struct {
		name string
		do   func(s *srv, g gin.IRoutes)
		want string
	}{
		{"no rule", func(s *srv, g gin.IRoutes) { s.handle(g, "GET", "/x", rule{}, noop, op{summary: "x", tag: "t"}) }, "no access rule"},
		{"no summary", func(s *srv, g gin.IRoutes) { s.handle(g, "GET", "/x", public(), noop, op{tag: "t"}) }, "no OpenAPI summary"},
		{"no tag", func(s *srv, g gin.IRoutes) { s.handle(g, "GET", "/x", public(), noop, op{summary: "x"}) }, "no OpenAPI summary"},
		{"twice", func(s *srv, g gin.IRoutes) {
			s.handle(g, "GET", "/x/:id", public(), noop, op{summary: "x", tag: "t"})
			s.handle(g, "GET", "/x/:id", signedIn(), noop, op{summary: "y", tag: "t"})
		}, "declared twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &srv{rules: map[string]rule{}, ops: map[string]op{}}
			g := gin.New().Group("/api")
			defer func() {
				p := recover()
				if msg, _ := p.(string); !strings.Contains(msg, tc.want) {
					t.Fatalf("panic %v, want one saying %q", p, tc.want)
				}
				if tc.name != "twice" && len(s.ops)+len(s.rules) != 0 {
					t.Fatalf("a refused route was recorded: %v %v", s.ops, s.rules)
				}
			}()
			tc.do(s, g)
		})
	}
	// A complete declaration records the rule under the Gin path and the
	// operation under the OpenAPI path.
	s := &srv{rules: map[string]rule{}, ops: map[string]op{}}
	s.handle(gin.New().Group("/api"), "GET", "/x/:id", signedIn(), noop, op{summary: "x", tag: "t"})
	if _, ok := s.rules["GET /api/x/:id"]; !ok {
		t.Errorf("rules: %v", s.rules)
	}
	if _, ok := s.ops["GET /api/x/{id}"]; !ok {
		t.Errorf("ops: %v", s.ops)
	}
}
