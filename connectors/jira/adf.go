package jira

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

// Atlassian Document Format (ADF) is the JSON tree Jira Cloud's REST v3
// uses for rich text (descriptions, comments, multi-line text custom fields).
// Duplex sees plain text with a little Markdown:
//
//	read (ADF → text)                  write (text → ADF)
//	paragraph, blank line between      blocks split on blank lines; a
//	                                     block's kind is set by its first line
//	hardBreak → "\n"                   a single "\n" inside a block → hardBreak
//	bulletList → "- item" (nested      lines "- x" / "* x" → bulletList, two
//	  lists indented two spaces)         spaces of indent → nested list
//	orderedList → "1. item"            lines "1. x" → orderedList
//	codeBlock → ```lang … ```          ``` fences → codeBlock (language kept)
//	heading → "# " × level             "# x" … "###### x" → heading
//	blockquote → "> " lines            "> " lines → blockquote
//	rule → "---"                       "---" alone → rule
//	marks: code `x`, strong **x**,     inline marks are written as the
//	  em *x*, strike ~~x~~, link         literal characters (not parsed):
//	  [x](url)                           the text reads back the same
//	mention, emoji, date, status,
//	  inlineCard → their text/url
//	table → "| a | b |" rows; media → "[attachment]"
//
// The write side produces exactly the nodes the read side turns back into
// the same text, so what Duplex writes reads back equal (the engine then
// recognises its own echo).

// adfNode is one ADF node; only what the conversion needs is kept.
type adfNode struct {
	Type    string         `json:"type"`
	Text    string         `json:"text,omitempty"`
	Attrs   map[string]any `json:"attrs,omitempty"`
	Marks   []adfMark      `json:"marks,omitempty"`
	Content []adfNode      `json:"content,omitempty"`
}

type adfMark struct {
	Type  string         `json:"type"`
	Attrs map[string]any `json:"attrs,omitempty"`
}

// adfText converts an ADF value as found in a JSON answer (a document
// object, a plain string from an older field, or null) to text.
func adfText(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return ""
	}
	if s[0] == '"' {
		var str string
		if json.Unmarshal(raw, &str) == nil {
			return str
		}
		return ""
	}
	var doc adfNode
	if err := json.Unmarshal(raw, &doc); err != nil {
		return ""
	}
	return docText(doc)
}

func docText(doc adfNode) string {
	return strings.TrimRight(blocksText(doc.Content, ""), "\n")
}

// blocksText renders block nodes separated by a blank line, each line
// prefixed with indent (for content nested in list items).
func blocksText(nodes []adfNode, indent string) string {
	var parts []string
	for _, n := range nodes {
		if t := blockText(n, indent); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, "\n\n")
}

func blockText(n adfNode, indent string) string {
	switch n.Type {
	case "paragraph":
		return prefixLines(inlineText(n.Content), indent)
	case "heading":
		level := 1
		if l, ok := n.Attrs["level"].(float64); ok && l >= 1 && l <= 6 {
			level = int(l)
		}
		return indent + strings.Repeat("#", level) + " " + inlineText(n.Content)
	case "bulletList", "orderedList":
		return listText(n, indent)
	case "codeBlock":
		lang, _ := n.Attrs["language"].(string)
		var b strings.Builder
		for _, c := range n.Content {
			b.WriteString(c.Text)
		}
		return prefixLines("```"+lang+"\n"+b.String()+"\n```", indent)
	case "blockquote":
		inner := blocksText(n.Content, "")
		return prefixLines(prefixLines(inner, "> "), indent)
	case "rule":
		return indent + "---"
	case "table":
		var rows []string
		for _, row := range n.Content {
			var cells []string
			for _, cell := range row.Content {
				cells = append(cells, strings.ReplaceAll(blocksText(cell.Content, ""), "\n", " "))
			}
			rows = append(rows, indent+"| "+strings.Join(cells, " | ")+" |")
		}
		return strings.Join(rows, "\n")
	case "mediaSingle", "mediaGroup", "media":
		return indent + "[attachment]"
	case "panel", "expand", "nestedExpand", "layoutSection", "layoutColumn", "bodiedExtension":
		return blocksText(n.Content, indent)
	default:
		if len(n.Content) > 0 {
			// An unknown block: its inline or block children, whichever they are.
			if isInline(n.Content[0].Type) {
				return prefixLines(inlineText(n.Content), indent)
			}
			return blocksText(n.Content, indent)
		}
		if n.Text != "" {
			return indent + n.Text
		}
		return ""
	}
}

