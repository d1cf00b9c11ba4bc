package scripting

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/dlclark/regexp2/v2"
	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"
)

// Limits inside a run. goja checks its interrupt flag between instructions
// only, so one built-in call that loops or allocates a lot runs to its end
// whatever the deadline. The guards below make such calls fail fast with a
// clear error instead; the deadline, the heap watchdog (memory.go) and the
// worker process's OS limits remain the backstops.
const (
	// DefaultAllocBudget is what the built-ins that allocate in proportion
	// to their arguments (repeat, padStart, join, split, replace, typed
	// arrays, JSON.stringify, map, ...) may allocate in one run, in bytes,
	// counted from the size of their results before they run (strings at
	// 2 bytes a character, array items at 16 bytes). It is a sum over the
	// run, not a live size: garbage is counted too.
	DefaultAllocBudget = 64 << 20
	// maxItems caps the length a built-in may iterate over: `a.length =
	// 2**32-1; a.indexOf(1)` would loop 4 billion times in Go, and a
	// million holes already take ~0.5 s. It is also the longest array a
	// script may return (convert.go).
	maxItems = maxArrayLen
	// maxApplyArgs caps the arguments of apply/Reflect.apply/construct,
	// which copy an array-like into an argument list at once.
	maxApplyArgs = 1 << 16
	// maxJSONDepth caps the nesting JSON.stringify descends into (it
	// recurses on the Go stack).
	maxJSONDepth = 1000
	// RegexpMatchTimeout is how long one regular-expression match may run.
	// Patterns Go's RE2 cannot run (lookahead, back-references) go to
	// regexp2, which backtracks and ignores goja's interrupt; this is its
	// MatchTimeout. A match that takes longer ends the run with a timeout
	// error, so a run overruns its deadline by at most about this much
	// (plus regexp2's 100 ms clock tick).
	RegexpMatchTimeout = 100 * time.Millisecond
)

// errAllocBudget is the message of a built-in call refused by the budget.
const errAllocBudget = "%s: result over the memory (allocation) budget of a run (%d MiB)"

// errRegexpTimeout ends a run whose regular-expression match ran too long.
var errRegexpTimeout = fmt.Errorf("a regular expression match ran over %v (catastrophic backtracking?)", RegexpMatchTimeout)

var regexpTimeoutOnce sync.Once

// limitRegexpMatches gives every regexp2 pattern compiled from now on a
// match timeout. goja builds its regexp2 objects itself (at compile time for
// literals, at run time for new RegExp) and offers no hook for the timeout,
// so the package default is the only handle; goja swallows the timeout error
// as "no match", which is why the exec/test guards measure the time and turn
// a long match into an error. Duplex compiles scripts only through this
// package, which calls this before any goja compilation.
func limitRegexpMatches() {
	regexpTimeoutOnce.Do(func() { regexp2.DefaultMatchTimeout = RegexpMatchTimeout })
}

