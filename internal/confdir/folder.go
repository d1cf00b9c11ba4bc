// Package confdir moves Duplex's configuration between a folder of files and
// the store: Export writes teams, systems and connections as files; Read and
// MakePlan compare a folder with the store, and Plan.Apply makes the store
// match it in one transaction; Validate checks a folder offline. The layout
// is documented in docs/config-as-code.md.
package confdir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// System is teams/<team>/systems/<name>.json. Secrets holds names only.
type System struct {
	Kind           string          `json:"kind"`
	Settings       json.RawMessage `json:"settings"`
	PollIntervalMS int64           `json:"poll_interval_ms"`
	RatePerSecond  float64         `json:"rate_per_second"`
	RateBurst      int             `json:"rate_burst"`
	Secrets        []string        `json:"secrets"`
}

// Connection is teams/<team>/connections/<name>/connection.json; the six
// scripts and each side's validation rules (a.rules.json, b.rules.json) are
// files beside it.
type Connection struct {
	SystemA        string          `json:"system_a"`
	SystemB        string          `json:"system_b"`
	Active         bool            `json:"active"`
	ConflictPolicy json.RawMessage `json:"conflict_policy,omitempty"`
	Options        json.RawMessage `json:"options,omitempty"`
	Template       string          `json:"template,omitempty"`
	// TeamTemplate links the connection to the team template version its
	// scripts came from (teamtemplates.go).
	TeamTemplate *TemplateLink `json:"team_template,omitempty"`
	// Scripts are read from the script files, not from JSON.
	Scripts map[store.Side]map[store.ScriptKind]string `json:"-"`
	// Rules are read from the rules files; a side without a file is missing
	// from the map (no rules, like an empty list).
	Rules     map[store.Side][]scripting.Rule `json:"-"`
	rulesText map[store.Side][]byte           // each rules file as read, for positions
}

// Team is one teams/<name>/ folder.
type Team struct {
	Systems     map[string]System
	Connections map[string]Connection
	Templates   map[string]TeamTemplate
}

// Folder is a whole config folder as read.
type Folder struct {
	Dir       string
	Teams     map[string]*Team
	Templates []string // names of templates/<name>/ folders
}

