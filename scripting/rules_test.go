package scripting

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func f(v float64) *float64 { return &v }

func TestRulesReadyMade(t *testing.T) {
	rs, err := CompileRules([]Rule{
		{Field: "title", Kind: "required"},
		{Field: "email", Kind: "email"},
		{Field: "phone", Kind: "e164"},
		{Field: "link", Kind: "url"},
		{Field: "due", Kind: "date"},
		{Field: "priority", Kind: "oneOf", Values: []any{"low", "high", 3.0}},
		{Field: "amount", Kind: "range", Min: f(0), Max: f(100)},
		{Field: "title", Kind: "maxLength", Max: f(5)},
		{Kind: "expr", Field: "amount", Expr: `amount == nil || priority == "high" || amount < 50`, Message: "big amounts need high priority"},
	})
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]any{"title": "hello", "email": "a@b.example", "phone": "+4930123456", "link": "https://x.example/a",
		"due": "2024-02-29", "priority": "high", "amount": 99.0}
	for _, r := range rs.Check(good) {
		if !r.Passed {
			t.Errorf("good replica: %s", r)
		}
	}
	// Absent values pass every format rule; only required fails.
	res := rs.Check(map[string]any{})
	if fails := Failed(res); len(fails) != 1 || fails[0].Rule != "required" {
		t.Errorf("empty replica: %v", fails)
	}
	bad := map[string]any{"title": "too long title", "email": "not-an-email", "phone": "030 123", "link": "ftp:/x",
		"due": "31.12.2024", "priority": "urgent", "amount": 500.0}
	fails := Failed(rs.Check(bad))
	var kinds []string
	for _, r := range fails {
		kinds = append(kinds, r.Rule)
	}
	if got := strings.Join(kinds, ","); got != "email,e164,url,date,oneOf,range,maxLength,expr" {
		t.Errorf("failed rules %s", got)
	}
	if s := fails[0].String(); !strings.Contains(s, `field "email"`) || !strings.Contains(s, `"not-an-email"`) || !strings.Contains(s, "(email)") {
		t.Errorf("description %q", s)
	}
	if fails[len(fails)-1].Message != "big amounts need high priority" {
		t.Errorf("message %q", fails[len(fails)-1].Message)
	}
	// Numbers given as text, and numeric oneOf.
	if r := rs.Check(map[string]any{"title": "x", "amount": "42", "priority": "high"}); len(Failed(r)) != 0 {
		t.Errorf("numeric text: %v", Failed(r))
	}
}

