package scripts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ErrTooLarge is returned when an archive unpacks to more than its bound.
var ErrTooLarge = errors.New("template archive too large")

// Archive bounds. A template is a few kilobytes of scripts and fixtures;
// the bounds only have to stop a gzip bomb or a stray directory.
const (
	MaxArchiveBytes   = 4 << 20 // unpacked, all files together
	MaxArchiveEntries = 200
)

// meta is template.json: everything of a body except sources and fixtures,
// which are files of their own.
type meta struct {
	Name        string `json:"name,omitempty"`
	Title       string `json:"title"`
	Description string `json:"description"`
	SideA       string `json:"side_a"`
	SideB       string `json:"side_b"`
	SideKinds
	Tags    []string        `json:"tags,omitempty"`
	Params  []Param         `json:"params"`
	Options json.RawMessage `json:"options,omitempty"`
}

// sourceFiles lists the six script files of a template folder in order.
var sourceFiles = func() []string {
	var out []string
	for _, side := range []string{"a", "b"} {
		for _, kind := range []string{"trigger", "outgoing", "incoming"} {
			out = append(out, side+"."+kind+"."+kindExt[kind])
		}
	}
	return out
}()

// Files lays the body out as a template folder, the layout of scripts/<name>/:
// template.json, the six source files and testdata/*.json.
func (b Body) Files() (map[string][]byte, error) {
	m := meta{Title: b.Title, Description: b.Description, SideA: b.SideA, SideB: b.SideB, SideKinds: b.SideKinds, Tags: b.Tags,
		Params: b.Params, Options: b.Options}
	if m.Params == nil {
		m.Params = []Param{}
	}
	tj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("template.json: %w", err)
	}
	out := map[string][]byte{"template.json": append(tj, '\n')}
	for _, f := range sourceFiles {
		parts := strings.SplitN(f, ".", 3)
		out[f] = []byte(b.Sources[parts[0]][parts[1]])
	}
	for name, raw := range b.Fixtures {
		// The body keeps fixtures compact (encoding/json compacts raw
		// values); written out they are indented, so a folder kept in git
		// stays readable. Their layout is not kept, their content is.
		var ind bytes.Buffer
		if err := json.Indent(&ind, raw, "", "  "); err != nil {
			return nil, fmt.Errorf("fixture %s: %w", name, err)
		}
		out["testdata/"+name] = append(ind.Bytes(), '\n')
	}
	return out, nil
}

// FromFiles reads a template folder's files (paths relative to the folder).
// A file that is neither template.json, a source nor testdata/*.json is
// refused by name, so a typo (a.outgoing.ts) does not silently vanish.
func FromFiles(files map[string][]byte) (Body, error) {
	known := map[string]bool{"template.json": true}
	for _, f := range sourceFiles {
		known[f] = true
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	fixtures := map[string]json.RawMessage{}
	for _, name := range names {
		if known[name] {
			continue
		}
		fx, isFixture := strings.CutPrefix(name, "testdata/")
		if isFixture && seedName.MatchString(fx) {
			// A sample schema or seed rows for a sql side (hr-it-onboarding's
			// hr-schema.sql): for people and the template's own tests, not
			// part of a version, so a built-in folder imports as it is.
			continue
		}
		if !isFixture || !fixtureName.MatchString(fx) {
			return Body{}, fmt.Errorf("unknown file %q (a template holds template.json, %s and testdata/*.json): %w",
				name, strings.Join(sourceFiles, ", "), ErrInvalid)
		}
		fixtures[fx] = compactFixture(files[name])
	}
	raw, ok := files["template.json"]
	if !ok {
		return Body{}, fmt.Errorf("template.json is missing: %w", ErrInvalid)
	}
	var m meta
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Body{}, fmt.Errorf("template.json: %v: %w", err, ErrInvalid)
	}
	b := Body{Title: m.Title, Description: m.Description, SideA: m.SideA, SideB: m.SideB, SideKinds: m.SideKinds, Tags: m.Tags,
		Params: m.Params, Sources: Sources{"a": {}, "b": {}}}
	if len(m.Options) > 0 {
		// template.json indents it; the body keeps it compact.
		var opts bytes.Buffer
		if err := json.Compact(&opts, m.Options); err != nil {
			return Body{}, fmt.Errorf("template.json options: %v: %w", err, ErrInvalid)
		}
		b.Options = opts.Bytes()
	}
	for _, f := range sourceFiles {
		parts := strings.SplitN(f, ".", 3)
		b.Sources[parts[0]][parts[1]] = string(files[f])
	}
	if len(fixtures) > 0 {
		b.Fixtures = fixtures
	}
	return b, b.Validate()
}