func listText(n adfNode, indent string) string {
	start := 1
	if o, ok := n.Attrs["order"].(float64); ok && o >= 1 {
		start = int(o)
	}
	var items []string
	for i, item := range n.Content {
		marker := "- "
		if n.Type == "orderedList" {
			marker = strconv.Itoa(start+i) + ". "
		}
		var lines []string
		for j, c := range item.Content {
			switch {
			case c.Type == "bulletList" || c.Type == "orderedList":
				lines = append(lines, listText(c, indent+"  "))
			case j == 0:
				// The item's first paragraph follows the marker; its
				// following lines align under the text.
				t := blockText(c, "")
				t = strings.ReplaceAll(t, "\n", "\n"+indent+"  ")
				lines = append(lines, indent+marker+t)
			default:
				lines = append(lines, blockText(c, indent+"  "))
			}
		}
		if len(item.Content) == 0 {
			lines = append(lines, indent+marker)
		}
		items = append(items, strings.Join(lines, "\n"))
	}
	return strings.Join(items, "\n")
}

func isInline(t string) bool {
	switch t {
	case "text", "hardBreak", "mention", "emoji", "date", "status", "inlineCard", "placeholder", "inlineExtension", "mediaInline":
		return true
	}
	return false
}

func inlineText(nodes []adfNode) string {
	var b strings.Builder
	for _, n := range nodes {
		switch n.Type {
		case "text":
			b.WriteString(markText(n.Text, n.Marks))
		case "hardBreak":
			b.WriteString("\n")
		case "mention", "emoji", "status":
			if t, ok := n.Attrs["text"].(string); ok && t != "" {
				b.WriteString(t)
			} else if t, ok := n.Attrs["shortName"].(string); ok {
				b.WriteString(t)
			}
		case "date":
			if ts, ok := n.Attrs["timestamp"].(string); ok {
				b.WriteString(ts)
			}
		case "inlineCard":
			if u, ok := n.Attrs["url"].(string); ok {
				b.WriteString(u)
			}
		default:
			if n.Text != "" {
				b.WriteString(n.Text)
			} else if len(n.Content) > 0 {
				b.WriteString(inlineText(n.Content))
			}
		}
	}
	return b.String()
}

func markText(s string, marks []adfMark) string {
	if len(marks) == 0 || strings.TrimSpace(s) == "" {
		return s
	}
	// Spaces stay outside the markers ("**now** ", not "**now **").
	core := strings.TrimSpace(s)
	lead := s[:strings.Index(s, core)]
	trail := s[len(lead)+len(core):]
	s = core
	for _, m := range marks {
		switch m.Type {
		case "code":
			s = "`" + s + "`"
		case "strong":
			s = "**" + s + "**"
		case "em":
			s = "*" + s + "*"
		case "strike":
			s = "~~" + s + "~~"
		case "link":
			if href, ok := m.Attrs["href"].(string); ok && href != s {
				s = "[" + s + "](" + href + ")"
			}
		}
	}
	return lead + s + trail
}

