package sandbox

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"time"

	"github.com/duplexsync/duplex/scripting"
)

// ServeIfWorker turns the process into a sandbox worker when EnvWorker is
// set: it limits itself (address space, CPU time), serves runs on
// stdin/stdout until stdin closes, and exits. Call it first thing in main,
// and in TestMain of every test package that starts a Pool (the test binary
// is then its own worker). Otherwise it returns at once.
func ServeIfWorker() {
	if os.Getenv(EnvWorker) != "1" {
		return
	}
	mem, _ := strconv.ParseUint(os.Getenv(envMemory), 10, 64)
	cpu, _ := strconv.ParseUint(os.Getenv(envCPU), 10, 64)
	// Before reading anything: no request is ever served without limits.
	if err := limitSelf(mem, cpu); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox worker: limits:", err)
		os.Exit(3)
	}
	if err := serve(os.Stdin, os.Stdout, mem); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// cacheSize bounds the compiled scripts, triggers and rule lists a worker
// keeps.
const cacheSize = 256

type entry struct {
	script  *scripting.Script
	trigger *scripting.Trigger
	rules   *scripting.Rules
	name    string
	err     error // a compile error is cached too
}

type worker struct {
	runner *scripting.Runner
	lru    *list.List // of *cached, most recent first
	byKey  map[string]*list.Element
}

type cached struct {
	key string
	e   *entry
}

func serve(r io.Reader, w io.Writer, mem uint64) error {
	register()
	growth := uint64(256 << 20)
	if mem > 0 {
		growth = min(growth, mem/4)
	}
	setGC(mem)
	wk := &worker{
		// One runtime: a worker runs one script at a time; the parent
		// sets each run's timeout (MaxTimeout only stops a cap applying).
		runner: scripting.NewRunner(scripting.Options{MaxRuntimes: 1, MaxTimeout: time.Hour, MaxHeapGrowth: growth}),
		lru:    list.New(),
		byKey:  map[string]*list.Element{},
	}
	// Build the runtime before saying hello: the parent's deadline clock
	// for the first run should not pay for it (~10 ms, far more under the
	// race detector).
	if warm, err := scripting.Compile("warm-up", scripting.KindOutgoing, "replica.x = 1"); err == nil {
		_, _ = wk.runner.Outgoing(context.Background(), warm, nil, nil, scripting.Meta{Timeout: time.Minute})
	}
	fw := newFrameWriter(w)
	dec := newDecoder(r)
	if err := fw.write(hello()); err != nil {
		return err
	}
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		matched := false // the run before matched (IfMatched)
		for i := range req.Runs {
			var res runRes
			var name string
			if req.Runs[i].IfMatched && !matched {
				res = runRes{NotRun: true}
			} else {
				res, name = wk.do(&req.Runs[i])
			}
			matched = req.Runs[i].Op == opMatch && res.Err == nil && res.Bool
			req.Runs[i] = runReq{} // let the inputs go
			res.Heap = heapNow()
			if i == len(req.Runs)-1 {
				res.CPU = cpuTime() // a system call: once a message is enough for recycling
			}
			err := fw.encode(&res)
			if err == nil && fw.buf.Len() > maxFrame {
				err = fmt.Errorf("result is %d bytes, over the %d MiB limit", fw.buf.Len(), maxFrame>>20)
			}
			if err != nil {
				res = runRes{Err: &wireErr{Script: name, Kind: scripting.ErrorRuntime, Message: err.Error()}, Heap: res.Heap, CPU: res.CPU}
				if err := fw.encode(&res); err != nil {
					return err
				}
			}
			if err := fw.send(); err != nil {
				return err
			}
		}
	}
}

// workerGCPercent is a worker's GOGC. Its live heap is mostly its goja
// runtime (the built-ins, the compiled scripts), which every collection
// marks again, and each run leaves only garbage: at Go's default of 100
// BenchmarkPool spent 122-125 µs of CPU per run, at 200 80-83, at 400
// 74-78 (docs/performance.md). 200 takes most of that for half the memory.
const workerGCPercent = 200

// setGC trades some of the worker's memory for fewer collections. The heap
// watchdog counts a run's garbage as growth until it is collected; at 200
// that can only trip it for a run that itself allocates its whole allowed
// growth while the live heap is over half of it. The soft limit at half
// the address space keeps garbage away from the hard limit (RLIMIT_AS),
// and cannot thrash: the watchdog stops a run's growth at a quarter.
func setGC(mem uint64) {
	debug.SetGCPercent(workerGCPercent)
	if mem > 0 {
		debug.SetMemoryLimit(int64(mem / 2))
	}
}

