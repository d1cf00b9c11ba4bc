package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexsync/duplex/scripting"
)

// Options configure a Pool. Zero fields take their defaults.
type Options struct {
	Workers     int // worker processes for the sync; default 2
	Interactive int // worker processes for test runs and previews; default 1
	// Memory is the address space each worker may grow by past what the Go
	// runtime reserved at its start (RLIMIT_AS, set to both); default 1 GiB.
	// A run that needs more kills its worker and fails with "script
	// exceeded its memory limit".
	Memory uint64
	// CPU is each worker's CPU-time limit (RLIMIT_CPU), a backstop: a worker
	// is recycled once it has used half of it. Default 10 min.
	CPU time.Duration
	// Timeout is a run's deadline when its Meta has none; default 1 s.
	// MaxTimeout caps Meta.Timeout; default 10 s.
	Timeout, MaxTimeout time.Duration
	// Grace is how long past a run's deadline the parent waits for the
	// worker's own timeout before it kills the worker; default 250 ms.
	Grace time.Duration
	// RecycleRuns and RecycleHeap replace a worker after that many runs or
	// once its live heap is over that many bytes, so nothing a script
	// leaves behind accumulates; defaults 100,000 and Memory/4.
	RecycleRuns int
	RecycleHeap uint64
	// PerConnection bounds the messages of one connection in flight at once
	// in a lane, so one connection's slow scripts cannot hold every worker;
	// default Workers-1 (at least 1). Its runs waiting meanwhile then leave
	// together in one message.
	PerConnection int
	MaxBatch      int // runs sent to a worker in one message at most; default 100
	// Observe, when set, is told each script run's kind, time and error.
	Observe func(kind scripting.Kind, d time.Duration, err error)
	Logger  *slog.Logger
	// Command is the worker's executable; default this process's own.
	Command string
}

// Pool runs scripts, triggers and rules in sandbox worker processes. It is
// safe for concurrent use. Its methods implement engine.Scripts; Interactive
// returns the same methods on the interactive workers.
type Pool struct {
	opts        Options
	sync, inter *lane
	stopped     chan struct{}
	stopOnce    sync.Once
	wg          sync.WaitGroup

	keyMu sync.Mutex
	keys  map[any]string // compiled object → hash of its code

	failMu sync.Mutex
	failed map[string]compileFailure // see failedCompile

	starts, kills, codeSent atomic.Int64
	runs, messages          atomic.Int64 // the sync lane's, see Stats
}

// ErrDiedBeforeRun fails a run whose worker died twice, on other runs of
// its message, before it ran.
var ErrDiedBeforeRun = errors.New("sandbox: its worker died twice before the run")

// ErrStopped is returned by runs after Stop.
var ErrStopped = errors.New("sandbox: pool stopped")

// NewPool returns a Pool; workers start on first use.
func NewPool(opts Options) (*Pool, error) {
	register()
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Interactive <= 0 {
		opts.Interactive = 1
	}
	if opts.Memory == 0 {
		opts.Memory = 1 << 30
	}
	if opts.CPU <= 0 {
		opts.CPU = 10 * time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.MaxTimeout <= 0 {
		opts.MaxTimeout = 10 * time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = 250 * time.Millisecond
	}
	if opts.RecycleRuns <= 0 {
		opts.RecycleRuns = 100000
	}
	if opts.RecycleHeap == 0 {
		opts.RecycleHeap = opts.Memory / 4
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 100
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat("/proc/self/exe"); err == nil && opts.Command == "" {
		// The running binary itself, even after an upgrade replaced the
		// file: a worker must speak its parent's protocol.
		opts.Command = "/proc/self/exe"
	}
	if opts.Command == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("sandbox: own executable: %w", err)
		}
		opts.Command = exe
	}
	p := &Pool{opts: opts, stopped: make(chan struct{}), keys: map[any]string{}}
	p.sync = p.newLane("sync", opts.Workers, opts.PerConnection)
	p.inter = p.newLane("interactive", opts.Interactive, 0)
	return p, nil
}

// Stop kills every worker and waits for them (no zombies); runs in flight
// fail with ErrStopped. It returns early when ctx ends.
func (p *Pool) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() {
		close(p.stopped)
		for _, l := range []*lane{p.sync, p.inter} {
			for _, s := range l.slots {
				s.mu.Lock()
				if s.proc != nil {
					s.proc.kill()
				}
				s.mu.Unlock()
			}
		}
	})
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats are counters for tests and metrics.
type Stats struct {
	Starts int64 // worker processes started
	Kills  int64 // workers killed at a deadline or dead of a limit
	// CodeSent counts sources sent to a worker (each worker compiles
	// each once).
	CodeSent int64
	// Runs and Messages count the sync lane's runs (not its compiles) and
	// the messages that carried them: runs per message is how well they
	// batch.
	Runs, Messages int64
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	return Stats{Starts: p.starts.Load(), Kills: p.kills.Load(), CodeSent: p.codeSent.Load(), Runs: p.runs.Load(), Messages: p.messages.Load()}
}

