package engine

import (
	"strconv"
	"unicode/utf8"

	"github.com/duplexsync/duplex/connectors"
)

// fastDecoder parses the JSON the engine stores (replicas, bases, script
// records: canonical.go wrote them) into map[string]any, []any, string,
// bool, nil, and int64 or float64 as normalizeNumbers gives them, without
// encoding/json's reflection and json.Number strings. Strings share the
// input's bytes unless they hold escapes. It gives up (ok=false) on
// anything it does not take as is: surrogate escapes, control bytes,
// invalid UTF-8, bad syntax, trailing data, deep nesting; the caller then
// decodes with encoding/json, which says what is wrong or does the
// replacing, so results and errors are the same either way
// (decode_test.go).
type fastDecoder struct {
	s    string
	i    int
	vals []any    // scratch: values of the arrays and objects being read
	keys []string // scratch: keys of the objects being read
}

const fastMaxDepth = 200

// decodeFast parses s whole; ok=false if it would rather not.
func decodeFast(s string) (v any, ok bool) {
	d := fastDecoder{s: s}
	v, ok = d.value(0)
	if !ok {
		return nil, false
	}
	d.space()
	return v, d.i == len(d.s)
}

func (d *fastDecoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *fastDecoder) value(depth int) (any, bool) {
	d.space()
	if d.i >= len(d.s) || depth > fastMaxDepth {
		return nil, false
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		s, ok := d.str()
		return s, ok
	case c == 't':
		return true, d.word("true")
	case c == 'f':
		return false, d.word("false")
	case c == 'n':
		return nil, d.word("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return nil, false
}

func (d *fastDecoder) word(w string) bool {
	if len(d.s)-d.i < len(w) || d.s[d.i:d.i+len(w)] != w {
		return false
	}
	d.i += len(w)
	return true
}

// str reads a string: valid UTF-8, no control bytes (see unescaped).
func (d *fastDecoder) str() (string, bool) {
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.s); j++ {
		switch c := d.s[j]; {
		case c == '"':
			d.i = j + 1
			s := d.s[start:j]
			return s, ascii || utf8.ValidString(s)
		case c == '\\':
			return d.unescaped(start, j)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// unescaped reads the rest of a string from its first escape, at j: the
// escapes canonical JSON has (a script's text with quotes or new lines, a
// record's replica as a string). A surrogate (\uD800-\uDFFF) or invalid
// UTF-8, which encoding/json replaces, gives up.
func (d *fastDecoder) unescaped(start, j int) (string, bool) {
	b := make([]byte, 0, j-start+16)
	b = append(b, d.s[start:j]...)
	for j < len(d.s) {
		c := d.s[j]
		switch {
		case c == '"':
			d.i = j + 1
			return string(b), utf8.Valid(b)
		case c < 0x20:
			return "", false
		case c != '\\':
			b = append(b, c)
			j++
			continue
		}
		if j+1 >= len(d.s) {
			return "", false
		}
		switch e := d.s[j+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			if j+6 > len(d.s) {
				return "", false
			}
			r, err := strconv.ParseUint(d.s[j+2:j+6], 16, 32)
			if err != nil || (r >= 0xD800 && r <= 0xDFFF) {
				return "", false
			}
			b = utf8.AppendRune(b, rune(r))
			j += 6
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

// number reads a JSON number as normalizeNumbers turns a json.Number.
func (d *fastDecoder) number() (any, bool) {
	start := d.i
	if d.s[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.s) && d.s[d.i] == '0':
		d.i++
	case d.digits() == 0:
		return nil, false
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		if d.digits() == 0 {
			return nil, false
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return nil, false
		}
	}
	lit := d.s[start:d.i]
	if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
		return n, true
	}
	f, _ := strconv.ParseFloat(lit, 64)
	return f, true
}

func (d *fastDecoder) digits() int {
	n := 0
	for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
		d.i++
		n++
	}
	return n
}

func (d *fastDecoder) array(depth int) (any, bool) {
	d.i++ // [
	mark := len(d.vals)
	d.space()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		return []any{}, true
	}
	for {
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		d.vals = append(d.vals, v)
		d.space()
		if d.i >= len(d.s) {
			return nil, false
		}
		c := d.s[d.i]
		d.i++
		if c == ']' {
			break
		}
		if c != ',' {
			return nil, false
		}
	}
	out := make([]any, len(d.vals)-mark)
	copy(out, d.vals[mark:])
	clear(d.vals[mark:])
	d.vals = d.vals[:mark]
	return out, true
}

func (d *fastDecoder) object(depth int) (any, bool) {
	d.i++ // {
	mark := len(d.keys)
	d.space()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return map[string]any{}, true
	}
	for {
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return nil, false
		}
		k, ok := d.str()
		if !ok {
			return nil, false
		}
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return nil, false
		}
		d.i++
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		d.keys, d.vals = append(d.keys, k), append(d.vals, v)
		d.space()
		if d.i >= len(d.s) {
			return nil, false
		}
		c := d.s[d.i]
		d.i++
		if c == '}' {
			break
		}
		if c != ',' {
			return nil, false
		}
	}
	// The last n keys and values are this object's (what nested values
	// pushed is gone again); vals may hold an enclosing array's below.
	n := len(d.keys) - mark
	vmark := len(d.vals) - n
	out := make(map[string]any, n)
	for j := 0; j < n; j++ {
		out[d.keys[mark+j]] = d.vals[vmark+j]
	}
	clear(d.keys[mark:])
	clear(d.vals[vmark:])
	d.keys, d.vals = d.keys[:mark], d.vals[:vmark]
	// A repeated key is left to encoding/json (into a struct's map field
	// it merges the values, not only keeps the last).
	return out, len(out) == n
}