// guardsProgram replaces, in a new runtime and before it is frozen, the
// built-ins that can allocate or loop in proportion to their arguments with
// wrappers that coerce each argument once (a valueOf that answers
// differently on a second call cannot fool them), check the result's size
// against the run's budget (charge) or a cap, then call the original with
// the coerced values.
var guardsProgram = goja.MustCompile("guards.js", `(function (charge, count, jsonLen, isProxy, now, rxSlow, backtracks, taint, limits) {
	"use strict";
	const apply = Reflect.apply, construct = Reflect.construct, defineProperty = Object.defineProperty,
		getDesc = Reflect.getOwnPropertyDescriptor, getProto = Object.getPrototypeOf, setProto = Object.setPrototypeOf,
		isArray = Array.isArray, isView = ArrayBuffer.isView, trunc = Math.trunc, min = Math.min, max = Math.max,
		String_ = String, Map_ = Map, mapGet = Map.prototype.get, mapSet = Map.prototype.set,
		Set_ = Set, setHas = Set.prototype.has, setAdd = Set.prototype.add, indexOf = String.prototype.indexOf,
		slice = String.prototype.slice;
	const maxItems = limits.maxItems, maxArgs = limits.maxArgs, maxDepth = limits.maxDepth, rxMillis = limits.rxMillis;
	const TypedArray = getProto(Int8Array), taLength = getDesc(TypedArray.prototype, "length").get;
	const AP = Array.prototype, SP = String.prototype;

	function put(obj, name, fn) {
		const d = getDesc(obj, name);
		defineProperty(obj, name, {value: fn, writable: d.writable, enumerable: d.enumerable, configurable: d.configurable});
		defineProperty(fn, "name", {value: typeof name === "symbol" ? "[" + name.description + "]" : name});
		defineProperty(fn, "length", {value: d.value.length});
	}
	function toInt(v) { const n = +v; return n !== n ? 0 : trunc(n); }
	function toLen(v) { const n = toInt(v); return n <= 0 ? 0 : min(n, 9007199254740991); }
	function str(v) {
		if (typeof v === "symbol") throw new TypeError("Cannot convert a Symbol value to a string");
		return String_(v);
	}
	function thisStr(t, what) {
		if (t === null || t === undefined) throw new TypeError("String.prototype." + what + " called on null or undefined");
		return str(t);
	}
	function isObject(v) { return v !== null && (typeof v === "object" || typeof v === "function"); }
	function tooMany(what, n) { throw new RangeError(what + ": " + n + " items, over the limit of " + maxItems); }
	// lengthOf reads the length a built-in would read, once, and refuses
	// receivers that could answer a second read differently (a Proxy, a
	// getter, an object as length).
	function lengthOf(o, what) {
		if (o === null || o === undefined) throw new TypeError(what + " called on null or undefined");
		if (!isObject(o)) return typeof o === "string" ? o.length : 0;
		// A genuine array's length is its own data property, a number: what
		// the loop would find first, without its descriptor object.
		if (isArray(o) && !isProxy(o)) return o.length;
		for (let p = o; p !== null; p = getProto(p)) {
			if (isProxy(p)) throw new TypeError(what + ": not allowed on a Proxy in scripts");
			if (isView(p) && !(p instanceof DataView)) return apply(taLength, p, []);
			const d = getDesc(p, "length");
			if (d === undefined) continue;
			if (!("value" in d)) throw new TypeError(what + ": not allowed on an object whose length is a getter in scripts");
			if (typeof d.value !== "number" && d.value !== undefined) throw new TypeError(what + ": length is not a number");
			return toLen(d.value);
		}
		return 0;
	}
	function items(o, what) {
		const n = lengthOf(o, what);
		if (n > maxItems) tooMany(what, n);
		return n;
	}

	// Strings.
	const repeat = SP.repeat;
	put(SP, "repeat", function (count) {
		const s = thisStr(this, "repeat"), n = toInt(count);
		if (n > 0 && s.length > 0) charge(s.length * n * 2, "repeat");
		return apply(repeat, s, [n]);
	});
	for (const name of ["padStart", "padEnd"]) {
		const orig = SP[name];
		put(SP, name, function (maxLength, fill) {
			const s = thisStr(this, name), n = toLen(maxLength), f = fill === undefined ? undefined : str(fill);
			if (n > s.length && f !== "") charge(n * 2, name);
			return apply(orig, s, [n, f]);
		});
	}
	const raw = String.raw;
	put(String, "raw", function (template) {
		const args = [];
		for (let i = 0; i < arguments.length; i++) args[i] = arguments[i];
		if (isObject(template)) {
			const r = template.raw; // read once: the original reads our copy
			items(r, "String.raw");
			args[0] = {raw: r};
		}
		return apply(raw, String, args);
	});
	const split = SP.split;
	put(SP, "split", function (separator, limit) {
		if (this === null || this === undefined) throw new TypeError("String.prototype.split called on null or undefined");
		if (isObject(separator)) {
			const splitter = separator[Symbol.split];
			if (splitter !== undefined && splitter !== null) return apply(splitter, separator, [this, limit]);
		}
		const s = str(this), lim = limit === undefined ? 4294967295 : limit >>> 0;
		if (separator === undefined) return apply(split, s, [undefined, lim]);
		const p = str(separator), n = min(lim, p === "" ? s.length : count(s, p) + 1);
		charge(n * 16 + s.length * 2, "split");
		return apply(split, s, [p, lim]);
	});
	// A replacer function's results are charged as they come; replace
	// concatenates them only after the last one.
	function charged(fn, what) {
		return function () {
			const r = str(apply(fn, undefined, arguments));
			charge(r.length * 2, what);
			return r;
		};
	}
	for (const name of ["replace", "replaceAll"]) {
		const orig = SP[name];
		put(SP, name, function (pattern, replacement) {
			if (this === null || this === undefined) throw new TypeError("String.prototype." + name + " called on null or undefined");
			if (isObject(pattern)) {
				if (name === "replaceAll" && pattern instanceof RegExp && apply(indexOf, str(pattern.flags), ["g"]) < 0) {
					throw new TypeError("replaceAll must be called with a global RegExp");
				}
				const replacer = pattern[Symbol.replace];
				if (replacer !== undefined && replacer !== null) return apply(replacer, pattern, [this, replacement]);
				pattern = str(pattern);
			}
			const s = str(this), p = str(pattern);
			if (typeof replacement === "function") return apply(orig, s, [p, charged(replacement, name)]);
			const rep = str(replacement);
			const n = name === "replace" ? (apply(indexOf, s, [p]) >= 0 ? 1 : 0) : (p === "" ? s.length + 1 : count(s, p));
			// $&, $-backquote and $' insert the match or the text around it.
			const per = rep.length + count(rep, "$") * max(s.length, p.length);
			charge((s.length + n * per) * 2, name);
			return apply(orig, s, [p, rep]);
		});
	}
	// GetSubstitution for RegExp replacements, run per match so that each
	// piece is charged: a$' on a long text is quadratic.
	function substitute(rep, a) {
		const last = a[a.length - 1], groups = isObject(last) ? last : undefined;
		const k = groups !== undefined ? a.length - 1 : a.length;
		const text = a[k - 1], position = a[k - 2], matched = a[0], m = k - 3;
		let out = "";
		for (let i = 0; i < rep.length; i++) {
			const c = rep[i];
			if (c !== "$" || i + 1 >= rep.length) { out += c; continue; }
			const d = rep[i + 1];
			if (d === "$") { out += "$"; i++; }
			else if (d === "&") { out += matched; i++; }
			else if (d === "\x60") { out += apply(slice, text, [0, position]); i++; }
			else if (d === "'") { out += apply(slice, text, [position + matched.length]); i++; }
			else if (d >= "0" && d <= "9") {
				const d2 = i + 2 < rep.length ? rep[i + 2] : "", two = d2 >= "0" && d2 <= "9" ? +(d + d2) : -1;
				if (two >= 1 && two <= m) { const v = a[two]; out += v === undefined ? "" : str(v); i += 2; }
				else if (+d >= 1 && +d <= m) { const v = a[+d]; out += v === undefined ? "" : str(v); i++; }
				else out += "$";
			} else if (d === "<" && groups !== undefined) {
				const end = apply(indexOf, rep, [">", i + 2]);
				if (end < 0) { out += "$"; continue; }
				const v = groups[apply(slice, rep, [i + 2, end])];
				if (v !== undefined) out += str(v);
				i = end;
			} else out += "$";
		}
		return out;
	}
	// Regular expressions. Patterns RE2 can run keep goja's fast paths
	// (linear time). A pattern only regexp2 can run (backtracks) runs on a
	// clone with its own exec: that turns goja's global match, replace,
	// split and matchAll into one exec call per match made from JS, where
	// the interrupt is checked, and each exec, one regexp2 match bounded by
	// its MatchTimeout (which goja reports as "no match"), is timed.
	const RegExp_ = RegExp, protoExec = RegExp.prototype.exec;
	function timedExec(string) {
		const t0 = now(), r = apply(protoExec, this, [string]);
		if (now() - t0 >= rxMillis) rxSlow();
		return r;
	}
	const species = {};
	function TimedRegExp(pattern, flags) { return timed(new RegExp_(pattern, flags)); }
	defineProperty(species, Symbol.species, {value: TimedRegExp});
	function timed(rx) {
		defineProperty(rx, "exec", {value: timedExec});
		defineProperty(rx, "constructor", {value: species});
		return rx;
	}
	function onTimed(orig) {
		return function () {
			if (!backtracks(this)) return apply(orig, this, arguments);
			const c = timed(new RegExp_(this.source, this.flags));
			c.lastIndex = this.lastIndex;
			const r = apply(orig, c, arguments);
			this.lastIndex = c.lastIndex;
			return r;
		};
	}
	for (const sym of [Symbol.match, Symbol.matchAll, Symbol.search, Symbol.split]) {
		put(RegExp.prototype, sym, onTimed(RegExp.prototype[sym]));
	}
	const protoTest = RegExp.prototype.test;
	put(RegExp.prototype, "test", function (string) {
		const t0 = now(), r = apply(protoTest, this, [string]);
		if (now() - t0 >= rxMillis && backtracks(this)) rxSlow();
		return r;
	});
	const rxReplace = onTimed(RegExp.prototype[Symbol.replace]);
	put(RegExp.prototype, Symbol.replace, function (string, replaceValue) {
		const s = str(string);
		let fn;
		if (typeof replaceValue === "function") fn = charged(replaceValue, "replace");
		else {
			const rep = str(replaceValue);
			fn = apply(indexOf, rep, ["$"]) < 0
				? function () { charge(rep.length * 2, "replace"); return rep; }
				: function () { const r = substitute(rep, arguments); charge(r.length * 2, "replace"); return r; };
		}
		charge(s.length * 2, "replace");
		return apply(rxReplace, this, [s, fn]);
	});

	// Arrays: everything that loops over length or builds an array of it.
	for (const name of ["copyWithin", "every", "find", "findIndex", "findLast", "findLastIndex", "forEach", "includes",
		"indexOf", "lastIndexOf", "reduce", "reduceRight", "reverse", "some", "shift", "unshift", "toLocaleString"]) {
		const orig = AP[name];
		if (orig === undefined) continue;
		put(AP, name, function () { items(this, name); return apply(orig, this, arguments); });
	}
	for (const name of ["fill", "filter", "map", "slice", "sort", "splice", "toReversed", "toSorted", "toSpliced", "with"]) {
		const orig = AP[name];
		if (orig === undefined) continue;
		put(AP, name, function () { charge(items(this, name) * 16, name); return apply(orig, this, arguments); });
	}
	const join = AP.join;
	put(AP, "join", function (separator) {
		const n = items(this, "join"), o = Object(this), sep = separator === undefined ? "," : str(separator);
		charge(n * 16, "join");
		const parts = [];
		let size = sep.length * max(0, n - 1);
		for (let i = 0; i < n; i++) {
			const e = o[i], t = e === undefined || e === null ? "" : str(e);
			size += t.length;
			parts[i] = t;
		}
		charge(size * 2, "join");
		return apply(join, parts, [sep]);
	});
	const concat = AP.concat;
	put(AP, "concat", function () {
		let n = items(this, "concat");
		for (let i = 0; i < arguments.length; i++) n += isObject(arguments[i]) ? max(1, items(arguments[i], "concat")) : 1;
		if (n > maxItems) tooMany("concat", n);
		charge(n * 16, "concat");
		return apply(concat, this, arguments);
	});
	// flat counts what it would produce first (shared sub-arrays can make it
	// exponential), in JS, where the call-stack limit applies.
	function flatCount(a, depth, n) {
		const len = items(a, "flat");
		for (let i = 0; i < len; i++) {
			const e = a[i];
			n = depth > 0 && isArray(e) ? flatCount(e, depth - 1, n) : n + 1;
			if (n > maxItems) tooMany("flat", n);
		}
		return n;
	}
	const flat = AP.flat;
	put(AP, "flat", function (depth) {
		const d = depth === undefined ? 1 : toInt(depth);
		charge(flatCount(Object(this), d, 0) * 16, "flat");
		return apply(flat, this, [d]);
	});
	const flatMap = AP.flatMap;
	put(AP, "flatMap", function (fn, thisArg) {
		charge(items(this, "flatMap") * 16, "flatMap");
		if (typeof fn !== "function") throw new TypeError("flatMap: callback is not a function");
		return apply(flatMap, this, [function (x, i, a) {
			const r = apply(fn, thisArg, [x, i, a]);
			if (isArray(r)) charge(items(r, "flatMap") * 16, "flatMap");
			return r;
		}]);
	});
	const from = Array.from;
	put(Array, "from", function (arrayLike) {
		if (arrayLike !== null && arrayLike !== undefined) charge(items(arrayLike, "Array.from") * 16, "Array.from");
		return apply(from, this, arguments);
	});

	// Calls that copy an array-like into an argument list.
	const fnApply = Function.prototype.apply;
	put(Function.prototype, "apply", function (thisArg, args) {
		if (args === null || args === undefined) return apply(this, thisArg, []);
		if (lengthOf(args, "apply") > maxArgs) throw new RangeError("apply: over " + maxArgs + " arguments");
		return apply(fnApply, this, [thisArg, args]);
	});
	put(Reflect, "apply", function (target, thisArg, args) {
		if (isObject(args) && lengthOf(args, "Reflect.apply") > maxArgs) throw new RangeError("Reflect.apply: over " + maxArgs + " arguments");
		return apply(target, thisArg, args);
	});
	put(Reflect, "construct", function (target, args) {
		if (isObject(args) && lengthOf(args, "Reflect.construct") > maxArgs) throw new RangeError("Reflect.construct: over " + maxArgs + " arguments");
		return apply(construct, undefined, arguments);
	});

	// Buffers: the constructors are replaced by wrappers that share their
	// prototype, so instanceof, constructor and species keep working.
	function wrapCtor(name, bytes) {
		const C = globalThis[name];
		const W = function () {
			if (new.target === undefined) return apply(C, this, arguments); // throws: needs new
			const args = [];
			for (let i = 0; i < arguments.length; i++) args[i] = arguments[i];
			charge(bytes(args), name);
			return construct(C, args, new.target === W ? C : new.target);
		};
		for (const k of Reflect.ownKeys(C)) {
			if (k === "prototype" || k === "length" || k === "name") continue;
			defineProperty(W, k, getDesc(C, k));
		}
		defineProperty(W, "prototype", {value: C.prototype});
		defineProperty(W, "name", {value: name});
		defineProperty(W, "length", {value: C.length});
		setProto(W, getProto(C));
		defineProperty(C.prototype, "constructor", {value: W, writable: true, enumerable: false, configurable: true});
		defineProperty(globalThis, name, {value: W, writable: true, enumerable: false, configurable: true});
	}
	wrapCtor("ArrayBuffer", args => {
		args[0] = toInt(args[0]);
		args.length = 1; // no resizable buffers: maxByteLength would reserve
		return args[0];
	});
	for (const name of ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array",
		"Uint32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"]) {
		if (globalThis[name] === undefined) continue;
		const size = globalThis[name].BYTES_PER_ELEMENT;
		wrapCtor(name, args => {
			const a = args[0];
			if (!isObject(a)) { args[0] = toInt(a); return args[0] * size; }
			if (a instanceof ArrayBuffer) return 0; // a view: allocates nothing
			return items(a, name) * size;
		});
	}

	// JSON.stringify gets a replacer that charges each value it writes and
	// tracks the nesting (it recurses on the Go stack).
	const stringify = JSON.stringify;
	put(JSON, "stringify", function (value, replacer, space) {
		let gap = space;
		if (gap instanceof Number) gap = +gap; else if (gap instanceof String) gap = str(gap);
		const gapLen = typeof gap === "number" ? min(10, max(0, toInt(gap))) : typeof gap === "string" ? min(10, gap.length) : 0;
		let fn, allow;
		if (typeof replacer === "function") fn = replacer;
		else if (isArray(replacer)) {
			allow = new Set_();
			const n = items(replacer, "JSON.stringify");
			for (let i = 0; i < n; i++) {
				let k = replacer[i];
				if (k instanceof Number || k instanceof String) k = str(k);
				if (typeof k === "string" || typeof k === "number") apply(setAdd, allow, [str(k)]);
			}
		}
		const depths = new Map_();
		const wrapped = function (key, v) {
			if (fn !== undefined) v = apply(fn, this, [key, v]);
			else if (allow !== undefined && key !== "" && !isArray(this) && !apply(setHas, allow, [key])) return undefined;
			const depth = (apply(mapGet, depths, [this]) || 0) + 1;
			if (depth > maxDepth) throw new RangeError("JSON.stringify: nested deeper than " + maxDepth + " levels");
			let size = key.length + 4 + gapLen * depth;
			if (typeof v === "string") size += jsonLen(v);
			else if (isObject(v)) { apply(mapSet, depths, [v, depth]); size += 2; }
			else size += 24;
			charge(size * 2, "JSON.stringify");
			return v;
		};
		return apply(stringify, JSON, [value, wrapped, gap]);
	});

	// Symbol.for keys live in the runtime for good: a run that adds one
	// marks its runtime to be dropped instead of reused.
	const symbolFor = Symbol.for;
	put(Symbol, "for", function (key) { taint(); return apply(symbolFor, Symbol, [key]); });
})`, true)