// Interactive returns an executor on the interactive workers: test runs
// and previews never wait behind the sync, nor the sync behind them.
func (p *Pool) Interactive() *Lane { return &Lane{p: p, l: p.inter} }

// Lane is a Pool's executor on one set of workers.
type Lane struct {
	p *Pool
	l *lane
}

func (p *Pool) def() *Lane { return &Lane{p: p, l: p.sync} }

// Outgoing runs an outgoing script; see scripting.Runner.Outgoing.
func (p *Pool) Outgoing(ctx context.Context, s *scripting.Script, entity, previous map[string]any, meta scripting.Meta) (scripting.OutgoingResult, error) {
	return p.def().Outgoing(ctx, s, entity, previous, meta)
}

// Incoming runs an incoming script; see scripting.Runner.Incoming.
func (p *Pool) Incoming(ctx context.Context, s *scripting.Script, replica, previous, entity map[string]any, meta scripting.Meta) (scripting.IncomingResult, error) {
	return p.def().Incoming(ctx, s, replica, previous, entity, meta)
}

// Match evaluates a trigger.
func (p *Pool) Match(ctx context.Context, t *scripting.Trigger, vars map[string]any, meta scripting.Meta) (bool, error) {
	return p.def().Match(ctx, t, vars, meta)
}

// Check evaluates the rules but the unique ones.
func (p *Pool) Check(ctx context.Context, rs *scripting.Rules, replica map[string]any, meta scripting.Meta) ([]scripting.RuleResult, error) {
	return p.def().Check(ctx, rs, replica, meta)
}

// CheckUnique makes the unique rules' lookups here and evaluates their
// where in a worker.
func (p *Pool) CheckUnique(ctx context.Context, rs *scripting.Rules, replica map[string]any, meta scripting.Meta, find scripting.FindFunc) ([]scripting.RuleResult, error) {
	return p.def().CheckUnique(ctx, rs, replica, meta, find)
}

// Run is one run for Do: build it with OutgoingRun.
type Run struct {
	c call
}

// OutgoingRun prepares an outgoing run for Do.
func (p *Pool) OutgoingRun(s *scripting.Script, entity, previous map[string]any, meta scripting.Meta) *Run {
	r := &Run{}
	p.prepareScript(&r.c, opOutgoing, s, meta, entity, previous, nil)
	return r
}

// Result is the outcome of a Run after Do.
func (r *Run) Result() (scripting.OutgoingResult, error) {
	return scripting.OutgoingResult{Replica: r.c.res.out, Log: r.c.res.Log}, r.c.err
}

// Do sends runs to one worker in one message (a batch) and waits for all.
func (p *Pool) Do(ctx context.Context, runs []*Run) error {
	calls := make([]*call, len(runs))
	for i, r := range runs {
		calls[i] = &r.c
	}
	return p.do(ctx, p.sync, "", calls)
}

// Compile compiles a script in the sync lane's workers; see Lane.Compile.
func (p *Pool) Compile(ctx context.Context, name string, kind scripting.Kind, src string, meta scripting.Meta) (*scripting.Script, error) {
	return p.def().Compile(ctx, name, kind, src, meta)
}

// Compile compiles a script in one of the lane's workers, never in this
// process: goja's parser and compiler take time that grows faster than the
// source (a chain of 32,000 "1+" in 64 KiB took 6 s, 21,000 "a=>" 5 s),
// and cannot be interrupted. The compile has a run's default deadline
// (Options.Timeout): a source that takes longer could not run either. The
// result is a scripting.Prepared script, its program compiled where it
// runs; the worker keeps it for the runs that follow. Over the deadline,
// or if the worker dies on it, the error is a compile error (the source is
// at fault, not the run). fairKey(meta) is the fairness key, as for
// runs: a connection's compiles wait and travel together, never with
// another's (a worker killed on one compile would fail the others of its
// message once it has died twice).
func (l *Lane) Compile(ctx context.Context, name string, kind scripting.Kind, src string, meta scripting.Meta) (*scripting.Script, error) {
	if len(src) > scripting.MaxSourceBytes { // refused before anything crosses
		return scripting.Compile(name, kind, src)
	}
	cd := &code{Name: name, Kind: kind, Src: src}
	key := hashCode(cd, fmt.Sprintf("%T", (*scripting.Script)(nil)))
	if err := l.p.failedCompile(key); err != nil {
		return nil, err
	}
	c := &call{code: func() *code { return cd }}
	c.req = runReq{Op: opCompile, Key: key, Timeout: l.p.opts.Timeout}
	if err := l.p.do(ctx, l.l, fairKey(meta), []*call{c}); err != nil {
		return nil, err
	}
	var se *scripting.Error
	if errors.As(c.err, &se) && se.Kind != scripting.ErrorCompile { // the compile's own limit or death
		msg := scripting.SlowCompileMessage(c.req.Timeout)
		if se.Kind != scripting.ErrorTimeout {
			msg = "RangeError: the script could not be compiled: " + se.Message
		}
		err := scripting.NewError(name, scripting.ErrorCompile, 0, 0, 0, msg)
		if c.req.Timeout == l.p.opts.Timeout { // not cut short by the caller's context
			l.p.compileFailed(key, err)
		}
		return nil, err
	}
	if c.err != nil {
		return nil, c.err
	}
	s := scripting.Prepared(name, kind, src, c.res.Reads)
	l.p.remember(s, key)
	return s, nil
}

