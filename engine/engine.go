// Package engine is the sync core: it finds changes on systems, runs each
// connection's trigger and outgoing script, queues durable sync events, and
// applies them to the other side through its incoming script and connector,
// recording twins, echo hashes and the audit log. It knows no HTTP.
package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// Options configures an Engine. Store, Connectors, Runner and Secrets are required.
type Options struct {
	Store      Store // a *store.Store; the engine uses only what Store declares
	Connectors *connectors.Registry
	Runner     Scripts // runs scripts, triggers and rules for the sync
	// Interactive runs them for test runs and trigger previews; nil: Runner.
	Interactive Scripts
	Secrets     *secret.Box
	Logger      *slog.Logger

	PageSize int // changes read per poll call; default 100
	// BackfillPage is the most entities a backfill reads at once (when the
	// connection's queue is empty); default 10 × PageSize, at most 1,000.
	// BackfillAhead is the most events of its connection a backfill keeps
	// queued ahead of the worker; default 1,000.
	BackfillPage, BackfillAhead int
	BatchSize                   int                             // events taken per worker round; default 50
	Workers                     int                             // events of one connection (of a WorkOnce batch) applied at once; default 4
	MaxAttempts                 int                             // tries for a retryable failure; default 8
	Backoff                     func(attempt int) time.Duration // delay before try attempt+1; default exponential from 1 s, capped at 5 min
	Now                         func() time.Time
	// InFlight is how many events of one connection the running worker
	// (Run's flow) applies at once; default 16, never fewer than Workers. An
	// event mostly waits (the target system, the store, the sandbox), so a
	// wider lane is what lets a slow target be written to at its own pace;
	// a system with a rate limit bounds it to its burst, and a target that
	// takes writes in batches (connectors.BatchWriter) gets at least a
	// batch's 64 (flow.go).
	InFlight int
	// MaxHeld bounds the events the running worker holds at once (claimed,
	// running, or finished and not yet recorded), over all connections;
	// default 4,096, at most maxHeldLimit. Each claim and lease renewal
	// names the held events, and a statement takes at most 32,766
	// parameters on SQLite and 65,535 on PostgreSQL: past that no claim
	// went through at all. It also bounds the memory the held events take.
	MaxHeld int
	// Transport, when set, gives the HTTP transport of a system's connector
	// (metrics wrap the default one, labelled by the system's id and name), whose connections dial
	// through dial (the outbound guard; nil: none); nil keeps the default.
	Transport func(sys store.System, dial connectors.DialFunc) http.RoundTripper
	// Outbound, when set, is the outbound policy of a team's systems
	// (internal/outbound): every connector gets it in Config.Guard, and
	// CheckSystem checks settings against it. nil: no policy (tests).
	Outbound func(teamID int64) connectors.Guard

	// ProcessID names this process in the claims it takes on shared work
	// (events, deliveries, backfills, pollers); default host-pid-random.
	ProcessID string
	// Lease is how long a claim holds without renewal: a process that dies
	// holding work gives it up this long after its last renewal. Default 30 s.
	Lease time.Duration
	// Drain bounds how long, once Run's context ends, the worker goes on
	// finishing the events it already took; default 10 s.
	Drain time.Duration
	// QuarantineHits script runs of one connection that hit a limit within
	// QuarantineWindow pause it (quarantine.go); defaults 3 and 10 min, a
	// connection's options may set its own, and -1 switches it off.
	QuarantineHits   int
	QuarantineWindow time.Duration
	// PeerQueued is told when a message was put in a peer link's outbox
	// (engine/peer.go), so its sender need not wait for its next look.
	PeerQueued func(linkID int64)
}

// Engine runs the sync. Its methods are safe for concurrent use.
type Engine struct {
	opts Options
	st   Store
	log  *slog.Logger

	mu      sync.Mutex
	systems map[int64]*systemState
	plans   map[int64]*plan
	// retiring holds dropped connectors until they are closed: a call
	// that took one before the drop may still be using it.
	retiring map[*systemState]*time.Timer

	deferMu  sync.Mutex
	deferred map[int64]int // polls deferred in a row per system (intent.go, deferPoll)

	wake     chan struct{}
	hookWake chan struct{}
	woken    wokenSystems     // which systems' deliveries woke hookWake
	handed   handedDeliveries // this process's own deliveries, claimed (hookhand.go)

	state runState // for readiness

	claims claimState
	hand   *handoff // intake → the running worker (handoff.go)

	quarantine quarantineState

	deployment  atomic.Pointer[store.Deployment] // read once (corrkey.go)
	writes      writeBatches                     // batchwrite.go
	intentSweep atomic.Int64                     // when a record last removed old intents (UnixNano; settleIntents)
	reread      atomic.Int64                     // entities read again before intake (stale.go)
	toIntent    atomic.Int64                     // events applying that have not recorded their intent (apply.go)
}

type systemState struct {
	sys    store.System
	conn   connectors.Connector
	schema *connectors.Schema

	// sealed is the system's secrets as last seen sealed in the store (under
	// Engine.mu), and opened the digest of what they open to: a rotation
	// re-seals the same values, which reopens nothing.
	sealed []byte
	opened [sha256.Size]byte
}

