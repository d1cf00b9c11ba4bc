package scripts_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/scripts"
)

func sampleSources() scripts.Sources {
	return scripts.Sources{
		"a": {"trigger": `project == "ENG"`, "outgoing": "replica.title = entity.subject;\nreplica.project = \"ENG\";\n", "incoming": ""},
		"b": {"trigger": "", "outgoing": "replica.state = entity.state;\n",
			"incoming": "var m = {\"new\": \"open\", \"done\": \"solved\"};\nentity.status = m[replica.state] || \"open\";\nentity.limit = 25;\n"},
	}
}

func TestExtractAndRender(t *testing.T) {
	src := sampleSources()
	out, params, err := scripts.Extract(src, []scripts.ParamSpec{
		{Name: "project", Literal: `"ENG"`, Description: "project key"},
		{Name: "status_map", Literal: `{"new": "open", "done": "solved"}`},
		{Name: "limit", Type: "number", Literal: `25`},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out["a"]["trigger"] != "project == {{project}}" || !strings.Contains(out["a"]["outgoing"], "replica.project = {{project}};") {
		t.Fatalf("project not replaced everywhere: %q", out["a"])
	}
	if !strings.Contains(out["b"]["incoming"], "var m = {{status_map}};") || !strings.Contains(out["b"]["incoming"], "entity.limit = {{limit}};") {
		t.Fatalf("incoming: %q", out["b"]["incoming"])
	}
	if src["a"]["trigger"] != `project == "ENG"` {
		t.Fatal("Extract changed its input")
	}
	types := map[string]string{}
	for _, p := range params {
		types[p.Name] = p.Type
	}
	if !reflect.DeepEqual(types, map[string]string{"project": "string", "status_map": "object", "limit": "number"}) {
		t.Fatalf("types %v", types)
	}

	tpl := scripts.Body{Params: params, Sources: out}.Template("t")
	// Defaults give back the original scripts (an object re-encoded compactly).
	got, err := tpl.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got["a"]["trigger"] != `project == "ENG"` || !strings.Contains(got["b"]["incoming"], `var m = {"done":"solved","new":"open"};`) {
		t.Fatalf("render defaults: %q", got)
	}
	got, err = tpl.Render(map[string]any{"project": "OPS", "limit": 10.0})
	if err != nil || got["a"]["trigger"] != `project == "OPS"` || !strings.Contains(got["b"]["incoming"], "entity.limit = 10;") {
		t.Fatalf("render values: %q %v", got, err)
	}
	// A value of the wrong type is a clear error, not a broken script.
	_, err = tpl.Render(map[string]any{"limit": "ten"})
	if !errors.Is(err, scripts.ErrInvalid) || !strings.Contains(err.Error(), `parameter "limit" must be a number, got a string`) {
		t.Fatalf("wrong type: %v", err)
	}
	_, err = tpl.Render(map[string]any{"status_map": []any{"x"}})
	if !errors.Is(err, scripts.ErrInvalid) || !strings.Contains(err.Error(), "must be an object, got an array") {
		t.Fatalf("wrong type: %v", err)
	}
}

func TestExtractRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec scripts.ParamSpec
		want string
	}{
		{"absent literal", scripts.ParamSpec{Name: "p", Literal: `"OPS"`}, "in none of the scripts"},
		{"not json", scripts.ParamSpec{Name: "p", Literal: `ENG`}, "not one JSON value"},
		{"two values", scripts.ParamSpec{Name: "p", Literal: `1 2`}, "not one JSON value"},
		{"type mismatch", scripts.ParamSpec{Name: "p", Type: "number", Literal: `"ENG"`}, "type number, but literal"},
		{"bad type", scripts.ParamSpec{Name: "p", Type: "int", Literal: `25`}, "is not string, number"},
		{"bad name", scripts.ParamSpec{Name: "a-b", Literal: `25`}, "letters, digits"},
		{"null", scripts.ParamSpec{Name: "p", Literal: `null`}, "no type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := scripts.Extract(sampleSources(), []scripts.ParamSpec{tc.spec})
			if !errors.Is(err, scripts.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func sampleBody(t *testing.T) scripts.Body {
	t.Helper()
	src, params, err := scripts.Extract(sampleSources(), []scripts.ParamSpec{{Name: "project", Literal: `"ENG"`}})
	if err != nil {
		t.Fatal(err)
	}
	return scripts.Body{Title: "Eng", Description: "d", SideA: "desk", SideB: "tracker", Params: params, Sources: src,
		Options:  json.RawMessage(`{"on_unmatch":"keep"}`),
		Fixtures: map[string]json.RawMessage{"a-open.json": json.RawMessage(`{"side":"a","entity":{"fields":{}}}`)}}
}

func TestArchiveRoundTrip(t *testing.T) {
	b := sampleBody(t)
	var buf bytes.Buffer
	if err := scripts.ExportArchive(&buf, "eng-sync", b); err != nil {
		t.Fatal(err)
	}
	name, got, err := scripts.ImportArchive(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if name != "eng-sync" {
		t.Fatalf("name %q", name)
	}
	if string(got.Fixtures["a-open.json"]) != string(b.Fixtures["a-open.json"]) || got.Title != "Eng" ||
		got.Sources["a"]["trigger"] != b.Sources["a"]["trigger"] || string(got.Options) != string(b.Options) {
		t.Fatalf("round trip lost something: %+v", got)
	}
	if d, _ := scripts.DiffBodies(b, got); len(d) != 0 {
		t.Fatalf("round trip differs: %+v", d)
	}
}

// tgz builds an archive from entries; a nil body makes a symlink.
func tgz(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range entries {
		body := make([]byte, h.Size)
		for i := range body {
			body[i] = '{'
		}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		h.Mode = 0o644
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportRefuses(t *testing.T) {
	tj := tar.Header{Name: "x/template.json", Size: 1}
	for _, tc := range []struct {
		name    string
		archive []byte
		is      error
		want    string
	}{
		{"dotdot", tgz(t, tar.Header{Name: "x/../../etc/passwd", Size: 1}), scripts.ErrInvalid, "unsafe path"},
		{"absolute", tgz(t, tar.Header{Name: "/etc/passwd", Size: 1}), scripts.ErrInvalid, "unsafe path"},
		{"backslash", tgz(t, tar.Header{Name: `x\..\y`, Size: 1}), scripts.ErrInvalid, "unsafe path"},
		{"symlink", tgz(t, tar.Header{Name: "x/a.outgoing.js", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}), scripts.ErrInvalid, "no links"},
		{"oversize", tgz(t, tar.Header{Name: "x/a.outgoing.js", Size: scripts.MaxArchiveBytes + 1}), scripts.ErrTooLarge, "more than"},
		{"unknown file", tgz(t, tj, tar.Header{Name: "x/a.outgoing.ts", Size: 1}), scripts.ErrInvalid, `unknown file "a.outgoing.ts"`},
		{"no template.json", tgz(t, tar.Header{Name: "x/a.outgoing.js", Size: 1}), scripts.ErrInvalid, "template.json is missing"},
		{"not gzip", []byte("plain text"), scripts.ErrInvalid, "not a gzip archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := scripts.ImportArchive(bytes.NewReader(tc.archive))
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %v %q", err, tc.is, tc.want)
			}
		})
	}
	// Many entries are refused before they are all read.
	many := make([]tar.Header, scripts.MaxArchiveEntries+1)
	for i := range many {
		many[i] = tar.Header{Name: "x/", Typeflag: tar.TypeDir}
	}
	if _, _, err := scripts.ImportArchive(bytes.NewReader(tgz(t, many...))); !errors.Is(err, scripts.ErrTooLarge) {
		t.Fatalf("many entries: %v", err)
	}
}

func TestUnifiedDiff(t *testing.T) {
	a := "l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\nl10\nl11\nl12\n"
	b := "l1\nL2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\nl10\nl11\nl12\nl13\n"
	got := scripts.Unified("a.outgoing.js", a, b)
	want := "--- a/a.outgoing.js\n+++ b/a.outgoing.js\n" +
		"@@ -1,5 +1,5 @@\n l1\n-l2\n+L2\n l3\n l4\n l5\n" +
		"@@ -10,3 +10,4 @@\n l10\n l11\n l12\n+l13\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if scripts.Unified("x", a, a) != "" {
		t.Fatal("equal texts give a diff")
	}
	if got := scripts.Unified("x", "", "new\n"); got != "--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n+new\n" {
		t.Fatalf("added file: %q", got)
	}
}

// Every built-in, with its fixtures, survives export and import unchanged,
// and so does a folder archived by tar itself ("./" prefixes, folder entries).
func TestBuiltinsThroughArchives(t *testing.T) {
	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, tpl := range lib.List() {
		fixtures, err := scripts.Fixtures(tpl.Name)
		if err != nil {
			t.Fatal(err)
		}
		b := scripts.BodyOf(tpl, fixtures)
		var buf bytes.Buffer
		if err := scripts.ExportArchive(&buf, tpl.Name, b); err != nil {
			t.Fatal(err)
		}
		name, got, err := scripts.ImportArchive(&buf)
		if err != nil || name != tpl.Name {
			t.Fatalf("%s: %q %v", tpl.Name, name, err)
		}
		if d, err := scripts.DiffBodies(b, got); err != nil || len(d) != 0 || len(got.Fixtures) != len(fixtures) {
			t.Fatalf("%s changed through an archive: %+v %v", tpl.Name, d, err)
		}
	}

	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(name, body string, dir bool) {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}
		if dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	add("./", "", true)
	add("./esc/", "", true)
	add("./esc/template.json", `{"title": "T", "params": [{"name": "p", "default": 1}]}`, false)
	add("./esc/a.outgoing.js", "replica.n = {{p}};\n", false)
	add("./esc/testdata/", "", true)
	add("./esc/testdata/a-one.json", `{"side": "a"}`, false)
	_ = tw.Close()
	_ = zw.Close()
	name, got, err := scripts.ImportArchive(&buf)
	if err != nil || name != "esc" || got.Sources["a"]["outgoing"] != "replica.n = {{p}};\n" || len(got.Fixtures) != 1 || got.Params[0].ParamType() != "number" {
		t.Fatalf("tar's own layout: %q %+v %v", name, got, err)
	}
}