func prefixLines(s, prefix string) string {
	if prefix == "" {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l == "" && strings.TrimSpace(prefix) == "" {
			continue
		}
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// ---- text → ADF ----

var (
	reBullet  = regexp.MustCompile(`^( *)[-*] (.*)$`)
	reOrdered = regexp.MustCompile(`^( *)(\d+)\. (.*)$`)
	reHeading = regexp.MustCompile(`^(#{1,6}) (.*)$`)
)

// textADF converts text to an ADF document; "" gives nil (no document),
// which clears the field.
func textADF(text string) map[string]any {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if strings.TrimSpace(text) == "" {
		return nil
	}
	return map[string]any{"type": "doc", "version": 1, "content": textBlocks(strings.Split(strings.Trim(text, "\n"), "\n"))}
}

// textBlocks turns lines into block nodes.
func textBlocks(lines []string) []any {
	var out []any
	for i := 0; i < len(lines); {
		line := lines[i]
		switch {
		case strings.TrimSpace(line) == "":
			i++
		case strings.HasPrefix(line, "```"):
			lang := strings.TrimSpace(strings.TrimPrefix(line, "```"))
			j := i + 1
			for j < len(lines) && strings.TrimRight(lines[j], " ") != "```" {
				j++
			}
			code := strings.Join(lines[i+1:min(j, len(lines))], "\n")
			node := map[string]any{"type": "codeBlock"}
			if lang != "" {
				node["attrs"] = map[string]any{"language": lang}
			}
			if code != "" {
				node["content"] = []any{map[string]any{"type": "text", "text": code}}
			}
			out = append(out, node)
			i = j + 1
		case reBullet.MatchString(line) && indentOf(line) == 0, reOrdered.MatchString(line) && indentOf(line) == 0:
			j := i + 1
			for j < len(lines) && strings.TrimSpace(lines[j]) != "" && (reBullet.MatchString(lines[j]) || reOrdered.MatchString(lines[j]) || indentOf(lines[j]) > 0) {
				j++
			}
			list, _ := parseList(lines[i:j], 0)
			out = append(out, list...)
			i = j
		case reHeading.MatchString(line):
			m := reHeading.FindStringSubmatch(line)
			out = append(out, map[string]any{"type": "heading", "attrs": map[string]any{"level": len(m[1])}, "content": inlineNodes(m[2])})
			i++
		case line == "---":
			out = append(out, map[string]any{"type": "rule"})
			i++
		case strings.HasPrefix(line, "> ") || line == ">":
			j := i
			var inner []string
			for j < len(lines) && (strings.HasPrefix(lines[j], "> ") || lines[j] == ">") {
				inner = append(inner, strings.TrimPrefix(strings.TrimPrefix(lines[j], ">"), " "))
				j++
			}
			out = append(out, map[string]any{"type": "blockquote", "content": textBlocks(inner)})
			i = j
		default:
			j := i
			var para []string
			// A paragraph runs to the next blank line: a list or a fence
			// right under a line of text stays text (with hard breaks),
			// which reads back exactly as written.
			for j < len(lines) && strings.TrimSpace(lines[j]) != "" {
				para = append(para, lines[j])
				j++
			}
			out = append(out, paragraph(strings.Join(para, "\n")))
			i = j
		}
	}
	return out
}

func indentOf(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }

// parseList reads consecutive list lines at one indent into one or more
// lists (a switch between "-" and "1." starts a new list); deeper-indented
// lines nest in the preceding item, other indented lines continue its text.
func parseList(lines []string, indent int) ([]any, int) {
	var lists []any
	var cur map[string]any
	var items []any
	curType := ""
	flush := func() {
		if cur != nil {
			cur["content"] = items
			lists = append(lists, cur)
		}
		cur, items, curType = nil, nil, ""
	}
	i := 0
	for i < len(lines) {
		l := lines[i]
		ind := indentOf(l)
		if ind < indent {
			break
		}
		typ, text, order := "", "", 0
		if m := reBullet.FindStringSubmatch(l); m != nil && ind == indent {
			typ, text = "bulletList", m[2]
		} else if m := reOrdered.FindStringSubmatch(l); m != nil && ind == indent {
			typ, text = "orderedList", m[3]
			order, _ = strconv.Atoi(m[2])
		}
		switch {
		case typ != "":
			if typ != curType {
				flush()
				curType = typ
				cur = map[string]any{"type": typ}
				if typ == "orderedList" && order != 1 {
					cur["attrs"] = map[string]any{"order": order}
				}
			}
			items = append(items, map[string]any{"type": "listItem", "content": []any{paragraph(text)}})
			i++
		case len(items) > 0 && ind >= indent+2 && (reBullet.MatchString(strings.TrimLeft(l, " ")) || reOrdered.MatchString(strings.TrimLeft(l, " "))):
			nested, n := parseList(lines[i:], indent+2)
			last := items[len(items)-1].(map[string]any)
			last["content"] = append(last["content"].([]any), nested...)
			i += n
			if n == 0 {
				i++
			}
		case len(items) > 0 && ind >= indent+2:
			// A continuation line of the last item's paragraph.
			last := items[len(items)-1].(map[string]any)
			content := last["content"].([]any)
			p := content[0].(map[string]any)
			p["content"] = append(p["content"].([]any), map[string]any{"type": "hardBreak"})
			p["content"] = append(p["content"].([]any), inlineNodes(l[indent+2:])...)
			i++
		default:
			flush()
			return lists, i
		}
	}
	flush()
	return lists, i
}

// paragraph makes a paragraph node; "\n" inside becomes hardBreak.
func paragraph(text string) map[string]any {
	var content []any
	for i, line := range strings.Split(text, "\n") {
		if i > 0 {
			content = append(content, map[string]any{"type": "hardBreak"})
		}
		content = append(content, inlineNodes(line)...)
	}
	if content == nil {
		content = []any{}
	}
	return map[string]any{"type": "paragraph", "content": content}
}

// inlineNodes is the text node for a line (ADF refuses empty text nodes).
func inlineNodes(s string) []any {
	if s == "" {
		return []any{}
	}
	return []any{map[string]any{"type": "text", "text": s}}
}