func (w *worker) get(key string) (*entry, bool) {
	el, ok := w.byKey[key]
	if !ok {
		return nil, false
	}
	w.lru.MoveToFront(el)
	return el.Value.(*cached).e, true
}

func (w *worker) put(key string, e *entry) {
	w.byKey[key] = w.lru.PushFront(&cached{key, e})
	for w.lru.Len() > cacheSize {
		last := w.lru.Back()
		w.lru.Remove(last)
		delete(w.byKey, last.Value.(*cached).key)
	}
}

func compile(o op, c *code) *entry {
	e := &entry{name: c.Name}
	switch o {
	case opOutgoing, opIncoming, opCompile:
		e.script, e.err = scripting.Compile(c.Name, c.Kind, c.Src)
	case opMatch:
		e.name = "trigger"
		e.trigger, e.err = scripting.CompileTrigger(c.Src, c.Env)
	case opCheck, opUnique:
		e.name = "rules"
		e.rules, e.err = scripting.CompileRules(c.Rules)
	default:
		e.err = fmt.Errorf("sandbox: unknown op %d", o)
	}
	return e
}

func (w *worker) do(r *runReq) (runRes, string) {
	e, ok := w.get(r.Key)
	if !ok {
		if r.Code == nil {
			return runRes{Missing: true}, ""
		}
		e = compile(r.Op, r.Code)
		w.put(r.Key, e)
	}
	if e.err != nil {
		return runRes{Err: toWire(e.err)}, e.name
	}
	if r.Op == opCompile {
		return runRes{Reads: e.script.ReadLists()}, e.name
	}
	var args [3]map[string]any
	for i, b := range r.Args {
		var err error
		if args[i], err = decodeMap(b); err != nil {
			return runRes{Err: &wireErr{Message: fmt.Sprintf("sandbox: input %d: %v", i, err)}}, e.name
		}
	}
	for _, found := range r.Found {
		for i := range found {
			restoreMap(found[i].Fields)
		}
	}
	meta := r.Meta
	meta.Timeout = r.Timeout
	ctx := context.Background() // the deadline is meta.Timeout; the parent kills past it
	switch r.Op {
	case opOutgoing:
		out, err := w.runner.Outgoing(ctx, e.script, args[0], args[1], meta)
		return withOut(runRes{Log: out.Log, Err: toWire(err)}, out.Replica, e.name)
	case opIncoming:
		in, err := w.runner.Incoming(ctx, e.script, args[0], args[1], args[2], meta)
		return withOut(runRes{Log: in.Log, Skipped: in.Skipped, SkipReason: in.SkipReason, Err: toWire(err)}, in.Entity, e.name)
	case opMatch:
		ok, err := e.trigger.Match(args[0])
		return runRes{Bool: ok, Err: toWire(err)}, e.name
	case opCheck:
		return runRes{Rules: e.rules.Check(args[0])}, e.name
	case opUnique:
		found := make(map[scripting.Lookup][]scripting.Found, len(r.Lookups))
		for i, l := range r.Lookups {
			if i < len(r.Found) {
				found[l] = r.Found[i]
			}
		}
		res, err := e.rules.CheckUnique(args[0], scripting.FoundIn(found))
		return runRes{Rules: res, Err: toWire(err)}, e.name
	}
	return runRes{Err: &wireErr{Message: fmt.Sprintf("sandbox: unknown op %d", r.Op)}}, e.name
}

// withOut encodes a script's result map into res; a value that cannot be
// encoded fails the run, as one over the frame limit does.
func withOut(res runRes, m map[string]any, name string) (runRes, string) {
	if res.Err != nil {
		return res, name
	}
	b, err := encodeMap(m)
	if err != nil {
		return runRes{Err: &wireErr{Script: name, Kind: scripting.ErrorRuntime, Message: err.Error()}}, name
	}
	res.Out = b
	return res, name
}

// heapNow is the live heap, read without stopping the world.
func heapNow() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// MemoryLimited reports whether workers run under an address-space limit:
// on Linux, and not under the race detector (whose shadow memory needs
// terabytes of address space).
func MemoryLimited() bool { return runtime.GOOS == "linux" && !raceBuild }
