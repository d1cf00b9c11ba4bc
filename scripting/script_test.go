package scripting

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/duplexsync/duplex/internal/loadscale"
)

func mustCompile(t testing.TB, kind Kind, src string) *Script {
	t.Helper()
	s, err := Compile(string(kind)+".js", kind, src)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return s
}

func outgoing(t testing.TB, r *Runner, src string, entity, previous map[string]any) (OutgoingResult, error) {
	t.Helper()
	return r.Outgoing(context.Background(), mustCompile(t, KindOutgoing, src), entity, previous, Meta{Connection: "c1", Side: "a"})
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("want *Error, got %T %v", err, err)
	}
	return se
}

func TestOutgoingMapsFields(t *testing.T) {
	r := NewRunner(Options{})
	src := `
replica.title = entity.subject.toUpperCase();
replica.labels = entity.tags.filter(t => t !== "internal");
replica.priority = entity.priority * 2;
replica.ratio = entity.priority / 4;
replica.assignee = entity.owner ? entity.owner.login : null;
replica.changed = previous === null ? "new" : previous.title !== replica.title;
replica.nothing = undefined;
const shared = {k: 1};
replica.a = shared; replica.b = shared;
replica.when = new Date(Date.UTC(2024, 0, 2));
`
	entity := map[string]any{
		"subject":  "hello",
		"tags":     []string{"bug", "internal"},
		"priority": 3,
		"owner":    map[string]any{"login": "ann"},
	}
	res, err := outgoing(t, r, src, entity, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"title":    "HELLO",
		"labels":   []any{"bug"},
		"priority": int64(6),
		"ratio":    0.75,
		"assignee": "ann",
		"changed":  "new",
		"nothing":  nil,
		"a":        map[string]any{"k": int64(1)},
		"b":        map[string]any{"k": int64(1)},
		"when":     "2024-01-02T00:00:00Z",
	}
	if !reflect.DeepEqual(res.Replica, want) {
		t.Fatalf("replica\n got %#v\nwant %#v", res.Replica, want)
	}
	res, err = outgoing(t, r, src, entity, map[string]any{"title": "HELLO"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replica["changed"] != false {
		t.Fatalf("changed = %v, want false", res.Replica["changed"])
	}
}

func TestInputsAreNativeAndReadOnly(t *testing.T) {
	r := NewRunner(Options{})
	res, err := outgoing(t, r, `
replica.isArray = Array.isArray(entity.list);
replica.json = JSON.stringify(entity);
replica.keys = Object.keys(entity).join(",");
replica.proto = Object.getPrototypeOf(entity) === Object.prototype;
replica.ownProto = Object.prototype.hasOwnProperty.call(entity, "__proto__");
try { entity.list.push(3); } catch (e) { replica.pushErr = e.name; }
try { entity.nested.x = 1; } catch (e) { replica.nestedErr = e.name; }
try { entity.added = 1; } catch (e) { replica.addErr = e.name; }
try { delete entity.b; } catch (e) { replica.deleteErr = e.name; }
try { previous.x = 1; } catch (e) { replica.previousErr = e.name; }
try { ctx.side = "x"; } catch (e) { replica.ctxErr = e.name; }
`, map[string]any{"list": []any{1, "two"}, "b": true, "a": nil, "nested": map[string]string{"x": "y"}, "__proto__": "p"}, map[string]any{"x": 0})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"isArray": true, "json": `{"__proto__":"p","a":null,"b":true,"list":[1,"two"],"nested":{"x":"y"}}`,
		"keys": "__proto__,a,b,list,nested", "proto": true, "ownProto": true,
		"pushErr": "TypeError", "nestedErr": "TypeError", "addErr": "TypeError", "deleteErr": "TypeError",
		"previousErr": "TypeError", "ctxErr": "TypeError",
	}
	if !reflect.DeepEqual(res.Replica, want) {
		t.Fatalf("got %#v\nwant %#v", res.Replica, want)
	}
}

// Inputs are deeply frozen, arrays (empty ones too) and ctx included, and
// ctx is the same on every run of the same connection and side.
func TestInputsAreFrozen(t *testing.T) {
	r := NewRunner(Options{MaxRuntimes: 1})
	src := `
replica.frozen = [entity, entity.list, entity.empty, entity.list[2], entity.nested, previous, previous.l, ctx].map(Object.isFrozen).join(",");
try { entity.list[0] = 9; } catch (e) { replica.setErr = e.name; }
try { entity.list.length = 0; } catch (e) { replica.lenErr = e.name; }
try { entity.empty.push(1); } catch (e) { replica.emptyErr = e.name; }
try { Object.defineProperty(entity.list, "0", {value: 3}); } catch (e) { replica.defErr = e.name; }
try { entity.list[2].k = 1; } catch (e) { replica.innerErr = e.name; }
replica.ctx = [ctx.connection, ctx.side, ctx.firstSync, Object.keys(ctx).join("+")].join(",");
replica.list = entity.list.length + ":" + entity.list.join("|") + ":" + Array.isArray(entity.empty);
`
	in := map[string]any{"list": []any{1, "two", map[string]any{"k": "v"}}, "empty": []any{}, "nested": map[string]any{"x": []string{}}}
	want := map[string]any{"frozen": "true,true,true,true,true,true,true,true",
		"setErr": "TypeError", "lenErr": "TypeError", "emptyErr": "TypeError", "defErr": "TypeError", "innerErr": "TypeError",
		"ctx": "c,a,false,connection+side+firstSync", "list": "3:1|two|[object Object]:true"}
	s := mustCompile(t, KindOutgoing, src)
	for i := 0; i < 3; i++ { // the runtime reused
		res, err := r.Outgoing(context.Background(), s, in, map[string]any{"l": []any{}}, Meta{Connection: "c", Side: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(res.Replica, want) {
			t.Fatalf("run %d: got %#v\nwant %#v", i, res.Replica, want)
		}
	}
}

func TestIncomingWritesEntity(t *testing.T) {
	r := NewRunner(Options{})
	s := mustCompile(t, KindIncoming, `
if (ctx.firstSync) entity.created = true;
entity.subject = replica.title;
entity.count = (entity.count || 0) + 1;
entity.side = ctx.side + "/" + ctx.connection;
delete entity.obsolete;
`)
	res, err := r.Incoming(context.Background(), s, map[string]any{"title": "T"}, nil, nil, Meta{Connection: "c1", Side: "b", FirstSync: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"created": true, "subject": "T", "count": int64(1), "side": "b/c1"}
	if res.Skipped || !reflect.DeepEqual(res.Entity, want) {
		t.Fatalf("first sync: got %#v skipped=%v", res.Entity, res.Skipped)
	}
	local := map[string]any{"subject": "old", "count": 4, "obsolete": "x", "keep": 1.5}
	res, err = r.Incoming(context.Background(), s, map[string]any{"title": "T2"}, map[string]any{"title": "T"}, local, Meta{Connection: "c1", Side: "b"})
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]any{"subject": "T2", "count": int64(5), "side": "b/c1", "keep": 1.5}
	if !reflect.DeepEqual(res.Entity, want) {
		t.Fatalf("got %#v want %#v", res.Entity, want)
	}
	if local["subject"] != "old" {
		t.Fatal("the caller's map was modified")
	}
}

func TestSkip(t *testing.T) {
	r := NewRunner(Options{MaxRuntimes: 1})
	for name, src := range map[string]string{
		"plain":  `if (replica.state === "draft") skip("draft " + replica.id); log("after"); entity.x = 1;`,
		"caught": `try { if (replica.state === "draft") skip("draft " + replica.id) } catch (e) { log("after") } entity.x = 1;`,
	} {
		t.Run(name, func(t *testing.T) {
			s := mustCompile(t, KindIncoming, src)
			res, err := r.Incoming(context.Background(), s, map[string]any{"state": "draft", "id": 7}, nil, nil, Meta{})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Skipped || res.SkipReason != "draft 7" || res.Entity != nil {
				t.Fatalf("got %+v", res)
			}
			if name == "plain" && len(res.Log) != 0 {
				t.Fatalf("script continued after skip: %v", res.Log)
			}
			res, err = r.Incoming(context.Background(), s, map[string]any{"state": "open"}, nil, nil, Meta{})
			if err != nil || res.Skipped || res.Entity["x"] != int64(1) {
				t.Fatalf("next run: %+v %v", res, err)
			}
		})
	}
	if _, err := Compile("o.js", KindOutgoing, `skip("x")`); err != nil {
		t.Fatal(err)
	}
	_, err := outgoing(t, r, `skip("x")`, nil, nil)
	if se := asError(t, err); !strings.Contains(se.Message, "skip is not defined") {
		t.Fatalf("outgoing skip: %v", err)
	}
}

func TestLog(t *testing.T) {
	r := NewRunner(Options{})
	res, err := outgoing(t, r, `log("a", 1, true, null, undefined, {b: [1, "x"]}, new TypeError("bad"), () => 1); console.log("c")`, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`a 1 true null undefined {"b":[1,"x"]} TypeError: bad [Function]`, "c"}
	if !reflect.DeepEqual(res.Log, want) {
		t.Fatalf("got %q", res.Log)
	}

	res, err = outgoing(t, r, `for (let i = 0; i < 1000; i++) log("line", i)`, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Log) != maxLogLines+1 || res.Log[maxLogLines-1] != "line 199" || res.Log[maxLogLines] != logTruncatedLine {
		t.Fatalf("line cap: %d lines, last %q", len(res.Log), res.Log[len(res.Log)-1])
	}

	res, err = outgoing(t, r, `const s = "x".repeat(10000); for (let i = 0; i < 100; i++) log(s)`, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, l := range res.Log {
		total += len(l)
	}
	if len(res.Log) != 7 || total > maxLogBytes+len(logTruncatedLine) || res.Log[6] != logTruncatedLine {
		t.Fatalf("byte cap: %d lines, %d bytes", len(res.Log), total)
	}
	// The next run starts with an empty log.
	res, _ = outgoing(t, r, `log("fresh")`, nil, nil)
	if !reflect.DeepEqual(res.Log, []string{"fresh"}) {
		t.Fatalf("log leaked between runs: %q", res.Log)
	}
}

func TestCompileErrorPosition(t *testing.T) {
	for _, tc := range []struct {
		src       string
		line, col int
		msg       string
	}{
		{"let x = ;", 1, 9, "Unexpected token ;"},
		{"replica.a = 1;\n\nlet y = ;", 3, 9, "Unexpected token ;"},
		{"replica.é = 1; let = 2", 1, 16, "Unexpected strict mode reserved word"}, // column in code points
		{"replica.a = 1;\nif (x) {\n  log(1)", 3, 9, "Unexpected end of script"},
		{"replica.a = 1;\n}); (function(){", 2, 1, "closing the script body"},
		{"let entity = 1", 1, 5, "'entity' has already been declared"},
	} {
		_, err := Compile("outgoing.js", KindOutgoing, tc.src)
		se := asError(t, err)
		if se.Kind != ErrorCompile || se.Line != tc.line || se.Column != tc.col || !strings.Contains(se.Message, tc.msg) {
			t.Errorf("%q: got %s %d:%d %q, want %d:%d %q", tc.src, se.Kind, se.Line, se.Column, se.Message, tc.line, tc.col, tc.msg)
		}
		if !strings.HasPrefix(se.Error(), fmt.Sprintf("outgoing.js:%d:%d: SyntaxError: ", tc.line, tc.col)) {
			t.Errorf("Error() = %q", se.Error())
		}
	}
	if _, err := Compile("x.js", Kind("sideways"), ""); err == nil {
		t.Error("unknown kind compiled")
	}
}

func TestRuntimeErrorPosition(t *testing.T) {
	r := NewRunner(Options{})
	for _, tc := range []struct {
		src       string
		line, col int
		msg       string
	}{
		{"replica.a = foo;", 1, 13, "ReferenceError: foo is not defined"},
		{"replica.a = 1;\n\nreplica.b = foo;", 3, 13, "ReferenceError: foo is not defined"},
		{"function f(o) {\n  return o.x.y;\n}\nf({});", 2, 14, "TypeError: Cannot read property 'y' of undefined"},
		{"replica.a = 1;\nJSON.parse('{');", 2, 11, "SyntaxError"}, // the user's frame, not JSON.parse's
		{"\n  throw new Error('boom');", 2, 9, "Error: boom"},
		{"replica = {};", 1, 11, "TypeError: Assignment to constant variable."},
		{"replica.f = () => 1;", 0, 0, "TypeError: replica.f: cannot export a function"},
		{"const o = {}; o.self = [o]; replica.o = o;", 0, 0, "TypeError: replica.o.self.0: cannot export a cyclic structure"},
		{"replica.m = new Map();", 0, 0, "cannot export [object Map]"},
	} {
		_, err := outgoing(t, r, tc.src, nil, nil)
		se := asError(t, err)
		if se.Kind != ErrorRuntime || se.Script != "outgoing.js" || se.Line != tc.line || se.Column != tc.col || !strings.Contains(se.Message, tc.msg) {
			t.Errorf("%q: got %s %d:%d %q, want %d:%d %q", tc.src, se.Kind, se.Line, se.Column, se.Message, tc.line, tc.col, tc.msg)
		}
	}
	_, err := outgoing(t, r, "replica.a = 1;\n\n  foo;", nil, nil)
	if got := err.Error(); got != "outgoing.js:3:3: ReferenceError: foo is not defined" {
		t.Errorf("Error() = %q", got)
	}
}

func TestTimeout(t *testing.T) {
	const deadline = 100 * time.Millisecond
	r := NewRunner(Options{Timeout: deadline, MaxRuntimes: 1})
	for _, src := range []string{
		"while (true) {}",
		"replica.a = 1;\n[1, 2].map(() => { for (;;) {} });",
		"replica.a = 1;\ntry { while (true) {} } finally { replica.b = 2 }",
		"Object.defineProperty(replica, 'x', {enumerable: true, get() { for (;;) {} }});",
	} {
		s := mustCompile(t, KindOutgoing, src)
		done := make(chan error, 1)
		go func() {
			_, err := r.Outgoing(context.Background(), s, nil, nil, Meta{})
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(loadscale.Duration(100 * deadline)): // catches a missing interrupt; not a speed assertion
			t.Fatalf("%q: not interrupted within 100x the deadline", src)
		}
		se := asError(t, err)
		if se.Kind != ErrorTimeout || !errors.Is(err, ErrTimeout) {
			t.Fatalf("%q: got %v", src, err)
		}
		// The same runtime runs again; a longer deadline of its own so a
		// loaded machine cannot fail it for slowness.
		res, err := r.Outgoing(context.Background(), mustCompile(t, KindOutgoing, `replica.ok = true`), nil, nil, Meta{Timeout: 5 * time.Second})
		if err != nil || res.Replica["ok"] != true {
			t.Fatalf("run after timeout: %v %v", res, err)
		}
	}
	// (goja maps an empty loop body to the statement before it, hence i++.)
	// A deadline of its own, so that a loaded machine cannot let it pass
	// before the run has reached line 2.
	_, err := r.Outgoing(context.Background(), mustCompile(t, KindOutgoing, "let i = 0;\nwhile (true) { i++; }"), nil, nil, Meta{Timeout: loadscale.Duration(time.Second)})
	if se := asError(t, err); se.Line != 2 {
		t.Errorf("timeout position %d:%d, want line 2", se.Line, se.Column)
	}
}

// A context's cancel or deadline interrupts a run. The runner's own
// deadline is a minute away, so that it cannot be what ended the run: a
// cancel shows as context.Canceled in the error, a context deadline as
// ending the run within a bound far below the minute (not a speed check).
func TestContextInterrupts(t *testing.T) {
	r := NewRunner(Options{Timeout: time.Minute, MaxTimeout: time.Minute, MaxRuntimes: 1})
	s := mustCompile(t, KindOutgoing, "while (true) {}")

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := r.Outgoing(ctx, s, nil, nil, Meta{})
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) || asError(t, err).Kind != ErrorTimeout {
		t.Fatalf("cancel: %v", err)
	}

	ctx, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	start := time.Now()
	_, err = r.Outgoing(ctx, s, nil, nil, Meta{})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("ctx deadline: %v", err)
	}
	if d := time.Since(start); d > loadscale.Duration(10*time.Second) {
		t.Fatalf("ctx deadline: the run ended after %v, not at its context's deadline", d)
	}

	// Already cancelled: does not run at all.
	_, err = r.Outgoing(ctx, mustCompile(t, KindOutgoing, "replica.a = 1"), nil, nil, Meta{})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("cancelled ctx: %v", err)
	}
	res, err := outgoing(t, r, `replica.ok = true`, nil, nil)
	if err != nil || res.Replica["ok"] != true {
		t.Fatalf("run after cancel: %v %v", res, err)
	}
}

// With every runtime busy, a run waits for one, and its ctx still bounds it.
// The busy run holds the only runtime until the test cancels it (its own
// deadline is a minute away), so the waiter can only end by its ctx.
func TestWaitForRuntime(t *testing.T) {
	r := NewRunner(Options{Timeout: 500 * time.Millisecond, MaxTimeout: time.Minute, MaxRuntimes: 1})
	busy := mustCompile(t, KindOutgoing, "while (true) {}")
	busyCtx, stopBusy := context.WithCancel(context.Background())
	defer stopBusy()
	busyDone := make(chan error, 1)
	go func() {
		_, err := r.Outgoing(busyCtx, busy, nil, nil, Meta{Timeout: time.Minute})
		busyDone <- err
	}()
	for len(r.slots) == 0 { // the busy run has taken the only runtime
		time.Sleep(time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Outgoing(ctx, mustCompile(t, KindOutgoing, "replica.a = 1"), nil, nil, Meta{})
	if se := asError(t, err); se.Kind != ErrorTimeout || !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > loadscale.Duration(10*time.Second) { // far below the busy run's minute: not a speed check
		t.Fatalf("waited %v past its ctx", d)
	}
	select {
	case err := <-busyDone:
		t.Fatalf("the busy run ended before it was cancelled: %v", err)
	default:
	}
	// Without a ctx deadline it waits for the busy run to end, then runs.
	waited := make(chan error, 1)
	next := mustCompile(t, KindOutgoing, "replica.a = 1")
	go func() {
		res, err := r.Outgoing(context.Background(), next, nil, nil, Meta{})
		if err == nil && res.Replica["a"] != int64(1) {
			err = fmt.Errorf("replica %v", res.Replica)
		}
		waited <- err
	}()
	stopBusy()
	if err := <-busyDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("busy run: %v", err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("after wait: %v", err)
	}
}

func TestDeepRecursion(t *testing.T) {
	r := NewRunner(Options{MaxRuntimes: 1})
	for _, src := range []string{
		"function f(n) { return f(n + 1) + 1; }\nf(0);",
		"function g() { return [1].map(g); }\ng();",
	} {
		_, err := outgoing(t, r, src, nil, nil)
		se := asError(t, err)
		if se.Kind != ErrorRuntime || !strings.Contains(se.Message, "Maximum call stack size exceeded") || se.Line == 0 {
			t.Fatalf("%q: %v", src, err)
		}
	}
	res, err := outgoing(t, r, `function f(n) { return n === 0 ? 0 : 1 + f(n - 1); } replica.d = f(100);`, nil, nil)
	if err != nil || res.Replica["d"] != int64(100) {
		t.Fatalf("after overflow: %v %v", res, err)
	}
}

func TestIsolation(t *testing.T) {
	r := NewRunner(Options{MaxRuntimes: 1}) // one runtime, reused by every run
	first := `
const attempts = {
	global: () => { globalThis.leak = 1; },
	implicit: () => { leak2 = 1; },
	indirectEval: () => { (0, eval)("var leak3 = 1; let leak4 = 1;"); },
	fn: () => { Function("leak5 = 1")(); },
	json: () => { JSON = null; },
	mathMax: () => { Math.max = () => 42; },
	objectProto: () => { Object.prototype.polluted = 1; },
	arrayProto: () => { Array.prototype.includes = () => true; },
	stringProto: () => { String.prototype.trim = function () { return "x"; }; },
	iterProto: () => { Object.getPrototypeOf([][Symbol.iterator]()).next = () => ({done: true}); },
	defineGlobal: () => { Object.defineProperty(globalThis, "leak6", {value: 1}); },
	logProp: () => { log.extra = 1; },
	console: () => { console.log = null; },
	errorProto: () => { Error.prototype.name = "hacked"; },
	objectToString: () => { Object.prototype.toString = () => "hacked"; },
};
for (const [name, f] of Object.entries(attempts)) {
	try { f(); replica[name] = "allowed"; } catch (e) { replica[name] = e.name; }
}
`
	res, err := outgoing(t, r, first, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, outcome := range res.Replica {
		if name == "fn" {
			continue // sloppy code silently fails to write the frozen global
		}
		if outcome != "TypeError" && outcome != "ReferenceError" {
			t.Errorf("%s: %v", name, outcome)
		}
	}
	res, err = outgoing(t, r, `
replica.leaks = [typeof leak, typeof leak2, typeof leak3, typeof leak4, typeof leak5, typeof leak6].join(",");
replica.json = typeof JSON.stringify;
replica.max = Math.max(1, 2);
replica.polluted = ({}).polluted === undefined;
replica.includes = [1].includes(2);
replica.trim = " a ".trim();
replica.iter = [...[1, 2]].length;
replica.log = log.extra === undefined;
replica.console = typeof console.log;
replica.errorName = new Error("x").name;
replica.objectString = String({});
`, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"leaks": "undefined,undefined,undefined,undefined,undefined,undefined", "json": "function",
		"max": int64(2), "polluted": true, "includes": false, "trim": "a", "iter": int64(2), "log": true, "console": "function",
		"errorName": "Error", "objectString": "[object Object]",
	}
	if !reflect.DeepEqual(res.Replica, want) {
		t.Fatalf("second run saw\n%#v\nwant %#v", res.Replica, want)
	}
}

// Frozen built-ins must not stop scripts from overriding common names on
// their own objects.
func TestOverrideOwnObjects(t *testing.T) {
	r := NewRunner(Options{})
	res, err := outgoing(t, r, `
const e = new TypeError("bad"); e.name = "MappingError"; e.message = "worse";
replica.err = String(e);
const o = {}; o.toString = () => "custom"; o.constructor = "c";
replica.obj = String(o) + "/" + o.constructor;
replica.keys = Object.keys(o).join(",");
class Item { constructor(n) { this.n = n; } toString() { return "item " + this.n; } }
replica.item = String(new Item(2));
`, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"err": "MappingError: worse", "obj": "custom/c", "keys": "toString,constructor", "item": "item 2"}
	if !reflect.DeepEqual(res.Replica, want) {
		t.Fatalf("got %#v", res.Replica)
	}
}

func TestNoHostGlobals(t *testing.T) {
	r := NewRunner(Options{})
	res, err := outgoing(t, r, `
for (const n of ["require", "process", "setTimeout", "setInterval", "setImmediate", "queueMicrotask", "fetch", "GoError", "module", "exports"]) {
	replica[n] = typeof globalThis[n];
}
replica.this = typeof this;
`, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for n, v := range res.Replica {
		if v != "undefined" {
			t.Errorf("%s is %v", n, v)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	r := NewRunner(Options{MaxRuntimes: 2})
	s := mustCompile(t, KindOutgoing, `replica.id = entity.id; replica.sum = entity.xs.reduce((a, b) => a + b, 0); log(entity.id);`)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				id := fmt.Sprintf("%d-%d", g, i)
				res, err := r.Outgoing(context.Background(), s, map[string]any{"id": id, "xs": []any{i, g, 1}}, nil, Meta{})
				if err != nil || res.Replica["id"] != id || res.Replica["sum"] != int64(i+g+1) || len(res.Log) != 1 || res.Log[0] != id {
					errs <- fmt.Errorf("%s: %v %v", id, res, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// An input a script reads must convert (the scripts below read it: a field
// a script cannot read is not converted at all, see OnlyReads).
func TestBadInput(t *testing.T) {
	r := NewRunner(Options{})
	_, err := outgoing(t, r, `replica.x = entity.ch;`, map[string]any{"ch": make(chan int)}, nil)
	if err == nil || !strings.Contains(err.Error(), "entity.ch: unsupported Go type chan int") {
		t.Fatalf("got %v", err)
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	if _, err := outgoing(t, r, `replica.x = Object.keys(entity);`, cyclic, nil); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("got %v", err)
	}
	inc := mustCompile(t, KindIncoming, "")
	if _, err := r.Outgoing(context.Background(), inc, nil, nil, Meta{}); err == nil {
		t.Fatal("incoming script ran as outgoing")
	}
}

// Unless disabled, goja reads the file a "//# sourceMappingURL=" comment
// names from the server's disk, at compile time and in eval. A FIFO makes
// such a read block forever.
func TestSourceMapCommentIgnored(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "evil.map")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFO:", err)
	}
	// goja resolves the URL against the script name, so a relative path
	// (from the process's working directory) is what reaches the disk.
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, fifo)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRunner(Options{})
	done := make(chan error, 2)
	go func() {
		_, err := Compile("outgoing.js", KindOutgoing, "replica.a = 1;\n//# sourceMappingURL="+rel)
		done <- err
	}()
	go func() {
		_, err := outgoing(t, r, `(0, eval)("1\n//# sourceMappingURL=`+rel+`")`, nil, nil)
		done <- err
	}()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			// Unblock the stuck reader so the test binary can exit.
			if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
				f.Close()
			}
			t.Fatal("parser read the source map file")
		}
	}
}

// Observe sees every run with its kind, time and outcome.
func TestObserve(t *testing.T) {
	type seen struct {
		kind Kind
		err  error
	}
	var got []seen
	r := NewRunner(Options{Timeout: 200 * time.Millisecond, Observe: func(k Kind, d time.Duration, err error) {
		if d <= 0 {
			t.Errorf("run time %v", d)
		}
		got = append(got, seen{k, err})
	}})
	if _, err := outgoing(t, r, `replica.a = 1`, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := outgoing(t, r, `throw new Error("no")`, nil, nil); err == nil {
		t.Fatal("a throwing script succeeded")
	}
	if len(got) != 2 || got[0].kind != KindOutgoing || got[0].err != nil || got[1].err == nil {
		t.Fatalf("observed %+v", got)
	}
}

// A source over MaxSourceBytes is refused before it is parsed (a 1 MiB
// nest of brackets overflowed the stack of the process that parsed it: a
// fatal error, not a panic), and the deepest forms found at the limit
// compile with room to spare.
func TestSourceLimit(t *testing.T) {
	bomb := "replica.x = " + strings.Repeat("[", 500_000) + strings.Repeat("]", 500_000) + ";"
	_, err := Compile("bomb.js", KindOutgoing, bomb)
	var se *Error
	if !errors.As(err, &se) || se.Kind != ErrorCompile || !errors.Is(err, ErrSourceTooLarge) {
		t.Fatalf("a 1 MB source: %v, want a compile error for its size", err)
	}
	half := (MaxSourceBytes - 40) / 2
	for name, src := range map[string]string{
		"brackets": "replica.x = " + strings.Repeat("[", half) + strings.Repeat("]", half) + ";",
		"parens":   "replica.x = " + strings.Repeat("(", half) + "1" + strings.Repeat(")", half) + ";",
		"not":      "replica.x = " + strings.Repeat("!", 2*half) + "1;",
		"assign":   "let a; replica.x = (" + strings.Repeat("a=", half) + "1);",
	} {
		if len(src) > MaxSourceBytes {
			t.Fatalf("%s: %d bytes, over the limit", name, len(src))
		}
		if _, err := Compile(name+".js", KindOutgoing, src); err != nil {
			t.Errorf("%s at the limit: %v", name, err)
		}
	}
}