// templateName is what a team template may be called: it is also its
// folder's name in an archive.
var templateName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// ValidName reports whether name can name a team template (and its folder):
// letters, digits, ".", "_" and "-", starting with a letter or digit.
func ValidName(name string) bool { return templateName.MatchString(name) }

// ExportArchive writes the body as a .tar.gz holding one folder, name/,
// laid out like scripts/<name>/.
func ExportArchive(w io.Writer, name string, b Body) error {
	if !ValidName(name) {
		return fmt.Errorf("template name %q cannot be a folder name: %w", name, ErrInvalid)
	}
	files, err := b.Files()
	if err != nil {
		return err
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	// A fixed time keeps two exports of one version byte for byte equal.
	mod := time.Unix(0, 0).UTC()
	dirs := []string{name + "/"}
	if len(b.Fixtures) > 0 {
		dirs = append(dirs, name+"/testdata/")
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: mod}); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
	}
	for _, p := range paths {
		body := files[p]
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name + "/" + p, Mode: 0o644, Size: int64(len(body)), ModTime: mod}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		if _, err := tw.Write(body); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return zw.Close()
}

// ImportArchive reads a .tar.gz written by ExportArchive (or by
// `tar czf x.tar.gz -C scripts NAME`): one top folder, or the files at the
// root. It returns the folder's name ("" for a root layout) and the body.
// It refuses absolute paths and "..", links and devices, more than
// MaxArchiveEntries entries and more than MaxArchiveBytes unpacked.
func ImportArchive(r io.Reader) (string, Body, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return "", Body{}, fmt.Errorf("not a gzip archive: %v: %w", err, ErrInvalid)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	var total int64
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", Body{}, fmt.Errorf("not a tar archive: %v: %w", err, ErrInvalid)
		}
		if n >= MaxArchiveEntries {
			return "", Body{}, fmt.Errorf("more than %d entries: %w", MaxArchiveEntries, ErrTooLarge)
		}
		clean, err := safePath(hdr.Name)
		if err != nil {
			return "", Body{}, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return "", Body{}, fmt.Errorf("entry %q: only files and folders are allowed (no links or devices): %w", hdr.Name, ErrInvalid)
		}
		if _, dup := files[clean]; dup {
			return "", Body{}, fmt.Errorf("entry %q appears twice: %w", hdr.Name, ErrInvalid)
		}
		// Read one byte past what is left, so going over is seen without
		// trusting the header's size.
		left := MaxArchiveBytes - total
		data, err := io.ReadAll(io.LimitReader(tr, left+1))
		if err != nil {
			return "", Body{}, fmt.Errorf("entry %q: %v: %w", hdr.Name, err, ErrInvalid)
		}
		if int64(len(data)) > left {
			return "", Body{}, fmt.Errorf("unpacks to more than %d bytes: %w", MaxArchiveBytes, ErrTooLarge)
		}
		total += int64(len(data))
		files[clean] = data
	}
	name, rel := stripTop(files)
	if name != "" && !ValidName(name) {
		return "", Body{}, fmt.Errorf("folder %q is not a template name: %w", name, ErrInvalid)
	}
	b, err := FromFiles(rel)
	return name, b, err
}

// safePath refuses what could write or read outside the template folder if
// anyone ever unpacked the archive to disk: absolute paths, "..", backslashes.
func safePath(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, `\`) || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("entry %q: unsafe path: %w", name, ErrInvalid)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("entry %q: unsafe path (..): %w", name, ErrInvalid)
		}
	}
	clean := path.Clean(strings.TrimPrefix(name, "./"))
	if clean == "." {
		return ".", nil
	}
	return clean, nil
}

// stripTop removes one folder every file is in (other than testdata).
func stripTop(files map[string][]byte) (string, map[string][]byte) {
	top := ""
	for p := range files {
		first, _, ok := strings.Cut(p, "/")
		if !ok || first == "testdata" || (top != "" && first != top) {
			return "", files
		}
		top = first
	}
	if top == "" {
		return "", files
	}
	out := make(map[string][]byte, len(files))
	for p, b := range files {
		out[strings.TrimPrefix(p, top+"/")] = b
	}
	return top, out
}
