package htmltext

import (
	"os"
	"strings"
	"testing"
)

// The fixtures are HTML as RT stores it: a reply written in RT's rich-text
// editor (CKEditor) and a mail sent from Outlook (head, style sheet, Office
// markup, a tracking script).
func TestFixtures(t *testing.T) {
	for _, name := range []string{"ckeditor", "outlook"} {
		in, err := os.ReadFile("testdata/" + name + ".html")
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile("testdata/" + name + ".txt")
		if err != nil {
			t.Fatal(err)
		}
		if got := Text(string(in)); got != strings.TrimSpace(string(want)) {
			t.Errorf("%s:\n--- got\n%s\n--- want\n%s", name, got, want)
		}
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"<p>Hello &amp; <b>welcome</b></p><ul><li>one</li><li>two</li></ul>line<br>break": "Hello & welcome\n\n- one\n- two\nline\nbreak",
		"<style>p{color:red}</style><script>alert(1)</script>visible":                     "visible",
		"<head><title>t</title></head><body>b</body>":                                     "b",
		`<a href="https://x.example/">https://x.example</a>`:                              "https://x.example",
		`<a href="javascript:void(0)">click</a> <a href="#top">top</a>`:                   "click top",
		`<a href="https://x.example/a"></a>`:                                              "https://x.example/a",
		"<pre>  a\n    b</pre>after":                                                      "a\n    b\n\nafter",
		"a<hr>b":                                                                          "a\n\n----\n\nb",
		"<table><tr><td></td><td>x</td></tr></table>":                                     "x",
		"plain text, no tags":                                                             "plain text, no tags",
		"":                                                                                "",
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}