// compileFailTTL is how long a compile that killed its worker is answered
// from memory.
const compileFailTTL = time.Minute

type compileFailure struct {
	err   error
	until time.Time
}

// failedCompile is the error of a compile of key that killed its worker
// less than compileFailTTL ago: a stored script that cannot compile (one
// written by an offline apply, or before compiling moved to the workers)
// is loaded again at every poll, and would cost a worker each time.
func (p *Pool) failedCompile(key string) error {
	p.failMu.Lock()
	defer p.failMu.Unlock()
	if f, ok := p.failed[key]; ok && time.Now().Before(f.until) {
		return f.err
	}
	return nil
}

func (p *Pool) compileFailed(key string, err error) {
	p.failMu.Lock()
	defer p.failMu.Unlock()
	if p.failed == nil || len(p.failed) >= 1024 {
		p.failed = map[string]compileFailure{}
	}
	p.failed[key] = compileFailure{err: err, until: time.Now().Add(compileFailTTL)}
}

// Outgoing runs an outgoing script in the lane's workers.
func (l *Lane) Outgoing(ctx context.Context, s *scripting.Script, entity, previous map[string]any, meta scripting.Meta) (scripting.OutgoingResult, error) {
	c := &call{}
	l.p.prepareScript(c, opOutgoing, s, meta, entity, previous, nil)
	if err := l.p.do(ctx, l.l, fairKey(meta), []*call{c}); err != nil {
		return scripting.OutgoingResult{}, err
	}
	c.fix()
	return scripting.OutgoingResult{Replica: c.res.out, Log: c.res.Log}, c.err
}

// Incoming runs an incoming script in the lane's workers.
func (l *Lane) Incoming(ctx context.Context, s *scripting.Script, replica, previous, entity map[string]any, meta scripting.Meta) (scripting.IncomingResult, error) {
	c := &call{}
	entity, moved := scripting.SplitWritable(s, entity) // what the script cannot name does not cross
	l.p.prepareScript(c, opIncoming, s, meta, replica, previous, entity)
	if err := l.p.do(ctx, l.l, fairKey(meta), []*call{c}); err != nil {
		return scripting.IncomingResult{}, err
	}
	c.fix()
	if c.res.Skipped {
		return scripting.IncomingResult{Skipped: true, SkipReason: c.res.SkipReason, Log: c.res.Log}, nil
	}
	if c.err == nil {
		scripting.MergeBack(c.res.out, moved)
	}
	return scripting.IncomingResult{Entity: c.res.out, Log: c.res.Log}, c.err
}

// Match evaluates a trigger in the lane's workers; an empty trigger
// matches without one.
func (l *Lane) Match(ctx context.Context, t *scripting.Trigger, vars map[string]any, meta scripting.Meta) (bool, error) {
	if t == nil || t.Env() == nil {
		return true, nil
	}
	c := l.p.matchCall(t, vars, meta)
	if err := l.p.do(ctx, l.l, fairKey(meta), []*call{c}); err != nil {
		return false, err
	}
	return c.res.Bool, c.err
}

// MatchOutgoing evaluates a trigger and, only if it matches, runs the
// outgoing script on entity, both in one message to a worker: one crossing
// instead of two for a change that passes its trigger. An error is returned
// only when nothing ran (stopped, ctx ended).
func (l *Lane) MatchOutgoing(ctx context.Context, t *scripting.Trigger, vars map[string]any, tmeta scripting.Meta,
	s *scripting.Script, entity, previous map[string]any, meta scripting.Meta) (scripting.MatchedOutgoing, error) {
	alone := func() (scripting.MatchedOutgoing, error) {
		res, err := l.Outgoing(ctx, s, entity, previous, meta)
		if errors.Is(err, ErrStopped) || ctx.Err() != nil {
			return scripting.MatchedOutgoing{}, err
		}
		return scripting.MatchedOutgoing{Match: true, Out: &res, Err: err}, nil
	}
	if t == nil || t.Env() == nil {
		return alone()
	}
	m := l.p.matchCall(t, vars, tmeta)
	o := &call{}
	l.p.prepareScript(o, opOutgoing, s, meta, entity, previous, nil)
	o.req.IfMatched = true
	if err := l.p.do(ctx, l.l, fairKey(meta), []*call{m, o}); err != nil {
		return scripting.MatchedOutgoing{}, err
	}
	if m.err != nil || !m.res.Bool {
		return scripting.MatchedOutgoing{MatchErr: m.err}, nil
	}
	if o.res.NotRun { // its worker died after the trigger: it goes again alone
		return alone()
	}
	return scripting.MatchedOutgoing{Match: true, Out: &scripting.OutgoingResult{Replica: o.res.out, Log: o.res.Log}, Err: o.err}, nil
}

