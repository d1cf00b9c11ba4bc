// Command duplex is the one Duplex binary: `serve` runs the API, the browser
// app and the sync engine; `demo` sets up two SQLite databases and a
// connection and serves them; `migrate` applies or shows the schema version.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/kinds"
	"github.com/duplexsync/duplex/connectors/peerlink"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/alerts"
	"github.com/duplexsync/duplex/internal/demo"
	"github.com/duplexsync/duplex/internal/metrics"
	"github.com/duplexsync/duplex/internal/tlsconf"
	"github.com/duplexsync/duplex/migrations"
	"github.com/duplexsync/duplex/peering"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripting/sandbox"
	"github.com/duplexsync/duplex/scripts"
	"github.com/duplexsync/duplex/server"
)

const usage = `duplex — scripted two-way sync

usage:
  duplex demo    [flags]   two SQLite databases, a connection from a template, the API and UI
  duplex serve   [flags]   run the API, the browser app and the sync engine
  duplex migrate [flags] [up|status]
  duplex script test DIR...  run a template folder's fixtures (testdata/*.json)
  duplex script impact [flags] CONNECTION  what a draft script would change over recent synced changes
  duplex user add|password|list [flags] [EMAIL]   manage people (password from DUPLEX_PASSWORD)
  duplex template import DIR | export NAME DIR [--team T]   a team template as a folder
  duplex backup [flags] FILE   a consistent copy of the SQLite store, while it runs
  duplex export   [flags] DIR  write teams, systems, connections and team templates as files (secret names only; --prune)
  duplex apply    [flags] DIR  show the plan that makes the store match DIR, then apply it (--dry-run, --prune, --create)
  duplex validate DIR          compile every script and trigger of DIR and run its template fixtures
  duplex secrets rotate [flags]  re-seal every system's secrets with a new key
  duplex policy show|allow|remove|set  the outbound policy: what systems may reach
  duplex version

run "duplex <command> -h" for the flags of a command
`

var version = "dev"

// serverGCPercent is the server's GOGC unless the environment sets one.
const serverGCPercent = 200

func main() {
	sandbox.ServeIfWorker() // a script worker of this process's parent: serves and exits
	if os.Getenv("GOGC") == "" {
		// The server's garbage is short-lived (a change's decoded values and
		// rows); at 200 make bench spent 7-10 % less CPU per change for
		// 9-14 MB more memory (docs/performance.md). GOGC overrides it.
		debug.SetGCPercent(serverGCPercent)
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger, err := newLogger(os.Getenv("DUPLEX_LOG_FORMAT"), os.Getenv("DUPLEX_LOG_LEVEL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "duplex:", err)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		err = runServe(ctx, logger, os.Args[2:])
	case "demo":
		err = runDemo(ctx, logger, os.Args[2:], os.Stdout)
	case "migrate":
		err = runMigrate(ctx, os.Args[2:], os.Stdout)
	case "script":
		err = runScript(ctx, os.Args[2:], os.Stdout)
	case "user":
		err = runUser(ctx, os.Args[2:], os.Stdout)
	case "template":
		err = runTemplate(ctx, os.Args[2:], os.Stdout)
	case "backup":
		err = runBackup(ctx, os.Args[2:], os.Stdout)
	case "export":
		err = runExport(ctx, os.Args[2:], os.Stdout)
	case "apply":
		err = runApply(ctx, os.Args[2:], os.Stdout)
	case "validate":
		err = runValidate(ctx, os.Args[2:], os.Stdout)
	case "secrets":
		err = runSecrets(ctx, os.Args[2:], os.Stdout)
	case "policy":
		err = runPolicy(ctx, os.Args[2:], os.Stdout)
	case "version":
		fmt.Println("duplex", versionString())
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		err = nil // -h on a command: its usage is printed already
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "duplex:", err)
		os.Exit(1)
	}
}

// newLogger builds the process logger: text (default) or JSON lines for a
// log collector, at info (default), debug, warn or error.
func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if level != "" {
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("DUPLEX_LOG_LEVEL: %w", err)
		}
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(os.Stderr, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, o)), nil
	}
	return nil, fmt.Errorf("DUPLEX_LOG_FORMAT must be text or json, got %q", format)
}

