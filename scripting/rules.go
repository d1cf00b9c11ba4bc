package scripting

import (
	"encoding/json"
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// Rule is one validation rule of a connection side, checked on the replica
// before anything is applied to that side. Kind is "expr" (Expr is a boolean
// expr expression over the replica, true = valid) or one of the ready-made
// kinds, which compile to an expr expression too:
//
//	required   the field is present and not empty
//	email      an e-mail address          (when present)
//	e164       a phone number in E.164    (when present)
//	url        an absolute http(s) URL    (when present)
//	date       YYYY-MM-DD or RFC 3339     (when present)
//	oneOf      one of Values              (when present)
//	range      a number within Min..Max   (when present; either bound may be left out)
//	maxLength  at most Max characters (or list items)
//	unique     no other entity of the target has the same value in the field
//	           (TargetField, default Field) among those Where (an expression
//	           over the found entity) holds for; checked with a lookup in the
//	           target (CheckUnique), not by Check
type Rule struct {
	Field   string   `json:"field,omitempty"`
	Kind    string   `json:"kind"`
	Expr    string   `json:"expr,omitempty"`
	Values  []any    `json:"values,omitempty"`
	Min     *float64 `json:"min,omitempty"`
	Max     *float64 `json:"max,omitempty"`
	Message string   `json:"message,omitempty"`
	// Where (unique only) is a boolean expression over an entity found in
	// the target with the same value: only those it holds for count as
	// duplicates, e.g. `status != "closed"`. Empty: every one counts.
	Where string `json:"where,omitempty"`
	// TargetField (unique only) is the target's field to search when it is
	// named differently from the replica's Field.
	TargetField string `json:"target_field,omitempty"`
}

// RuleKinds lists the kinds a rule may have, the expression kind first.
var RuleKinds = []string{"expr", "required", "email", "e164", "url", "date", "oneOf", "range", "maxLength", "unique"}

// RuleResult is the outcome of one rule on one replica.
type RuleResult struct {
	Index   int    `json:"index"` // 0-based position in the rule list
	Field   string `json:"field,omitempty"`
	Rule    string `json:"rule"` // the kind
	Message string `json:"message"`
	Value   any    `json:"value,omitempty"` // the replica's value of Field
	Passed  bool   `json:"passed"`
	Error   string `json:"error,omitempty"` // a runtime error of the expression (counts as failed)
	// Existing (unique only) names the entity of the target that already
	// has the value: its key, or its id.
	Existing string `json:"existing,omitempty"`
	// ExistingID is that entity's id.
	ExistingID string `json:"existing_id,omitempty"`
}

// Rules is a compiled rule list. It is immutable and safe for concurrent use.
type Rules struct {
	rules  []compiledRule
	unique int // how many are unique rules
}

type compiledRule struct {
	Rule
	src     string
	prog    *vm.Program
	guarded bool // see exprguard.go
}

// ParseRules reads a stored rule list (a JSON array; "" is no rules).
func ParseRules(doc string) ([]Rule, error) {
	if strings.TrimSpace(doc) == "" {
		return nil, nil
	}
	var rules []Rule
	if err := json.Unmarshal([]byte(doc), &rules); err != nil {
		return nil, &Error{Script: "rules", Kind: ErrorCompile, Message: "rules are not a JSON list of rules: " + err.Error(), err: err}
	}
	return rules, nil
}

// CompileRulesDoc parses and compiles a stored rule list.
func CompileRulesDoc(doc string) (*Rules, error) {
	rules, err := ParseRules(doc)
	if err != nil {
		return nil, err
	}
	return CompileRules(rules)
}

// A rule list is compiled in the server (on save and at each plan load),
// so its size is bounded before anything compiles: 30,000 ready-made rules
// (1 MiB, the API's body limit) took 1.2 s, and 64 expressions of 16 KiB
// each (nested brackets) 2.4 s. At the limits, 1,000 rules compile in about
// 55 ms and the slowest 64 KiB of expressions found in 0.1-0.26 s.
const (
	MaxRules         = 1000
	MaxRuleExprBytes = 64 << 10 // the expr and where texts of a list together
)

// CompileRules compiles every rule once. An error is an *Error of kind
// "compile" whose Rule is the rule's 1-based position; for an expression
// rule Line and Column point into its Expr.
func CompileRules(rules []Rule) (*Rules, error) {
	if len(rules) > MaxRules {
		return nil, &Error{Script: "rules", Kind: ErrorCompile, Rule: MaxRules + 1,
			Message: fmt.Sprintf("%d rules; a rule list may hold at most %d", len(rules), MaxRules)}
	}
	out := &Rules{rules: make([]compiledRule, 0, len(rules))}
	exprBytes := 0
	for i, r := range rules {
		if r.Kind == "" && r.Expr != "" {
			r.Kind = "expr"
		}
		if exprBytes += len(r.Expr) + len(r.Where); exprBytes > MaxRuleExprBytes {
			return nil, &Error{Script: ruleName(i), Kind: ErrorCompile, Rule: i + 1, err: ErrExprTooLarge,
				Message: fmt.Sprintf("the rules' expressions are over %d bytes (64 KiB) together by this rule", MaxRuleExprBytes)}
		}
		src, err := RuleSource(r)
		if err != nil {
			return nil, &Error{Script: ruleName(i), Kind: ErrorCompile, Rule: i + 1, Message: err.Error()}
		}
		if r.Kind == "unique" {
			cr := compiledRule{Rule: r, src: src}
			if strings.TrimSpace(r.Where) != "" {
				compilations.Add(1)
				if cr.prog, cr.guarded, err = compileGuarded(r.Where, map[string]any{"entity": map[string]any{}}, ruleOptions()...); err != nil {
					e := exprError(ErrorCompile, err)
					e.Script, e.Rule = ruleName(i), i+1
					return nil, e
				}
			}
			out.rules = append(out.rules, cr)
			out.unique++
			continue
		}
		compilations.Add(1)
		compile := compileGuarded // a person's expression
		if r.Kind != "expr" {
			compile = compileExpr // generated (RuleSource)
		}
		prog, guarded, err := compile(src, map[string]any{"replica": map[string]any{}}, ruleOptions()...)
		if err != nil {
			e := exprError(ErrorCompile, err)
			e.Script, e.Rule = ruleName(i), i+1
			if r.Kind != "expr" { // a generated expression: its positions mean nothing to the user
				e.Line, e.Column = 0, 0
			}
			return nil, e
		}
		out.rules = append(out.rules, compiledRule{Rule: r, src: src, prog: prog, guarded: guarded})
	}
	return out, nil
}

func ruleName(i int) string { return fmt.Sprintf("rule %d", i+1) }

// Len is the number of rules.
func (rs *Rules) Len() int {
	if rs == nil {
		return 0
	}
	return len(rs.rules)
}

// HasUnique reports whether the list has a unique rule, which needs a
// lookup in the target (connectors.Finder).
func (rs *Rules) HasUnique() bool { return rs != nil && rs.unique > 0 }

// Check evaluates every rule but the unique ones on a replica and returns one
// result per rule evaluated (CheckUnique does the unique ones). The
// expressions see the replica's fields as variables (a missing one is nil)
// and the whole replica as `replica`.
func (rs *Rules) Check(replica map[string]any) []RuleResult {
	if rs.Len() == 0 {
		return nil
	}
	env := make(map[string]any, len(replica)+1)
	for k, v := range replica {
		env[k] = v
	}
	if replica == nil {
		replica = map[string]any{}
	}
	env["replica"] = replica
	out := make([]RuleResult, len(rs.rules))
	m := exprVMs.Get().(*vm.VM)
	defer exprVMs.Put(m)
	out = out[:0]
	for i, r := range rs.rules {
		if r.Kind == "unique" {
			continue
		}
		res := RuleResult{Index: i, Field: r.Field, Rule: r.Kind, Message: r.message()}
		if r.Field != "" {
			res.Value = replica[r.Field]
		}
		v, err := runExpr(m, r.prog, r.guarded, env, true)
		switch {
		case err != nil:
			res.Error = exprError(ErrorRuntime, err).Message
		default:
			res.Passed, _ = v.(bool)
		}
		out = append(out, res)
	}
	return out
}

// Found is an entity of the target a unique rule's lookup returned.
type Found struct {
	ID     string
	Key    string
	Fields map[string]any
}

// FindFunc looks up the target's entities whose field equals value (in its
// text form), leaving out the entity the replica is for (its own
// counterpart). An error is a failed lookup (the caller retries the event),
// not a failed rule.
type FindFunc func(field, value string) ([]Found, error)

// CheckUnique evaluates the unique rules on a replica: for each one whose
// field has a value, find returns the target's entities with that value and
// the first one the rule's Where holds for fails it. An absent or blank value
// passes (combine with required). The results are in rule order.
func (rs *Rules) CheckUnique(replica map[string]any, find FindFunc) ([]RuleResult, error) {
	if !rs.HasUnique() {
		return nil, nil
	}
	var out []RuleResult
	var m *vm.VM
	for i, r := range rs.rules {
		if r.Kind != "unique" {
			continue
		}
		res := RuleResult{Index: i, Field: r.Field, Rule: r.Kind, Message: r.message(), Value: replica[r.Field], Passed: true}
		value, ok, err := uniqueText(replica[r.Field])
		if err != nil {
			res.Passed, res.Error = false, err.Error()
		}
		if !ok {
			out = append(out, res)
			continue
		}
		field := r.TargetField
		if field == "" {
			field = r.Field
		}
		found, err := find(field, value)
		if err != nil {
			return nil, fmt.Errorf("rule %d (unique) lookup of %s %q: %w", i+1, field, value, err)
		}
		for _, f := range found {
			match := true
			if r.prog != nil {
				if m == nil {
					m = exprVMs.Get().(*vm.VM)
					defer exprVMs.Put(m)
				}
				env := make(map[string]any, len(f.Fields)+1)
				for k, v := range f.Fields {
					env[k] = v
				}
				fields := f.Fields
				if fields == nil {
					fields = map[string]any{}
				}
				env["entity"] = fields
				v, err := runExpr(m, r.prog, r.guarded, env, true)
				if err != nil {
					res.Passed, res.Error = false, "where: "+exprError(ErrorRuntime, err).Message
					res.Existing, res.ExistingID = f.label(), f.ID
					break
				}
				match, _ = v.(bool)
			}
			if match {
				res.Passed = false
				res.Existing, res.ExistingID = f.label(), f.ID
				break
			}
		}
		out = append(out, res)
	}
	return out, nil
}

func (f Found) label() string {
	if f.Key != "" {
		return f.Key
	}
	return f.ID
}

// uniqueText is the text a unique rule searches for: ok is false for an
// absent or blank value (nothing to compare) and for a value that has no text
// form (err says so).
func uniqueText(v any) (string, bool, error) {
	switch x := v.(type) {
	case nil:
		return "", false, nil
	case string:
		return x, strings.TrimSpace(x) != "", nil
	case bool:
		return strconv.FormatBool(x), true, nil
	case json.Number:
		return x.String(), true, nil
	}
	if n, ok := number(v); ok {
		return strconv.FormatFloat(n, 'f', -1, 64), true, nil
	}
	return "", false, fmt.Errorf("a unique rule compares text, numbers or booleans, not %T", v)
}

// SortResults orders results by rule position (Check's and CheckUnique's
// together).
func SortResults(rs []RuleResult) {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Index < rs[j].Index })
}

