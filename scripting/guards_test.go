package scripting

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/internal/loadscale"
)

// A backtracking pattern (regexp2, which ignores goja's interrupt) ends
// with a timeout error: the run's deadline when it comes first, else the
// per-match limit, long before the match itself would end (hours).
func TestRegexpBacktrackingTimesOut(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		src     string
		msg     string
	}{
		{"test at the deadline", time.Second, "replica.r = /(a+)+(?=c)c/.test('a'.repeat(34) + 'b');", "regular expression"},
		{"one long match", 5 * time.Second, "replica.r = /(a+)+(?=c)c/.test('a'.repeat(34) + 'b');", "regular expression"},
		{"global replace", time.Second, "replica.r = ('a'.repeat(20) + 'b').repeat(500).replace(/(a+)+(?=c)c|b/g, 'x');", ""},
		{"caught and retried", time.Second, "for (;;) { try { /(a+)+(?=c)c/.test('a'.repeat(30) + 'b'); } catch (e) {} }", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRunner(Options{Timeout: tc.timeout, MaxRuntimes: 1})
			s, err := Compile("rx.js", KindOutgoing, tc.src)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = r.Outgoing(context.Background(), s, map[string]any{}, nil, Meta{})
			d := time.Since(start)
			var se *Error
			if !errors.As(err, &se) || se.Kind != ErrorTimeout || !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("want a timeout error with %q, got %v", tc.msg, err)
			}
			// Generous bound proving it did not run on: the match alone
			// takes hours (stretched on a loaded machine, issue 19).
			if limit := loadscale.Duration(min(tc.timeout, time.Second) + 2*time.Second); d > limit {
				t.Fatalf("stopped after %v, over %v", d, limit)
			}
			t.Logf("%v after %v", err, d)
		})
	}
}

// An ordinary pattern and a quick lookahead still work, through every
// method that goes through exec.
func TestRegexpStillWorks(t *testing.T) {
	r := NewRunner(Options{MaxRuntimes: 1})
	src := `replica.a = /b(?=c)/.test("abc");
replica.b = "a-b-c".replace(/-/g, "+");
replica.c = "a1b22c".split(/\d+/).join(",");
replica.d = [..."x1y2".matchAll(/\d/g)].map(m => m[0] + m.index).join();
replica.e = "2024-01-02".replace(/(\d+)-(\d+)-(\d+)/, "$3.$2.$1 [$&] $$ $'$\x60");
replica.f = "ab".replace(/(?<x>a)/, "<$<x>>");
replica.g = "aXbX".replaceAll("X", "$&$&");
replica.h = "abc".search(/c/);
replica.i = htmlToText("<p>a</p><p>b&amp;c</p>");
replica.j = "x".padStart(3, "ab") + "x".padEnd(3) + "|" + "ab".repeat(2);
replica.k = JSON.stringify({a: [1, "x\n"], b: {c: null}}, null, 1);
replica.l = JSON.stringify({a: 1, b: 2, c: 3}, ["c", "a"]);
replica.m = [[1, [2]], 3].flat(Infinity).concat([4], 5).join("");
replica.n = new Uint8Array([1, 2, 3]).length + new ArrayBuffer(8).byteLength + (new Uint8Array(2) instanceof Uint8Array ? 100 : 0);
replica.o = Math.max.apply(null, [1, 5, 2]) + Reflect.apply(Math.min, null, [3, 4]);
replica.p = Array.from("abc").map(c => c.toUpperCase()).join("");
replica.q = Symbol.for("k") === Symbol.for("k");
replica.r = "a,b,,c".split(",", 3).length + "abc".split("").length;`
	s, err := Compile("ok.js", KindOutgoing, src)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Outgoing(context.Background(), s, map[string]any{}, nil, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"a": true, "b": "a+b+c", "c": "a,b,c", "d": "11,23",
		"e": "02.01.2024 [2024-01-02] $ ", "f": "<a>b", "g": "aXXbXX", "h": int64(2),
		"i": "a\n\nb&c", "j": "abxx  |abab", "k": "{\n \"a\": [\n  1,\n  \"x\\n\"\n ],\n \"b\": {\n  \"c\": null\n }\n}",
		"l": `{"a":1,"c":3}`, "m": "12345", "n": int64(111), "o": int64(8), "p": "ABC", "q": true, "r": int64(6),
	}
	for k, v := range want {
		if res.Replica[k] != v {
			t.Errorf("%s = %#v, want %#v", k, res.Replica[k], v)
		}
	}
}

