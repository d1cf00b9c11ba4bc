// Package mapping is the field-mapping view of one direction of a
// connection: rows of target field ← source field, constant or value map,
// the comments and the trigger. Render writes the direction's outgoing and
// incoming scripts from a mapping; the scripts stay the truth. Each rendered
// script carries its mapping in a header comment, and Parse gives the mapping
// back only when both scripts are byte for byte what Render makes of it: a
// hand edit turns the direction into code without losing anything, and the
// mapping view comes back only when the code matches a mapping again.
package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// Header starts the first line of a rendered incoming script; the mapping's JSON
// follows on the same line.
const Header = "// duplex:mapping "

// OutgoingHeader starts a rendered outgoing script. The mapping itself is
// only in the incoming script's header: what the outgoing script does
// depends on the source fields alone, so a changed value map leaves it as it
// was (no new version, and an impact preview of the change replays the
// replicas sent as they are, exactly).
const OutgoingHeader = "// duplex:mapping: see the header of the target's incoming script\n" +
	"// Made by the mapping editor: change the mapping there. Editing this\n" +
	"// script by hand turns the direction into code (nothing is lost).\n"

// Limits keep a mapping (and the scripts made from it) a reasonable size.
const (
	MaxRows     = 500
	MaxName     = 200
	MaxMapItems = 1000
)

// ErrInvalid marks a mapping the caller must fix; the error names the row.
var ErrInvalid = errors.New("invalid mapping")

// ErrNotMapping marks scripts that are code, not a mapping; NotMapping says why.
var ErrNotMapping = errors.New("not a mapping")

// NotMapping is why a direction's scripts are not a mapping.
type NotMapping struct{ Reason string }

func (e *NotMapping) Error() string { return "not a mapping: " + e.Reason }

// Unwrap lets errors.Is(err, ErrNotMapping) hold.
func (e *NotMapping) Unwrap() error { return ErrNotMapping }

// Kind is what a row writes into its target field.
type Kind string

const (
	// Field copies a source field.
	Field Kind = "field"
	// Constant writes a fixed value (on every sync, or only when creating).
	Constant Kind = "constant"
	// Map looks the source field up in a value map (a status map).
	Map Kind = "map"
)

// Row is one target field and where its value comes from.
type Row struct {
	Target string `json:"target"`
	Kind   Kind   `json:"kind"`
	// Source is the source field (Field and Map rows). It is also the
	// replica's key, so the incoming script reads what the outgoing sent.
	Source string `json:"source,omitempty"`
	// Value is a Constant row's value: a JSON string, number, boolean or null.
	Value json.RawMessage `json:"value,omitempty"`
	// Map is a Map row's table, source value → target value.
	Map map[string]string `json:"map,omitempty"`
	// Default is what a Map row writes for a value the map does not list;
	// without one such a value leaves the target field as it is and logs.
	Default *string `json:"default,omitempty"`
	// FirstSync writes a Constant only when the target is created.
	FirstSync bool `json:"first_sync,omitempty"`
}

// Comments says whether comments cross and how they arrive.
type Comments struct {
	Sync bool `json:"sync"`
	// Prefix goes before "author: body" (the templates' "[support] ").
	Prefix string `json:"prefix,omitempty"`
	// Private adds them as internal notes where the target has those.
	Private bool `json:"private,omitempty"`
	// PublicOnly keeps the source's internal notes home.
	PublicOnly bool `json:"public_only,omitempty"`
}

// Mapping is one direction: what the source sends and how the target
// applies it.
type Mapping struct {
	// From and To name the source and the target for people, in the
	// scripts' comments and log lines ("engineering", "support"); optional.
	From     string   `json:"from,omitempty"`
	To       string   `json:"to,omitempty"`
	Rows     []Row    `json:"rows"`
	Comments Comments `json:"comments"`
	// Trigger is the source side's trigger. It is an expression of its own,
	// saved as it is, so it is not in the scripts' header and editing it
	// never turns the direction into code.
	Trigger string `json:"trigger,omitempty"`
}

// Scripts are what a direction's mapping renders to.
type Scripts struct {
	Trigger  string `json:"trigger"`
	Outgoing string `json:"outgoing"`
	Incoming string `json:"incoming"`
}

// Fields an incoming script cannot write (the system sets them) and that
// comments handle on their own.
var reservedTargets = map[string]bool{"id": true, "key": true, "url": true, "type": true,
	"updated_at": true, "updated_by": true, "comments": true, "attachments": true}

