package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// op documents one route for /api/openapi.json and the app's generated
// types. Each route's op is written beside its declaration (s.handle in the
// route's area file); a test compares the description with the routes Gin
// registers, both ways.
type op struct {
	summary string
	tag     string
	in      any // a value whose type is the JSON request body; nil: none
	out     any // a value whose type is the success body; nil: none
	status  int // success status; default 200 (204 when out is nil)
	query   []string
	// raw describes a body that is not JSON ("application/gzip", "application/typescript").
	rawIn, rawOut string
}

// okOut is the answer of a check that passed.
type okOut struct {
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

var ginParam = regexp.MustCompile(`:(\w+)`)

// openAPIPath turns Gin's /x/:id into OpenAPI's /x/{id}.
func openAPIPath(p string) string { return ginParam.ReplaceAllString(p, "{$1}") }

// buildOpenAPI renders the description once, at start; rules say which
// routes need a sign-in.
func buildOpenAPI(rules map[string]rule, ops map[string]op) ([]byte, error) {
	sc := &schemas{defs: map[string]any{}}
	paths := map[string]map[string]any{}
	keys := make([]string, 0, len(ops))
	for k := range ops {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o := ops[k]
		method, path, _ := strings.Cut(k, " ")
		item := map[string]any{"summary": o.summary, "tags": []string{o.tag},
			"operationId": strings.ToLower(method) + strings.NewReplacer("/", "_", "{", "", "}", "", "-", "_", ".", "_").Replace(path)}
		var params []any
		for _, m := range ginParam.FindAllStringSubmatch(strings.NewReplacer("{", ":", "}", "").Replace(path), -1) {
			typ := "integer"
			switch m[1] {
			case "side", "kind", "name", "direction":
				typ = "string"
			}
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": typ}})
		}
		for _, q := range o.query {
			params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": map[string]any{"type": "string"}})
		}
		if len(params) > 0 {
			item["parameters"] = params
		}
		switch {
		case o.in != nil:
			item["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": sc.of(reflect.TypeOf(o.in))}}}
		case o.rawIn != "":
			item["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				o.rawIn: map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}}
		}
		status := o.status
		resp := map[string]any{}
		switch {
		case o.out != nil:
			if status == 0 {
				status = http.StatusOK
			}
			resp[itoa(int64(status))] = map[string]any{"description": http.StatusText(status), "content": map[string]any{
				"application/json": map[string]any{"schema": sc.of(reflect.TypeOf(o.out))}}}
		case o.rawOut != "":
			resp["200"] = map[string]any{"description": "OK", "content": map[string]any{
				o.rawOut: map[string]any{"schema": map[string]any{"type": "string"}}}}
		default:
			resp["204"] = map[string]any{"description": "No Content"}
		}
		resp["default"] = map[string]any{"$ref": "#/components/responses/Error"}
		item["responses"] = resp
		r, ok := rules[method+" "+strings.NewReplacer("{", ":", "}", "").Replace(path)]
		if ok && r.kind == rulePublic {
			item["security"] = []any{}
		}
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(method)] = item
	}
	sc.defs["Error"] = sc.of(reflect.TypeOf(apiError{}))
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "Duplex API", "version": "2", // 2: JSON values instead of JSON strings (CHANGELOG.md)
			"description": "Two-way sync engine. Errors are JSON {code, message}; codes are stable. Cookie-authenticated writes need the X-CSRF-Token header."},
		"paths":    paths,
		"security": []any{map[string]any{"bearer": []string{}}, map[string]any{"session": []string{}}},
		"components": map[string]any{
			"schemas": sc.defs,
			"securitySchemes": map[string]any{
				"bearer":  map[string]any{"type": "http", "scheme": "bearer", "description": "a personal API token, dpx_…"},
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": sessionCookie},
			},
			"responses": map[string]any{"Error": map[string]any{"description": "an error with a stable code",
				"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// schemas turns Go types into JSON Schema (the OpenAPI 3.0 dialect), named
// struct types once under components/schemas.
type schemas struct{ defs map[string]any }

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

func (sc *schemas) of(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{} // any JSON
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := sc.of(t.Elem())
		if _, ref := s["$ref"]; ref {
			return map[string]any{"allOf": []any{s}, "nullable": true}
		}
		s["nullable"] = true
		return s
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": sc.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": sc.of(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := schemaName(t)
		if name != "" {
			if _, done := sc.defs[name]; !done {
				sc.defs[name] = map[string]any{} // a placeholder stops recursion
				sc.defs[name] = sc.object(t)
			}
			return map[string]any{"$ref": "#/components/schemas/" + name}
		}
		return sc.object(t)
	}
	return map[string]any{}
}

func (sc *schemas) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	sc.fields(t, props)
	return map[string]any{"type": "object", "properties": props}
}

// fields follows encoding/json: embedded structs are inlined, "-" is
// skipped, the tag's name wins.
func (sc *schemas) fields(t reflect.Type, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				sc.fields(ft, props)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		props[name] = sc.of(f.Type)
	}
}

// schemaName names exported and package-local struct types after the type;
// anonymous structs stay inline.
func schemaName(t reflect.Type) string {
	if t.Name() == "" {
		return ""
	}
	pkg := t.PkgPath()
	pkg = pkg[strings.LastIndex(pkg, "/")+1:]
	n := t.Name()
	return strings.ToUpper(pkg[:1]) + pkg[1:] + strings.ToUpper(n[:1]) + n[1:]
}

func (s *srv) openAPI(c *gin.Context) error {
	c.Data(http.StatusOK, "application/json; charset=utf-8", s.spec)
	return nil
}
