package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

type point struct{ X, Y int }

// Values of types gob was not told about become maps, lists and scalars;
// plain values keep their exact type, so a typed trigger still sees a
// float64 where it expects a number.
func TestNormalize(t *testing.T) {
	ts := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	in := map[string]any{
		"n": 2.5, "i": 7, "s": "x", "t": ts, "j": json.Number("12"), "l": []string{"a"},
		"tags":  map[string]string{"k": "v"},
		"rows":  []map[string]any{{"a": 1.5}},
		"ptr":   &point{1, 2},
		"ints":  []int{1, 2},
		"state": myString("open"),
	}
	got := normalize(in)
	want := map[string]any{
		"n": 2.5, "i": 7, "s": "x", "t": ts, "j": json.Number("12"), "l": []string{"a"},
		"tags":  map[string]any{"k": "v"},
		"rows":  []any{map[string]any{"a": 1.5}},
		"ptr":   map[string]any{"X": json.Number("1"), "Y": json.Number("2")},
		"ints":  []any{1, 2},
		"state": "open",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("normalize:\n got %#v\nwant %#v", got, want)
	}
	plainMap := map[string]any{"a": []any{1.0, "x", nil, map[string]any{"b": true}}}
	if reflect.ValueOf(normalize(plainMap)).Pointer() != reflect.ValueOf(plainMap).Pointer() {
		t.Fatal("a plain map was copied")
	}
}

type myString string

// What crosses the pipe comes back with the same types: nil and empty maps
// inside values, numbers of each kind, times, lists.
func TestFrameRoundTrip(t *testing.T) {
	register()
	var buf bytes.Buffer
	fw := newFrameWriter(&buf)
	ts := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	m := map[string]any{
		"nil": nil, "empty": map[string]any{}, "list": []any{int64(1), 1.5, "s", nil, []any{}}, "nostrs": []string{},
		"t": ts, "j": json.Number("9007199254740993"), "b": true, "f": false, "strs": []string{"x", ""},
		"ints":   []any{1, int8(-8), int16(-16), int32(-32), int64(-1 << 62), uint(1), uint8(8), uint16(16), uint32(32), uint64(1 << 63)},
		"floats": []any{float32(1.25), -0.5, 1e300}, "deep": map[string]any{"a": map[string]any{"b": []any{map[string]any{}}}},
		"": "empty key", "ü": "ß",
	}
	enc, err := encodeMap(m)
	if err != nil {
		t.Fatal(err)
	}
	in := runRes{Out: enc, Log: []string{"l"}}
	for range 2 { // the second frame is encoded without type descriptions
		if err := fw.write(&in); err != nil {
			t.Fatal(err)
		}
	}
	dec := newDecoder(&buf)
	for range 2 {
		var out runRes
		if err := dec.Decode(&out); err != nil {
			t.Fatal(err)
		}
		got, err := decodeMap(out.Out)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) || !reflect.DeepEqual(out.Log, in.Log) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, m)
		}
	}
	for _, nilOrEmpty := range []map[string]any{nil, {}} {
		b, err := encodeMap(nilOrEmpty)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := decodeMap(b); err != nil || (got == nil) != (nilOrEmpty == nil) || len(got) != 0 {
			t.Fatalf("%#v came back as %#v, %v", nilOrEmpty, got, err)
		}
	}
	if _, err := encodeMap(map[string]any{"p": &point{1, 2}}); err == nil {
		t.Fatal("a value normalize would have converted was encoded")
	}
	big := runRes{Log: []string{string(make([]byte, maxFrame+1))}}
	if err := fw.write(&big); !errors.Is(err, errTooBig) {
		t.Fatalf("a frame over the limit: %v", err)
	}
}

// Bytes that did not come from encodeMap (a worker gone wrong) give an
// error, never a panic or an allocation larger than the input allows.
func TestDecodeMapRefusesMalformedInput(t *testing.T) {
	good, err := encodeMap(map[string]any{"a": []any{"x", 1.5, map[string]any{"b": int64(2)}}, "t": time.Unix(1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"truncated":           good[:len(good)-1],
		"trailing bytes":      append(append([]byte{}, good...), tagNil),
		"unknown tag":         {0xee},
		"not an object":       {tagString, 1, 'x'},
		"huge count":          {tagMap, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge string":         {tagMap, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"int8 out of range":   {tagMap, 1, 1, 'k', tagInt8, 0x80, 0x04},
		"bad time":            {tagMap, 1, 1, 'k', tagTime, 1, 0},
		"short float":         {tagMap, 1, 1, 'k', tagFloat64, 1, 2},
		"bad varint":          {tagMap, 1, 1, 'k', tagInt64, 0xff},
		"list longer than in": {tagMap, 1, 1, 'k', tagList, 5, tagNil},
	}
	deep := []byte{tagMap, 1, 1, 'k'}
	for range maxDepth + 2 {
		deep = append(deep, tagList, 1)
	}
	cases["too deep"] = append(deep, tagNil)
	for name, b := range cases {
		if m, err := decodeMap(b); err == nil {
			t.Errorf("%s: decoded %#v, want an error", name, m)
		} else if !errors.Is(err, errBadValue) {
			t.Errorf("%s: %v, want errBadValue", name, err)
		}
	}
}

func FuzzDecodeMap(f *testing.F) {
	seed, _ := encodeMap(map[string]any{"a": []any{"x", 1, 1.5, nil, true, []string{"y"}}, "m": map[string]any{"n": json.Number("1")}})
	f.Add(seed)
	f.Add([]byte{tagMap, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMap(b)
		if err != nil {
			return
		}
		// What decodes encodes again to a value that decodes the same.
		again, err := encodeMap(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		m2, err := decodeMap(again)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("second round: %#v, %v; first %#v", m2, err, m)
		}
	})
}