// installGuards runs guardsProgram in a new runtime, before setupProgram
// freezes the built-ins.
func (sb *sandbox) installGuards() error {
	v, err := sb.vm.RunProgram(guardsProgram)
	if err != nil {
		return err
	}
	f, _ := goja.AssertFunction(v)
	vm := sb.vm
	sb.rxKinds = make(map[string]bool)
	limits := vm.NewObject()
	_ = limits.Set("maxItems", maxItems)
	_ = limits.Set("maxArgs", maxApplyArgs)
	_ = limits.Set("maxDepth", maxJSONDepth)
	_ = limits.Set("rxMillis", float64(RegexpMatchTimeout.Milliseconds()))
	start := time.Now()
	// Each callback takes goja's native calling convention: a function of
	// any other signature is called through reflection, and isProxy runs
	// for every prototype of every array a guarded method is called on
	// (a tenth of a run's time went to reflect.Value.Set).
	_, err = f(goja.Undefined(),
		vm.ToValue(sb.chargeNative),
		vm.ToValue(func(c goja.FunctionCall) goja.Value {
			return vm.ToValue(strings.Count(c.Argument(0).String(), c.Argument(1).String()))
		}),
		vm.ToValue(func(c goja.FunctionCall) goja.Value { return vm.ToValue(jsonLen(c.Argument(0).String())) }),
		vm.ToValue(func(c goja.FunctionCall) goja.Value {
			o, ok := c.Argument(0).(*goja.Object)
			return vm.ToValue(ok && o.ExportType() == proxyType)
		}),
		vm.ToValue(func(goja.FunctionCall) goja.Value {
			return vm.ToValue(float64(time.Since(start).Microseconds()) / 1000)
		}),
		vm.ToValue(func(goja.FunctionCall) goja.Value {
			sb.interrupt(sb.runGen(), errRegexpTimeout)
			return goja.Undefined()
		}),
		vm.ToValue(func(c goja.FunctionCall) goja.Value { return vm.ToValue(sb.backtracks(c.Argument(0))) }),
		vm.ToValue(func(goja.FunctionCall) goja.Value { sb.tainted = true; return goja.Undefined() }),
		limits)
	return err
}

