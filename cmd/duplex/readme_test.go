package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README against the binary (issue 19: it listed fewer connectors than
// the binary has, a blank line broke the connectors table, and curl lines
// used a TOKEN nothing set). The versions and bundle figures are checked by
// frontend/app/scripts/readme.test.mjs.

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestREADMEListsEveryConnector(t *testing.T) {
	md := readme(t)
	reg, err := registry()
	if err != nil {
		t.Fatal(err)
	}
	concepts := regexp.MustCompile("(?m)^\\| connector \\|.*\\|$").FindString(md)
	if concepts == "" {
		t.Fatal("README.md's Concepts table has no connector row")
	}
	// The connectors table: its header, then rows up to the first line that
	// is not a row. A blank line inside ends it early, and Markdown renders
	// the rest as text.
	i := strings.Index(md, "| connector | tested against |")
	if i < 0 {
		t.Fatal("README.md has no connectors table")
	}
	var rows []string
	for _, l := range strings.Split(md[i:], "\n") {
		if !strings.HasPrefix(l, "|") {
			break
		}
		rows = append(rows, l)
	}
	for _, kind := range reg.Kinds() {
		if !strings.Contains(concepts, "`"+kind+"`") {
			t.Errorf("the Concepts table's connector row does not name `%s`: %s", kind, concepts)
		}
		found := false
		for _, r := range rows {
			found = found || strings.HasPrefix(r, "| `"+kind+"` ")
		}
		if !found {
			t.Errorf("the connectors table has no row for `%s` (a blank line before it ends the table)", kind)
		}
	}
}

// Every shell block that uses $TOKEN follows a line that sets it or says
// what it is, in the same section; the demo prints the line the README's
// first block shows.
func TestREADMECurlLinesSetToken(t *testing.T) {
	md := readme(t)
	sections := regexp.MustCompile(`(?m)^#{2,3} `).Split(md, -1)
	for _, sec := range sections {
		parts := strings.Split(sec, "```")
		told := false
		for j, p := range parts {
			if j%2 == 0 { // text between blocks
				told = told || strings.Contains(p, "`TOKEN`")
				continue
			}
			told = told || strings.Contains(p, "TOKEN=")
			if strings.Contains(p, "$TOKEN") && !told {
				head, _, _ := strings.Cut(sec, "\n")
				t.Errorf("section %q: a block uses $TOKEN before anything sets it or says what it is:\n%s", head, p)
			}
		}
	}
	if !strings.Contains(md, "export TOKEN=dpx_") || !strings.Contains(demoHelp, "export TOKEN=%[8]s") {
		t.Error("the README's TOKEN line is not the one the demo prints (export TOKEN=…)")
	}
	if !strings.Contains(md, "make run DEMO_FLAGS=--reset") || !strings.Contains(demoContinuesNote, "make run DEMO_FLAGS=--reset") {
		t.Error("the README and a continued demo's note should name the same way to start fresh")
	}
}

// The README names the stages make test runs, as the Makefile lists them.
func TestREADMENamesTheTestStages(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TEST_STAGES\s*:?=\s*(.+)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile has no TEST_STAGES")
	}
	stages := strings.Join(strings.Fields(string(m[1])), " ")
	if md := readme(t); !strings.Contains(md, "(`"+stages+"`") {
		t.Errorf("README.md does not list make test's stages as the Makefile does: (`%s`", stages)
	}
}
