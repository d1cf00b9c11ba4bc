package pollwindow

import (
	"testing"
	"time"
)

// FuzzParse: a cursor (stored, but also what a client could send back) is
// read or refused, never a panic; one that reads encodes again to a cursor
// that reads the same.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", `{"t":"2026-03-01T10:00:00Z"}`, `{"t":"2026-03-01T10:00:00Z","seen":{"1":1772359200}}`, `{"t":null}`, `[]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		_ = c.Since()
		_ = c.Taken("1", time.Unix(0, 0))
		n := c.Advance(time.Date(2026, 3, 1, 10, 0, 5, 0, time.UTC))
		enc, err := n.Encode()
		if err != nil {
			t.Fatalf("encode after %q: %v", s, err)
		}
		if _, err := Parse(enc); err != nil {
			t.Fatalf("re-parse %q: %v", enc, err)
		}
	})
}
