package scripting

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"
)

// Options configure a Runner. Zero fields take their defaults.
type Options struct {
	Timeout          time.Duration // per-run deadline; default 1s
	MaxTimeout       time.Duration // cap on a per-run Meta.Timeout; default 10s
	MaxCallStackSize int           // JS call depth; default 512
	MaxRuntimes      int           // runtimes at most, each running one script at a time; default GOMAXPROCS
	// MaxHeapGrowth fails a run while the Go heap has grown by more than
	// this since the run began; default 256 MiB. See watchHeap.
	MaxHeapGrowth uint64
	// AllocBudget is what the guarded built-ins (repeat, join, typed
	// arrays, ...) may allocate in one run, in bytes; default
	// DefaultAllocBudget. See guards.go.
	AllocBudget int64
	// MaxOutputBytes caps a run's replica or entity (see
	// DefaultMaxOutputBytes); default DefaultMaxOutputBytes.
	MaxOutputBytes int64
	// Observe, when set, is told each run's kind, time and error (for
	// metrics); it runs on the caller's goroutine and must be quick.
	Observe func(kind Kind, d time.Duration, err error)
}

// DefaultMaxTimeout is the default cap on a run's own deadline
// (Options.MaxTimeout); connection options asking for more are refused.
const DefaultMaxTimeout = 10 * time.Second

const (
	defaultTimeout    = time.Second
	defaultStackSize  = 512
	maxLogLines       = 200
	maxLogBytes       = 64 << 10
	maxCachedScripts  = 64 // wrapper functions cached per runtime
	logTruncatedLine  = "log truncated"
	stackOverflowText = "RangeError: Maximum call stack size exceeded"
)

// Meta describes the run; scripts see it as the read-only binding
// `ctx` = {connection, side, firstSync}.
type Meta struct {
	Connection string
	// Key is the sandbox pool's fairness key: unique per connection, where
	// connection names are unique only within a team (empty: Connection).
	// Scripts do not see it.
	Key       string
	Side      string
	FirstSync bool
	// Timeout overrides Options.Timeout for this run (a connection's own
	// setting), capped at Options.MaxTimeout; 0 keeps the default.
	Timeout time.Duration
}

// OutgoingResult is what an outgoing script produced.
type OutgoingResult struct {
	Replica map[string]any
	Log     []string
}

// MatchedOutgoing is a trigger's answer and, when it matched, the outgoing
// script's run that went with it in one request (sandbox.Pool's
// MatchOutgoing). Out is nil when the script did not run: the trigger did
// not match, or failed (MatchErr).
type MatchedOutgoing struct {
	Match    bool
	MatchErr error
	Out      *OutgoingResult
	Err      error // the outgoing script's
}

// IncomingResult is what an incoming script produced. When Skipped, Entity
// is nil.
type IncomingResult struct {
	Entity     map[string]any
	Skipped    bool
	SkipReason string
	Log        []string
}

// Runner runs compiled scripts in a pool of goja runtimes. It is safe for
// concurrent use; each run takes a runtime of its own.
//
// Isolation between runs: when a runtime is created, every built-in object
// reachable from the global object (constructors, prototypes, Math, JSON,
// hidden intrinsics such as iterator prototypes) and the global object
// itself are frozen once. Scripts run in strict mode, so `globalThis.x = 1`,
// `JSON = null` or `Object.prototype.x = 1` throw a TypeError instead of
// leaking into the next run, and there is nothing to snapshot or restore
// per run. The price is the "override mistake": assigning an inherited
// built-in name on a script's own object (say `arr.push = f`) throws, as the
// inherited property is read-only; it is tamed for the common cases
// (toString, valueOf, constructor, and name/message of errors), and object
// literals or Object.defineProperty always work.
//
// Runtimes are costly to build (all built-ins are materialised to be frozen,
// ~10ms and ~3.5MB) and cheap to reuse, so the Runner keeps at most
// MaxRuntimes of them and a run waits for a free one rather than building
// an extra one to throw away. Scripts are pure CPU, so more runtimes than
// cores would not run more scripts at once anyway.
type Runner struct {
	opts  Options
	slots chan struct{} // one token per runtime that may exist
	idle  chan *sandbox // built runtimes not in use
}