// fastObject is decodeFast of a JSON object.
func fastObject(s string) (map[string]any, bool) {
	v, ok := decodeFast(s)
	m, isMap := v.(map[string]any)
	return m, ok && isMap
}

// fastSnapshot is decodeSnapshot's fast path: exactly the keys f, c and a
// (as snapshot.encode writes them), else ok=false.
func fastSnapshot(s string) (*snapshot, bool) {
	m, ok := fastObject(s)
	if !ok {
		return nil, false
	}
	var snap snapshot
	for k, v := range m {
		switch k {
		case "f":
			switch f := v.(type) {
			case map[string]any:
				snap.F = f
			case nil:
			default:
				return nil, false
			}
		case "c":
			if snap.C, ok = stringList(v); !ok {
				return nil, false
			}
		case "a":
			if snap.A, ok = stringList(v); !ok {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	if snap.F == nil {
		snap.F = map[string]any{}
	}
	return &snap, true
}

// stringList is a decoded []string: null, or an array of strings only.
func stringList(v any) ([]string, bool) {
	switch l := v.(type) {
	case nil:
		return nil, true
	case []any:
		out := make([]string, len(l))
		for i, e := range l {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out[i] = s
		}
		return out, true
	}
	return nil, false
}

// fastRecord is loadRecord's fast path: only the keys a saved record has.
func fastRecord(s string) (scriptRecord, bool) {
	m, ok := fastObject(s)
	if !ok {
		return scriptRecord{}, false
	}
	var r scriptRecord
	for k, v := range m {
		var dst *string
		switch k {
		case "i":
			dst = &r.InID
		case "r":
			dst = &r.Replica
		case "o":
			dst = &r.OutID
		case "b":
			dst = &r.Base
		case "out":
			dst = &r.Out
		case "f":
			f, isMap := v.(map[string]any)
			if !isMap {
				return scriptRecord{}, false
			}
			r.Fields = f
			continue
		default:
			return scriptRecord{}, false
		}
		if *dst, ok = v.(string); !ok {
			return scriptRecord{}, false
		}
	}
	return r, true
}

// fastEntities is decodeEntities' fast path (the stored list of entities a
// webhook carried; encoding/json took twice the time and half as many
// allocations again for the bench's entity): the keys id, key, url, type, fields, updated_at, updated_by and
// deleted, each of its JSON type, else ok=false and encoding/json reads
// it (comments, attachments, anything unusual). Fields come as
// decodeObject gives them.
func fastEntities(s string) (list []connectors.Entity, ok bool) {
	v, ok := decodeFast(s)
	arr, isArr := v.([]any)
	if !ok || !isArr {
		return nil, false
	}
	list = make([]connectors.Entity, len(arr))
	for i, x := range arr {
		m, isMap := x.(map[string]any)
		if !isMap || !fastEntity(m, &list[i]) {
			return nil, false
		}
	}
	return list, true
}

func fastEntity(m map[string]any, ent *connectors.Entity) bool {
	for k, v := range m {
		var ok bool
		switch k {
		case "id":
			ent.ID, ok = v.(string)
		case "key":
			ent.Key, ok = v.(string)
		case "url":
			ent.URL, ok = v.(string)
		case "type":
			ent.Type, ok = v.(string)
		case "updated_by":
			ent.UpdatedBy, ok = v.(string)
		case "deleted":
			ent.Deleted, ok = v.(bool)
		case "fields":
			switch f := v.(type) {
			case map[string]any:
				ent.Fields, ok = f, true
			case nil:
				ok = true
			}
		case "updated_at":
			var at string
			if at, ok = v.(string); ok {
				ok = ent.UpdatedAt.UnmarshalText([]byte(at)) == nil
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