// New builds an engine; Run starts its pollers and worker.
func New(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 100
	}
	if opts.BackfillPage <= 0 {
		opts.BackfillPage = min(10*opts.PageSize, 1000)
	}
	if opts.BackfillAhead <= 0 {
		opts.BackfillAhead = 1000
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 50
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.InFlight <= 0 {
		opts.InFlight = 16
	}
	opts.InFlight = max(opts.InFlight, opts.Workers)
	if opts.MaxHeld <= 0 {
		opts.MaxHeld = 4096
	}
	opts.MaxHeld = min(opts.MaxHeld, maxHeldLimit)
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
		systems: map[int64]*systemState{}, plans: map[int64]*plan{}, retiring: map[*systemState]*time.Timer{},
		wake: make(chan struct{}, 1), hookWake: make(chan struct{}, 1),
		hand: newHandoff(),
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

// ReloadSystem drops a system's connector so the next use reopens it with
// the new settings (the old one is closed a lease later, once what was using
// it is done), and drops the plans that depend on its schema.
func (e *Engine) ReloadSystem(systemID int64) { e.dropSystem(systemID, nil) }

// dropSystem is ReloadSystem; with only set, it does nothing unless only is
// still the open state of the system (not one opened since).
func (e *Engine) dropSystem(systemID int64, only *systemState) {
	e.mu.Lock()
	st := e.systems[systemID]
	if only != nil && st != only {
		e.mu.Unlock()
		return
	}
	delete(e.systems, systemID)
	for id, p := range e.plans {
		if p.conn.SystemAID == systemID || p.conn.SystemBID == systemID {
			delete(e.plans, id)
		}
	}
	if st != nil && st.conn != nil {
		// Closed later, not now: a poll or an apply that took the connector
		// before the drop finishes with it (an apply that runs longer than
		// the lease has lost its claim anyway).
		e.retiring[st] = time.AfterFunc(e.opts.Lease, func() {
			e.mu.Lock()
			_, ok := e.retiring[st]
			delete(e.retiring, st)
			e.mu.Unlock()
			if ok {
				_ = st.conn.Close()
			}
		})
	}
	e.mu.Unlock()
}

// Close releases every open connector, and every claim this engine holds on
// shared work (Run releases them too when it ends).
func (e *Engine) Close() error {
	e.releaseClaims(false)
	if n := e.writes.writes.Load(); n > 0 { // bench/load reads it
		e.log.Info("batched target writes", "target_writes", n, "target_write_batches", e.writes.batches.Load())
	}
	if h, c := e.Handed(), e.Claimed(); h+c > 0 { // bench/load reads it
		e.log.Info("events taken by the worker", "events_handed", h, "events_claimed", c, "entities_read_again", e.ReadAgain())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for st, t := range e.retiring { // not yet taken by its timer
		t.Stop()
		_ = st.conn.Close()
		delete(e.retiring, st)
	}
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
	cfg := e.connectorConfig(sys, secrets)
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
	st = &systemState{sys: sys, conn: conn, sealed: sys.Secrets, opened: digest(secrets)}
	e.systems[id] = st
	return st, nil
}

// digest names a set of opened secrets without keeping them.
func digest(secrets map[string]string) [sha256.Size]byte {
	raw, _ := json.Marshal(secrets) // sorted keys
	return sha256.Sum256(raw)
}

// refreshSystems compares the systems as listed now (Run lists them every
// refresh) with the ones this engine has open, and closes the connector of
// a system that was deleted or whose connector settings changed since it was
// opened, wherever the change was made: another process's API, `duplex
// apply`, `duplex secrets rotate`. The next use reopens it with the new
// settings. It costs no query of its own.
func (e *Engine) refreshSystems(systems []store.System) {
	now := make(map[int64]store.System, len(systems))
	for _, s := range systems {
		now[s.ID] = s
	}
	type open struct {
		id     int64
		st     *systemState
		sealed []byte
	}
	e.mu.Lock()
	var opens []open
	for id, st := range e.systems {
		opens = append(opens, open{id, st, st.sealed})
	}
	e.mu.Unlock()
	for _, o := range opens {
		s, ok := now[o.id]
		switch {
		case !ok:
			e.log.Info("system deleted; closed its connector", "system", o.st.sys.Name)
			e.dropSystem(o.id, o.st)
		case s.Name != o.st.sys.Name || s.Kind != o.st.sys.Kind || s.Settings != o.st.sys.Settings ||
			s.RatePerSecond != o.st.sys.RatePerSecond || s.RateBurst != o.st.sys.RateBurst:
			e.log.Info("system changed; reopening its connector", "system", s.Name)
			e.dropSystem(o.id, o.st)
		case !bytes.Equal(s.Secrets, o.sealed):
			secrets, err := e.opts.Secrets.OpenMap(s.Secrets)
			if err != nil {
				// Keep the connector working with what it opened; a new
				// value this process cannot read is worth a warning, once.
				e.log.Warn("cannot open a system's changed secrets; keeps the ones it opened", "system", s.Name, "err", err)
			} else if digest(secrets) != o.st.opened {
				e.log.Info("system secrets changed; reopening its connector", "system", s.Name)
				e.dropSystem(o.id, o.st)
				continue
			}
			e.mu.Lock()
			o.st.sealed = s.Secrets // re-sealed, same values
			e.mu.Unlock()
		}
	}
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
