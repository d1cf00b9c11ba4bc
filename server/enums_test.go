package server

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
)

// The enums the app gets as union types list every constant their Go type
// declares: a new role, side or kind added in Go without its value here
// fails, instead of the app's type silently refusing it.
func TestEnumsListEveryConstant(t *testing.T) {
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..")
	dirs := map[string]string{ // package path → directory
		"github.com/duplexsync/duplex/engine/store":      "engine/store",
		"github.com/duplexsync/duplex/internal/identity": "internal/identity",
		"github.com/duplexsync/duplex/connectors":        "connectors",
	}
	for typ, values := range enums {
		dir, ok := dirs[typ.PkgPath()]
		if !ok {
			t.Errorf("%s: add its package's directory to this test", typ)
			continue
		}
		got := constantsOf(t, filepath.Join(root, dir), typ.Name())
		want := slices.Clone(values)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the Go constants are %q, the enum lists %q", typ, got, want)
		}
	}
}

// constantsOf lists the string constants of type name declared in dir.
func constantsOf(t *testing.T, dir, name string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if filepath.Ext(f) != ".go" || len(f) > 8 && f[len(f)-8:] == "_test.go" {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				id, ok := vs.Type.(*ast.Ident)
				if !ok || id.Name != name {
					continue
				}
				for _, v := range vs.Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						out = append(out, s)
					}
				}
			}
		}
	}
	return out
}