var reservedSources = map[string]bool{"comments": true, "attachments": true}

// Validate checks m; errors wrap ErrInvalid and name the row (1-based).
func (m Mapping) Validate() error {
	if err := checkLabel("from", m.From); err != nil {
		return err
	}
	if err := checkLabel("to", m.To); err != nil {
		return err
	}
	if len(m.Rows) > MaxRows {
		return fmt.Errorf("%w: %d rows, at most %d", ErrInvalid, len(m.Rows), MaxRows)
	}
	if err := checkText("comment prefix", m.Comments.Prefix); err != nil {
		return err
	}
	seen := map[string]int{}
	for i, r := range m.Rows {
		n := i + 1
		if err := checkName(r.Target); err != nil {
			return fmt.Errorf("%w: row %d: target %v", ErrInvalid, n, err)
		}
		if reservedTargets[r.Target] {
			return fmt.Errorf("%w: row %d: the target field %q is set by the system or by the comments option", ErrInvalid, n, r.Target)
		}
		if prev, dup := seen[r.Target]; dup {
			return fmt.Errorf("%w: row %d: the target field %q is already written by row %d", ErrInvalid, n, r.Target, prev)
		}
		seen[r.Target] = n
		switch r.Kind {
		case Field, Map:
			if err := checkName(r.Source); err != nil {
				return fmt.Errorf("%w: row %d: source %v", ErrInvalid, n, err)
			}
			if reservedSources[r.Source] {
				return fmt.Errorf("%w: row %d: %q crosses with the comments option, not as a row", ErrInvalid, n, r.Source)
			}
			if r.Value != nil || r.FirstSync {
				return fmt.Errorf("%w: row %d: only a constant row has a value or first_sync", ErrInvalid, n)
			}
			if r.Kind == Field && (r.Map != nil || r.Default != nil) {
				return fmt.Errorf("%w: row %d: only a map row has a map or a default", ErrInvalid, n)
			}
			if len(r.Map) > MaxMapItems {
				return fmt.Errorf("%w: row %d: %d map entries, at most %d", ErrInvalid, n, len(r.Map), MaxMapItems)
			}
		case Constant:
			if r.Source != "" || r.Map != nil || r.Default != nil {
				return fmt.Errorf("%w: row %d: a constant row has only a value", ErrInvalid, n)
			}
			if err := checkScalar(r.Value); err != nil {
				return fmt.Errorf("%w: row %d: value %v", ErrInvalid, n, err)
			}
		default:
			return fmt.Errorf("%w: row %d: kind must be %q, %q or %q, got %q", ErrInvalid, n, Field, Constant, Map, r.Kind)
		}
	}
	return nil
}

func checkLabel(what, s string) error {
	if len(s) > MaxName {
		return fmt.Errorf("%w: %s is over %d bytes", ErrInvalid, what, MaxName)
	}
	return checkText(what, s)
}

// checkText refuses line breaks and other control characters: names and
// labels appear in the scripts' // comments, where a line break would end
// the comment and let the rest run as code.
func checkText(what, s string) error {
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("%w: %s has a control character or line break", ErrInvalid, what)
		}
	}
	return nil
}

func checkName(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("is empty")
	}
	if len(s) > MaxName {
		return fmt.Errorf("is over %d bytes", MaxName)
	}
	if err := checkText("name", s); err != nil {
		return errors.New("has a control character or line break")
	}
	return nil
}

func checkScalar(v json.RawMessage) error {
	if len(v) == 0 {
		return errors.New("is missing")
	}
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return fmt.Errorf("is not JSON: %v", err)
	}
	switch x.(type) {
	case string, float64, bool, nil:
		return nil
	}
	return errors.New("must be a string, number, boolean or null")
}

// Render writes the direction's scripts for m, which must be valid.
func Render(m Mapping) (Scripts, error) {
	if err := m.Validate(); err != nil {
		return Scripts{}, err
	}
	head, err := header(m)
	if err != nil {
		return Scripts{}, err
	}
	return Scripts{Trigger: m.Trigger, Outgoing: OutgoingHeader + outgoing(m), Incoming: head + incoming(m)}, nil
}