// common are the flags every command that opens the store shares.
type common struct {
	db      string
	dataDir string
	addr    string
	// secureCookies marks session cookies Secure behind a TLS proxy.
	secureCookies bool
	// lease is how long a claim on shared work outlives its process.
	lease time.Duration
	// tlsCert and tlsKey serve HTTPS (serve and demo); caFile adds CAs
	// the connectors trust (registerTLS).
	tlsCert, tlsKey, caFile string
	// limits bound the HTTP server's clients (limits.go).
	limits  server.Limits
	sandbox sandboxFlags // registerTLS
}

func (c *common) register(fs *flag.FlagSet, defaultData string) {
	fs.StringVar(&c.dataDir, "data", envOr("DUPLEX_DATA", defaultData), "directory for the SQLite store and the secret key file (env DUPLEX_DATA)")
	fs.StringVar(&c.db, "db", os.Getenv("DUPLEX_DB"), "store DSN: a SQLite path or postgres://… URL; default <data>/duplex.db (env DUPLEX_DB)")
	fs.StringVar(&c.addr, "addr", envOr("DUPLEX_ADDR", "127.0.0.1:8080"), "listen address (env DUPLEX_ADDR)")
	lease, _ := time.ParseDuration(os.Getenv("DUPLEX_LEASE"))
	fs.DurationVar(&c.lease, "lease", lease, "how long a process's claims on events, deliveries, backfills and pollers hold without renewal; a killed process's work is taken over this long after (default 30s; env DUPLEX_LEASE)")
	fs.BoolVar(&c.secureCookies, "secure-cookies", os.Getenv("DUPLEX_SECURE_COOKIES") == "1", "mark session cookies Secure (behind an HTTPS proxy; env DUPLEX_SECURE_COOKIES=1)")
}

// registerTLS adds the TLS flags of the commands that serve and sync.
func (c *common) registerTLS(fs *flag.FlagSet) {
	registerLimits(fs, &c.limits)
	fs.StringVar(&c.tlsCert, "tls-cert", os.Getenv("DUPLEX_TLS_CERT"), "serve HTTPS with this PEM certificate (chain) file, reloaded when it changes; needs --tls-key (env DUPLEX_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", os.Getenv("DUPLEX_TLS_KEY"), "the PEM private key of --tls-cert (env DUPLEX_TLS_KEY)")
	fs.StringVar(&c.caFile, "ca-file", os.Getenv("DUPLEX_CA_FILE"), "PEM CA certificates trusted for connections to systems, besides the system roots (env DUPLEX_CA_FILE)")
	c.sandbox.register(fs)
}

