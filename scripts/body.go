package scripts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Body is one published version of a team template: what the store keeps as
// a version's JSON body, and what an archive holds as files.
type Body struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	SideA       string `json:"side_a"`
	SideB       string `json:"side_b"`
	SideKinds
	Tags    []string        `json:"tags,omitempty"`
	Params  []Param         `json:"params"`
	Sources Sources         `json:"sources"`
	Options json.RawMessage `json:"options,omitempty"`
	// Fixtures are the testdata/*.json files, by file name ("a-open.json").
	Fixtures map[string]json.RawMessage `json:"fixtures,omitempty"`
}

// Template gives the body a name, so it renders like a built-in.
func (b Body) Template(name string) Template {
	return Template{Name: name, Title: b.Title, Description: b.Description, Params: b.Params,
		SideA: b.SideA, SideB: b.SideB, SideKinds: b.SideKinds, Sources: b.Sources, Tags: b.Tags, Options: b.Options}
}

// BodyOf turns a built-in template (and its fixtures) into a body.
func BodyOf(t Template, fixtures map[string][]byte) Body {
	b := Body{Title: t.Title, Description: t.Description, SideA: t.SideA, SideB: t.SideB, SideKinds: t.SideKinds, Tags: t.Tags,
		Params: t.Params, Sources: t.Sources, Options: t.Options}
	if len(fixtures) > 0 {
		b.Fixtures = make(map[string]json.RawMessage, len(fixtures))
		for name, raw := range fixtures {
			b.Fixtures[name] = compactFixture(raw)
		}
	}
	return b
}

// compactFixture is how a body holds a fixture: compact, as encoding/json
// would store it anyway, so a body read from files equals the body the
// files were written from. Invalid JSON is kept as is for Validate to name.
func compactFixture(raw []byte) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return json.RawMessage(raw)
	}
	return buf.Bytes()
}

// Parameter types, as JSON names them.
const (
	TypeString  = "string"
	TypeNumber  = "number"
	TypeBoolean = "boolean"
	TypeObject  = "object"
	TypeArray   = "array"
)

// TypeOf names the JSON type of a decoded value ("" for null or a Go value
// JSON does not produce).
func TypeOf(v any) string {
	switch v.(type) {
	case string:
		return TypeString
	case float64, float32, int, int64, int32, json.Number:
		return TypeNumber
	case bool:
		return TypeBoolean
	case map[string]any:
		return TypeObject
	case []any:
		return TypeArray
	}
	return ""
}

func validType(t string) bool {
	switch t {
	case TypeString, TypeNumber, TypeBoolean, TypeObject, TypeArray:
		return true
	}
	return false
}

func article(t string) string {
	if t == TypeObject || t == TypeArray {
		return "an"
	}
	return "a"
}

// ParamSpec asks Extract to turn a literal found in the scripts into a
// parameter: Literal is the exact JSON text as the scripts spell it, for
// example `"ENG"` or `{"new": "open"}`; it becomes the parameter's default.
type ParamSpec struct {
	Name        string `json:"name"`
	Type        string `json:"type"` // optional; must match the literal's type
	Description string `json:"description"`
	Literal     string `json:"literal"`
}