// backtracks tells whether v is a RegExp that goja runs with regexp2 (the
// pattern is beyond RE2: lookaround, back-references, big repeats), the
// same test goja's compileRegexp makes; answers are cached per runtime.
func (sb *sandbox) backtracks(v goja.Value) bool {
	o, ok := v.(*goja.Object)
	if !ok || o.ClassName() != "RegExp" {
		return false
	}
	src, flags := o.Get("source").String(), o.Get("flags").String()
	key := flags + "/" + src
	if b, ok := sb.rxKinds[key]; ok {
		return b
	}
	re2, err := parser.TransformRegExp(src, strings.Contains(flags, "s"), strings.Contains(flags, "u"))
	b := err != nil
	if err == nil {
		_, err = regexp.Compile(re2)
		b = err != nil
	}
	if len(sb.rxKinds) >= 256 {
		clear(sb.rxKinds)
	}
	sb.rxKinds[key] = b
	return b
}

// chargeNative takes bytes from the run's allocation budget, or throws a
// RangeError naming the built-in and the budget.
func (sb *sandbox) chargeNative(call goja.FunctionCall) goja.Value {
	n := call.Argument(0).ToFloat()
	if !(n <= float64(sb.budget)) { // NaN and +Inf fail too
		panic(sb.vm.NewGoError(&budgetError{what: call.Argument(1).String(), budget: sb.budgetSize}))
	}
	sb.budget -= int64(n)
	return goja.Undefined()
}

// ErrAllocBudget is wrapped by the error of a run whose built-in call was
// refused by the allocation budget.
var ErrAllocBudget = errors.New("allocation budget exceeded")

type budgetError struct {
	what   string
	budget int64
}

func (e *budgetError) Error() string { return fmt.Sprintf(errAllocBudget, e.what, e.budget>>20) }
func (e *budgetError) Unwrap() error { return ErrAllocBudget }

// runGen is the generation of the run in progress.
func (sb *sandbox) runGen() uint64 {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.gen
}

// jsonLen is the length of s written as a JSON string, quotes included.
func jsonLen(s string) int {
	n := 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
			n += 2
		case c < 0x20:
			n += 6
		default:
			n++
		}
	}
	return n
}
