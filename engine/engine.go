// Package engine is the sync core: it finds changes on systems, runs each
// connection's trigger and outgoing script, queues durable sync events, and
// applies them to the other side through its incoming script and connector,
// recording twins, echo hashes and the audit log. It knows no HTTP.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// Options configures an Engine. Store, Connectors, Runner and Secrets are required.
type Options struct {
	Store      *store.Store
	Connectors *connectors.Registry
	Runner     *scripting.Runner
	Secrets    *secret.Box
	Logger     *slog.Logger

	PageSize    int                             // changes read per poll call; default 100
	BatchSize   int                             // events taken per worker round; default 50
	Workers     int                             // events of one batch applied at once; default 4
	MaxAttempts int                             // tries for a retryable failure; default 8
	Backoff     func(attempt int) time.Duration // delay before try attempt+1; default exponential from 1 s, capped at 5 min
	Now         func() time.Time
	// Transport, when set, gives the HTTP transport of a system's connector
	// by system name (metrics wrap the default one); nil keeps the default.
	Transport func(system string) http.RoundTripper

	// ProcessID names this process in the claims it takes on shared work
	// (events, deliveries, backfills, pollers); default host-pid-random.
	ProcessID string
	// Lease is how long a claim holds without renewal: a process that dies
	// holding work gives it up this long after its last renewal. Default 30 s.
	Lease time.Duration
	// Drain bounds how long, once Run's context ends, the worker goes on
	// finishing the events it already took; default 10 s.
	Drain time.Duration
}

// Engine runs the sync. Its methods are safe for concurrent use.
type Engine struct {
	opts Options
	st   *store.Store
	log  *slog.Logger

	mu      sync.Mutex
	systems map[int64]*systemState
	plans   map[int64]*plan

	wake     chan struct{}
	hookWake chan struct{}

	state runState // for readiness

	claims claimState
}

type systemState struct {
	sys    store.System
	conn   connectors.Connector
	schema *connectors.Schema
}

// New builds an engine; Run starts its pollers and worker.
func New(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 100
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 50
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.Backoff == nil {
		opts.Backoff = ExponentialBackoff(time.Second, 5*time.Minute)
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return time.Now().UTC() }
	}
	if opts.ProcessID == "" {
		opts.ProcessID = NewProcessID()
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.Drain <= 0 {
		opts.Drain = 10 * time.Second
	}
	return &Engine{
		opts: opts, st: opts.Store, log: opts.Logger,
		systems: map[int64]*systemState{}, plans: map[int64]*plan{},
		wake: make(chan struct{}, 1), hookWake: make(chan struct{}, 1),
	}
}

// ExponentialBackoff doubles the delay from base on every attempt up to max,
// then takes a random point in its upper half ("equal jitter"), so events
// that failed together do not all retry in the same instant.
func ExponentialBackoff(base, max time.Duration) func(int) time.Duration {
	return func(attempt int) time.Duration {
		d := base
		for i := 1; i < attempt && d < max; i++ {
			d *= 2
		}
		if d > max {
			d = max
		}
		half := d / 2
		return half + rand.N(half+1)
	}
}

// Wake nudges the worker: events were queued or retried.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Reload drops the compiled scripts of a connection; the next use recompiles.
func (e *Engine) Reload(connectionID int64) {
	e.mu.Lock()
	delete(e.plans, connectionID)
	e.mu.Unlock()
	e.Wake()
}

// ReloadSystem closes a system's connector so the next use reopens it with
// the new settings, and drops the plans that depend on its schema.
func (e *Engine) ReloadSystem(systemID int64) {
	e.mu.Lock()
	st := e.systems[systemID]
	delete(e.systems, systemID)
	for id, p := range e.plans {
		if p.conn.SystemAID == systemID || p.conn.SystemBID == systemID {
			delete(e.plans, id)
		}
	}
	e.mu.Unlock()
	if st != nil && st.conn != nil {
		_ = st.conn.Close()
	}
}

// Close releases every open connector, and every claim this engine holds on
// shared work (Run releases them too when it ends).
func (e *Engine) Close() error {
	e.releaseClaims(false)
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for id, st := range e.systems {
		if err := st.conn.Close(); err != nil {
			errs = append(errs, err)
		}
		delete(e.systems, id)
	}
	return errors.Join(errs...)
}

// system returns the open connector of a system, opening it on first use.
func (e *Engine) system(ctx context.Context, id int64) (*systemState, error) {
	e.mu.Lock()
	st, ok := e.systems[id]
	e.mu.Unlock()
	if ok {
		return st, nil
	}
	sys, err := e.st.GetSystem(ctx, id)
	if err != nil {
		return nil, err
	}
	secrets, err := e.opts.Secrets.OpenMap(sys.Secrets)
	if err != nil {
		return nil, fmt.Errorf("system %q: %w", sys.Name, err)
	}
	cfg := connectors.Config{Name: sys.Name, Settings: json.RawMessage(sys.Settings), Secrets: secrets}
	if e.opts.Transport != nil {
		cfg.Transport = e.opts.Transport(sys.Name)
	}
	conn, err := e.opts.Connectors.Open(ctx, sys.Kind, cfg)
	if err != nil {
		return nil, fmt.Errorf("open system %q: %w", sys.Name, err)
	}
	conn = withLimit(conn, sys.RatePerSecond, sys.RateBurst)
	e.mu.Lock()
	defer e.mu.Unlock()
	if other, ok := e.systems[id]; ok { // lost a race: keep the first
		_ = conn.Close()
		return other, nil
	}
	st = &systemState{sys: sys, conn: conn}
	e.systems[id] = st
	return st, nil
}

// Schema describes a system's entities (cached after the first call).
func (e *Engine) Schema(ctx context.Context, systemID int64) (connectors.Schema, error) {
	st, err := e.system(ctx, systemID)
	if err != nil {
		return connectors.Schema{}, err
	}
	e.mu.Lock()
	cached := st.schema
	e.mu.Unlock()
	if cached != nil {
		return *cached, nil
	}
	s, err := st.conn.Describe(ctx)
	if err != nil {
		return s, fmt.Errorf("describe system %q: %w", st.sys.Name, err)
	}
	e.mu.Lock()
	st.schema = &s
	e.mu.Unlock()
	return s, nil
}

// ValidateTrigger compiles a trigger against a system's field types; a
// compile error is a *scripting.Error with line and column.
func (e *Engine) ValidateTrigger(ctx context.Context, systemID int64, src string) error {
	_, err := e.compileTrigger(ctx, systemID, src)
	return err
}

func (e *Engine) compileTrigger(ctx context.Context, systemID int64, src string) (*scripting.Trigger, error) {
	schema, err := e.Schema(ctx, systemID)
	if err != nil {
		return nil, err
	}
	return scripting.CompileTrigger(src, triggerEnv(schema))
}