// MatchOutgoing is Lane.MatchOutgoing in the sync lane.
func (p *Pool) MatchOutgoing(ctx context.Context, t *scripting.Trigger, vars map[string]any, tmeta scripting.Meta,
	s *scripting.Script, entity, previous map[string]any, meta scripting.Meta) (scripting.MatchedOutgoing, error) {
	return p.def().MatchOutgoing(ctx, t, vars, tmeta, s, entity, previous, meta)
}

func (p *Pool) matchCall(t *scripting.Trigger, vars map[string]any, meta scripting.Meta) *call {
	mk := func() *code { return &code{Src: t.Source(), Env: t.Env()} }
	c := &call{code: mk}
	c.req = runReq{Op: opMatch, Key: p.key(t, mk), Meta: meta}
	c.setArgs(t.OnlyNames(vars)) // what the trigger cannot name does not cross
	p.deadline(c, meta)
	return c
}

// Check evaluates the rules but the unique ones in the lane's workers.
func (l *Lane) Check(ctx context.Context, rs *scripting.Rules, replica map[string]any, meta scripting.Meta) ([]scripting.RuleResult, error) {
	if rs.Len() == 0 {
		return nil, nil
	}
	c := l.p.rulesCall(opCheck, rs, replica, meta)
	if err := l.p.do(ctx, l.l, fairKey(meta), []*call{c}); err != nil {
		return nil, err
	}
	return c.res.Rules, c.err
}

// CheckUnique makes the lookups here (the worker reaches no system) and
// evaluates the rules' where in the lane's workers.
func (l *Lane) CheckUnique(ctx context.Context, rs *scripting.Rules, replica map[string]any, meta scripting.Meta, find scripting.FindFunc) ([]scripting.RuleResult, error) {
	if !rs.HasUnique() {
		return nil, nil
	}
	c := l.p.rulesCall(opUnique, rs, replica, meta)
	c.req.Lookups = rs.UniqueLookups(replica)
	for _, lk := range c.req.Lookups {
		found, err := find(lk.Field, lk.Value)
		if err != nil {
			return nil, fmt.Errorf("unique rule lookup of %s %q: %w", lk.Field, lk.Value, err)
		}
		for i := range found {
			found[i].Fields = normalize(found[i].Fields)
		}
		c.req.Found = append(c.req.Found, found)
	}
	if err := l.p.do(ctx, l.l, fairKey(meta), []*call{c}); err != nil {
		return nil, err
	}
	return c.res.Rules, c.err
}

func (p *Pool) rulesCall(o op, rs *scripting.Rules, replica map[string]any, meta scripting.Meta) *call {
	mk := func() *code { return &code{Rules: rs.Source()} }
	c := &call{code: mk}
	c.req = runReq{Op: o, Key: p.key(rs, mk), Meta: meta}
	c.setArgs(replica)
	p.deadline(c, meta)
	return c
}

func (p *Pool) prepareScript(c *call, o op, s *scripting.Script, meta scripting.Meta, args ...map[string]any) {
	mk := func() *code { return &code{Name: s.Name(), Kind: s.Kind(), Src: s.Source()} }
	c.code = mk
	c.kind = s.Kind()
	c.observe = p.opts.Observe
	c.req = runReq{Op: o, Key: p.key(s, mk), Meta: meta}
	// What the script cannot read does not cross: the inputs in call order.
	for i, input := range scripting.ReadInputs(s.Kind()) {
		args[i] = scripting.OnlyReads(s, input, args[i])
	}
	c.setArgs(args...)
	p.deadline(c, meta)
}

// fairKey is the key a run or compile waits and travels under in a lane.
func fairKey(m scripting.Meta) string {
	if m.Key != "" {
		return m.Key
	}
	return m.Connection
}

// deadline sets the run's timeout: Meta.Timeout capped, or the default.
func (p *Pool) deadline(c *call, meta scripting.Meta) {
	d := p.opts.Timeout
	if meta.Timeout > 0 {
		d = min(meta.Timeout, p.opts.MaxTimeout)
	}
	c.req.Timeout = d
}

// key is the hash naming obj's code, computed once per compiled object.
func (p *Pool) key(obj any, mk func() *code) string {
	p.keyMu.Lock()
	k, ok := p.keys[obj]
	p.keyMu.Unlock()
	if ok {
		return k
	}
	k = hashCode(mk(), fmt.Sprintf("%T", obj))
	p.remember(obj, k)
	return k
}

func (p *Pool) remember(obj any, k string) {
	p.keyMu.Lock()
	if len(p.keys) > 4096 { // plans recompile on change; old objects go
		clear(p.keys)
	}
	p.keys[obj] = k
	p.keyMu.Unlock()
}

// hashCode names code c of a compiled object of type typ.
func hashCode(c *code, typ string) string {
	h := sha256.New()
	b, _ := json.Marshal(struct {
		N   string
		K   scripting.Kind
		S   string
		E   map[string]string
		R   []scripting.Rule
		Obj string
	}{c.Name, c.Kind, c.Src, envTypes(c.Env), c.Rules, typ})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func envTypes(env map[string]any) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = fmt.Sprintf("%T", v)
	}
	return out
}

