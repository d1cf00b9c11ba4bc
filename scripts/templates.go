// Package scripts holds Duplex's built-in templates: for each, the trigger,
// outgoing and incoming script of both sides plus metadata, embedded in the
// binary. A template folder contains template.json and the files
// a.trigger.expr, a.outgoing.js, a.incoming.js, b.trigger.expr, b.outgoing.js,
// b.incoming.js (any may be missing: empty). Parameters appear in sources as
// {{name}} and are replaced by their JSON-encoded value.
package scripts

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed */template.json */*.js */*.expr
var builtin embed.FS

// ErrNotFound is returned for an unknown template name.
var ErrNotFound = errors.New("template not found")

// ErrInvalid marks a template, parameter value or archive the caller must
// fix (a wrong parameter type, a malformed template.json, an unsafe archive).
var ErrInvalid = errors.New("invalid template")

// Param is a value a user fills in when creating a connection from a template.
type Param struct {
	Name string `json:"name"`
	// Type is string, number, boolean, object or array; when empty it is
	// the type of Default. A value of another type is refused by Render.
	Type        string `json:"type,omitempty"`
	Description string `json:"description"`
	Default     any    `json:"default"`
}

// ParamType is p's declared type, or its default's when none is declared
// ("" when neither says).
func (p Param) ParamType() string {
	if p.Type != "" {
		return p.Type
	}
	return TypeOf(p.Default)
}

// Template is a reusable set of scripts and triggers.
type Template struct {
	Name        string  `json:"name"`
	Title       string  `json:"title"`
	Description string  `json:"description"`
	Params      []Param `json:"params"`
	SideA       string  `json:"side_a"` // what side a is expected to be, for people
	SideB       string  `json:"side_b"`
	// SideKinds (kinds_a, kinds_b) are the connector kinds each side fits;
	// the server refuses a connection whose systems are of other kinds.
	SideKinds
	Sources Sources  `json:"sources"`
	Tags    []string `json:"tags,omitempty"`
	// Options are the connection options (engine.Lifecycle) a connection
	// made from the template starts with, unless the request gives its own.
	Options json.RawMessage `json:"options,omitempty"`
}

// Sources maps side ("a", "b") to kind ("trigger", "outgoing", "incoming") to source.
type Sources map[string]map[string]string

// Library is a read-only set of templates.
type Library struct {
	byName map[string]Template
}

// Builtin loads the templates embedded in the binary.
func Builtin() (*Library, error) { return Load(builtin) }

// Load reads every template folder at the root of fsys.
func Load(fsys fs.FS) (*Library, error) {
	dirs, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read templates: %w", err)
	}
	lib := &Library{byName: map[string]Template{}}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		t, err := loadOne(fsys, d.Name())
		if err != nil {
			return nil, err
		}
		lib.byName[t.Name] = t
	}
	return lib, nil
}

// LoadDir reads one template folder from disk (for `duplex script test`).
func LoadDir(dir string) (Template, error) {
	clean := filepath.Clean(dir)
	return loadOne(os.DirFS(filepath.Dir(clean)), filepath.Base(clean))
}

// Fixtures reads a template folder's testdata/*.json files, by name.
func Fixtures(dir string) (map[string][]byte, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "testdata", "*.json"))
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("fixture: %w", err)
		}
		out[filepath.Base(p)] = b
	}
	return out, nil
}

func loadOne(fsys fs.FS, dir string) (Template, error) {
	var t Template
	raw, err := fs.ReadFile(fsys, path.Join(dir, "template.json"))
	if err != nil {
		return t, fmt.Errorf("template %s: %w", dir, err)
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return t, fmt.Errorf("template %s/template.json: %w", dir, err)
	}
	if err := t.SideKinds.validate(); err != nil {
		return t, fmt.Errorf("template %s/template.json: %w", dir, err)
	}
	t.Name = dir
	t.Sources = Sources{}
	for _, side := range []string{"a", "b"} {
		t.Sources[side] = map[string]string{}
		for kind, ext := range map[string]string{"trigger": "expr", "outgoing": "js", "incoming": "js"} {
			b, err := fs.ReadFile(fsys, path.Join(dir, side+"."+kind+"."+ext))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return t, fmt.Errorf("template %s: %w", dir, err)
			}
			t.Sources[side][kind] = string(b)
		}
	}
	return t, nil
}

// List returns the templates sorted by name.
func (l *Library) List() []Template {
	out := make([]Template, 0, len(l.byName))
	for _, t := range l.byName {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns one template.
func (l *Library) Get(name string) (Template, error) {
	t, ok := l.byName[name]
	if !ok {
		return t, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return t, nil
}

// Render returns the template's sources with parameters filled in: values
// given override defaults; a parameter with neither is an error.
func (t Template) Render(values map[string]any) (Sources, error) {
	repl := make([]string, 0, 2*len(t.Params))
	for _, p := range t.Params {
		v, ok := values[p.Name]
		if !ok {
			v = p.Default
		}
		if v == nil {
			return nil, fmt.Errorf("template %s: parameter %q needs a value: %w", t.Name, p.Name, ErrInvalid)
		}
		if want, got := p.ParamType(), TypeOf(v); want != "" && got != want {
			return nil, fmt.Errorf("template %s: parameter %q must be %s %s, got %s %s: %w",
				t.Name, p.Name, article(want), want, article(got), got, ErrInvalid)
		}
		enc, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("template %s: parameter %q: %w", t.Name, p.Name, err)
		}
		repl = append(repl, "{{"+p.Name+"}}", string(enc))
	}
	r := strings.NewReplacer(repl...)
	out := Sources{}
	for side, kinds := range t.Sources {
		out[side] = map[string]string{}
		for kind, src := range kinds {
			out[side][kind] = r.Replace(src)
		}
	}
	return out, nil
}
