package jira

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestADFToText reads ADF documents (shapes from Atlassian's ADF
// reference: paragraph, hardBreak, marks, lists, codeBlock, heading,
// blockquote, rule, mention, table) as text.
func TestADFToText(t *testing.T) {
	for _, tc := range []struct{ name, adf, want string }{
		{"null", `null`, ""},
		{"plain string (older field)", `"just text"`, "just text"},
		{"documented example", `{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"Main order flow broken"}]}]}`, "Main order flow broken"},
		{"paragraphs and hard break", `{"type":"doc","version":1,"content":[
			{"type":"paragraph","content":[{"type":"text","text":"one"},{"type":"hardBreak"},{"type":"text","text":"two"}]},
			{"type":"paragraph","content":[{"type":"text","text":"three"}]}]}`, "one\ntwo\n\nthree"},
		{"marks", `{"type":"doc","version":1,"content":[{"type":"paragraph","content":[
			{"type":"text","text":"run "},{"type":"text","text":"make","marks":[{"type":"code"}]},
			{"type":"text","text":" now","marks":[{"type":"strong"}]},{"type":"text","text":" see "},
			{"type":"text","text":"docs","marks":[{"type":"link","attrs":{"href":"https://x.test/d"}}]}]}]}`, "run `make` **now** see [docs](https://x.test/d)"},
		{"bullet list nested", `{"type":"doc","version":1,"content":[{"type":"bulletList","content":[
			{"type":"listItem","content":[{"type":"paragraph","content":[{"type":"text","text":"a"}]},
				{"type":"bulletList","content":[{"type":"listItem","content":[{"type":"paragraph","content":[{"type":"text","text":"a1"}]}]}]}]},
			{"type":"listItem","content":[{"type":"paragraph","content":[{"type":"text","text":"b"}]}]}]}]}`, "- a\n  - a1\n- b"},
		{"ordered list from 3", `{"type":"doc","version":1,"content":[{"type":"orderedList","attrs":{"order":3},"content":[
			{"type":"listItem","content":[{"type":"paragraph","content":[{"type":"text","text":"x"}]}]},
			{"type":"listItem","content":[{"type":"paragraph","content":[{"type":"text","text":"y"}]}]}]}]}`, "3. x\n4. y"},
		{"code block", `{"type":"doc","version":1,"content":[{"type":"codeBlock","attrs":{"language":"sql"},"content":[{"type":"text","text":"select 1;\nselect 2;"}]}]}`, "```sql\nselect 1;\nselect 2;\n```"},
		{"heading quote rule", `{"type":"doc","version":1,"content":[
			{"type":"heading","attrs":{"level":2},"content":[{"type":"text","text":"Steps"}]},
			{"type":"blockquote","content":[{"type":"paragraph","content":[{"type":"text","text":"quoted"}]}]},
			{"type":"rule"}]}`, "## Steps\n\n> quoted\n\n---"},
		{"mention emoji", `{"type":"doc","version":1,"content":[{"type":"paragraph","content":[
			{"type":"mention","attrs":{"id":"5b10a2844c20165700ede21g","text":"@Mia Krystof"}},{"type":"text","text":" thanks "},
			{"type":"emoji","attrs":{"shortName":":smile:","text":"😄"}}]}]}`, "@Mia Krystof thanks 😄"},
		{"table", `{"type":"doc","version":1,"content":[{"type":"table","content":[
			{"type":"tableRow","content":[{"type":"tableHeader","content":[{"type":"paragraph","content":[{"type":"text","text":"k"}]}]},{"type":"tableHeader","content":[{"type":"paragraph","content":[{"type":"text","text":"v"}]}]}]},
			{"type":"tableRow","content":[{"type":"tableCell","content":[{"type":"paragraph","content":[{"type":"text","text":"a"}]}]},{"type":"tableCell","content":[{"type":"paragraph","content":[{"type":"text","text":"1"}]}]}]}]}]}`, "| k | v |\n| a | 1 |"},
	} {
		if got := adfText(json.RawMessage(tc.adf)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestTextADF writes text as ADF, checks the node kinds produced, and reads
// it back: the text must come back unchanged (Duplex's echo check relies
// on it).
func TestTextADF(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		kinds      string // top-level node types
		back       string // what reads back when it is not the text itself
	}{
		{"one line", "hello", "paragraph", ""},
		{"line breaks", "a\nb\nc", "paragraph", ""},
		{"paragraphs", "a\n\nb", "paragraph,paragraph", ""},
		{"bullets", "- one\n- two", "bulletList", ""},
		{"star bullets", "* one\n* two", "bulletList", "- one\n- two"},
		{"nested bullets", "- one\n  - one.a\n  - one.b\n- two", "bulletList", ""},
		{"item continuation", "- one\n  more of one\n- two", "bulletList", ""},
		{"ordered", "1. a\n2. b", "orderedList", ""},
		{"ordered from 5", "5. a\n6. b", "orderedList", ""},
		{"code", "```\nx := 1\n\ny := 2\n```", "codeBlock", ""},
		{"code with language", "```python\nprint(1)\n```", "codeBlock", ""},
		{"heading", "# Title\n\nbody", "heading,paragraph", ""},
		{"quote", "> quoted\n> more", "blockquote", ""},
		{"rule", "above\n\n---\n\nbelow", "paragraph,rule,paragraph", ""},
		{"list under text", "Steps:\n- one\n- two", "paragraph", ""},
		{"mixed", "Intro\n\n- a\n- b\n\n```go\nf()\n```\n\nEnd", "paragraph,bulletList,codeBlock,paragraph", ""},
		{"crlf", "a\r\nb", "paragraph", "a\nb"},
		{"markdown marks stay text", "use `make` and **care**", "paragraph", ""},
	} {
		doc := textADF(tc.text)
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, n := range doc["content"].([]any) {
			kinds = append(kinds, n.(map[string]any)["type"].(string))
		}
		if strings.Join(kinds, ",") != tc.kinds {
			t.Errorf("%s: nodes %v, want %s (%s)", tc.name, kinds, tc.kinds, b)
		}
		if strings.Contains(string(b), `"text":""`) {
			t.Errorf("%s: empty text node (Jira refuses them): %s", tc.name, b)
		}
		want := tc.back
		if want == "" {
			want = tc.text
		}
		if got := adfText(b); got != want {
			t.Errorf("%s: read back %q, want %q (%s)", tc.name, got, want, b)
		}
	}
	if textADF("  \n ") != nil {
		t.Errorf("blank text must clear the field (nil document)")
	}
	// A hard break inside a paragraph, not two paragraphs.
	b, _ := json.Marshal(textADF("a\nb"))
	if !strings.Contains(string(b), `{"type":"hardBreak"}`) {
		t.Errorf("no hardBreak: %s", b)
	}
}
