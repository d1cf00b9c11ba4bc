package engine

import (
	"encoding/json"
	"testing"
)

// sameCanonical and sameValue skip encoding for strings and booleans; they
// must answer what comparing the canonical encodings answers.
func TestSameCanonicalIsTheEncodedComparison(t *testing.T) {
	vals := []any{nil, "", "a", "b", "\xff", "\xfe", "\ufffd", true, false, int64(1), 1.0, json.Number("1"),
		"1", []any{"a"}, []string{"a"}, map[string]any{"x": "y"}, "<&>"}
	for _, a := range vals {
		for _, b := range vals {
			want := mustCanonical(a) == mustCanonical(b)
			if got := sameCanonical(a, b); got != want {
				t.Errorf("sameCanonical(%#v, %#v) = %v, want %v", a, b, got, want)
			}
			if a != nil && b != nil {
				if got := sameValue(a, b); got != want {
					t.Errorf("sameValue(%#v, %#v) = %v, want %v", a, b, got, want)
				}
			}
		}
	}
}