// NewRunner returns a Runner; runtimes are created on demand.
func NewRunner(opts Options) *Runner {
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.MaxTimeout <= 0 {
		opts.MaxTimeout = DefaultMaxTimeout
	}
	if opts.MaxHeapGrowth == 0 {
		opts.MaxHeapGrowth = 256 << 20
	}
	if opts.MaxOutputBytes <= 0 {
		opts.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if opts.AllocBudget <= 0 {
		opts.AllocBudget = DefaultAllocBudget
	}
	if opts.MaxCallStackSize <= 0 {
		opts.MaxCallStackSize = defaultStackSize
	}
	if opts.MaxRuntimes <= 0 {
		opts.MaxRuntimes = runtime.GOMAXPROCS(0)
	}
	return &Runner{
		opts:  opts,
		slots: make(chan struct{}, opts.MaxRuntimes),
		idle:  make(chan *sandbox, opts.MaxRuntimes),
	}
}

// Compile compiles src here, in this process (engine.Scripts: the
// sandbox's Pool compiles in a worker instead).
func (r *Runner) Compile(_ context.Context, name string, kind Kind, src string, _ Meta) (*Script, error) {
	return Compile(name, kind, src)
}

// Outgoing runs an outgoing script: it reads `entity` and `previous` (the
// last replica sent, or null), both read-only, and fills the empty object
// `replica`, which is returned. Log is set even when err is not nil.
func (r *Runner) Outgoing(ctx context.Context, s *Script, entity, previous map[string]any, meta Meta) (OutgoingResult, error) {
	var res OutgoingResult
	entity, previous = OnlyReads(s, "entity", entity), OnlyReads(s, "previous", previous)
	st, err := r.run(ctx, s, KindOutgoing, meta.Timeout, func(sb *sandbox) error {
		e, err := sb.input(entity, "entity", false, true)
		if err != nil {
			return err
		}
		p, err := sb.input(previous, "previous", true, true)
		if err != nil {
			return err
		}
		c := sb.meta(meta)
		if err := sb.seal(); err != nil {
			return err
		}
		replica := sb.vm.NewObject()
		if err := sb.call(s, e, p, replica, c, sb.logFn); err != nil {
			return err
		}
		res.Replica, err = sb.exportRoot(replica, "replica")
		return err
	})
	res.Log = st.log
	return res, err
}

// Incoming runs an incoming script: it reads `replica` and `previous` (the
// last replica received before this one, or null), both read-only, and writes
// `entity`, a copy of the local entity ({} when entity is nil, as on a
// first sync). The script may call skip(reason); skip is final even if the
// script catches what it throws.
func (r *Runner) Incoming(ctx context.Context, s *Script, replica, previous, entity map[string]any, meta Meta) (IncomingResult, error) {
	var res IncomingResult
	replica, previous = OnlyReads(s, "replica", replica), OnlyReads(s, "previous", previous)
	entity, moved := SplitWritable(s, entity)
	st, err := r.run(ctx, s, KindIncoming, meta.Timeout, func(sb *sandbox) error {
		rp, err := sb.input(replica, "replica", false, true)
		if err != nil {
			return err
		}
		p, err := sb.input(previous, "previous", true, true)
		if err != nil {
			return err
		}
		e, err := sb.input(entity, "entity", false, false)
		if err != nil {
			return err
		}
		c := sb.meta(meta)
		if err := sb.seal(); err != nil {
			return err
		}
		if err := sb.call(s, rp, p, e, c, sb.logFn, sb.skipFn); err != nil {
			return err
		}
		if sb.skipped {
			return nil
		}
		res.Entity, err = sb.exportRoot(e.(*goja.Object), "entity")
		MergeBack(res.Entity, moved)
		return err
	})
	res.Log = st.log
	if st.skipped { // skip() wins over anything the script did after it
		return IncomingResult{Skipped: true, SkipReason: st.skipReason, Log: st.log}, nil
	}
	return res, err
}

type runState struct {
	log        []string
	skipped    bool
	skipReason string
}

// errDeadline is the interrupt value for Options.Timeout; a context
// interrupt carries the context's cause instead.
var errDeadline = errors.New("runner timeout")

func (r *Runner) run(ctx context.Context, s *Script, kind Kind, timeout time.Duration, body func(*sandbox) error) (runState, error) {
	if s == nil || s.kind != kind {
		return runState{}, fmt.Errorf("scripting: %s run needs a %s script", kind, kind)
	}
	if ctx.Err() != nil {
		return runState{}, timeoutError(s, 0, 0, context.Cause(ctx))
	}
	// A deadline that has passed counts even before the context's own timer
	// has fired: a run interrupted at the deadline by our timer can return
	// a moment before ctx.Err() turns non-nil.
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return runState{}, timeoutError(s, 0, 0, context.DeadlineExceeded)
	}
	sb, err := r.get(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return runState{}, timeoutError(s, 0, 0, context.Cause(ctx))
		}
		return runState{}, err
	}
	d := r.opts.Timeout
	if timeout > 0 {
		d = min(timeout, r.opts.MaxTimeout)
	}
	if dl, ok := ctx.Deadline(); ok { // measured after the wait for a runtime
		d = min(d, time.Until(dl))
	}

	gen := sb.begin()
	sb.budget, sb.budgetSize = r.opts.AllocBudget, r.opts.AllocBudget
	sb.outMax = r.opts.MaxOutputBytes
	if r.opts.Observe != nil {
		start := time.Now()
		defer func() { r.opts.Observe(kind, time.Since(start), err) }()
	}
	timer := time.AfterFunc(d, func() { sb.interrupt(gen, errDeadline) })
	heap := watchHeap(r.opts.MaxHeapGrowth, sb, gen)
	stop := func() bool { return false }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { sb.interrupt(gen, context.Cause(ctx)) })
	}
	defer func() {
		if x := recover(); x != nil { // a bug, not a script error: free the slot, re-panic
			timer.Stop()
			heap.done()
			stop()
			sb.end()
			r.put(sb, false)
			panic(x)
		}
	}()
	// Everything that may execute JS (the call, but also getters, proxies and
	// toString met while exporting or describing an error) runs while armed.
	err = sb.exec(s, func() error { return body(sb) })
	timer.Stop()
	heap.done()
	stop()
	interrupted := sb.end()

	st := runState{log: sb.log, skipped: sb.skipped, skipReason: sb.skipReason}
	// A runtime that was interrupted, or unwound by an uncatchable error
	// (stack overflow, interrupt inside a Go→JS call while exporting), is
	// dropped rather than reused: such an unwind skips finally blocks and
	// goja's cleanup of frames entered from Go. These failures are rare, so
	// rebuilding (~10ms, BenchmarkNewSandbox) is cheap insurance.
	// A run that added Symbol.for keys leaves them in the runtime's
	// registry for good: drop that runtime too.
	r.put(sb, !interrupted && !sb.broken && !sb.tainted)
	return st, err
}

