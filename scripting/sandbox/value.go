package sandbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// The values that cross the pipe most (a run's entity, previous replica and
// base, and its result) are encoded here, not by gob: gob names the
// concrete type of every value inside an interface ("map[string]interface
// {}" for each nested map), and that made its encoding and decoding most
// of what a run costs beyond the script itself. This codec writes a tag
// byte per value and keeps each type normalize lets through exactly (an
// int stays an int, a float32 a float32, an empty list an empty list, a
// nil map nil), so a value comes out as it went in.
//
// Decoding does not trust its input: every length is checked against the
// bytes left before anything is allocated, and nesting is bounded.

const (
	tagNil byte = iota
	tagFalse
	tagTrue
	tagInt
	tagInt8
	tagInt16
	tagInt32
	tagInt64
	tagUint
	tagUint8
	tagUint16
	tagUint32
	tagUint64
	tagFloat32
	tagFloat64
	tagString
	tagNumber // json.Number
	tagTime
	tagStrings // []string
	tagMap     // map[string]any
	tagList    // []any
)

// maxDepth bounds nesting either way: deeper than any input the scripts
// accept (64 levels) and than normalize keeps (100).
const maxDepth = 128

var errBadValue = errors.New("sandbox: malformed value")

// encodeMap encodes m (nil included) for a frame.
func encodeMap(m map[string]any) ([]byte, error) {
	if m == nil {
		return []byte{tagNil}, nil
	}
	return appendValue(make([]byte, 0, 256), m, 0)
}

// decodeMap decodes what encodeMap wrote: a map or nil.
func decodeMap(b []byte) (map[string]any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	d := valueDecoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the value", errBadValue, len(d.b))
	}
	switch m := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return m, nil
	}
	return nil, fmt.Errorf("%w: not an object", errBadValue)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("sandbox: value nested deeper than %d levels", maxDepth)
	}
	switch x := v.(type) {
	case nil:
		return append(b, tagNil), nil
	case bool:
		if x {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case string:
		return appendString(append(b, tagString), x), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, tagFloat64), math.Float64bits(x)), nil
	case int:
		return binary.AppendVarint(append(b, tagInt), int64(x)), nil
	case int64:
		return binary.AppendVarint(append(b, tagInt64), x), nil
	case map[string]any:
		b = binary.AppendUvarint(append(b, tagMap), uint64(len(x)))
		var err error
		for k, e := range x {
			b = appendString(b, k)
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case []any:
		b = binary.AppendUvarint(append(b, tagList), uint64(len(x)))
		var err error
		for _, e := range x {
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case []string:
		b = binary.AppendUvarint(append(b, tagStrings), uint64(len(x)))
		for _, s := range x {
			b = appendString(b, s)
		}
		return b, nil
	case json.Number:
		return appendString(append(b, tagNumber), string(x)), nil
	case time.Time:
		t, err := x.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("sandbox: time %v: %w", x, err)
		}
		b = binary.AppendUvarint(append(b, tagTime), uint64(len(t)))
		return append(b, t...), nil
	case float32:
		return binary.LittleEndian.AppendUint32(append(b, tagFloat32), math.Float32bits(x)), nil
	case int8:
		return binary.AppendVarint(append(b, tagInt8), int64(x)), nil
	case int16:
		return binary.AppendVarint(append(b, tagInt16), int64(x)), nil
	case int32:
		return binary.AppendVarint(append(b, tagInt32), int64(x)), nil
	case uint:
		return binary.AppendUvarint(append(b, tagUint), uint64(x)), nil
	case uint8:
		return binary.AppendUvarint(append(b, tagUint8), uint64(x)), nil
	case uint16:
		return binary.AppendUvarint(append(b, tagUint16), uint64(x)), nil
	case uint32:
		return binary.AppendUvarint(append(b, tagUint32), uint64(x)), nil
	case uint64:
		return binary.AppendUvarint(append(b, tagUint64), x), nil
	}
	// normalize turns every other type into these before a value is sent.
	return nil, fmt.Errorf("sandbox: a value of type %T cannot be sent", v)
}

type valueDecoder struct{ b []byte }

func (d *valueDecoder) uvarint() (uint64, error) {
	n, k := binary.Uvarint(d.b)
	if k <= 0 {
		return 0, errBadValue
	}
	d.b = d.b[k:]
	return n, nil
}

