package sandbox

import (
	"encoding/json"
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