func (c *common) dsn() string {
	if c.db != "" {
		return c.db
	}
	return filepath.Join(c.dataDir, "duplex.db")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// app is everything `serve` and `demo` wire together.
type app struct {
	store     *store.Store
	box       *secret.Box
	templates *scripts.Library
	engine    *engine.Engine
	pool      *sandbox.Pool
	handler   http.Handler
	auth      server.AuthOptions
	tls       *tls.Config // nil: plain HTTP
	alerts    *alerts.Evaluator
	limits    server.Limits
	peers     *peering.Service // sends the peer links' outboxes
}

// buildApp opens everything; access says how people sign in (see firstRun
// and demoAccess).
func buildApp(ctx context.Context, logger *slog.Logger, c common, access func(*store.Store) (server.AuthOptions, error)) (*app, error) {
	// TLS first: a wrong file fails the start before anything is opened.
	tlsCfg, err := serverTLS(logger, c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, err
	}
	base, nCA, err := tlsconf.ClientTransport(c.caFile)
	if err != nil {
		return nil, err
	}
	if nCA > 0 {
		logger.Info("connections to systems also trust the CA file", "file", c.caFile, "certificates", nCA)
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	box, err := loadBox(c.dataDir)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, c.dsn())
	if err != nil {
		return nil, err
	}
	lib, err := scripts.Builtin()
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	reg, err := registry()
	if err == nil {
		// The stand-in of peer links' systems (docs/peers.md): not a kind
		// people create or the conformance suites run, so not in registry().
		err = reg.Register(peerlink.Kind, peerlink.Open)
	}
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	m := metrics.New(st)
	guards := newGuards(st, c, logger)
	// Every script, trigger and rule runs in a worker process: this process
	// never evaluates user code.
	pool, err := c.sandbox.newPool(logger, m)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	peers, peerEng, err := newPeers(st, box, lib, logger, m, func(team int64) http.RoundTripper { // peers.go
		// Peers are reached as systems are: through the team's outbound
		// policy, trusting the system roots and --ca-file.
		return tlsconf.WithDial(base, guards.For(team).DialContext)
	})
	if err != nil {
		stopPool(pool)
		_ = st.Close()
		return nil, err
	}
	eng := engine.New(engine.Options{
		Store: st, Connectors: reg, Secrets: box, Logger: logger,
		Runner: pool, Interactive: pool.Interactive(),
		Transport:  connectorTransport(m, base),
		Outbound:   guards.For,
		Lease:      c.lease,
		PeerQueued: peers.Queued,
	})
	peerEng.e = eng
	poolMetrics(m, pool)
	m.Counter("duplex_lease_takeovers_total", "Events, deliveries, backfills and pollers this process took over from a process whose lease expired.",
		func() float64 { return float64(eng.Takeovers()) })
	m.Counter("duplex_events_handed_total", "Sync events intake handed straight to this process's worker, claimed as they were queued.",
		func() float64 { return float64(eng.Handed()) })
	m.Counter("duplex_entities_read_again_total", "Entities a poll or webhook read again before intake: the page held a state from before Duplex's write to them.",
		func() float64 { return float64(eng.ReadAgain()) })
	m.Counter("duplex_events_claimed_total", "Sync events this process's worker took from the queue by a claim round.",
		func() float64 { return float64(eng.Claimed()) })
	m.Counter("duplex_event_claims_lost_total", "Sync events whose claim another process took over before this process recorded them (a stall past the lease); this process dropped its result.",
		func() float64 { return float64(eng.ClaimsLost()) })
	m.Counter("duplex_store_statements_total", "Statements this process sent to the store (round trips).",
		func() float64 { return float64(st.Stats().Statements.Load()) })
	m.Counter("duplex_store_commits_total", "Commits this process made in the store (transactions and writes outside one).",
		func() float64 { return float64(st.Stats().Commits.Load()) })
	m.Counter("duplex_store_pool_wait_seconds_total", "Time callers waited for a connection of the store's pool (on SQLite, its one connection).",
		func() float64 { w, _ := st.PoolWait(); return w.Seconds() })
	al, err := newAlerts(st, logger, eng.ProcessID(), alertTransport(base, guards))
	if err != nil {
		_ = eng.Close()
		stopPool(pool)
		_ = st.Close()
		return nil, err
	}
	auth, err := access(st)
	if err != nil {
		_ = eng.Close()
		stopPool(pool)
		_ = st.Close()
		return nil, err
	}
	// Over TLS the session cookie is Secure anyway (the server marks it so
	// on TLS requests).
	auth.SecureCookies = c.secureCookies
	h := server.New(server.Options{Store: st, Engine: eng, Secrets: box, Templates: lib, Logger: logger, Auth: auth,
		Metrics: m.Handler(), Outbound: guards, Limits: c.limits, Connectors: reg, Peers: peers})
	warnRefused(ctx, st, eng, logger)
	return &app{store: st, box: box, templates: lib, engine: eng, pool: pool, handler: h, auth: auth, tls: tlsCfg, alerts: al, limits: c.limits, peers: peers}, nil
}

// connectorTransport is engine.Options.Transport: a system's requests are
// measured, then go through base (the system roots plus --ca-file) on
// connections dialed by its team's outbound guard.
func connectorTransport(m *metrics.Metrics, base http.RoundTripper) func(store.System, connectors.DialFunc) http.RoundTripper {
	return func(sys store.System, dial connectors.DialFunc) http.RoundTripper {
		return m.Transport(sys.ID, sys.Name, tlsconf.WithDial(base, dial))
	}
}

// serverTLS is the HTTPS configuration of --tls-cert and --tls-key; nil
// when neither is set.
func serverTLS(logger *slog.Logger, certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("--tls-cert and --tls-key (DUPLEX_TLS_CERT, DUPLEX_TLS_KEY) go together")
	}
	r, err := tlsconf.NewReloader(certFile, keyFile, logger)
	if err != nil {
		return nil, err
	}
	return r.Config(), nil
}

