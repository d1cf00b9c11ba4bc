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
	in := runRes{Map: map[string]any{
		"nil": nil, "empty": map[string]any{}, "list": []any{int64(1), 1.5, "s", nil, []any{}}, "nostrs": []string{},
		"t": ts, "j": json.Number("9007199254740993"), "b": true, "strs": []string{"x"},
	}, Log: []string{"l"}}
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
		restoreMap(out.Map)
		if !reflect.DeepEqual(out.Map, in.Map) || !reflect.DeepEqual(out.Log, in.Log) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", out.Map, in.Map)
		}
	}
	big := runRes{Log: []string{string(make([]byte, maxFrame+1))}}
	if err := fw.write(&big); !errors.Is(err, errTooBig) {
		t.Fatalf("a frame over the limit: %v", err)
	}
}