func (d *valueDecoder) varint() (int64, error) {
	n, k := binary.Varint(d.b)
	if k <= 0 {
		return 0, errBadValue
	}
	d.b = d.b[k:]
	return n, nil
}

// count reads a length and checks that as many items, of at least min
// bytes each, can follow.
func (d *valueDecoder) count(min int) (int, error) {
	n, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.b)/min) {
		return 0, fmt.Errorf("%w: %d items in %d bytes", errBadValue, n, len(d.b))
	}
	return int(n), nil
}

func (d *valueDecoder) bytes() ([]byte, error) {
	n, err := d.count(1)
	if err != nil {
		return nil, err
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out, nil
}

func (d *valueDecoder) fixed(n int) ([]byte, error) {
	if len(d.b) < n {
		return nil, errBadValue
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out, nil
}

func (d *valueDecoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d levels", errBadValue, maxDepth)
	}
	if len(d.b) == 0 {
		return nil, errBadValue
	}
	tag := d.b[0]
	d.b = d.b[1:]
	switch tag {
	case tagNil:
		return nil, nil
	case tagFalse:
		return false, nil
	case tagTrue:
		return true, nil
	case tagString, tagNumber:
		s, err := d.bytes()
		if err != nil {
			return nil, err
		}
		if tag == tagNumber {
			return json.Number(s), nil
		}
		return string(s), nil
	case tagFloat64:
		f, err := d.fixed(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(f)), nil
	case tagFloat32:
		f, err := d.fixed(4)
		if err != nil {
			return nil, err
		}
		return math.Float32frombits(binary.LittleEndian.Uint32(f)), nil
	case tagInt, tagInt8, tagInt16, tagInt32, tagInt64:
		n, err := d.varint()
		if err != nil {
			return nil, err
		}
		return signed(tag, n)
	case tagUint, tagUint8, tagUint16, tagUint32, tagUint64:
		n, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		return unsigned(tag, n)
	case tagTime:
		raw, err := d.bytes()
		if err != nil {
			return nil, err
		}
		var t time.Time
		if err := t.UnmarshalBinary(raw); err != nil {
			return nil, fmt.Errorf("%w: time: %w", errBadValue, err)
		}
		return t, nil
	case tagStrings:
		n, err := d.count(1)
		if err != nil {
			return nil, err
		}
		out := make([]string, n)
		for i := range out {
			s, err := d.bytes()
			if err != nil {
				return nil, err
			}
			out[i] = string(s)
		}
		return out, nil
	case tagMap:
		n, err := d.count(2) // a key's length and a value's tag at least
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, n)
		for range n {
			k, err := d.bytes()
			if err != nil {
				return nil, err
			}
			if out[string(k)], err = d.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return out, nil
	case tagList:
		n, err := d.count(1)
		if err != nil {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = d.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: tag %d", errBadValue, tag)
}

// signed and unsigned give back an integer of the type its tag names,
// refusing one out of that type's range.
func signed(tag byte, n int64) (any, error) {
	switch tag {
	case tagInt:
		if int64(int(n)) == n {
			return int(n), nil
		}
	case tagInt8:
		if n >= math.MinInt8 && n <= math.MaxInt8 {
			return int8(n), nil
		}
	case tagInt16:
		if n >= math.MinInt16 && n <= math.MaxInt16 {
			return int16(n), nil
		}
	case tagInt32:
		if n >= math.MinInt32 && n <= math.MaxInt32 {
			return int32(n), nil
		}
	case tagInt64:
		return n, nil
	}
	return nil, fmt.Errorf("%w: %d out of range", errBadValue, n)
}

func unsigned(tag byte, n uint64) (any, error) {
	switch tag {
	case tagUint:
		if uint64(uint(n)) == n {
			return uint(n), nil
		}
	case tagUint8:
		if n <= math.MaxUint8 {
			return uint8(n), nil
		}
	case tagUint16:
		if n <= math.MaxUint16 {
			return uint16(n), nil
		}
	case tagUint32:
		if n <= math.MaxUint32 {
			return uint32(n), nil
		}
	case tagUint64:
		return n, nil
	}
	return nil, fmt.Errorf("%w: %d out of range", errBadValue, n)
}
