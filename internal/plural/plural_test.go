package plural

import "testing"

func TestOf(t *testing.T) {
	for n, want := range map[int64]string{0: "0 fields", 1: "1 field", 2: "2 fields"} {
		if got := Of(n, "field"); got != want {
			t.Errorf("Of(%d) = %q, want %q", n, got, want)
		}
	}
}