func header(m Mapping) (string, error) {
	m.Trigger = ""
	var keep []Row
	for _, r := range m.Rows {
		if r.Value != nil { // compact, as it will decode and encode again
			var b bytes.Buffer
			if err := json.Compact(&b, r.Value); err != nil {
				return "", fmt.Errorf("%w: %v", ErrInvalid, err)
			}
			r.Value = b.Bytes()
		}
		keep = append(keep, r)
	}
	m.Rows = keep
	if m.Rows == nil {
		m.Rows = []Row{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// json.Marshal escapes U+2028 and U+2029, so the JSON stays on one line.
	return Header + string(b) + "\n" +
		"// Made by the mapping editor: change the mapping there. Editing this\n" +
		"// script by hand turns the direction into code (nothing is lost).\n", nil
}

func label(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func outgoing(m Mapping) string {
	var b strings.Builder
	fmt.Fprintf(&b, "// %s → %s: the fields the mapping reads", label(m.From, "source"), label(m.To, "target"))
	if m.Comments.Sync {
		b.WriteString(", and the comments")
	}
	b.WriteString(".\n")
	sent := map[string]bool{}
	for _, r := range m.Rows {
		if r.Kind == Constant || sent[r.Source] {
			continue
		}
		sent[r.Source] = true
		fmt.Fprintf(&b, "%s = %s;\n", access("replica", r.Source), access("entity", r.Source))
	}
	if m.Comments.Sync {
		if m.Comments.PublicOnly {
			b.WriteString("// Public comments only: internal notes stay here.\n")
			b.WriteString("replica.comments = entity.comments.filter(c => !c.private);\n")
		} else {
			b.WriteString("replica.comments = entity.comments;\n")
		}
	}
	return b.String()
}

func incoming(m Mapping) string {
	var b strings.Builder
	fmt.Fprintf(&b, "// Apply %s to %s: the mapped fields", label(m.From, "the source"), label(m.To, "the target"))
	if m.Comments.Sync {
		b.WriteString(" and the comments")
	}
	b.WriteString(".\n")
	var first []Row
	for _, r := range m.Rows {
		if r.Kind == Constant && r.FirstSync {
			first = append(first, r)
		}
	}
	if len(first) > 0 {
		b.WriteString("if (ctx.firstSync) {\n")
		for _, r := range first {
			fmt.Fprintf(&b, "  %s = %s;\n", access("entity", r.Target), compact(r.Value))
		}
		b.WriteString("}\n")
	}
	names := newNames()
	for _, r := range m.Rows {
		switch {
		case r.Kind == Field:
			fmt.Fprintf(&b, "%s = %s;\n", access("entity", r.Target), access("replica", r.Source))
		case r.Kind == Constant && !r.FirstSync:
			fmt.Fprintf(&b, "%s = %s;\n", access("entity", r.Target), compact(r.Value))
		case r.Kind == Map && r.Default != nil:
			fmt.Fprintf(&b, "// %s → %s; %s for a value the map does not list.\n", r.Source, r.Target, jsonText(*r.Default))
			fmt.Fprintf(&b, "%s = mapValue(%s, %s, %s);\n", access("entity", r.Target), access("replica", r.Source), table(r.Map), jsonText(*r.Default))
		case r.Kind == Map:
			v := names.take(r.Target)
			fmt.Fprintf(&b, "// %s → %s; a value the map does not list leaves the %s as it is.\n", r.Source, r.Target, r.Target)
			fmt.Fprintf(&b, "const %s = mapValue(%s, %s, null);\n", v, access("replica", r.Source), table(r.Map))
			fmt.Fprintf(&b, "if (%s !== null) {\n  %s = %s;\n} else {\n", v, access("entity", r.Target), v)
			msg := strings.Join(nonEmpty("no", m.To, r.Target, "for", m.From, r.Source), " ")
			fmt.Fprintf(&b, "  log(%s, %s);\n}\n", jsonText(msg), access("replica", r.Source))
		}
	}
	if m.Comments.Sync {
		if m.Comments.Private {
			b.WriteString("// Comments arrive as internal notes where the target has them.\n")
		}
		b.WriteString("entity.comments = (replica.comments || []).map(c => ({\n  id: c.id,\n  author: c.author,\n")
		body := `c.author + ": " + c.body`
		if m.Comments.Prefix != "" {
			body = jsonText(m.Comments.Prefix) + " + " + body
		}
		fmt.Fprintf(&b, "  body: %s,\n", body)
		if m.Comments.Private {
			b.WriteString("  private: true,\n")
		}
		b.WriteString("}));\n")
	}
	return b.String()
}

func nonEmpty(parts ...string) []string {
	out := parts[:0:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

var ident = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)

// access is obj.name, or obj["name"] for a name that is not an identifier.
func access(obj, name string) string {
	if ident.MatchString(name) {
		return obj + "." + name
	}
	return obj + "[" + jsonText(name) + "]"
}

// jsonText is s as a JSON (and so JavaScript) string literal.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func compact(v json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return "null" // unreachable: Validate decoded it
	}
	return b.String()
}

// table is the map as JSON, encoded as a template parameter is (sorted keys,
// compact), so a template can hold {{status_map}} where the map goes.
func table(m map[string]string) string {
	if m == nil {
		m = map[string]string{}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// names hands out the constants' names of map rows: the target field as an
// identifier, numbered when taken or when it would shadow a global.
type names map[string]bool

func newNames() names {
	n := names{}
	for _, w := range strings.Fields(`entity replica previous ctx log skip fail mapValue mergeComments
		htmlToText textToHtml formatDate parseDate console Object Array String Number Boolean JSON Math Date
		RegExp Error Symbol Map Set Promise Reflect Proxy undefined NaN Infinity globalThis eval arguments
		break case catch class const continue debugger default delete do else enum export extends false
		finally for function if import in instanceof let new null return static super switch this throw
		true try typeof var void while with yield await implements interface package private protected public`) {
		n[w] = true
	}
	return n
}

func (n names) take(target string) string {
	var b strings.Builder
	for i, r := range target {
		ok := r == '_' || r == '$' || r < unicode.MaxASCII && (unicode.IsLetter(r) || i > 0 && unicode.IsDigit(r))
		if ok {
			b.WriteRune(r)
		} else if i == 0 && r < unicode.MaxASCII && unicode.IsDigit(r) {
			b.WriteString("_" + string(r))
		} else {
			b.WriteRune('_')
		}
	}
	base := b.String()
	name := base
	for i := 2; n[name]; i++ {
		name = fmt.Sprintf("%s%d", base, i)
	}
	n[name] = true
	return name
}

// Parse gives the mapping of a direction's outgoing and incoming scripts and
// its trigger, or a *NotMapping saying why they are code. Both empty is the
// empty mapping (a direction without scripts loses nothing).
func Parse(outgoingSrc, incomingSrc, trigger string) (Mapping, error) {
	if outgoingSrc == "" && incomingSrc == "" {
		return Mapping{Rows: []Row{}, Trigger: trigger}, nil
	}
	m, err := decodeHeader("incoming", incomingSrc)
	if err != nil {
		return Mapping{}, err
	}
	m.Trigger = trigger
	want, err := Render(m)
	if err != nil {
		return Mapping{}, &NotMapping{Reason: "the mapping in the incoming script's header is not valid: " + err.Error()}
	}
	// The incoming script first: its header is the mapping read, so an edit
	// there is named where it is rather than as the outgoing's mismatch.
	if d := firstDiff(want.Incoming, incomingSrc); d != "" {
		return Mapping{}, &NotMapping{Reason: "the incoming script " + d}
	}
	if d := firstDiff(want.Outgoing, outgoingSrc); d != "" {
		return Mapping{}, &NotMapping{Reason: "the outgoing script " + d}
	}
	return m, nil
}

func decodeHeader(which, src string) (Mapping, error) {
	line, _, _ := strings.Cut(src, "\n")
	raw, ok := strings.CutPrefix(line, Header)
	if !ok {
		return Mapping{}, &NotMapping{Reason: "the " + which + " script was written as code (it has no mapping header)"}
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	var m Mapping
	if err := dec.Decode(&m); err != nil {
		return Mapping{}, &NotMapping{Reason: "the mapping in the " + which + " script's header does not read: " + err.Error()}
	}
	if dec.More() {
		return Mapping{}, &NotMapping{Reason: "the " + which + " script's header has text after the mapping"}
	}
	if m.Trigger != "" {
		return Mapping{}, &NotMapping{Reason: "the " + which + " script's header names a trigger"}
	}
	return m, nil
}

// firstDiff says where got leaves what the mapping makes ("" when equal).
func firstDiff(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) && i < len(g); i++ {
		if w[i] != g[i] {
			return fmt.Sprintf("was edited by hand (line %d differs from what the mapping makes)", i+1)
		}
	}
	if len(g) > len(w) {
		return fmt.Sprintf("was edited by hand (lines added after line %d)", len(w))
	}
	return fmt.Sprintf("was edited by hand (it ends at line %d, the mapping makes %d lines)", len(g), len(w))
}