// Failed returns the results that did not pass.
func Failed(results []RuleResult) []RuleResult {
	var out []RuleResult
	for _, r := range results {
		if !r.Passed {
			out = append(out, r)
		}
	}
	return out
}

// String describes a failed result for an event's error: field, rule, value
// and message.
func (r RuleResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rule %d (%s)", r.Index+1, r.Rule)
	if r.Field != "" {
		v, _ := json.Marshal(r.Value)
		fmt.Fprintf(&b, " field %q value %s", r.Field, v)
	}
	if r.Existing != "" {
		fmt.Fprintf(&b, " existing %s", r.Existing)
		if r.ExistingID != "" && r.ExistingID != r.Existing {
			fmt.Fprintf(&b, " (id %s)", r.ExistingID)
		}
	}
	b.WriteString(": " + r.Message)
	if r.Error != "" {
		b.WriteString(" (" + r.Error + ")")
	}
	return b.String()
}

func (r Rule) message() string {
	if r.Message != "" {
		return r.Message
	}
	f := r.Field
	switch r.Kind {
	case "required":
		return f + " is required"
	case "email":
		return f + " must be an e-mail address"
	case "e164":
		return f + " must be a phone number in E.164 (+4930123456)"
	case "url":
		return f + " must be an http(s) URL"
	case "date":
		return f + " must be a date (YYYY-MM-DD or RFC 3339)"
	case "oneOf":
		v, _ := json.Marshal(r.Values)
		return fmt.Sprintf("%s must be one of %s", f, v)
	case "range":
		return fmt.Sprintf("%s must be a number in %s..%s", f, bound(r.Min), bound(r.Max))
	case "maxLength":
		return fmt.Sprintf("%s must be at most %s characters", f, bound(r.Max))
	case "unique":
		if r.Where != "" {
			return fmt.Sprintf("%s must be unique in the target among entities where %s", f, r.Where)
		}
		return f + " must be unique in the target"
	}
	return "rule failed: " + r.Expr
}