// call is one run: the request, how to get its code, and the outcome.
type call struct {
	req     runReq
	code    func() *code
	kind    scripting.Kind // scripts only, for Observe
	observe func(scripting.Kind, time.Duration, error)
	res     runRes
	err     error
	argErr  error // an input that could not be encoded (setArgs)
	retried bool
	ctx     context.Context // the caller's, set when queued
}

// setArgs encodes the run's inputs now, in the caller's goroutine: the
// caller may change its maps as soon as the call returns.
func (c *call) setArgs(args ...map[string]any) {
	for i, a := range args {
		b, err := encodeMap(normalize(a))
		if err != nil && c.argErr == nil {
			c.argErr = fmt.Errorf("sandbox: input %d: %w", i, err)
		}
		c.req.Args[i] = b
	}
}

// fix turns the outcome into results.
func (c *call) fix() {
	if c.err == nil && c.argErr != nil {
		c.err = c.argErr // the run had an empty input: its result does not count
	}
	if c.err == nil && c.res.Err == nil && c.res.Out != nil { // fix may run twice: Out is decoded once
		var err error
		if c.res.out, err = decodeMap(c.res.Out); err != nil {
			c.err = fmt.Errorf("sandbox: the worker's result: %w", err)
		}
	}
	c.res.Out = nil
	if c.err == nil && c.res.Err != nil {
		if c.res.Err.Kind == scripting.ErrorTimeout { // the worker's own deadline: one message for both
			c.res.Err.Message = scripting.DeadlineMessage(c.req.Timeout)
		}
		if c.res.Err.Kind == scripting.ErrorMemory { // the worker's heap watchdog
			c.res.Err.Message = scripting.MemoryMessage
		}
		c.err = c.res.Err.err()
	}
	if c.err == nil && c.res.out == nil && !c.res.Skipped {
		c.res.out = map[string]any{}
	}
	for i := range c.res.Rules {
		c.res.Rules[i].Value = restore(c.res.Rules[i].Value)
	}
}

// job is the calls of one method call, queued on a lane.
type job struct {
	ctx     context.Context
	calls   []*call
	sent    chan struct{} // closed once the calls' inputs are no longer read
	done    chan struct{}
	release func()
	more    []*job // jobs of the same connection that travel with this one
}

// do queues calls as one job and waits for it. It returns an error only when
// the calls did not run (stopped, ctx ended); each call's error is its own.
func (p *Pool) do(ctx context.Context, l *lane, conn string, calls []*call) error {
	start := time.Now()
	// A context deadline shortens the run's own.
	if dl, ok := ctx.Deadline(); ok {
		for _, c := range calls {
			c.req.Timeout = min(c.req.Timeout, time.Until(dl))
		}
	}
	if err := ctx.Err(); err != nil {
		return ctxError(calls, err)
	}
	for _, c := range calls {
		if c.req.Timeout <= 0 {
			return ctxError(calls, context.DeadlineExceeded)
		}
	}
	for _, c := range calls {
		c.ctx = ctx
	}
	j := &job{ctx: ctx, calls: calls, sent: make(chan struct{}), done: make(chan struct{}), release: func() {}}
	if l.enqueue(conn, j) {
		select {
		case <-j.done:
		case <-ctx.Done():
			if !l.withdraw(conn, j) {
				<-j.sent // the worker's copy is written; the caller may reuse its maps
			}
			return ctxError(calls, context.Cause(ctx))
		case <-p.stopped:
			if l.withdraw(conn, j) {
				return ErrStopped
			}
			<-j.done
		}
	} else {
		select {
		case l.queue <- j:
		case <-ctx.Done():
			j.release()
			return ctxError(calls, context.Cause(ctx))
		case <-p.stopped:
			j.release()
			return ErrStopped
		}
		select {
		case <-j.done:
		case <-ctx.Done():
			<-j.sent // the worker's copy is written; the caller may reuse its maps
			return ctxError(calls, context.Cause(ctx))
		}
	}
	for _, c := range calls {
		c.fix()
		if c.observe != nil && !c.res.NotRun {
			c.observe(c.kind, time.Since(start), c.err)
		}
	}
	return nil
}

func ctxError(calls []*call, cause error) error {
	name := "script"
	if len(calls) > 0 && calls[0].code != nil {
		if n := calls[0].code().Name; n != "" {
			name = n
		}
	}
	e := scripting.NewError(name, scripting.ErrorTimeout, 0, 0, 0, scripting.ErrTimeout.Error()+": "+cause.Error())
	return e
}

// lane is a set of worker slots with one queue.
type lane struct {
	p     *Pool
	name  string
	queue chan *job
	slots []*slot
	limit int

	connMu sync.Mutex
	conns  map[string]*connJobs
}

// connJobs is one connection's share of a lane: the jobs it has in flight
// (each one message to a worker) and the jobs waiting for one of them to
// end. The waiting jobs then leave together, as one message: a connection's
// concurrent runs (the engine applies several changes at once) cross to a
// worker in batches instead of one message each, while the connection still
// holds at most limit workers.
type connJobs struct {
	inFlight int
	waiting  []*job
}