// get takes an idle runtime, or builds one if fewer than MaxRuntimes
// exist, or waits for one to be put back.
func (r *Runner) get(ctx context.Context) (*sandbox, error) {
	select {
	case sb := <-r.idle:
		return sb, nil
	default:
	}
	select {
	case sb := <-r.idle:
		return sb, nil
	case r.slots <- struct{}{}:
		sb, err := newSandbox(r.opts)
		if err != nil {
			<-r.slots
		}
		return sb, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put returns sb to the pool, or drops it and frees its slot.
func (r *Runner) put(sb *sandbox, reuse bool) {
	if !reuse {
		<-r.slots
		return
	}
	clear(sb.sealing)
	sb.sealing = sb.sealing[:0]
	sb.log, sb.logBytes, sb.logCut = nil, 0, false
	sb.skipped, sb.skipReason = false, ""
	r.idle <- sb // never blocks: at most MaxRuntimes runtimes exist
}

// sandbox is one goja runtime with its per-run state. Only one goroutine
// uses it at a time, except interrupt, which timers call.
type sandbox struct {
	vm        *goja.Runtime
	sealFn    goja.Callable // makes an array of objects non-extensible (arrays: frozen)
	stringify goja.Callable // the (frozen) JSON.stringify
	logFn     goja.Value
	skipFn    goja.Value
	fns       map[*Script]goja.Callable
	metas     map[metaKey]*goja.Object // ctx objects (meta)

	// per run
	sealing    []any // read-only input objects waiting for seal
	log        []string
	logBytes   int
	logCut     bool
	skipped    bool
	skipReason string
	broken     bool
	tainted    bool  // touched a registry that outlives the run (Symbol.for)
	budget     int64 // bytes the guarded built-ins may still allocate
	budgetSize int64
	rxKinds    map[string]bool // pattern → runs on regexp2 (see backtracks)
	outMax     int64           // output size limit (exportRoot)
	outLeft    int64

	mu          sync.Mutex // orders timer interrupts against the end of a run
	gen         uint64
	interrupted bool
}

// setupProgram runs once per runtime. It removes goja's non-standard
// GoError global, adds console.* as aliases of log, freezes every
// intrinsic it can reach and the global object, and returns helpers.
var setupProgram = goja.MustCompile("setup.js", `(function (log, skip) {
	"use strict";
	const freeze = Object.freeze, getProto = Object.getPrototypeOf, ownKeys = Reflect.ownKeys,
		getDesc = Reflect.getOwnPropertyDescriptor;
	const goError = globalThis.GoError; // still the prototype of errors goja makes from Go errors
	delete globalThis.GoError;
	Object.defineProperty(globalThis, "console", {
		value: {log: log, info: log, warn: log, error: log, debug: log},
	});
	// Freezing built-in prototypes makes assignment of an inherited name
	// throw even on a script's own object (the "override mistake"). For the
	// names scripts commonly assign (err.name = ..., o.toString = ...), an
	// accessor whose setter defines an own property on the target instead.
	function tame(proto, name) {
		const d = getDesc(proto, name);
		if (d === undefined || !("value" in d)) return;
		const value = d.value;
		Object.defineProperty(proto, name, {
			get: function () { return value; },
			set: function (v) {
				if (this === proto) throw new TypeError("Cannot assign to read only property '" + name + "'");
				Object.defineProperty(this, name, {value: v, writable: true, enumerable: true, configurable: true});
			},
			enumerable: d.enumerable, configurable: false,
		});
	}
	for (const name of ["toString", "valueOf", "toLocaleString", "constructor"]) tame(Object.prototype, name);
	for (const E of [Error, TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError, AggregateError]) {
		for (const name of ["name", "message", "constructor", "toString"]) tame(E.prototype, name);
	}
	// Intrinsics that no property path from globalThis reaches.
	const todo = [globalThis, goError, skip,
		getProto(function* () {}), getProto(async function () {}),
		getProto([][Symbol.iterator]()), getProto(new Map()[Symbol.iterator]()),
		getProto(new Set()[Symbol.iterator]()), getProto(""[Symbol.iterator]()),
		getProto(/x/[Symbol.matchAll]("x"))];
	const seen = new Set();
	while (todo.length > 0) {
		const o = todo.pop();
		if (o === null || (typeof o !== "object" && typeof o !== "function") || seen.has(o)) continue;
		seen.add(o);
		todo.push(getProto(o));
		for (const k of ownKeys(o)) {
			const d = getDesc(o, k);
			if (d === undefined) continue;
			if ("value" in d) todo.push(d.value); else todo.push(d.get, d.set);
		}
		freeze(o);
	}
	const preventExtensions = Object.preventExtensions;
	return {
		// Input objects and arrays come with read-only properties already
		// (convert.go): what is left is to make them non-extensible.
		seal: function (a) {
			for (let i = 0; i < a.length; i++) preventExtensions(a[i]);
		},
		stringify: JSON.stringify,
	};
})`, true)

func newSandbox(opts Options) (*sandbox, error) {
	vm := goja.New()
	vm.SetMaxCallStackSize(opts.MaxCallStackSize)
	// Else a "//# sourceMappingURL=/path" comment makes goja read that
	// file from the server's disk (a FIFO or /dev/zero hangs it).
	vm.SetParserOptions(parser.WithDisableSourceMaps)
	sb := &sandbox{vm: vm, fns: make(map[*Script]goja.Callable), metas: make(map[metaKey]*goja.Object)}
	sb.logFn = vm.ToValue(sb.logNative)
	sb.skipFn = vm.ToValue(sb.skipNative)
	limitRegexpMatches()
	if err := sb.installGuards(); err != nil {
		return nil, fmt.Errorf("scripting: install guards: %w", err)
	}
	if err := sb.installHelpers(); err != nil { // before setup freezes the globals
		return nil, fmt.Errorf("scripting: install helpers: %w", err)
	}
	v, err := vm.RunProgram(setupProgram)
	if err != nil {
		return nil, fmt.Errorf("scripting: set up runtime: %w", err)
	}
	setup, _ := goja.AssertFunction(v)
	v, err = setup(goja.Undefined(), sb.logFn, sb.skipFn)
	if err != nil {
		return nil, fmt.Errorf("scripting: set up runtime: %w", err)
	}
	helpers := v.(*goja.Object)
	sb.sealFn, _ = goja.AssertFunction(helpers.Get("seal"))
	sb.stringify, _ = goja.AssertFunction(helpers.Get("stringify"))
	return sb, nil
}

func (sb *sandbox) begin() uint64 {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.broken = false
	return sb.gen
}

// interrupt stops the run of generation gen, if it is still running; a
// timer firing after the run ended must not hit the next run.
func (sb *sandbox) interrupt(gen uint64, cause error) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if gen != sb.gen || sb.interrupted {
		return
	}
	sb.interrupted = true
	sb.vm.Interrupt(cause)
}

// end closes the run: no interrupt can arrive after it, and the interrupt
// flag is cleared. It reports whether the run was interrupted.
func (sb *sandbox) end() bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.gen++
	was := sb.interrupted
	sb.interrupted = false
	sb.vm.ClearInterrupt()
	return was
}