func bound(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

// RuleSource is the expr expression a rule compiles to: its Expr, or the
// expression a ready-made kind stands for, e.g.
// `isEmail(replica["email"])`.
func RuleSource(r Rule) (string, error) {
	if r.Kind == "expr" {
		if strings.TrimSpace(r.Expr) == "" {
			return "", fmt.Errorf("an expression rule needs expr")
		}
		return r.Expr, nil
	}
	if r.Kind == "" {
		return "", fmt.Errorf("kind is required (one of %s)", strings.Join(RuleKinds, ", "))
	}
	if r.Field == "" {
		return "", fmt.Errorf("a %s rule needs a field", r.Kind)
	}
	ref := "replica[" + strconv.Quote(r.Field) + "]"
	switch r.Kind {
	case "required":
		return "required(" + ref + ")", nil
	case "email":
		return "isEmail(" + ref + ")", nil
	case "e164":
		return "isE164(" + ref + ")", nil
	case "url":
		return "isURL(" + ref + ")", nil
	case "date":
		return "isDate(" + ref + ")", nil
	case "oneOf":
		if len(r.Values) == 0 {
			return "", fmt.Errorf("a oneOf rule needs values")
		}
		lits := make([]string, len(r.Values))
		for i, v := range r.Values {
			switch v := v.(type) {
			case string:
				lits[i] = strconv.Quote(v)
			case float64:
				lits[i] = strconv.FormatFloat(v, 'g', -1, 64)
			case bool:
				lits[i] = strconv.FormatBool(v)
			default:
				return "", fmt.Errorf("oneOf values must be strings, numbers or booleans, got %T", v)
			}
		}
		return "oneOf(" + ref + ", [" + strings.Join(lits, ", ") + "])", nil
	case "range":
		if r.Min == nil && r.Max == nil {
			return "", fmt.Errorf("a range rule needs min, max or both")
		}
		return "inRange(" + ref + ", " + lit(r.Min) + ", " + lit(r.Max) + ")", nil
	case "unique":
		// Not an expression over the replica: a lookup in the target, then
		// Where over each entity found ("true": every one counts).
		if strings.TrimSpace(r.Where) == "" {
			return "true", nil
		}
		return r.Where, nil
	case "maxLength":
		if r.Max == nil || *r.Max < 0 || *r.Max != math.Trunc(*r.Max) {
			return "", fmt.Errorf("a maxLength rule needs max (a whole number)")
		}
		return "maxLength(" + ref + ", " + lit(r.Max) + ")", nil
	}
	return "", fmt.Errorf("unknown rule kind %q (one of %s)", r.Kind, strings.Join(RuleKinds, ", "))
}

func lit(p *float64) string {
	if p == nil {
		return "nil"
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

// ruleOptions: an untyped environment (a replica has no schema; the caller
// declares the whole replica as `replica`, or for a unique rule's Where the
// found entity as `entity`), and the helper functions. Built per
// compilation: the options hold per-compile state.
func ruleOptions() []expr.Option {
	return []expr.Option{
		expr.AllowUndefinedVariables(),
		expr.AsBool(),
		expr.Function("required", func(p ...any) (any, error) { return present(p[0]), nil }, new(func(any) bool)),
		expr.Function("isEmail", func(p ...any) (any, error) { return absentOr(p[0], isEmail), nil }, new(func(any) bool)),
		expr.Function("isE164", func(p ...any) (any, error) { return absentOr(p[0], e164.MatchString), nil }, new(func(any) bool)),
		expr.Function("isURL", func(p ...any) (any, error) { return absentOr(p[0], isURL), nil }, new(func(any) bool)),
		expr.Function("isDate", func(p ...any) (any, error) { return absentOr(p[0], isDate), nil }, new(func(any) bool)),
		expr.Function("oneOf", func(p ...any) (any, error) { l, _ := p[1].([]any); return oneOf(p[0], l), nil }, new(func(any, []any) bool)),
		expr.Function("inRange", func(p ...any) (any, error) { return inRange(p[0], p[1], p[2]), nil }, new(func(any, any, any) bool)),
		expr.Function("maxLength", func(p ...any) (any, error) { return maxLength(p[0], p[1]), nil }, new(func(any, any) bool)),
	}
}

// present: not nil, not a blank string, not an empty list or object.
func present(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return strings.TrimSpace(v) != ""
	case []any:
		return len(v) > 0
	case []string:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	}
	return true
}

// absentOr: formats apply to present values only (`required` is separate);
// a present value that is not a string fails.
func absentOr(v any, ok func(string) bool) bool {
	if !present(v) {
		return true
	}
	s, isStr := v.(string)
	return isStr && ok(strings.TrimSpace(s))
}

func isEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == "" && strings.Contains(s[strings.LastIndexByte(s, '@'):], ".")
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

func isURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func isDate(s string) bool {
	if _, err := time.Parse("2006-01-02", s); err == nil {
		return true
	}
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

func oneOf(v any, list []any) bool {
	if !present(v) {
		return true
	}
	for _, x := range list {
		if a, ok := number(v); ok {
			if b, ok := number(x); ok && a == b {
				return true
			}
			continue
		}
		if v == x {
			return true
		}
	}
	return false
}

func inRange(v, lo, hi any) bool {
	if !present(v) {
		return true
	}
	n, ok := number(v)
	if !ok {
		if s, isStr := v.(string); isStr {
			if n, ok = number(strings.TrimSpace(s)); !ok {
				return false
			}
		} else {
			return false
		}
	}
	if l, ok := number(lo); ok && n < l {
		return false
	}
	if h, ok := number(hi); ok && n > h {
		return false
	}
	return true
}

func maxLength(v, max any) bool {
	m, ok := number(max)
	if !ok {
		return false
	}
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return float64(utf8.RuneCountInString(v)) <= m
	case []any:
		return float64(len(v)) <= m
	case []string:
		return float64(len(v)) <= m
	}
	return float64(utf8.RuneCountInString(fmt.Sprint(v))) <= m
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil && v != ""
	}
	return 0, false
}