func TestRulesCompileError(t *testing.T) {
	before := Compilations()
	_, err := CompileRules([]Rule{{Field: "email", Kind: "email"}, {Kind: "expr", Expr: "title ==  "}})
	var se *Error
	if !errors.As(err, &se) || se.Kind != ErrorCompile || se.Rule != 2 || se.Line != 1 || se.Column == 0 {
		t.Fatalf("got %#v", err)
	}
	if Compilations() == before {
		t.Error("compilations not counted")
	}
	for _, bad := range []Rule{{Kind: "email"}, {Field: "x", Kind: "nope"}, {Field: "x", Kind: "oneOf"}, {Field: "x", Kind: "range"}, {Kind: "expr", Expr: `"a"`}} {
		if _, err := CompileRules([]Rule{bad}); !errors.As(err, &se) || se.Rule != 1 {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	// A runtime error fails the rule instead of passing it.
	rs, err := CompileRules([]Rule{{Expr: `len(title) < 3`}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rs.Check(map[string]any{}); r[0].Passed || r[0].Error == "" {
		t.Errorf("runtime error: %+v", r[0])
	}
	if _, err := CompileRulesDoc(`[{"field":"x","kind":"required"}`); !errors.As(err, &se) {
		t.Errorf("bad JSON: %v", err)
	}
}

func TestRulesNumericOneOf(t *testing.T) {
	rs, err := CompileRules([]Rule{{Field: "p", Kind: "oneOf", Values: []any{1.0, 2.0}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rs.Check(map[string]any{"p": 2.0}); !r[0].Passed {
		t.Error("2 in [1,2]")
	}
	if r := rs.Check(map[string]any{"p": 3.0}); r[0].Passed {
		t.Error("3 in [1,2]")
	}
}

func TestRulesUnique(t *testing.T) {
	before := Compilations()
	rs, err := CompileRules([]Rule{
		{Field: "title", Kind: "required"},
		{Field: "ref", Kind: "unique", Where: `status != "closed"`, Message: "one open issue per ref"},
		{Field: "num", Kind: "unique", TargetField: "number"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := Compilations() - before; n != 2 {
		t.Fatalf("compilations = %d, want 2 (the required rule and the where)", n)
	}
	if !rs.HasUnique() {
		t.Fatal("HasUnique false")
	}
	if got := rs.Check(map[string]any{"title": "x"}); len(got) != 1 || got[0].Index != 0 {
		t.Fatalf("Check evaluates the unique rules: %+v", got)
	}
	db := map[string][]Found{
		"ref=R1":    {{ID: "1", Key: "T-1", Fields: map[string]any{"status": "closed"}}, {ID: "2", Key: "T-2", Fields: map[string]any{"status": "open"}}},
		"ref=R2":    {{ID: "3", Fields: map[string]any{"status": "closed"}}},
		"number=42": {{ID: "9", Fields: map[string]any{}}},
	}
	var asked []string
	find := func(field, value string) ([]Found, error) {
		asked = append(asked, field+"="+value)
		return db[field+"="+value], nil
	}
	res, err := rs.CheckUnique(map[string]any{"ref": "R1", "num": 42.0}, find)
	if err != nil || len(res) != 2 {
		t.Fatalf("CheckUnique: %+v %v", res, err)
	}
	if res[0].Passed || res[0].Existing != "T-2" || res[0].ExistingID != "2" {
		t.Errorf("open duplicate not found: %+v", res[0])
	}
	if s := res[0].String(); !strings.Contains(s, `field "ref" value "R1" existing T-2 (id 2): one open issue per ref`) {
		t.Errorf("String: %s", s)
	}
	if res[1].Passed || res[1].Existing != "9" || asked[1] != "number=42" {
		t.Errorf("target_field / number: %+v %v", res[1], asked)
	}
	res, _ = rs.CheckUnique(map[string]any{"ref": "R2", "num": 7.0}, find)
	if !res[0].Passed || !res[1].Passed {
		t.Errorf("closed only / no match should pass: %+v", res)
	}
	asked = nil
	res, _ = rs.CheckUnique(map[string]any{"ref": "  "}, find)
	if !res[0].Passed || !res[1].Passed || len(asked) != 0 {
		t.Errorf("absent values: %+v asked %v", res, asked)
	}
	res, _ = rs.CheckUnique(map[string]any{"ref": []any{"a"}}, find)
	if res[0].Passed || res[0].Error == "" {
		t.Errorf("a list value: %+v", res[0])
	}
	if _, err := rs.CheckUnique(map[string]any{"ref": "R9"}, func(string, string) ([]Found, error) { return nil, errors.New("down") }); err == nil {
		t.Error("a failed lookup is not an error")
	}
	if _, err := CompileRules([]Rule{{Kind: "unique"}}); err == nil {
		t.Error("unique without field compiled")
	}
	_, err = CompileRules([]Rule{{Kind: "required", Field: "a"}, {Kind: "unique", Field: "r", Where: `status ==`}})
	var se *Error
	if !errors.As(err, &se) || se.Rule != 2 || se.Line == 0 {
		t.Errorf("bad where: %#v", err)
	}
}

// A rule list is bounded before anything compiles: its number of rules and
// its expressions' bytes together (it compiles in the server).
func TestRuleListLimits(t *testing.T) {
	rules := make([]Rule, MaxRules)
	for i := range rules {
		rules[i] = Rule{Field: fmt.Sprint("f", i), Kind: "required"}
	}
	if _, err := CompileRules(rules); err != nil {
		t.Fatalf("%d rules: %v", MaxRules, err)
	}
	_, err := CompileRules(append(rules, Rule{Field: "x", Kind: "required"}))
	var se *Error
	if !errors.As(err, &se) || se.Kind != ErrorCompile || !strings.Contains(se.Message, "at most 1000") {
		t.Fatalf("%d rules: %v; want a compile error naming the limit", MaxRules+1, err)
	}
	long := "title != " + strconv.Quote(strings.Repeat("x", 15<<10))
	var exprs []Rule
	for range 4 {
		exprs = append(exprs, Rule{Kind: "expr", Expr: long})
	}
	if _, err := CompileRules(exprs); err != nil {
		t.Fatalf("4 expressions of 15 KiB: %v", err)
	}
	_, err = CompileRules(append(exprs, Rule{Field: "f", Kind: "unique", Where: long}))
	if !errors.As(err, &se) || se.Rule != 5 || !errors.Is(err, ErrExprTooLarge) || !strings.Contains(se.Message, "64 KiB") {
		t.Fatalf("a fifth expression of 15 KiB: %v; want a compile error on rule 5 naming 64 KiB", err)
	}
}