// call runs the script's wrapper function with args.
func (sb *sandbox) call(s *Script, args ...goja.Value) error {
	f, ok := sb.fns[s]
	if !ok {
		prog, err := s.program()
		if err != nil {
			return err
		}
		v, err := sb.vm.RunProgram(prog)
		if err != nil {
			return err
		}
		if f, ok = goja.AssertFunction(v); !ok {
			return fmt.Errorf("scripting: %s did not compile to a function", s.name)
		}
		if len(sb.fns) >= maxCachedScripts {
			clear(sb.fns)
		}
		sb.fns[s] = f
	}
	_, err := f(goja.Undefined(), args...)
	return err
}

// meta is the ctx object of a run. It is immutable (read-only properties,
// not extensible, Object.prototype frozen), so one per connection, side and
// firstSync is kept in the runtime and shared by its runs: nothing a run
// does to it can reach the next.
func (sb *sandbox) meta(m Meta) *goja.Object {
	key := metaKey{m.Connection, m.Side, m.FirstSync}
	if o, ok := sb.metas[key]; ok {
		return o
	}
	if len(sb.metas) >= maxCachedScripts {
		clear(sb.metas)
	}
	o := sb.newMeta(m)
	sb.metas[key] = o
	return o
}

type metaKey struct {
	connection, side string
	firstSync        bool
}

