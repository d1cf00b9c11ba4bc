package scripting

import (
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/internal/loadscale"
)

// rssBytes reads the process's resident set size from /proc.
func rssBytes(t *testing.T) uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm here")
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// Hostile scripts end their own run with a clear error within their limits;
// the next run on the same Runner works; the process stays within bounds.
func TestHostileScripts(t *testing.T) {
	r := NewRunner(Options{Timeout: 500 * time.Millisecond, MaxTimeout: guardDeadline, MaxHeapGrowth: 128 << 20, MaxRuntimes: 1})
	runtime.GC()
	debug.FreeOSMemory()
	before := rssBytes(t)
	for _, tc := range []hostileCase{
		{"endless loop", "while (true) {}", ErrorTimeout, "deadline"},
		{"deep recursion", "function f(n) { return f(n + 1) + 1; } f(0);", ErrorRuntime, "call stack"},
		{"huge repeat", "replica.s = 'x'.repeat(2 ** 30);", ErrorMemory, "repeat: result over"},
		{"huge padStart", "replica.s = 'x'.padStart(2 ** 30);", ErrorMemory, "padStart"},
		{"huge fill", "replica.a = new Array(2 ** 30).fill(0);", ErrorRuntime, "fill: 1073741824 items, over the limit"},
		{"huge Array.from", "replica.a = Array.from({length: 2 ** 30});", ErrorRuntime, "Array.from"},
		{"growing arrays", "const a = []; while (true) a.push('y'.repeat(1 << 20) + a.length);", "", ""},
		{"doubling string", "let s = 'z'; while (true) s = s + s + 'z';", "", ""},
		{"prototype tampering", "Object.prototype.polluted = 1;", ErrorRuntime, "TypeError"},
		{"builtin overwrite", "Array.prototype.map = () => 1;", ErrorRuntime, "TypeError"},
		{"global leak", "globalThis.leak = 1;", ErrorRuntime, "TypeError"},
		{"sloppy this", "Function('return this')().leak = 1;", ErrorRuntime, "TypeError"},
		{"constructor escape", "this.constructor.constructor('return process')().exit(1);", ErrorRuntime, ""},
		{"require", "require('fs');", ErrorRuntime, "require"},
		{"process", "process.exit(1);", ErrorRuntime, "process"},
		{"input constructor", "replica.p = entity.constructor.constructor('return process')();", ErrorRuntime, "process is not defined"},
		{"cyclic replica", "const o = {}; o.self = o; replica.o = o;", ErrorRuntime, ""},
	} {
		runHostile(t, r, tc.name, tc.src, tc.kind, tc.msg)
	}
	runtime.GC()
	debug.FreeOSMemory()
	after := rssBytes(t)
	// 300 MB: the watchdog lets a run grow the heap by up to 128 MiB (plus
	// what the runtime keeps for reuse) before stopping it; more than that
	// left behind would mean a leak or an unbounded run.
	if after > before+300<<20 {
		t.Fatalf("RSS grew from %d MB to %d MB over the suite", before>>20, after>>20)
	}
	t.Logf("RSS before %d MB, after %d MB", before>>20, after>>20)
}