func (p *Pool) newLane(name string, n, perConn int) *lane {
	if perConn <= 0 {
		perConn = max(1, n-1)
	}
	l := &lane{p: p, name: name, queue: make(chan *job), limit: perConn, conns: map[string]*connJobs{}}
	for i := range n {
		s := &slot{l: l, id: i}
		l.slots = append(l.slots, s)
		p.wg.Add(1)
		go s.loop()
	}
	return l
}

// enqueue hands j to the lane for conn: it returns false when j is to be
// sent to the queue by the caller (conn had a place free, taken now, or
// conn is "", unbounded), true when j waits for one of conn's jobs in
// flight to end and then leaves with the others waiting (next).
func (l *lane) enqueue(conn string, j *job) bool {
	if conn == "" {
		return false
	}
	l.connMu.Lock()
	defer l.connMu.Unlock()
	q := l.conns[conn]
	if q == nil {
		q = &connJobs{}
		l.conns[conn] = q
	}
	if q.inFlight < l.limit {
		q.inFlight++
		j.release = func() { l.next(conn) }
		return false
	}
	q.waiting = append(q.waiting, j)
	return true
}

// withdraw takes j out of conn's waiting jobs: true if it was still there
// (never sent, so nothing reads its inputs).
func (l *lane) withdraw(conn string, j *job) bool {
	l.connMu.Lock()
	defer l.connMu.Unlock()
	q := l.conns[conn]
	if q == nil {
		return false
	}
	for i, w := range q.waiting {
		if w == j {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			return true
		}
	}
	return false
}

// next ends one of conn's jobs in flight: the jobs waiting, up to
// MaxBatch runs, take its place as one message; with none waiting, the
// place is free.
func (l *lane) next(conn string) {
	l.connMu.Lock()
	q := l.conns[conn]
	if len(q.waiting) == 0 {
		q.inFlight--
		if q.inFlight == 0 {
			delete(l.conns, conn)
		}
		l.connMu.Unlock()
		return
	}
	n, runs := 0, 0
	for n < len(q.waiting) && (n == 0 || runs+len(q.waiting[n].calls) <= l.p.opts.MaxBatch) {
		runs += len(q.waiting[n].calls)
		n++
	}
	lead := q.waiting[0]
	lead.more = append([]*job(nil), q.waiting[1:n]...)
	q.waiting = append(q.waiting[:0:0], q.waiting[n:]...)
	l.connMu.Unlock()
	lead.release = func() { l.next(conn) }
	// Not on the caller's goroutine: that is a slot's, which must not wait
	// for a slot to take the queue.
	go func() {
		select {
		case l.queue <- lead:
		case <-l.p.stopped:
			for _, j := range append([]*job{lead}, lead.more...) {
				fail(j.calls, ErrStopped)
				closeOnce(j.sent)
				close(j.done)
			}
		}
	}()
}

// slot owns one worker process at a time.
type slot struct {
	l  *lane
	id int

	mu   sync.Mutex // guards proc against Stop
	proc *proc
}

func (s *slot) loop() {
	p := s.l.p
	defer p.wg.Done()
	defer s.retire()
	for {
		var jobs []*job
		select {
		case <-p.stopped:
			return
		case j := <-s.l.queue:
			jobs = append(append(jobs, j), j.more...)
		}
		n := 0
		for _, j := range jobs {
			n += len(j.calls)
		}
	gather: // whatever else is waiting goes in the same message
		for n < p.opts.MaxBatch {
			select {
			case j := <-s.l.queue:
				jobs = append(append(jobs, j), j.more...)
				for _, j := range append([]*job{j}, j.more...) {
					n += len(j.calls)
				}
			default:
				break gather
			}
		}
		var calls []*call
		for _, j := range jobs {
			if j.ctx.Err() != nil { // its caller is gone
				for _, c := range j.calls {
					c.err = ErrStopped
				}
				continue
			}
			calls = append(calls, j.calls...)
		}
		if s.l == p.sync {
			p.count(calls)
		}
		s.runBatch(calls, jobs)
		for _, j := range jobs {
			closeOnce(j.sent)
			close(j.done)
			j.release()
		}
		s.maybeRecycle()
	}
}