// Problem is something wrong with a folder or a plan; File is relative to
// the folder, Line and Column are 0 when unknown.
type Problem struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (p Problem) String() string {
	switch {
	case p.File == "":
		return p.Msg
	case p.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// ScriptFile is the file name of one script, as in a template folder.
func ScriptFile(side store.Side, kind store.ScriptKind) string {
	ext := "js"
	if kind == store.KindTrigger {
		ext = "expr"
	}
	return fmt.Sprintf("%s.%s.%s", side, kind, ext)
}

// Sides lists the two sides in file order.
var Sides = []store.Side{store.SideA, store.SideB}

func systemPath(team, name string) string {
	return filepath.ToSlash(filepath.Join("teams", team, "systems", name+".json"))
}

func connectionDir(team, name string) string {
	return filepath.ToSlash(filepath.Join("teams", team, "connections", name))
}

// checkName refuses names that cannot be one path element.
func checkName(what, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("%s name %q cannot be a file name (empty, a dot name, or with a slash)", what, name)
	}
	return nil
}

// Read loads a folder. Problems (bad JSON, unknown fields) are returned
// with positions; err is for I/O failures only.
func Read(dir string) (*Folder, []Problem, error) {
	f := &Folder{Dir: dir, Teams: map[string]*Team{}}
	var probs []Problem
	teamDirs, err := subdirs(filepath.Join(dir, "teams"))
	if err != nil {
		return nil, nil, err
	}
	for _, tn := range teamDirs {
		t := &Team{Systems: map[string]System{}, Connections: map[string]Connection{}}
		f.Teams[tn] = t
		tpls, tplProbs, err := readTeamTemplates(dir, tn)
		if err != nil {
			return nil, nil, err
		}
		t.Templates = tpls
		probs = append(probs, tplProbs...)
		sysFiles, err := filepath.Glob(filepath.Join(dir, "teams", tn, "systems", "*.json"))
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", dir, err)
		}
		sort.Strings(sysFiles)
		for _, p := range sysFiles {
			name := strings.TrimSuffix(filepath.Base(p), ".json")
			rel := systemPath(tn, name)
			var s System
			if pr, err := decodeFile(p, rel, &s); err != nil {
				return nil, nil, err
			} else if pr != nil {
				probs = append(probs, *pr)
				continue
			}
			if s.Kind == "" {
				probs = append(probs, Problem{File: rel, Msg: "kind is required"})
			}
			if len(s.Settings) == 0 || string(s.Settings) == "null" {
				s.Settings = json.RawMessage("{}")
			} else if !bytes.HasPrefix(bytes.TrimSpace(s.Settings), []byte("{")) {
				probs = append(probs, Problem{File: rel, Msg: "settings must be a JSON object"})
			}
			t.Systems[name] = s
		}
		connDirs, err := subdirs(filepath.Join(dir, "teams", tn, "connections"))
		if err != nil {
			return nil, nil, err
		}
		for _, cn := range connDirs {
			rel := connectionDir(tn, cn)
			var c Connection
			if pr, err := decodeFile(filepath.Join(dir, rel, "connection.json"), rel+"/connection.json", &c); err != nil {
				return nil, nil, err
			} else if pr != nil {
				probs = append(probs, *pr)
				continue
			}
			c.Scripts = map[store.Side]map[store.ScriptKind]string{}
			for _, side := range Sides {
				c.Scripts[side] = map[store.ScriptKind]string{}
				for _, kind := range store.ScriptKinds {
					b, err := os.ReadFile(filepath.Join(dir, rel, ScriptFile(side, kind)))
					if err != nil && !errors.Is(err, fs.ErrNotExist) {
						return nil, nil, fmt.Errorf("read %s: %w", rel, err)
					}
					c.Scripts[side][kind] = string(b) // a missing file is an empty script
				}
				if pr, err := readRules(dir, rel, side, &c); err != nil {
					return nil, nil, err
				} else if pr != nil {
					probs = append(probs, *pr)
				}
			}
			if c.SystemA == "" || c.SystemB == "" {
				probs = append(probs, Problem{File: rel + "/connection.json", Msg: "system_a and system_b are required"})
			}
			t.Connections[cn] = c
		}
	}
	if f.Templates, err = subdirs(filepath.Join(dir, "templates")); err != nil {
		return nil, nil, err
	}
	return f, probs, nil
}

// subdirs lists the folders in dir, sorted; a missing dir has none.
func subdirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// decodeFile reads strict JSON into v: a syntax error or an unknown field is
// a Problem with its position, not an error.
func decodeFile(path, rel string, v any) (*Problem, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Problem{File: rel, Msg: "missing"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rel, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		off := dec.InputOffset()
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			off = se.Offset
		case errors.As(err, &te):
			off = te.Offset
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			// The decoder gives no offset for these: point at the key itself.
			key := strings.TrimPrefix(err.Error(), "json: unknown field ")
			if i := bytes.Index(b, []byte(key)); i >= 0 {
				off = int64(i)
			}
		}
		line, col := position(b, off)
		return &Problem{File: rel, Line: line, Column: col, Msg: err.Error()}, nil
	}
	return nil, nil
}

// position turns a byte offset into a 1-based line and column.
func position(b []byte, off int64) (int, int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	line, col := 1, 1
	for _, c := range string(b[:off]) {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// canonical re-encodes JSON with sorted keys, two-space indent and no HTML
// escaping, so that equal values give equal bytes (files diff cleanly and
// comparisons ignore formatting). Numbers keep their text.
func canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(generic); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// compactJSON is canonical text on one line, as the store keeps JSON; ""
// and null give "".
func compactJSON(raw []byte) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return "", nil
	}
	c, err := canonical(json.RawMessage(raw))
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, c); err != nil {
		return "", err
	}
	return buf.String(), nil
}