func (sb *sandbox) newMeta(m Meta) *goja.Object {
	o := sb.vm.NewObject()
	_ = o.DefineDataProperty("connection", sb.vm.ToValue(m.Connection), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE)
	_ = o.DefineDataProperty("side", sb.vm.ToValue(m.Side), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE)
	_ = o.DefineDataProperty("firstSync", sb.vm.ToValue(m.FirstSync), goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_TRUE)
	sb.sealing = append(sb.sealing, o)
	return o
}

// seal makes the queued read-only inputs non-extensible, in one JS call.
func (sb *sandbox) seal() error {
	if len(sb.sealing) == 0 {
		return nil
	}
	_, err := sb.sealFn(goja.Undefined(), sb.vm.NewArray(sb.sealing...))
	clear(sb.sealing)
	sb.sealing = sb.sealing[:0]
	if err != nil {
		clear(sb.metas) // a ctx object made now may not be sealed: never reuse it
	}
	return err
}

// exec runs body and turns goja errors and panics into *Error.
func (sb *sandbox) exec(s *Script, body func() error) (err error) {
	defer func() {
		if x := recover(); x != nil {
			e := gojaPanic(x)
			if e == nil {
				panic(x)
			}
			sb.broken = true
			err = sb.scriptError(s, e)
		}
	}()
	if err = body(); err != nil {
		err = sb.scriptError(s, err)
	}
	return err
}