// count adds a message's runs to Stats; a compile (a plan's load) is not a
// run.
func (p *Pool) count(calls []*call) {
	n := 0
	for _, c := range calls {
		if c.req.Op != opCompile {
			n++
		}
	}
	if n > 0 {
		p.runs.Add(int64(n))
		p.messages.Add(1)
	}
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// runBatch runs calls on this slot's worker, replacing it when it dies: the
// run it died on fails with the limit it hit; the runs after it are tried
// once more on a fresh worker.
func (s *slot) runBatch(calls []*call, jobs []*job) {
	p := s.l.p
	sent := func() {
		for _, j := range jobs {
			closeOnce(j.sent)
		}
	}
	for len(calls) > 0 {
		select {
		case <-p.stopped:
			fail(calls, ErrStopped)
			return
		default:
		}
		pr, err := s.ensure()
		if err != nil {
			// Not the script's fault: a plain error, which the engine retries.
			fail(calls, fmt.Errorf("sandbox worker did not start: %w", err))
			return
		}
		n, err := pr.run(calls, sent)
		if err == nil {
			return
		}
		s.drop()
		select {
		case <-p.stopped:
			fail(calls[n:], ErrStopped)
			return
		default:
		}
		p.kills.Add(1)
		p.opts.Logger.Warn("sandbox: worker replaced", "lane", s.l.name, "err", err)
		rest := calls[n:]
		if !errors.Is(err, errNoOffender) && len(rest) > 0 {
			rest[0].err = err
			rest = rest[1:]
		}
		var again []*call
		for _, c := range rest {
			if c.ctx != nil && c.ctx.Err() != nil { // its caller is gone and may reuse its inputs
				c.err = ErrStopped
				continue
			}
			if c.retried {
				// Not this run's fault (it never ran): a plain error, which
				// the engine retries and quarantine does not count. Another
				// connection's runs can be the ones that killed the worker.
				c.err = ErrDiedBeforeRun
				continue
			}
			c.retried = true
			again = append(again, c)
		}
		calls = again
	}
}

func fail(calls []*call, err error) {
	for _, c := range calls {
		c.err = err
	}
}

func (s *slot) ensure() (*proc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.proc.dead {
		return s.proc, nil
	}
	s.proc = nil
	pr, err := s.l.p.start()
	if err != nil {
		return nil, err
	}
	s.proc = pr
	return pr, nil
}

// drop kills and reaps the slot's worker.
func (s *slot) drop() {
	s.mu.Lock()
	pr := s.proc
	s.proc = nil
	s.mu.Unlock()
	if pr != nil {
		pr.kill()
		pr.wait()
	}
}

func (s *slot) retire() { s.drop() }

func (s *slot) maybeRecycle() {
	p := s.l.p
	s.mu.Lock()
	pr := s.proc
	s.mu.Unlock()
	if pr == nil {
		return
	}
	if pr.dead || pr.runs >= p.opts.RecycleRuns || pr.heap > p.opts.RecycleHeap || pr.cpu > p.opts.CPU/2 {
		p.opts.Logger.Debug("sandbox: recycling worker", "lane", s.l.name, "runs", pr.runs, "heap", pr.heap, "cpu", pr.cpu)
		s.drop()
	}
}

// proc is one worker process.
type proc struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	fw       *frameWriter
	dec      interface{ Decode(any) error }
	stderr   *tail
	seen     map[string]bool
	runs     int
	heap     uint64
	cpu      time.Duration
	timedOut atomic.Bool
	memory   uint64
	grace    time.Duration
	codeSent *atomic.Int64
	dead     bool // it died running a resent batch: replace it
	waitOnce sync.Once
}

