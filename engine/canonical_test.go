package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// refCanonical is the encoding twins' hashes and bases were made with
// before canonical.go: encoding/json, keys sorted, no HTML escaping.
func refCanonical(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

// refHash is snapshot.hash as it was: the reference encoding of the
// snapshot with sorted copies of its ids.
func refHash(s snapshot) string {
	ids := append([]string(nil), s.C...)
	sort.Strings(ids)
	if ids == nil {
		ids = []string{}
	}
	f := s.F
	if f == nil {
		f = map[string]any{}
	}
	var atts []string
	if len(s.A) > 0 {
		atts = append(atts, s.A...)
		sort.Strings(atts)
	}
	enc, err := refCanonical(snapshot{F: f, C: ids, A: atts})
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(enc))
	return hex.EncodeToString(sum[:])
}

var trickyStrings = []string{"", "a", "plain text", "quote \" here", `back\slash`, "tab\there", "nl\n", "cr\r",
	"\b\f", "\x00\x01\x1f", "\x7f", "<&>", "é ü ñ", "日本語", "emoji 😀", "\u2028\u2029", "\xff", "a\xfe\xffb",
	"\xe2\x82", "\ufffd", "key:with,punct", "💩\"\\"}

func TestCanonicalIsEncodingJSONs(t *testing.T) {
	vals := []any{nil, true, false, int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), 7, 0.0,
		math.Copysign(0, -1), 1.5, -2.25, 1e20, 1e21, 1e-6, 1e-7, 123456789.123, 5e-324, math.MaxFloat64,
		json.Number("12"), json.Number("1.5e3"), []any{}, []any(nil), map[string]any{}, map[string]any(nil),
		[]string{}, []string(nil), []string{"b", "a"}, map[string]string{"x": "y"}, int32(4), float32(1.1),
		[]map[string]any{{"a": 1}}, struct{ X int }{1},
		snapshot{}, snapshot{F: map[string]any{"a": "b"}, C: []string{"2", "1"}, A: []string{"z"}},
		scriptRecord{}, scriptRecord{InID: "i", Replica: "r", Fields: map[string]any{"t": "x"}, OutID: "o", Base: "b", Out: "{}"},
		scriptRecord{Out: "x"}, scriptRecord{Fields: map[string]any{}},
	}
	for _, s := range trickyStrings {
		vals = append(vals, s, map[string]any{s: s}, []any{s, int64(1)}, []string{s})
	}
	for _, v := range vals {
		checkCanonical(t, v)
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), map[string]any{"x": math.Inf(-1)}, make(chan int)} {
		if _, err := canonical(bad); err == nil {
			t.Errorf("canonical(%#v): no error", bad)
		}
	}
}

func TestCanonicalRandomValues(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 16))
	for i := 0; i < 3000; i++ {
		checkCanonical(t, randomValue(r, 0))
	}
}

// The echo hash of a snapshot is what it was: twins store these.
func TestSnapshotHashUnchanged(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 16))
	for i := 0; i < 1000; i++ {
		var s snapshot
		if f, ok := randomValue(r, 1).(map[string]any); ok && r.IntN(8) > 0 {
			s.F = f
		}
		for n := r.IntN(4); n > 0; n-- {
			s.C = append(s.C, trickyStrings[r.IntN(len(trickyStrings))])
		}
		if r.IntN(3) == 0 {
			s.C = []string{}
		}
		for n := r.IntN(3); n > 0; n-- {
			s.A = append(s.A, trickyStrings[r.IntN(len(trickyStrings))])
		}
		if got, want := s.hash(), refHash(s); got != want {
			t.Fatalf("hash of %#v = %s, want %s", s, got, want)
		}
		if enc, err := s.encode(); err == nil && textDigest(enc) != s.hash() { // intake hashes the encoding it keeps
			t.Fatalf("textDigest of the encoding of %#v is not its hash", s)
		}
	}
	// And one fixed: the hash a twin holds for this content today.
	s := snapshot{F: map[string]any{"title": "Printer on fire", "priority": "high", "n": int64(3), "x": 1.5,
		"labels": []any{"a", "b"}}, C: []string{"9", "10"}}
	const stored = "1667f5c89990804069ca4e179dc5578a6a91088c0363cee3b3f55b3ac40d1717" // made with encoding/json
	if got := s.hash(); got != stored {
		t.Fatalf("hash %s, want %s", got, stored)
	}
}

func checkCanonical(t *testing.T, v any) {
	t.Helper()
	want, werr := refCanonical(v)
	got, gerr := canonical(v)
	if got != want || (werr == nil) != (gerr == nil) {
		t.Fatalf("canonical(%#v) = %q, %v; encoding/json: %q, %v", v, got, gerr, want, werr)
	}
}

func randomValue(r *rand.Rand, depth int) any {
	n := r.IntN(10)
	if depth > 3 {
		n = r.IntN(6)
	}
	switch n {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return int64(r.Uint64())
	case 3:
		return math.Float64frombits(r.Uint64()) // NaN and Inf included: both must fail
	case 4:
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(50)-25))
	case 5:
		return randomString(r)
	case 6, 7:
		m := map[string]any{}
		for k := r.IntN(6); k > 0; k-- {
			m[randomString(r)] = randomValue(r, depth+1)
		}
		return m
	case 8:
		a := make([]any, r.IntN(5))
		for i := range a {
			a[i] = randomValue(r, depth+1)
		}
		return a
	default:
		return []string{randomString(r), randomString(r)}
	}
}

func randomString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return trickyStrings[r.IntN(len(trickyStrings))]
	}
	b := make([]byte, r.IntN(12))
	for i := range b {
		switch r.IntN(4) {
		case 0:
			b[i] = byte(r.IntN(256))
		default:
			b[i] = byte(' ' + r.IntN(95))
		}
	}
	return string(b)
}

func FuzzCanonical(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, 1.5, int64(7))
	}
	f.Fuzz(func(t *testing.T, s string, x float64, n int64) {
		checkCanonical(t, map[string]any{s: []any{s, x, n, map[string]any{"k": s}}})
	})
}