// gojaPanic returns x as an error if it is one of goja's exceptions.
func gojaPanic(x any) error {
	switch e := x.(type) {
	case *goja.InterruptedError:
		return e
	case *goja.StackOverflowError:
		return e
	case *goja.Exception:
		return e
	}
	return nil
}

func (sb *sandbox) scriptError(s *Script, err error) error {
	var (
		se *Error
		ie *goja.InterruptedError
		so *goja.StackOverflowError
		ex *goja.Exception
	)
	switch {
	case errors.As(err, &se):
		if se.Script == "" {
			se.Script = s.name
		}
		return err
	case errors.As(err, &ie):
		line, col := s.position(ie.Stack())
		cause, _ := ie.Value().(error)
		if errors.Is(cause, ErrMemory) {
			return &Error{Script: s.name, Kind: ErrorMemory, Line: line, Column: col, Message: ErrMemory.Error(), err: ErrMemory}
		}
		return timeoutError(s, line, col, cause)
	case errors.As(err, &so):
		sb.broken = true
		line, col := s.position(so.Stack())
		return &Error{Script: s.name, Kind: ErrorRuntime, Line: line, Column: col, Message: stackOverflowText, err: err}
	case errors.As(err, &ex):
		line, col := s.position(ex.Stack())
		if errors.Is(err, ErrAllocBudget) { // a memory limit met early: quarantine counts it
			return &Error{Script: s.name, Kind: ErrorMemory, Line: line, Column: col, Message: sb.describe(ex.Value()), err: errors.Join(ErrMemory, err)}
		}
		return &Error{Script: s.name, Kind: ErrorRuntime, Line: line, Column: col, Message: sb.describe(ex.Value()), err: err}
	}
	return err
}

func timeoutError(s *Script, line, col int, cause error) *Error {
	err := ErrTimeout
	if cause != nil && cause != errDeadline {
		err = fmt.Errorf("%w: %w", ErrTimeout, cause)
	}
	return &Error{Script: s.name, Kind: ErrorTimeout, Line: line, Column: col, Message: err.Error(), err: err}
}

// describe renders a thrown value; it may run JS (a toString), so it runs
// while the run is still armed and survives that JS throwing or being
// interrupted.
func (sb *sandbox) describe(v goja.Value) (msg string) {
	msg = "uncaught exception"
	defer func() {
		if x := recover(); x != nil {
			if gojaPanic(x) == nil {
				panic(x)
			}
			sb.broken = true
		}
	}()
	if v == nil {
		return msg
	}
	sb.vm.Try(func() { msg = v.String() })
	return msg
}

func (sb *sandbox) logNative(call goja.FunctionCall) goja.Value {
	if sb.logCut {
		return goja.Undefined()
	}
	var b strings.Builder
	for i, a := range call.Arguments {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(sb.format(a))
		if b.Len() > maxLogBytes {
			break
		}
	}
	line := b.String()
	if len(sb.log) >= maxLogLines || sb.logBytes+len(line) > maxLogBytes {
		sb.logCut = true
		sb.log = append(sb.log, logTruncatedLine)
		return goja.Undefined()
	}
	sb.log = append(sb.log, line)
	sb.logBytes += len(line)
	return goja.Undefined()
}

// format renders one log argument: strings as is, objects as JSON.
func (sb *sandbox) format(v goja.Value) string {
	if v == nil || goja.IsUndefined(v) {
		return "undefined"
	}
	obj, ok := v.(*goja.Object)
	if !ok {
		return v.String()
	}
	if _, isFn := goja.AssertFunction(obj); isFn {
		return "[Function]"
	}
	if obj.ClassName() == "Error" { // JSON would print {}
		return obj.String()
	}
	s, err := sb.stringify(goja.Undefined(), obj)
	if err != nil || s == nil || goja.IsUndefined(s) { // e.g. a cycle
		return obj.String()
	}
	return s.String()
}

var errSkip = errors.New("skip() called")

// skipNative records the skip, then throws to stop the script. The flag,
// not the exception, is what the runner reads, so a script that catches
// the exception is still skipped.
func (sb *sandbox) skipNative(call goja.FunctionCall) goja.Value {
	sb.skipped = true
	if a := call.Argument(0); !goja.IsUndefined(a) && !goja.IsNull(a) {
		sb.skipReason = a.String()
	}
	panic(sb.vm.NewGoError(errSkip))
}