// registry lists the connector kinds this binary offers (connectors/kinds).
func registry() (*connectors.Registry, error) { return kinds.Registry() }

func (a *app) close() {
	_ = a.engine.Close()
	stopPool(a.pool)
	// What /metrics counts, for make bench (which has no login).
	wait, waits := a.store.PoolWait()
	slog.Default().Info("store closed", "store_statements", a.store.Stats().Statements.Load(), "store_commits", a.store.Stats().Commits.Load(),
		"store_pool_wait", wait.Round(time.Millisecond), "store_pool_waits", waits)
	_ = a.store.Close()
}

// serve runs the engine and the HTTP server until ctx ends, then shuts both down.
func (a *app) serve(ctx context.Context, logger *slog.Logger, addr string, ready func(url string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Timeouts, and a cap on each client address's connections
	// (server/limits.go); ReadHeaderTimeout also bounds a TLS handshake.
	lim := a.limits.WithDefaults()
	ln = server.LimitListener(ln, lim.MaxConnsPerAddr)
	srv := server.NewHTTPServer(a.handler, lim, logger)
	srv.TLSConfig = a.tls
	engCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	engDone := make(chan error, 1)
	go func() { engDone <- a.engine.Run(engCtx) }()
	alertsDone := make(chan struct{})
	go func() { defer close(alertsDone); a.alerts.Run(engCtx) }()
	peersDone := make(chan struct{})
	go func() { defer close(peersDone); a.peers.Run(engCtx) }()
	srvDone := make(chan error, 1)
	url := "http://" + ln.Addr().String()
	if a.tls != nil {
		url = "https://" + ln.Addr().String()
		go func() { srvDone <- srv.ServeTLS(ln, "", "") }() // the pair comes from TLSConfig
	} else {
		go func() { srvDone <- srv.Serve(ln) }()
	}
	logger.Info("duplex is serving", "url", url, "process", a.engine.ProcessID())
	if ready != nil {
		ready(url)
	}
	select {
	case <-ctx.Done():
	case err = <-srvDone:
	}
	shutCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	_ = srv.Shutdown(shutCtx)
	cancel()
	<-engDone
	<-alertsDone
	<-peersDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func runServe(ctx context.Context, logger *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	var c common
	c.register(fs, "duplex-data")
	c.registerTLS(fs)
	_ = fs.Parse(args)
	a, err := buildApp(ctx, logger, c, func(st *store.Store) (server.AuthOptions, error) {
		return firstRun(ctx, st, logger, os.Getenv("DUPLEX_ADMIN_EMAIL"), os.Getenv("DUPLEX_ADMIN_PASSWORD"))
	})
	if err != nil {
		return err
	}
	defer a.close()
	startPprof(logger)
	// Counted for `make bench`: compiling belongs to saving a script, never
	// to a change, so this stays at the plans' few whatever the load.
	defer func() { logger.Info("stopped", "script_compilations", scripting.Compilations()) }()
	return a.serve(ctx, logger, c.addr, func(url string) {
		if a.auth.SetupToken != "" {
			// Only whoever can read this process's output can create the admin.
			printSetupBanner(os.Stdout, url+"/setup?token="+a.auth.SetupToken)
			logger.Info("no user exists yet: the setup link is printed on standard output")
		}
	})
}

func runDemo(ctx context.Context, logger *slog.Logger, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	var c common
	c.register(fs, "duplex-demo")
	c.registerTLS(fs)
	poll := fs.Duration("poll", 2*time.Second, "how often the demo systems are polled")
	reset := fs.Bool("reset", false, "start a fresh demo: delete the store and demo databases an earlier run left in --data")
	peers := fs.Bool("peers", false, "two deployments linked by a peer link (docs/peers.md): support on --addr, engineering on --peer-addr, stores in --data/support and --data/engineering")
	peerAddr := fs.String("peer-addr", "", "with --peers: the engineering deployment's listen address (default: --addr's port + 1)")
	_ = fs.Parse(args)
	if *peers {
		return runDemoPeers(ctx, logger, c, *peerAddr, poll.Milliseconds(), out) // demo_peers.go
	}
	if *reset {
		if c.db != "" {
			return errors.New("demo --reset deletes the SQLite files in --data; with --db, empty that store yourself")
		}
		if err := resetDemo(c.dataDir); err != nil {
			return err
		}
	}
	continues := demoContinues(c.dataDir)
	paths, err := demo.CreateDatabases(ctx, c.dataDir)
	if err != nil {
		return err
	}
	var token string
	a, err := buildApp(ctx, logger, c, func(st *store.Store) (o server.AuthOptions, err error) {
		o, token, err = demoAccess(ctx, st)
		return o, err
	})
	if err != nil {
		return err
	}
	defer a.close()
	defer func() {
		if err := revokeDemoToken(a.store, token); err != nil {
			logger.Warn("the demo's API token stays valid", "err", err)
		}
	}()
	conn, err := demo.Install(ctx, a.store, a.box, a.templates, paths, poll.Milliseconds())
	if err != nil {
		return err
	}
	return a.serve(ctx, logger, c.addr, func(url string) {
		fmt.Fprintf(out, demoHelp, url, conn.ID, paths.Support, paths.Engineering,
			paths.Support, paths.Engineering, url, token)
		if continues {
			printDemoContinues(out, c.dataDir)
		}
	})
}

const demoHelp = `
Duplex demo is running: %[1]s  (connection %[2]d, "support-escalation")

  support desk:  %[3]s   (table tickets, ticket_comments)
  engineering:   %[4]s   (table issues, issue_comments)

Ticket 1 carries the label "todev" and is already on its way to engineering.
Escalate another ticket with any SQLite client:
  sqlite3 %[5]s "UPDATE tickets SET labels = 'export,todev' WHERE id = 3"
Resolve it on the engineering side and watch the ticket follow:
  sqlite3 %[6]s "UPDATE issues SET state = 'resolved' WHERE ticket_ref = 'T-3'"
See what happened (the browser signs in automatically on loopback; this
API token is the demo admin's, made for this run: it ends when the demo stops):
  curl -s -H "Authorization: Bearer %[8]s" %[7]s/api/events
The README's curl lines read the token from TOKEN:
  export TOKEN=%[8]s
`

func runMigrate(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ExitOnError)
	var c common
	c.register(fs, "duplex-data")
	_ = fs.Parse(args)
	cmd := strings.Join(fs.Args(), " ")
	if cmd == "" {
		cmd = "up"
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil && c.db == "" {
		return err
	}
	open := store.Connect
	if cmd == "up" {
		open = store.Open // applies pending migrations
	}
	st, err := open(ctx, c.dsn())
	if err != nil {
		return err
	}
	defer st.Close()
	sqlDB, err := st.DB().DB()
	if err != nil {
		return err
	}
	switch cmd {
	case "up", "status":
		status, err := migrations.Status(ctx, sqlDB, st.Dialect())
		if err != nil {
			return err
		}
		for _, s := range status {
			fmt.Fprintf(out, "%-10s %05d %s\n", s.State, s.Source.Version, filepath.Base(s.Source.Path))
		}
		return nil
	default:
		return fmt.Errorf("migrate: unknown action %q (up or status)", cmd)
	}
}
