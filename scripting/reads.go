package scripting

import (
	"reflect"

	"github.com/dop251/goja/ast"
)

// EntityReads reports the fields of `entity` an outgoing script can read:
// every name in an `entity.name` or `entity["name"]` of its source. A field
// not listed cannot change what the script produces, whatever its value.
// known is false when the script may reach the entity's fields some other
// way: entity passed to a function or to log, spread, enumerated, indexed by
// a computed key, a name Object.prototype has (entity.hasOwnProperty(k)
// reads k), `arguments`, `eval`, or a name that shadows entity. Found once
// at Compile, from the syntax tree (every node of it: see scanReads); nil,
// false for incoming scripts.
func (s *Script) EntityReads() (fields map[string]bool, known bool) {
	return s.reads, s.readsKnown
}

// scanReads fills s.reads from the wrapper function's body, less the
// wrapper's own statements (the const that binds entity to the parameter).
func (s *Script) scanReads(fl *ast.FunctionLiteral) {
	// The wrapper's two statements come first: "use strict" and the const
	// that binds the parameters (by shape: node positions are not all set).
	list := fl.Body.List
	if len(list) < 2 {
		return
	}
	if d, ok := list[1].(*ast.LexicalDeclaration); !ok || len(d.List) != len(params[s.kind]) {
		return
	}
	r := readScan{names: map[string]bool{}}
	for _, st := range list[2:] {
		r.walk(reflect.ValueOf(st))
	}
	if !r.unknown {
		s.reads, s.readsKnown = r.names, true
	}
}

// readScan walks a syntax tree by reflection, so that no kind of node can
// be missed: only the two forms that name one field are let through, and
// any other appearance of a guarded name makes the reads unknown.
type readScan struct {
	names   map[string]bool
	unknown bool
}

var identType = reflect.TypeOf(ast.Identifier{})

// guardedNames reach the entity's fields other than by a literal name.
var guardedNames = map[string]bool{"entity": true, "$duplex_entity": true, "arguments": true, "eval": true}

// protoNames are Object.prototype's properties (the entity's prototype):
// entity.hasOwnProperty(k), entity.valueOf() and the like read fields the
// name does not say. TestProtoNamesCoverObjectPrototype checks the list.
var protoNames = map[string]bool{
	"constructor": true, "__proto__": true, "hasOwnProperty": true, "isPrototypeOf": true,
	"propertyIsEnumerable": true, "toString": true, "valueOf": true, "toLocaleString": true,
	"__defineGetter__": true, "__defineSetter__": true, "__lookupGetter__": true, "__lookupSetter__": true,
}

func (r *readScan) field(name string) {
	if protoNames[name] {
		r.unknown = true
		return
	}
	r.names[name] = true
}

func isEntity(e ast.Expression) bool {
	if o, ok := e.(*ast.Optional); ok { // entity?.name
		e = o.Expression
	}
	id, ok := e.(*ast.Identifier)
	return ok && id.Name == "entity"
}

func (r *readScan) walk(v reflect.Value) {
	if r.unknown {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return
		}
		if v.CanInterface() {
			switch n := v.Interface().(type) {
			case *ast.DotExpression:
				if isEntity(n.Left) {
					r.field(string(n.Identifier.Name))
					return
				}
				r.walk(reflect.ValueOf(n.Left)) // n.Identifier is a property name, not a reference
				return
			case *ast.BracketExpression:
				if isEntity(n.Left) {
					if lit, ok := n.Member.(*ast.StringLiteral); ok {
						r.field(string(lit.Value))
						return
					}
					r.unknown = true
					return
				}
			}
		}
		r.walk(v.Elem())
	case reflect.Struct:
		if v.Type() == identType {
			if guardedNames[v.FieldByName("Name").String()] {
				r.unknown = true
			}
			return
		}
		for i := 0; i < v.NumField(); i++ {
			r.walk(v.Field(i))
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			r.walk(v.Index(i))
		}
	}
}
