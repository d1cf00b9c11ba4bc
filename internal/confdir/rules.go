package confdir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// RulesFile is the file name of a side's validation rules (a.rules.json),
// written only when the side has rules.
func RulesFile(side store.Side) string { return fmt.Sprintf("%s.rules.json", side) }

// readRules reads a side's rules file into c (strictly, like the other JSON
// files); a missing file is no rules.
func readRules(dir, rel string, side store.Side, c *Connection) (*Problem, error) {
	name := rel + "/" + RulesFile(side)
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var rules []scripting.Rule
	if pr, err := decodeFile(path, name, &rules); err != nil || pr != nil {
		return pr, err
	}
	if rules == nil { // "null"
		rules = []scripting.Rule{}
	}
	normalizeRules(rules)
	if c.Rules == nil {
		c.Rules = map[store.Side][]scripting.Rule{}
		c.rulesText = map[store.Side][]byte{}
	}
	c.Rules[side], c.rulesText[side] = rules, b
	return nil, nil
}

// normalizeRules fills in the kind of an expression rule given without
// one, as the API does before it saves.
func normalizeRules(rules []scripting.Rule) {
	for i := range rules {
		if rules[i].Kind == "" && rules[i].Expr != "" {
			rules[i].Kind = "expr"
		}
	}
}

// rulesDoc is a rule list as the store keeps it (and the API saves it):
// indented JSON of the list; "" for no rules is never stored by apply,
// which saves "[]" to clear a side.
func rulesDoc(rules []scripting.Rule) (string, error) {
	if rules == nil {
		rules = []scripting.Rule{}
	}
	b, err := json.MarshalIndent(rules, "", "  ")
	return string(b), err
}

// sameRules reports whether a stored rules version holds the folder's
// rules: both are parsed and compared as values, so formatting, key order
// and an absent file versus an empty list never count as changes.
func sameRules(stored store.ScriptVersion, ok bool, folder []scripting.Rule) bool {
	var cur []scripting.Rule
	if ok {
		var err error
		if cur, err = scripting.ParseRules(stored.Source); err != nil {
			return false // unreadable in the store: the folder's version replaces it
		}
		normalizeRules(cur)
	}
	if len(cur) == 0 || len(folder) == 0 {
		return len(cur) == len(folder)
	}
	a, err1 := json.Marshal(cur)
	b, err2 := json.Marshal(folder)
	return err1 == nil && err2 == nil && bytes.Equal(a, b)
}

// checkRules compiles a connection's rules offline, as the API's validate
// does: an error names the rule's position in the list and points into the
// file (at the error inside an expression, else at the rule). A unique
// rule's lookup cannot be checked without the target's connector.
func checkRules(rel string, c Connection) []Problem {
	var probs []Problem
	for _, side := range Sides {
		rules, ok := c.Rules[side]
		if !ok {
			continue
		}
		_, err := scripting.CompileRules(rules)
		if err == nil {
			continue
		}
		file := rel + "/" + RulesFile(side)
		var se *scripting.Error
		if !errors.As(err, &se) || se.Rule == 0 {
			probs = append(probs, Problem{File: file, Msg: err.Error()})
			continue
		}
		text := c.rulesText[side]
		p := Problem{File: file, Msg: fmt.Sprintf("rule %d (%s): %s", se.Rule, ruleKind(rules[se.Rule-1]), se.Message)}
		pos := rulePositions(text)
		if se.Rule-1 < len(pos) {
			rp := pos[se.Rule-1]
			off := rp.object
			key := "expr"
			if rules[se.Rule-1].Kind == "unique" {
				key = "where"
			}
			if s, ok := rp.strings[key]; ok && se.Line > 0 {
				off = offsetInString(text, s, se.Line, se.Column)
				p.Msg += fmt.Sprintf(" (%s %d:%d)", key, se.Line, se.Column)
			}
			p.Line, p.Column = position(text, off)
		}
		probs = append(probs, p)
	}
	return probs
}

func ruleKind(r scripting.Rule) string {
	if r.Kind == "" {
		return "no kind"
	}
	return r.Kind
}

// rulePos is where one rule of a rules file is: the offset of its "{" and
// of the opening quote of each of its string values, by key.
type rulePos struct {
	object  int64
	strings map[string]int64
}

// rulePositions finds each rule of a rule list in its file. It is called
// on a file that decoded, so errors only cut the list short.
func rulePositions(b []byte) []rulePos {
	dec := json.NewDecoder(bytes.NewReader(b))
	skip := func(off int64) int64 {
		for off < int64(len(b)) && bytes.IndexByte([]byte(" \t\r\n,:"), b[off]) >= 0 {
			off++
		}
		return off
	}
	var out []rulePos
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return nil
	}
	for dec.More() {
		rp := rulePos{object: skip(dec.InputOffset()), strings: map[string]int64{}}
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return out
		}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return out
			}
			at := skip(dec.InputOffset())
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return out
			}
			if key, ok := k.(string); ok && len(raw) > 0 && raw[0] == '"' && at < int64(len(b)) && b[at] == '"' {
				rp.strings[key] = at
			}
		}
		if _, err := dec.Token(); err != nil { // "}"
			return out
		}
		out = append(out, rp)
	}
	return out
}

// offsetInString maps a 1-based line and column (in code points) of a JSON
// string's decoded text to a byte offset in the file; quote is the offset
// of the string's opening quote. Escapes count as the one character they
// stand for; "\n" starts a new line.
func offsetInString(b []byte, quote int64, line, col int) int64 {
	l, c := 1, 1
	i := quote + 1
	for i < int64(len(b)) && b[i] != '"' {
		if l == line && c == col {
			return i
		}
		if b[i] == '\\' && i+1 < int64(len(b)) {
			esc := b[i+1]
			switch {
			case esc == 'u':
				i += 6
			default:
				i += 2
			}
			if esc == 'n' {
				l, c = l+1, 1
			} else {
				c++
			}
			continue
		}
		_, size := utf8.DecodeRune(b[i:])
		i += int64(size)
		c++
	}
	return i
}
