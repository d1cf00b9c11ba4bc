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
	if s.kind != KindOutgoing {
		return nil, false
	}
	return s.InputReads("entity")
}

// InputReads is EntityReads for any input of the script's kind: entity
// and previous of an outgoing script, replica, previous and entity of an
// incoming one (for the writable entity: every field it names, to read or
// to write).
func (s *Script) InputReads(input string) (fields map[string]bool, known bool) {
	fields, known = s.reads[input]
	return fields, known
}

// readInputs are the read-only inputs of each kind, in call order.
var readInputs = map[Kind][]string{
	KindOutgoing: {"entity", "previous"},
	KindIncoming: {"replica", "previous"},
}

// ReadInputs names the read-only inputs of a kind of script, in call order
// (the first arguments of Runner.Outgoing and Runner.Incoming).
func ReadInputs(kind Kind) []string { return readInputs[kind] }

// writableInput is the input a script of a kind changes and hands back as
// its result: the incoming script's entity.
var writableInput = map[Kind]string{KindIncoming: "entity"}

// scannedInputs are the inputs whose named fields Compile finds: the
// read-only ones and the writable one.
func scannedInputs(kind Kind) []string {
	in := readInputs[kind]
	if w, ok := writableInput[kind]; ok {
		in = append(in[:len(in):len(in)], w)
	}
	return in
}

// OnlyReads is m, the script's read-only input named input, less the
// fields the script cannot read (InputReads), or m itself when the reads
// are unknown or take every field. The script cannot tell the difference:
// it names every field it reads, and reads none any other way. Converting a
// field into JS is most of what a run's input costs, and a sandbox worker's
// inputs cross a pipe.
func OnlyReads(s *Script, input string, m map[string]any) map[string]any {
	reads, known := s.InputReads(input)
	if !known || len(m) == 0 {
		return m
	}
	n := 0
	for k := range m {
		if reads[k] {
			n++
		}
	}
	if n == len(m) {
		return m
	}
	out := make(map[string]any, n)
	for k, v := range m {
		if reads[k] {
			out[k] = v
		}
	}
	return out
}

// scanReads fills s.reads from the wrapper function's body, less the
// wrapper's own statements (the const that binds the inputs to the
// parameters), one walk per read-only input.
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
	for _, input := range scannedInputs(s.kind) {
		r := readScan{input: input, names: map[string]bool{}}
		for _, st := range list[2:] {
			r.walk(reflect.ValueOf(st))
		}
		if !r.unknown {
			if s.reads == nil {
				s.reads = map[string]map[string]bool{}
			}
			s.reads[input] = r.names
		}
	}
}

// readScan walks a syntax tree by reflection, so that no kind of node can
// be missed: only the two forms that name one field are let through, and
// any other appearance of a guarded name makes the reads unknown.
type readScan struct {
	input   string // the binding whose fields are read: entity, previous, replica
	names   map[string]bool
	unknown bool
}

var identType = reflect.TypeOf(ast.Identifier{})

// guarded says whether name reaches the input's fields other than by a
// literal name: the input itself or its parameter, arguments, eval.
func (r *readScan) guarded(name string) bool {
	return name == r.input || name == "$duplex_"+r.input || name == "arguments" || name == "eval"
}

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

func (r *readScan) isInput(e ast.Expression) bool {
	if o, ok := e.(*ast.Optional); ok { // entity?.name
		e = o.Expression
	}
	id, ok := e.(*ast.Identifier)
	return ok && string(id.Name) == r.input
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
				if r.isInput(n.Left) {
					r.field(string(n.Identifier.Name))
					return
				}
				r.walk(reflect.ValueOf(n.Left)) // n.Identifier is a property name, not a reference
				return
			case *ast.BracketExpression:
				if r.isInput(n.Left) {
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
			if r.guarded(v.FieldByName("Name").String()) {
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