// A connection's own deadline (Meta.Timeout) applies, capped by MaxTimeout.
func TestPerRunTimeout(t *testing.T) {
	r := NewRunner(Options{Timeout: 5 * time.Second, MaxTimeout: 300 * time.Millisecond})
	s, _ := Compile("loop.js", KindOutgoing, "while (true) {}")
	start := time.Now()
	_, err := r.Outgoing(context.Background(), s, map[string]any{}, nil, Meta{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) || time.Since(start) > loadscale.Duration(2*time.Second) {
		t.Fatalf("per-run timeout: %v after %v", err, time.Since(start))
	}
	start = time.Now()
	_, err = r.Outgoing(context.Background(), s, map[string]any{}, nil, Meta{Timeout: time.Hour})
	if !errors.Is(err, ErrTimeout) || time.Since(start) > loadscale.Duration(3*time.Second) {
		t.Fatalf("a per-run timeout over the cap was not capped: %v after %v", err, time.Since(start))
	}
}

// The heap watchdog stops a script that allocates fast, before its deadline.
func TestHeapWatchdog(t *testing.T) {
	r := NewRunner(Options{Timeout: 20 * time.Second, MaxHeapGrowth: 32 << 20})
	s, _ := Compile("grow.js", KindOutgoing, "const a = []; while (true) a.push('y'.repeat(1 << 16) + a.length);")
	start := time.Now()
	_, err := r.Outgoing(context.Background(), s, map[string]any{}, nil, Meta{})
	var se *Error
	if !errors.As(err, &se) || se.Kind != ErrorMemory || !errors.Is(err, ErrMemory) {
		t.Fatalf("want a memory error, got %v", err)
	}
	if d := time.Since(start); d > loadscale.Duration(10*time.Second) {
		t.Fatalf("stopped only after %v", d)
	}
	t.Logf("stopped after %v", time.Since(start))
}

type hostileCase struct{ name, src, kind, msg string }

// guardDeadline is the deadline of a hostile case that names a limit
// other than the deadline (a guard's memory or item count, the call
// stack, the regexp timer): that limit counts work, or trips long before
// this, so it ends the run however loaded the machine is, whereas under
// the runner's own deadline a loaded machine turned the $' replace case into
// a timeout (issue 19; 0.9 s unloaded, up to 19 s at load average 20).
// A guard that stopped working fails the case on this deadline's kind
// instead of hanging, within go test's 10 minutes.
const guardDeadline = 3 * time.Minute

// byGuard reports whether tc expects a limit other than the run's
// deadline, so that it runs under guardDeadline.
func (tc hostileCase) byGuard() bool {
	return tc.kind != "" && tc.msg != "" && tc.msg != "deadline"
}

// runHostile runs one hostile script: it must fail with an error of kind
// (any limit's when kind is "") whose text has msg, and the next run on
// the same runner must work.
func runHostile(t *testing.T, r *Runner, name, src, kind, msg string) {
	tc := hostileCase{name, src, kind, msg}
	t.Run(tc.name, func(t *testing.T) {
		s, err := Compile("hostile.js", KindOutgoing, tc.src)
		if err != nil {
			t.Fatal(err)
		}
		meta := Meta{}
		if tc.byGuard() {
			meta.Timeout = guardDeadline
		}
		start := time.Now()
		res, err := r.Outgoing(context.Background(), s, map[string]any{"x": 1.0}, nil, meta)
		// Not a speed check: a run the deadline ends must end near it.
		if d := time.Since(start); !tc.byGuard() && d > loadscale.Duration(10*time.Second) {
			t.Fatalf("took %v: not stopped by its limits", d)
		}
		t.Logf("%v in %v", err, time.Since(start))
		var se *Error
		switch {
		case tc.kind == "": // either limit may end it first
			if !errors.As(err, &se) || (se.Kind != ErrorMemory && se.Kind != ErrorTimeout && se.Kind != ErrorRuntime) {
				t.Fatalf("want a memory, timeout or runtime error, got %v", err)
			}
		case raceBuild && tc.kind == ErrorMemory && errors.As(err, &se) && se.Kind == ErrorTimeout:
			// Slowed 5-20 times by the race detector, even guardDeadline
			// may come first on a loaded machine: the run was still
			// stopped by a limit.
		default:
			if !errors.As(err, &se) || se.Kind != tc.kind || !strings.Contains(se.Error(), tc.msg) {
				t.Fatalf("want a %s error with %q, got %v", tc.kind, tc.msg, err)
			}
		}
		// The same runner runs the next script normally.
		ok, _ := Compile("ok.js", KindOutgoing, "replica.y = typeof leak + '/' + typeof Object.prototype.polluted + '/' + [1].map(x => x * 2)[0];")
		res, err = r.Outgoing(context.Background(), ok, map[string]any{}, nil, Meta{})
		if err != nil || res.Replica["y"] != "undefined/undefined/2" {
			t.Fatalf("next run after %q: %v %v", tc.name, res.Replica, err)
		}
	})
}

// Built-ins that allocate or loop in proportion to their arguments fail
// fast with an error naming the built-in and the limit (guards.go), well
// before the deadline (generous here: the machine may be loaded) or the
// heap watchdog would.
func TestHostileBuiltins(t *testing.T) {
	r := NewRunner(Options{Timeout: 5 * time.Second, MaxTimeout: guardDeadline, MaxRuntimes: 1})
	runtime.GC()
	debug.FreeOSMemory()
	before := rssBytes(t)
	for _, tc := range []hostileCase{
		// Built-ins that allocate or loop in proportion to their arguments (guards.go).
		{"repeat count lying", "let n = 0; replica.s = 'x'.repeat({valueOf() { return n++ ? 2 ** 40 : 2 ** 30; }});", ErrorMemory, "repeat: result over the memory (allocation) budget"},
		{"join result", "let x = 'x'; for (let i = 0; i < 20; i++) x += x; replica.s = Array(65).join(x);", ErrorMemory, "join: result over"},
		{"join of a getter length", "replica.s = Array.prototype.join.call({get length() { return 2 ** 32 - 1; }});", ErrorRuntime, "getter"},
		{"join of a proxy", "replica.s = Array.prototype.join.call(new Proxy({length: 3}, {}));", ErrorRuntime, "Proxy"},
		// Array.isArray is true for a proxy of an array: lengthOf's fast path for arrays must not take it.
		{"map over a proxy of an array", "replica.s = new Proxy([1, 2, 3], {get: (t, k) => k === 'length' ? 2 ** 32 - 1 : t[k]}).map(x => x);", ErrorRuntime, "Proxy"},
		{"split every character", "let x = 'x'; for (let i = 0; i < 22; i++) x += x; replica.n = x.split('').length;", ErrorMemory, "split: result over"},
		{"replaceAll amplification", "replica.s = 'a'.repeat(1 << 20).replaceAll('a', 'b'.repeat(1000));", ErrorMemory, "replaceAll: result over"},
		{"replace with $' is quadratic", "replica.s = 'a'.repeat(1 << 14).replace(/a/g, \"$'\");", ErrorMemory, "replace: result over"},
		{"replacer function amplification", "let big = 'b'; for (let i = 0; i < 20; i++) big += big; replica.s = 'a'.repeat(100).replace(/a/g, () => big);", ErrorMemory, "replace: result over"},
		{"padEnd with fill", "replica.s = 'x'.padEnd(2 ** 28, 'ab');", ErrorMemory, "padEnd: result over"},
		{"String.raw of a huge length", "replica.s = String.raw({raw: {length: 2 ** 31}});", ErrorRuntime, "String.raw: 2147483648 items"},
		{"huge ArrayBuffer", "replica.n = new ArrayBuffer(2 ** 40).byteLength;", ErrorMemory, "ArrayBuffer: result over"},
		{"huge typed array", "replica.n = new Float64Array(2 ** 30).length;", ErrorMemory, "Float64Array: result over"},
		{"typed array from an array-like", "replica.n = new Uint8Array({length: 2 ** 30}).length;", ErrorRuntime, "Uint8Array: 1073741824 items"},
		{"sparse array indexOf", "const a = []; a.length = 2 ** 32 - 1; replica.n = a.indexOf(1);", ErrorRuntime, "indexOf: 4294967295 items, over the limit"},
		{"Array(n) includes", "replica.n = new Array(2 ** 32 - 1).includes(1);", ErrorRuntime, "includes: 4294967295 items"},
		{"Array(n) map", "replica.n = Array(2 ** 23).map(x => 1).length;", ErrorRuntime, "map: 8388608 items, over the limit"},
		{"fromCharCode apply", "replica.s = String.fromCharCode.apply(null, {length: 2 ** 30});", ErrorRuntime, "apply: over 65536 arguments"},
		{"Reflect.apply", "replica.s = Reflect.apply(String.fromCharCode, null, new Array(1 << 20));", ErrorRuntime, "Reflect.apply: over"},
		{"flat of shared arrays", "let a = [1]; for (let i = 0; i < 40; i++) a = [a, a]; replica.n = a.flat(Infinity).length;", "", ""},
		{"concat of sparse arrays", "const a = []; a.length = 2 ** 31; replica.n = [].concat(a, a).length;", ErrorRuntime, "concat:"},
		{"JSON.stringify result", "let x = 'x'; for (let i = 0; i < 25; i++) x += x; replica.s = JSON.stringify([x]);", ErrorMemory, "JSON.stringify: result over"},
		{"JSON.stringify depth", "let a = []; for (let i = 0; i < 2000; i++) a = [a]; replica.s = JSON.stringify(a);", ErrorRuntime, "nested deeper"},
		{"log of a huge object", "let x = 'x'; for (let i = 0; i < 25; i++) x += x; log([x]);", ErrorMemory, "result over the memory (allocation) budget"},
		{"budget over many calls", "for (let i = 0; i < 400; i++) 'x'.repeat(100000);", ErrorMemory, "repeat: result over"},
		{"backtracking regexp", "replica.r = /(a+)+(?=c)c/.test('a'.repeat(34) + 'b');", ErrorTimeout, "regular expression"},
		{"back-reference regexp", "replica.r = /^(a+)+\\1b$/.test('a'.repeat(40));", ErrorTimeout, ""},
	} {
		runHostile(t, r, tc.name, tc.src, tc.kind, tc.msg)
	}
	runtime.GC()
	debug.FreeOSMemory()
	after := rssBytes(t)
	if after > before+300<<20 {
		t.Fatalf("RSS grew from %d MB to %d MB over the suite", before>>20, after>>20)
	}
	t.Logf("RSS before %d MB, after %d MB", before>>20, after>>20)
}
