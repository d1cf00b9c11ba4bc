package engine

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The canonical encoding is encoding/json's (map keys sorted, no HTML
// escaping, no trailing newline), and it must stay byte for byte what
// encoding/json writes: echo hashes and bases stored in twins were made
// with it (canonical_test.go compares the two). The values the engine
// encodes on its hot path (replicas, fields, snapshots, script records) are
// written here without reflection; anything else goes to encoding/json.

var canonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// canonical encodes v as JSON with sorted keys, so equal values always give
// equal bytes.
func canonical(v any) (string, error) {
	bp := canonBufs.Get().(*[]byte)
	b, err := appendCanonical((*bp)[:0], v)
	var s string
	if err == nil {
		s = string(b)
	}
	putCanonBuf(bp, b)
	return s, err
}

// canonicalLen is the length of v's canonical JSON (as a twin stores it:
// no HTML escaping), encoded into a pooled buffer: a patch's fields are
// measured on every apply (patchlimit.go), and encoding/json's Marshal
// allocated for each.
func canonicalLen(v any) (int, error) {
	bp := canonBufs.Get().(*[]byte)
	b, err := appendCanonical((*bp)[:0], v)
	n := len(b)
	putCanonBuf(bp, b)
	return n, err
}

func putCanonBuf(bp *[]byte, b []byte) {
	if cap(b) <= 64<<10 { // a rare huge value does not stay pinned
		*bp = b[:0]
		canonBufs.Put(bp)
	}
}

func appendCanonical(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, x)
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case float64:
		return appendJSONFloat(b, x)
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendCanonicalMap(b, x)
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendCanonical(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case []string:
		return appendStrings(b, x)
	case snapshot:
		return x.appendJSON(b)
	case scriptRecord:
		return x.appendJSON(b)
	}
	return appendReflected(b, v)
}

// appendReflected is encoding/json's own encoding of v (for the types the
// switch above does not know).
func appendReflected(b []byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return b, err
	}
	return append(b, bytes.TrimRight(buf.Bytes(), "\n")...), nil
}

func appendCanonicalMap(b []byte, m map[string]any) ([]byte, error) {
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // encoding/json: strings.Compare of the keys
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendJSONString(b, k); err != nil {
			return b, err
		}
		b = append(b, ':')
		if b, err = appendCanonical(b, m[k]); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendStrings(b []byte, ss []string) ([]byte, error) {
	if ss == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendJSONString(b, s); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

// appendJSONString writes s quoted as encoding/json does without HTML
// escaping (since Go 1.22, which go.mod requires: \b and \f, no longer
// \u0008 and \u000c): printable ASCII but '"' and '\\' and valid UTF-8
// but U+2028 and U+2029 as they are, the rest escaped, invalid UTF-8 as
// \ufffd. Stored hashes and bases depend on it: TestCanonicalIsEncodingJSONs
// compares it with encoding/json. It handed every string with a newline or
// a quote to encoding/json, 30 of an update's 1,036 allocations in
// BenchmarkPipeline (its description has a newline).
func appendJSONString(b []byte, s string) ([]byte, error) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONFloat is encoding/json's float64 encoder.
func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return appendReflected(b, f) // its error
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// appendJSON writes s as encoding/json writes the struct: f, c, then a
// unless empty (omitempty).
func (s snapshot) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"f":`...)
	var err error
	if b, err = appendCanonical(b, s.F); err != nil {
		return b, err
	}
	b = append(b, `,"c":`...)
	if b, err = appendStrings(b, s.C); err != nil {
		return b, err
	}
	if len(s.A) > 0 {
		b = append(b, `,"a":`...)
		if b, err = appendStrings(b, s.A); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendJSON writes r as encoding/json writes the struct (every field
// omitempty, in declaration order).
func (r scriptRecord) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	first := true
	var err error
	field := func(name, v string) {
		if v == "" || err != nil {
			return
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, name...)
		b, err = appendJSONString(b, v)
	}
	field(`"i":`, r.InID)
	field(`"r":`, r.Replica)
	if len(r.Fields) > 0 && err == nil {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `"f":`...)
		b, err = appendCanonicalMap(b, r.Fields)
	}
	field(`"o":`, r.OutID)
	field(`"b":`, r.Base)
	field(`"out":`, r.Out)
	if err != nil {
		return b, err
	}
	return append(b, '}'), nil
}