func (p *Pool) start() (*proc, error) {
	// The argument only names the process in ps; the environment makes it
	// a worker (ServeIfWorker), also for a test binary.
	cmd := exec.Command(p.opts.Command, "sandbox-worker")
	cmd.Args[0] = filepath.Base(os.Args[0]) // "duplex", not "/proc/self/exe"
	// A minimal environment: the worker needs no secret of the server's.
	cmd.Env = []string{EnvWorker + "=1",
		envMemory + "=" + strconv.FormatUint(p.opts.Memory, 10),
		envCPU + "=" + strconv.FormatInt(int64(p.opts.CPU/time.Second), 10),
		// glibc reserves 64 MiB of address space per thread that mallocs
		// (cgo); two arenas are plenty for a worker.
		"MALLOC_ARENA_MAX=2"}
	for _, k := range []string{"TZ", "ZONEINFO", "GODEBUG", "GOTRACEBACK"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	procAttr(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	pr := &proc{cmd: cmd, stdin: stdin, stderr: &tail{}, seen: map[string]bool{}, memory: p.opts.Memory, grace: p.opts.Grace, codeSent: &p.codeSent}
	cmd.Stderr = pr.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.starts.Add(1)
	pr.fw = newFrameWriter(stdin)
	pr.dec = newDecoder(stdout)
	// The hello frame, within a bound: a worker that cannot start under its
	// limits says so on stderr.
	t := time.AfterFunc(10*time.Second, pr.kill)
	var h runRes
	err = pr.dec.Decode(&h)
	t.Stop()
	if err != nil || h.Err == nil || h.Err.Kind != "hello" {
		pr.kill()
		pr.wait()
		return nil, fmt.Errorf("no hello (%v): %s", err, pr.stderr.last())
	}
	return pr, nil
}

func (pr *proc) kill() { _ = pr.cmd.Process.Kill() }

func (pr *proc) wait() {
	pr.waitOnce.Do(func() {
		_ = pr.stdin.Close()
		_ = pr.cmd.Wait()
	})
}

// errNoOffender: the worker is unusable, but not because of the run it was
// on: the deadline kill came just as the run finished, or the worker was
// gone before the batch was sent. Every unfinished run is tried again.
var errNoOffender = errors.New("sandbox: worker lost between runs")

// run sends calls in one message and reads their results in order. On a
// failure it returns how many calls finished and the error of the one it
// was on (the worker is then dead or unusable).
func (pr *proc) run(calls []*call, sent func()) (int, error) {
	req := request{Runs: make([]runReq, len(calls))}
	for i, c := range calls {
		req.Runs[i] = c.req
		if !pr.seen[c.req.Key] {
			req.Runs[i].Code = c.code()
			pr.codeSent.Add(1)
		}
	}
	err := pr.fw.write(&req)
	sent()
	if err != nil { // the worker was gone before the batch: no run is to blame
		pr.dead = true
		pr.kill()
		pr.wait()
		return 0, fmt.Errorf("%w: %w", errNoOffender, err)
	}
	for _, r := range req.Runs {
		if r.Code != nil {
			pr.seen[r.Key] = true
		}
	}
	var missing []*call
	for i, c := range calls {
		d := c.req.Timeout + pr.grace
		t := time.AfterFunc(d, func() { pr.timedOut.Store(true); pr.kill() })
		var res runRes
		err := pr.dec.Decode(&res)
		if !t.Stop() {
			if err == nil {
				c.res = res
				return i + 1, errNoOffender
			}
		}
		if err != nil {
			return i, pr.death(c, err)
		}
		pr.runs++
		pr.heap = res.Heap
		if res.CPU > 0 {
			pr.cpu = res.CPU
		}
		if res.Missing {
			delete(pr.seen, c.req.Key)
			missing = append(missing, c)
			continue
		}
		c.res = res
	}
	if len(missing) > 0 { // evicted from the worker's cache: again, with the code
		for _, c := range missing {
			pr.seen[c.req.Key] = false
		}
		n, err := pr.run(missing, func() {})
		if err != nil {
			// Map back: the failed one is missing[n]; everything before
			// it finished. Callers only look at the calls' results.
			for _, c := range missing[n+1:] {
				c.err = scripting.NewError("sandbox", scripting.ErrorCrash, 0, 0, 0, "its sandbox worker died before the run")
			}
			missing[n].err = err
			return len(calls), nil
		}
	}
	if len(pr.seen) > 4*cacheSize {
		clear(pr.seen) // the worker's cache is smaller anyway; Missing covers the rest
	}
	return len(calls), nil
}

// death reaps the worker and tells why it died, as the error of call c.
func (pr *proc) death(c *call, cause error) error {
	pr.dead = true
	pr.kill()
	pr.wait()
	name := "script"
	if c.code != nil {
		switch n := c.code(); {
		case n.Name != "":
			name = n.Name
		case n.Rules != nil:
			name = "rules"
		default:
			name = "trigger"
		}
	}
	switch {
	case pr.timedOut.Load():
		return scripting.NewError(name, scripting.ErrorTimeout, 0, 0, 0, scripting.DeadlineMessage(c.req.Timeout))
	case pr.stderr.contains("out of memory") || pr.stderr.contains("cannot allocate memory"):
		return scripting.NewError(name, scripting.ErrorMemory, 0, 0, 0,
			fmt.Sprintf("%s (%d MiB)", scripting.MemoryMessage, pr.memory>>20))
	case errors.Is(cause, errTooBig):
		return scripting.NewError(name, scripting.ErrorMemory, 0, 0, 0, scripting.MemoryMessage+": "+cause.Error())
	}
	msg := "the sandbox worker died"
	if st := pr.cmd.ProcessState; st != nil {
		msg += " (" + st.String() + ")"
	}
	if l := pr.stderr.last(); l != "" {
		msg += ": " + l
	}
	return scripting.NewError(name, scripting.ErrorCrash, 0, 0, 0, msg)
}

// tail keeps the first and the last bytes a worker wrote on stderr: a Go
// fatal error names its cause at the top, then dumps goroutines.
type tail struct {
	mu   sync.Mutex
	head []byte
	end  []byte
}

const tailSize = 4 << 10

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(b)
	if room := tailSize - len(t.head); room > 0 {
		k := min(room, len(b))
		t.head = append(t.head, b[:k]...)
		b = b[k:]
	}
	t.end = append(t.end, b...)
	if len(t.end) > tailSize {
		t.end = append(t.end[:0], t.end[len(t.end)-tailSize:]...)
	}
	return n, nil
}

func (t *tail) contains(s string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Contains(string(t.head), s) || strings.Contains(string(t.end), s)
}

// last is the first non-empty line of stderr (a fatal error's cause).
func (t *tail) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range strings.Split(string(t.head), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// pids lists the running workers' process ids (tests).
func (p *Pool) pids() []int {
	var out []int
	for _, l := range []*lane{p.sync, p.inter} {
		for _, s := range l.slots {
			s.mu.Lock()
			if s.proc != nil {
				out = append(out, s.proc.cmd.Process.Pid)
			}
			s.mu.Unlock()
		}
	}
	return out
}

// workerCPU sums the CPU time the running workers last reported (tests,
// benchmarks).
func (p *Pool) workerCPU() time.Duration {
	var d time.Duration
	for _, l := range []*lane{p.sync, p.inter} {
		for _, s := range l.slots {
			s.mu.Lock()
			if s.proc != nil {
				d += s.proc.cpu
			}
			s.mu.Unlock()
		}
	}
	return d
}
