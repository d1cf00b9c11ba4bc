package server

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// ruleRoutes declares a side's validation rules: viewers read them,
// editors save and compile them.
func (s *srv) ruleRoutes(api gin.IRoutes) {
	const viewer, editor = store.RoleViewer, store.RoleEditor
	s.handle(api, "GET", "/connections/:id/rules/:side", teamRole("connection", "id", viewer), s.getRules,
		op{summary: "A side's current validation rules", tag: "scripts", out: rulesOut{}})
	s.handle(api, "PUT", "/connections/:id/rules/:side", teamRole("connection", "id", editor), s.saveRules,
		op{summary: "Save a side's validation rules as their next version", tag: "scripts", in: rulesIn{}, out: rulesOut{}})
	s.handle(api, "GET", "/connections/:id/rules/:side/versions", teamRole("connection", "id", viewer), s.rulesVersions,
		op{summary: "Every version of a side's rules, newest first", tag: "scripts", out: []store.ScriptVersion{}})
	s.handle(api, "POST", "/connections/:id/rules/:side/validate", teamRole("connection", "id", editor), s.validateRules,
		op{summary: "Compile draft rules without saving them", tag: "scripts", in: rulesIn{}, out: okOut{}})
}

// rulesIn is the body of saveRules and validateRules.
type rulesIn struct {
	Rules *[]scripting.Rule `json:"rules"`
}

// rulesOut is one side's current validation rules.
type rulesOut struct {
	Side      store.Side       `json:"side"`
	Version   int              `json:"version"` // 0: never saved
	Author    string           `json:"author,omitempty"`
	CreatedAt *time.Time       `json:"created_at,omitempty"`
	Rules     []scripting.Rule `json:"rules"`
	// Expressions are what each rule compiles to (a ready-made kind's expr
	// expression), in the rules' order.
	Expressions []string `json:"expressions"`
}

func (s *srv) rulesTarget(c *gin.Context) (store.Connection, store.Side, error) {
	side, err := parseSide(c.Param("side"))
	if err != nil {
		return store.Connection{}, "", err
	}
	conn := rowOf[store.Connection](c) // loaded by the access rule
	return conn, side, nil
}

func rulesResponse(side store.Side, v store.ScriptVersion) (rulesOut, error) {
	out := rulesOut{Side: side, Version: v.Version, Author: v.Author, Rules: []scripting.Rule{}, Expressions: []string{}}
	if v.Version > 0 {
		at := v.CreatedAt
		out.CreatedAt = &at
	}
	rules, err := scripting.ParseRules(v.Source)
	if err != nil {
		return out, err
	}
	for _, r := range rules {
		if r.Kind == "" && r.Expr != "" {
			r.Kind = "expr"
		}
		src, _ := scripting.RuleSource(r)
		out.Rules = append(out.Rules, r)
		out.Expressions = append(out.Expressions, src)
	}
	return out, nil
}

func (s *srv) getRules(c *gin.Context) error {
	conn, side, err := s.rulesTarget(c)
	if err != nil {
		return err
	}
	cur, err := s.st.CurrentRules(c.Request.Context(), conn.ID)
	if err != nil {
		return err
	}
	out, err := rulesResponse(side, cur[side])
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// bindRules reads and compiles a rule list as the engine will: a compile
// error is a *scripting.Error with the rule's position (and line and column
// in an expression), mapped to 422 script_invalid.
//
// A unique rule needs a lookup in the side's system: a connector that cannot
// search (no connectors.Finder) refuses it here, with the rule's position.
func (s *srv) bindRules(c *gin.Context, conn store.Connection, side store.Side) ([]scripting.Rule, error) {
	var in rulesIn
	if err := s.bind(c, &in); err != nil {
		return nil, err
	}
	if in.Rules == nil {
		return nil, badRequest("rules is required (a list; [] for none)")
	}
	rules := *in.Rules
	for i := range rules {
		if rules[i].Kind == "" && rules[i].Expr != "" {
			rules[i].Kind = "expr"
		}
	}
	if err := s.svc.CheckRules(c.Request.Context(), conn, side, rules); err != nil {
		return nil, err
	}
	return rules, nil
}

// saveRules stores a side's rules as their next version (a version of the
// script kind "rules"), audited like a script save.
func (s *srv) saveRules(c *gin.Context) error {
	conn, side, err := s.rulesTarget(c)
	if err != nil {
		return err
	}
	rules, err := s.bindRules(c, conn, side)
	if err != nil {
		return err
	}
	v, err := s.svc.SaveRules(c.Request.Context(), principalOf(c).Actor(), conn, side, rules)
	if err != nil {
		return err
	}
	out, err := rulesResponse(side, v)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// validateRules compiles a draft rule list and saves nothing.
func (s *srv) validateRules(c *gin.Context) error {
	conn, side, err := s.rulesTarget(c)
	if err != nil {
		return err
	}
	if _, err := s.bindRules(c, conn, side); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"ok": true})
	return nil
}

func (s *srv) rulesVersions(c *gin.Context) error {
	conn, side, err := s.rulesTarget(c)
	if err != nil {
		return err
	}
	vs, err := s.st.ScriptHistory(c.Request.Context(), conn.ID, side, store.KindRules)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, vs)
	return nil
}
