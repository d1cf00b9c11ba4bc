// Package tsgen writes TypeScript declarations for the API's JSON bodies from
// their Go types, following encoding/json's rules, and the API's error codes
// from the Go source that declares them. The server package feeds it the
// types of its routes' OpenAPI operations, so the app's types and the
// OpenAPI description come from the same declarations
// (frontend/app/src/api.gen.ts).
package tsgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Input is what one generated file declares.
type Input struct {
	// Roots are the request and response body types; every named struct
	// reachable from them gets an interface.
	Roots []reflect.Type
	// Name names a struct type's interface (the OpenAPI schema's name, so
	// the two descriptions agree).
	Name func(reflect.Type) string
	// ErrorCodes are the API's stable error codes, in declaration order.
	ErrorCodes []string
	// Header is the comment at the top of the file (how to regenerate).
	Header string
	// Enums are string types with a fixed set of values (Go cannot list a
	// type's constants by reflection): each becomes a union of its values,
	// and fields of the type refer to it by name.
	Enums map[reflect.Type][]string
}

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

// Generate renders the declarations: interfaces sorted by name, then the
// error codes as a const list and a string union.
func Generate(in Input) ([]byte, error) {
	g := &gen{name: in.Name, decls: map[string]string{}, types: map[string]reflect.Type{},
		enums: in.Enums, unions: map[string]string{}}
	for _, t := range in.Roots {
		if _, err := g.expr(t); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	for _, line := range strings.Split(strings.TrimSpace(in.Header), "\n") {
		b.WriteString(strings.TrimRight("// "+line, " ") + "\n")
	}
	b.WriteString("\n/** A JSON value the server passes through as it is (json.RawMessage, any). */\n")
	b.WriteString("export type JsonValue = string | number | boolean | null | unknown[] | { [k: string]: unknown };\n")
	unions := make([]string, 0, len(g.unions))
	for n := range g.unions {
		unions = append(unions, n)
	}
	sort.Strings(unions)
	for _, n := range unions {
		t := g.types[n]
		pkg := t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]
		fmt.Fprintf(&b, "\n/** Go: %s.%s */\nexport type %s = %s;\n", pkg, t.Name(), n, g.unions[n])
	}
	names := make([]string, 0, len(g.decls))
	for n := range g.decls {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := g.types[n]
		pkg := t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]
		fmt.Fprintf(&b, "\n/** Go: %s.%s */\nexport interface %s %s\n", pkg, t.Name(), n, g.decls[n])
	}
	b.WriteString("\n/** The API's stable error codes (server/errors.go); clients match on these, never on messages. */\n")
	b.WriteString("export const ERROR_CODES = [\n")
	for _, c := range in.ErrorCodes {
		fmt.Fprintf(&b, "  %s,\n", strconv.Quote(c))
	}
	b.WriteString("] as const;\n\nexport type ErrorCode = (typeof ERROR_CODES)[number];\n")
	return b.Bytes(), nil
}

type gen struct {
	name   func(reflect.Type) string
	decls  map[string]string       // interface name → body
	types  map[string]reflect.Type // interface or union name → its Go type
	enums  map[reflect.Type][]string
	unions map[string]string // union name → its values
}

// union declares an enum's values once and refers to it by name.
func (g *gen) union(t reflect.Type, values []string) (string, error) {
	n := g.name(t)
	if prev, ok := g.types[n]; ok && prev != t {
		return "", fmt.Errorf("tsgen: %s and %s both named %s", prev, t, n)
	}
	g.types[n] = t
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = strconv.Quote(v)
	}
	g.unions[n] = strings.Join(quoted, " | ")
	return n, nil
}

// expr is the TypeScript type of t; named structs are declared once and
// referred to by name.
func (g *gen) expr(t reflect.Type) (string, error) {
	switch {
	case t == timeType:
		return "string", nil
	case t == rawType:
		return "JsonValue", nil
	}
	if values, ok := g.enums[t]; ok && t.Kind() == reflect.String {
		return g.union(t, values)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.expr(t.Elem())
	case reflect.String:
		return "string", nil
	case reflect.Bool:
		return "boolean", nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number", nil
	case reflect.Interface:
		return "unknown", nil
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string", nil // base64
		}
		e, err := g.expr(t.Elem())
		if strings.ContainsAny(e, " |") {
			e = "(" + e + ")"
		}
		return e + "[]", err
	case reflect.Map:
		v, err := g.expr(t.Elem())
		return "Record<string, " + v + ">", err
	case reflect.Struct:
		return g.structType(t)
	}
	return "", fmt.Errorf("tsgen: %s has no JSON form", t)
}

func (g *gen) structType(t reflect.Type) (string, error) {
	if t.Name() == "" {
		return g.object(t, true)
	}
	n := g.name(t)
	if prev, ok := g.types[n]; ok {
		if prev != t {
			return "", fmt.Errorf("tsgen: %s and %s both named %s", prev, t, n)
		}
		return n, nil
	}
	g.types[n] = t // before the fields: a type may refer to itself
	body, err := g.object(t, false)
	g.decls[n] = body
	return n, err
}

// object renders a struct's fields as encoding/json writes them: one a
// line for a declared interface, on one line for an anonymous struct.
func (g *gen) object(t reflect.Type, inline bool) (string, error) {
	var fields []string
	if err := g.fields(t, &fields); err != nil {
		return "", err
	}
	if len(fields) == 0 {
		return "{}", nil
	}
	if inline {
		return "{ " + strings.Join(fields, "; ") + " }", nil
	}
	return "{\n  " + strings.Join(fields, ";\n  ") + ";\n}", nil
}

// fields follows encoding/json: embedded structs without a name are
// inlined, "-" is skipped, the tag's name wins. A field is optional when
// omitempty or a pointer; a pointer may also be null.
func (g *gen) fields(t reflect.Type, out *[]string) error {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if err := g.fields(ft, out); err != nil {
					return err
				}
				continue
			}
			if !f.IsExported() {
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		typ, err := g.expr(ft)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", t, f.Name, err)
		}
		if hasOpt(opts, "string") {
			typ = "string"
		}
		optional := hasOpt(opts, "omitempty")
		if ft.Kind() == reflect.Pointer {
			optional = true
			typ += " | null"
		}
		q := ""
		if optional {
			q = "?"
		}
		*out = append(*out, tsKey(name)+q+": "+typ)
	}
	return nil
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// tsKey quotes a property name that is not an identifier.
func tsKey(s string) string {
	for i, r := range s {
		if !(r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return strconv.Quote(s)
		}
	}
	return s
}

// ErrorCodes reads the string constants named Code… from Go source (the
// server's errors.go), in declaration order: constants cannot be listed by
// reflection, and parsing the file keeps the list from going stale.
func ErrorCodes(src []byte) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", src, 0)
	if err != nil {
		return nil, fmt.Errorf("tsgen: parse error codes: %w", err)
	}
	var codes []string
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "Code") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return nil, fmt.Errorf("tsgen: %s is not a string literal", n.Name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					return nil, fmt.Errorf("tsgen: %s: %w", n.Name, err)
				}
				codes = append(codes, v)
			}
		}
	}
	if len(codes) == 0 {
		return nil, fmt.Errorf("tsgen: no Code… constants found")
	}
	return codes, nil
}