// A count whose valueOf answers 1 to a guard and 2**40 afterwards is
// coerced once: the built-in gets the 1.
func TestGuardsCoerceOnce(t *testing.T) {
	r := NewRunner(Options{MaxRuntimes: 1})
	s, _ := Compile("once.js", KindOutgoing, `const tricky = () => { let n = 0; return {valueOf() { return n++ === 0 ? 1 : 2 ** 40; }}; };
replica.s = "x".repeat(tricky()) + "|" + "y".padStart(tricky()) + "|" + new Uint8Array(tricky()).length + "|" + new ArrayBuffer(tricky()).byteLength;`)
	res, err := r.Outgoing(context.Background(), s, map[string]any{}, nil, Meta{})
	if err != nil || res.Replica["s"] != "x|y|0|1" {
		t.Fatalf("got %v %v", res.Replica, err)
	}
}

// Symbol.for keys do not pile up in reused runtimes.
func TestSymbolRegistryDoesNotLeak(t *testing.T) {
	r := NewRunner(Options{MaxRuntimes: 1, Timeout: 5 * time.Second})
	s, _ := Compile("sym.js", KindOutgoing, `const pad = "x".repeat(2000); for (let i = 0; i < 5000; i++) Symbol.for(pad + i + Math.random());`)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	if _, err := r.Outgoing(context.Background(), s, map[string]any{}, nil, Meta{}); err != nil {
		t.Fatal(err)
	}
	before := heap()
	for range 20 {
		if _, err := r.Outgoing(context.Background(), s, map[string]any{}, nil, Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	after := heap()
	// Each run adds ~20 MB of keys: kept, 20 runs would add 400 MB.
	if after > before+60<<20 {
		t.Fatalf("heap grew from %d MB to %d MB over 20 runs", before>>20, after>>20)
	}
	t.Logf("heap %d MB -> %d MB", before>>20, after>>20)
}

// NaN and the infinities are refused in a replica and in an entity, with
// the field's path; an output over the size limit names the limit.
func TestOutputBounds(t *testing.T) {
	r := NewRunner(Options{MaxRuntimes: 1, Timeout: 5 * time.Second})
	for _, tc := range []struct{ src, msg string }{
		{"replica.estimate = 0 / 0;", "replica.estimate: NaN is not a valid value"},
		{"replica.a = {b: [1, -Infinity]};", "replica.a.b.1: -Infinity is not a valid value"},
		{"replica.big = 1 / 0;", "replica.big: Infinity"},
		{"let x = 'x'; for (let i = 0; i < 20; i++) x += x; for (let i = 0; i < 10; i++) replica['f' + i] = x;", "replica over the output size limit of 8 MiB"},
		{"let x = 'x'; for (let i = 0; i < 10; i++) x += x; replica.list = Array(10000).fill(x);", "replica over the output size limit of 8 MiB (at replica.list."},
	} {
		s, err := Compile("out.js", KindOutgoing, tc.src)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Outgoing(context.Background(), s, map[string]any{}, nil, Meta{})
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: want %q, got %v", tc.src, tc.msg, err)
		}
	}
	s, _ := Compile("in.js", KindIncoming, "entity.points = NaN;")
	_, err := r.Incoming(context.Background(), s, map[string]any{}, nil, map[string]any{}, Meta{})
	if err == nil || !strings.Contains(err.Error(), "entity.points: NaN") {
		t.Fatalf("incoming NaN: %v", err)
	}
	s, _ = Compile("big.js", KindIncoming, "let x = 'x'; for (let i = 0; i < 24; i++) x += x; entity.body = x;")
	_, err = r.Incoming(context.Background(), s, map[string]any{}, nil, map[string]any{}, Meta{})
	if !errors.Is(err, ErrOutputTooLarge) {
		t.Fatalf("incoming too large: %v", err)
	}
}