var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Extract replaces each spec's literal by {{name}} in every source and
// returns the new sources and parameters. A literal that is not JSON, that no
// source contains, or whose type differs from the one declared is refused
// (ErrInvalid): a parameter that changes nothing would only mislead.
func Extract(src Sources, specs []ParamSpec) (Sources, []Param, error) {
	out := Sources{}
	for side, kinds := range src {
		out[side] = map[string]string{}
		for kind, s := range kinds {
			out[side][kind] = s
		}
	}
	seen := map[string]bool{}
	params := make([]Param, 0, len(specs))
	clean := make([]ParamSpec, 0, len(specs))
	for _, sp := range specs {
		if !paramName.MatchString(sp.Name) {
			return nil, nil, fmt.Errorf("parameter name %q: letters, digits and _ only, not starting with a digit: %w", sp.Name, ErrInvalid)
		}
		if seen[sp.Name] {
			return nil, nil, fmt.Errorf("parameter %q named twice: %w", sp.Name, ErrInvalid)
		}
		seen[sp.Name] = true
		lit := strings.TrimSpace(sp.Literal)
		if lit == "" {
			return nil, nil, fmt.Errorf("parameter %q: literal is required: %w", sp.Name, ErrInvalid)
		}
		dec := json.NewDecoder(strings.NewReader(lit))
		dec.UseNumber() // keeps 12345678901234567890 as written
		var def any
		if err := dec.Decode(&def); err != nil || dec.More() {
			return nil, nil, fmt.Errorf("parameter %q: literal %s is not one JSON value: %w", sp.Name, lit, ErrInvalid)
		}
		typ := TypeOf(def)
		if typ == "" {
			return nil, nil, fmt.Errorf("parameter %q: literal null has no type: %w", sp.Name, ErrInvalid)
		}
		if sp.Type != "" && sp.Type != typ {
			if !validType(sp.Type) {
				return nil, nil, fmt.Errorf("parameter %q: type %q is not string, number, boolean, object or array: %w", sp.Name, sp.Type, ErrInvalid)
			}
			return nil, nil, fmt.Errorf("parameter %q: type %s, but literal %s is %s %s: %w", sp.Name, sp.Type, lit, article(typ), typ, ErrInvalid)
		}
		params = append(params, Param{Name: sp.Name, Type: typ, Description: sp.Description, Default: def})
		sp.Literal = lit
		clean = append(clean, sp)
	}
	for _, kinds := range out {
		for _, s := range kinds {
			for name := range seen {
				if strings.Contains(s, "{{"+name+"}}") {
					return nil, nil, fmt.Errorf("parameter %q: the scripts already contain {{%s}}: %w", name, name, ErrInvalid)
				}
			}
		}
	}
	// Longest literal first, so `"ENG"` inside {"x": "ENG"} does not break
	// the longer literal before it is replaced.
	order := clean
	sort.SliceStable(order, func(i, j int) bool { return len(order[i].Literal) > len(order[j].Literal) })
	for _, sp := range order {
		found := false
		for _, kinds := range out {
			for kind, s := range kinds {
				if strings.Contains(s, sp.Literal) {
					found = true
					kinds[kind] = strings.ReplaceAll(s, sp.Literal, "{{"+sp.Name+"}}")
				}
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("parameter %q: literal %s is in none of the scripts: %w", sp.Name, sp.Literal, ErrInvalid)
		}
	}
	return out, params, nil
}

// Validate checks what a body must hold to be published: sides and kinds
// known, parameters named, typed and used, fixtures JSON objects.
func (b Body) Validate() error {
	for side, kinds := range b.Sources {
		if side != "a" && side != "b" {
			return fmt.Errorf("sources: side %q is not a or b: %w", side, ErrInvalid)
		}
		for kind := range kinds {
			if _, ok := kindExt[kind]; !ok {
				return fmt.Errorf("sources: kind %q is not trigger, outgoing or incoming: %w", kind, ErrInvalid)
			}
		}
	}
	if err := b.SideKinds.validate(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, p := range b.Params {
		if !paramName.MatchString(p.Name) {
			return fmt.Errorf("parameter name %q: letters, digits and _ only: %w", p.Name, ErrInvalid)
		}
		if seen[p.Name] {
			return fmt.Errorf("parameter %q named twice: %w", p.Name, ErrInvalid)
		}
		seen[p.Name] = true
		if p.Type != "" && !validType(p.Type) {
			return fmt.Errorf("parameter %q: type %q is not string, number, boolean, object or array: %w", p.Name, p.Type, ErrInvalid)
		}
		if p.Default != nil && p.Type != "" && TypeOf(p.Default) != p.Type {
			return fmt.Errorf("parameter %q: default is %s, declared %s: %w", p.Name, TypeOf(p.Default), p.Type, ErrInvalid)
		}
	}
	for name, raw := range b.Fixtures {
		if !fixtureName.MatchString(name) {
			return fmt.Errorf("fixture %q: a name like a-open.json (letters, digits, . _ -): %w", name, ErrInvalid)
		}
		if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' || !json.Valid(t) {
			return fmt.Errorf("fixture %s: not a JSON object: %w", name, ErrInvalid)
		}
	}
	if len(b.Options) > 0 && !json.Valid(b.Options) {
		return fmt.Errorf("options: not JSON: %w", ErrInvalid)
	}
	return nil
}

var fixtureName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.json$`)

// seedName is a testdata/*.sql file: read by FromFiles and dropped.
var seedName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.sql$`)

// kindExt is each script kind's file extension in a template folder.
var kindExt = map[string]string{"trigger": "expr", "outgoing": "js", "incoming": "js"}
