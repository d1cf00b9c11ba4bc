// Package htmltext turns an HTML message (a mail's text/html part, RT's
// rich-text editor) into plain text a person reads in another tracker:
// what a mail client would show, not the markup. It backs RT's HTML-only
// messages and the scripts' htmlToText helper.
//
// Dropped with their content: script, style, head, title, template,
// noscript. Kept readable: paragraphs and headings as blank-line separated
// blocks, <br> as a line break, links as "text (url)", lists as "- item"
// or "1. item" (nested ones indented), table rows as lines with cells
// separated by " | ", <pre> as written, images by their alt text.
package htmltext

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// hidden elements: their content is never shown.
var hidden = map[string]bool{"script": true, "style": true, "head": true, "title": true, "template": true, "noscript": true}

// blocks end a line; paras also leave a blank line.
var blocks = map[string]bool{"div": true, "section": true, "article": true, "header": true, "footer": true,
	"blockquote": true, "tr": true, "ul": true, "ol": true, "li": true, "dl": true, "dt": true,
	"dd": true, "form": true, "center": true, "address": true, "figure": true, "body": true, "html": true}
var paras = map[string]bool{"p": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "pre": true, "hr": true, "table": true}

type list struct {
	ordered bool
	n       int
}

type link struct {
	href  string
	start int // b.Len() at the <a>
}

type conv struct {
	b       strings.Builder
	hide    int // depth inside hidden elements
	pre     int
	lists   []list
	links   []link
	cell    bool   // a cell was opened in the current row
	pending string // a list bullet, written before the next text
	sep     bool   // a cell separator is due before the next text
	space   bool   // the source had whitespace before the next text
}

// Text returns the plain text of an HTML document or fragment.
func Text(s string) string {
	c := &conv{}
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return c.finish()
		case html.TextToken:
			if c.hide == 0 {
				c.text(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			attrs := map[string]string{}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				attrs[string(k)] = string(v)
			}
			if hidden[tag] {
				if tt == html.StartTagToken {
					c.hide++
				}
				continue
			}
			if c.hide == 0 {
				c.open(tag, attrs)
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if hidden[tag] {
				if c.hide > 0 {
					c.hide--
				}
				continue
			}
			if c.hide == 0 {
				c.close(tag)
			}
		}
	}
}

func (c *conv) open(tag string, attrs map[string]string) {
	switch {
	case tag == "br":
		c.newline()
	case tag == "ul" || tag == "ol":
		c.newline()
		c.lists = append(c.lists, list{ordered: tag == "ol"})
	case tag == "li":
		c.newline()
		bullet := "- "
		depth := len(c.lists)
		if depth > 0 {
			l := &c.lists[depth-1]
			l.n++
			if l.ordered {
				bullet = strconv.Itoa(l.n) + ". "
			}
			c.pending = strings.Repeat("  ", depth-1) + bullet
		} else {
			c.pending = bullet
		}
	case tag == "tr":
		c.newline()
		c.cell = false
	case tag == "td" || tag == "th":
		c.sep = c.cell
		c.cell = true
	case tag == "a":
		c.links = append(c.links, link{href: strings.TrimSpace(attrs["href"]), start: c.b.Len()})
	case tag == "img":
		if alt := strings.TrimSpace(attrs["alt"]); alt != "" {
			c.text("[" + alt + "]")
		}
	case tag == "pre":
		c.blank()
		c.pre++
	case paras[tag]:
		c.blank()
		if tag == "hr" {
			c.write("----")
			c.blank()
		}
	case blocks[tag]:
		c.newline()
	}
}

func (c *conv) close(tag string) {
	switch {
	case tag == "ul" || tag == "ol":
		if len(c.lists) > 0 {
			c.lists = c.lists[:len(c.lists)-1]
		}
		c.newline()
	case tag == "a":
		if len(c.links) == 0 {
			return
		}
		l := c.links[len(c.links)-1]
		c.links = c.links[:len(c.links)-1]
		shown := strings.TrimSpace(c.b.String()[l.start:])
		if show(l.href, shown) {
			if shown == "" {
				c.write(l.href) // a link without text: its address
			} else {
				c.b.WriteString(" (" + l.href + ")")
			}
		}
	case tag == "pre":
		if c.pre > 0 {
			c.pre--
		}
		c.blank()
	case paras[tag]:
		c.blank()
	case blocks[tag]:
		c.newline()
	}
}

// show says whether a link's target adds anything to its text: not for
// in-page anchors and scripts, nor when the text is the address already.
func show(href, text string) bool {
	if href == "" || strings.HasPrefix(href, "#") || strings.HasPrefix(strings.ToLower(href), "javascript:") {
		return false
	}
	bare := strings.TrimPrefix(strings.TrimPrefix(href, "mailto:"), "tel:")
	for _, t := range []string{href, bare, strings.TrimSuffix(href, "/")} {
		if text == t {
			return false
		}
	}
	return true
}

// text writes character data: whitespace collapsed outside <pre>, a
// space kept where the source had one between two pieces of text.
func (c *conv) text(raw string) {
	if c.pre > 0 {
		c.write(raw)
		return
	}
	words := strings.Fields(raw)
	if len(words) == 0 {
		c.space = c.space || raw != ""
		return
	}
	first, _ := utf8.DecodeRuneInString(raw)
	last, _ := utf8.DecodeLastRuneInString(raw)
	if unicode.IsSpace(first) {
		c.space = true
	}
	c.write(strings.Join(words, " "))
	c.space = unicode.IsSpace(last)
}

func (c *conv) write(s string) {
	switch {
	case c.pending != "":
		c.b.WriteString(c.pending)
	case c.sep && !c.atLineStart(): // not after an empty first cell
		c.b.WriteString(" | ")
	case c.space && !c.atLineStart():
		c.b.WriteString(" ")
	}
	c.pending, c.sep, c.space = "", false, false
	c.b.WriteString(s)
}

func (c *conv) atLineStart() bool {
	s := c.b.String()
	return s == "" || strings.HasSuffix(s, "\n")
}

func (c *conv) newline() {
	c.space = false
	if !c.atLineStart() {
		c.b.WriteString("\n")
	}
}

func (c *conv) blank() {
	c.newline()
	s := c.b.String()
	if s != "" && !strings.HasSuffix(s, "\n\n") {
		c.b.WriteString("\n")
	}
}

func (c *conv) finish() string {
	lines := strings.Split(c.b.String(), "\n")
	out := make([]string, 0, len(lines))
	blanks := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\u00a0")
		if strings.TrimSpace(strings.ReplaceAll(l, "\u00a0", " ")) == "" {
			blanks++
			if blanks > 1 {
				continue
			}
			l = ""
		} else {
			blanks = 0
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}
