// Package server is Duplex's HTTP edge: the Gin JSON API for systems,
// connections, scripts, twins, sync events and the audit log, health, and the
// browser app. It maps every error to a status and a stable JSON code in one
// place (errors.go).
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/frontend"
	"github.com/duplexsync/duplex/internal/outbound"
	"github.com/duplexsync/duplex/internal/service"
	"github.com/duplexsync/duplex/peering"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
)

// Engine is what the server needs from the running engine; declared here,
// where it is used, so tests can pass a fake.
type Engine interface {
	// Reload tells the engine a connection was created or its scripts,
	// policy, options or active flag changed.
	Reload(connectionID int64)
	// ReloadSystem tells the engine a system's settings or secrets changed
	// (or it was deleted), so its connector is reopened.
	ReloadSystem(systemID int64)
	// Schema describes a system's entities (for the editor and triggers).
	Schema(ctx context.Context, systemID int64) (connectors.Schema, error)
	// ValidateTrigger compiles a trigger against a system's fields: nil, a
	// *scripting.Error of kind compile with line and column, or another error.
	ValidateTrigger(ctx context.Context, systemID int64, src string) error
	// CheckScript compiles a script in a sandbox worker, never in the
	// server: nil, a *scripting.Error of kind compile, or another error.
	CheckScript(ctx context.Context, conn store.Connection, name string, kind scripting.Kind, src string) error
	// TestRun runs a connection's scripts on one entity without writing.
	TestRun(ctx context.Context, connID int64, side store.Side, id string, ent *connectors.Entity) (engine.TestRunResult, error)
	// TestRunDraft is TestRun with unsaved drafts of the tested direction.
	TestRunDraft(ctx context.Context, connID int64, side store.Side, id string, ent *connectors.Entity, draft engine.ImpactDraft) (engine.TestRunResult, error)
	// Impact replays a connection's recent synced changes of a direction
	// through the saved and a draft version of its scripts, writing nothing.
	Impact(ctx context.Context, connID int64, d store.Direction, draft engine.ImpactDraft, changes int, budget time.Duration) (engine.ImpactResult, error)
	// PreviewTrigger evaluates a trigger on up to limit entities of a
	// system, writing nothing, and returns the count and a sample of matches.
	PreviewTrigger(ctx context.Context, systemID int64, src string, limit, sample int) (engine.TriggerPreview, error)
	// MatchExisting lists the entities on both sides that share a key,
	// writing nothing (the service links them).
	MatchExisting(ctx context.Context, connID int64, aField, bField string) ([]engine.Pair, error)
	// Wake tells the workers events were queued or retried.
	Wake()
	// Hook verifies and records a webhook request for a system.
	Hook(ctx context.Context, systemID int64, header http.Header, body []byte) (engine.HookResult, error)
	// CheckSystem checks what a system's settings reach against the store
	// fence and its team's outbound policy (connectors.ErrRefused).
	CheckSystem(ctx context.Context, sys store.System) error
	// CanFind says whether a system's connector can look entities up by a
	// field (connectors.Finder), which unique rules need.
	CanFind(ctx context.Context, systemID int64) (bool, error)
	// Status says whether the engine's loops run, for /readyz.
	Status() engine.Status
}

// Options wires the server.
type Options struct {
	Store        *store.Store
	Engine       Engine
	Secrets      *secret.Box
	Templates    *scripts.Library
	Logger       *slog.Logger
	MaxBodyBytes int64 // default 1 MiB
	Auth         AuthOptions
	// Metrics serves /metrics (Prometheus text); nil answers 404.
	Metrics http.Handler
	// Outbound is the policy the engine's guards apply; a change made
	// through the API is applied at once (nil: none to tell).
	Outbound *outbound.Guards
	// Limits: the minimum body rate and the read timeout bound every
	// request's body (limits.go); serve with NewHTTPServer and the same
	// Limits.
	Limits Limits
	// Connectors is the list of kinds: POST/PUT /api/systems check a
	// system's kind and settings against it, GET /api/connector-kinds
	// lists it. nil: nothing is checked, no kind is listed (tests).
	Connectors *connectors.Registry
	// Peers keeps peer links (peers.go); nil: one is made from Store,
	// Secrets, Templates and Engine.
	Peers PeerLinks
}

type srv struct {
	st   *store.Store
	eng  Engine
	box  *secret.Box
	lib  *scripts.Library
	log  *slog.Logger
	max  int64
	page http.Handler
	auth AuthOptions
	// logins throttles failed sign-ins per client address, accounts
	// delays attempts on an account that failed often (throttle.go).
	logins   *throttle
	accounts *accountDelay
	// rules is every route's access rule, by "METHOD /full/path".
	rules map[string]rule
	// ops are the routes' OpenAPI operations, declared with handle, by
	// "METHOD /openapi/path".
	ops map[string]op
	// spec is /api/openapi.json, rendered once.
	spec []byte
	// metrics is the Prometheus handler, or nil.
	metrics http.Handler
	guards  *outbound.Guards
	limits  Limits
	// svc makes connection changes: validated, audited in their transaction.
	svc   *service.Service
	kinds *connectors.Registry
	// impacts admits impact previews (impactgate.go).
	impacts impactGate
	peers   PeerLinks
}

// New builds the HTTP handler.
func New(o Options) http.Handler {
	_, h := build(o)
	return h
}

// build makes the server and its handler; the server's declared routes
// and ops describe the API (TypeScript reads them without serving).
func build(o Options) (*srv, http.Handler) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	s := &srv{st: o.Store, eng: o.Engine, box: o.Secrets, lib: o.Templates, log: o.Logger, max: o.MaxBodyBytes,
		page: frontend.Handler(), auth: o.Auth.withDefaults(), logins: newThrottle(o.Auth.withDefaults().Throttle),
		accounts: newAccountDelay(o.Auth.withDefaults().Throttle),
		rules:    map[string]rule{}, ops: map[string]op{}, metrics: o.Metrics, limits: o.Limits.WithDefaults(), guards: o.Outbound, kinds: o.Connectors}
	s.svc = service.New(o.Store, o.Engine, o.Engine).WithPasswords(s.auth.Password)
	if o.Connectors != nil { // a nil *Registry would be a non-nil KindCheck
		s.svc.WithKinds(o.Connectors)
	}
	s.peers = o.Peers
	if s.peers == nil {
		s.peers = peering.New(peering.Options{Store: o.Store, Box: o.Secrets, Templates: o.Templates, Engine: o.Engine, Logger: o.Logger})
	}
	s.impacts.max = 2
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(s.recover, s.limitBody)
	// Probes and metrics (this file) and the webhook receiver (hooks.go).
	s.handle(r, "GET", "/healthz", public(), s.health,
		op{summary: "Store reachability (kept for existing probes)", tag: "operations", out: healthOut{}})
	s.handle(r, "GET", "/livez", public(), s.live,
		op{summary: "Liveness: the process serves HTTP", tag: "operations", out: healthOut{}})
	s.handle(r, "GET", "/readyz", public(), s.ready,
		op{summary: "Readiness: store reachable, schema current, engine running (503 with reasons otherwise)", tag: "operations", out: readyOut{}})
	// Connection names and queue sizes are the organisation's: org admins
	// (a scraper uses an org admin's API token).
	s.handle(r, "GET", "/metrics", orgAdmin(), s.serveMetrics,
		op{summary: "Prometheus metrics (org admins; a scraper sends an org admin's API token)", tag: "operations", rawOut: "text/plain"})
	s.hookRoutes(r)

	// Every /api route is declared in its area's file with its access rule
	// and OpenAPI operation (s.handle).
	api := r.Group("/api")
	s.authRoutes(api)        // sign-in, the current user and their tokens (auth.go)
	s.teamRoutes(api)        // teams, members and users (teams.go)
	s.outboundRoutes(api)    // what systems may reach (outbound.go)
	s.orgSettingsRoutes(api) // orgsettings.go
	s.systemRoutes(api)      // systems.go
	s.kindRoutes(api)        // kinds.go
	s.connectionRoutes(api)  // connections, scripts, twins, backfills (connections.go)
	s.editorRoutes(api)      // draft checks and the script API (editor.go)
	s.ruleRoutes(api)        // rules.go
	s.impactRoutes(api)      // impact.go
	s.mappingRoutes(api)     // mapping.go
	s.eventRoutes(api)       // events and the audit log (events.go)
	s.alertRoutes(api)       // alerts.go
	s.templateRoutes(api)    // templates.go
	s.handle(api, "GET", "/openapi.json", public(), s.openAPI,
		op{summary: "This description", tag: "operations", rawOut: "application/json"})
	s.peerRoutes(r, api) // peers.go

	spec, err := buildOpenAPI(s.rules, s.ops)
	if err != nil {
		panic("server: openapi: " + err.Error()) // a programming error in a route's op
	}
	s.spec = spec

	r.NoRoute(func(c *gin.Context) {
		if strings.HasPrefix(c.Request.URL.Path, "/api/") {
			c.JSON(http.StatusNotFound, apiError{Code: CodeNotFound, Message: "no such route: " + c.Request.Method + " " + c.Request.URL.Path})
			return
		}
		s.page.ServeHTTP(c.Writer, c.Request)
	})
	return s, r
}

// recover turns a panic in a handler into a 500 JSON error.
func (s *srv) recover(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in handler", "path", c.Request.URL.Path, "panic", p)
			c.AbortWithStatusJSON(http.StatusInternalServerError, apiError{Code: CodeInternal, Message: "internal error"})
		}
	}()
	c.Next()
}

// handler is an API handler: it writes its answer, or returns the error that
// h turns into the JSON error answer.
type handler func(c *gin.Context) error

func (s *srv) h(fn handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			s.fail(c, err)
		}
	}
}

// healthOut is the body of /healthz and /livez.
type healthOut struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

func (s *srv) health(c *gin.Context) error {
	if err := s.st.Ping(c.Request.Context()); err != nil {
		// The driver's error can name hosts and users: log it, answer plainly.
		s.log.Error("healthz: store unreachable", "err", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "message": "store unreachable"})
		return nil
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
	return nil
}

func (s *srv) serveMetrics(c *gin.Context) error {
	if s.metrics == nil {
		return fmt.Errorf("metrics are not enabled in this process: %w", store.ErrNotFound)
	}
	s.metrics.ServeHTTP(c.Writer, c.Request)
	return nil
}

// live answers while the process serves HTTP at all: a liveness probe that
// fails only when restarting would help.
func (s *srv) live(c *gin.Context) error {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
	return nil
}

type readyOut struct {
	Status    string        `json:"status"` // "ready" or "not ready"
	Store     string        `json:"store"`  // "ok" or "unreachable"
	Pending   int           `json:"pending_migrations"`
	Engine    engine.Status `json:"engine"`
	Unready   []string      `json:"unready,omitempty"` // why not, when not
	CheckedAt string        `json:"checked_at"`
}

// ready says whether this process should get traffic: the store answers,
// its schema is this binary's, and the engine's loops run.
func (s *srv) ready(c *gin.Context) error {
	ctx := c.Request.Context()
	out := readyOut{Status: "ready", Store: "ok", Engine: s.eng.Status(), CheckedAt: s.st.Now().Format(time.RFC3339)}
	if err := s.st.Ping(ctx); err != nil {
		s.log.Error("readyz: store unreachable", "err", err)
		out.Store = "unreachable"
		out.Unready = append(out.Unready, "store unreachable")
	} else if n, err := s.st.PendingMigrations(ctx); err != nil {
		s.log.Error("readyz: migrations", "err", err)
		out.Unready = append(out.Unready, "schema version unknown")
	} else if n > 0 {
		out.Pending = n
		out.Unready = append(out.Unready, fmt.Sprintf("%d migration(s) not applied", n))
	}
	if !out.Engine.Running {
		out.Unready = append(out.Unready, "engine not running")
	}
	status := http.StatusOK
	if len(out.Unready) > 0 {
		out.Status, status = "not ready", http.StatusServiceUnavailable
	}
	c.JSON(status, out)
	return nil
}

// bind decodes a JSON body strictly, bounded by MaxBodyBytes.
func (s *srv) bind(c *gin.Context, v any) error {
	body := http.MaxBytesReader(c.Writer, c.Request.Body, s.max)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return badRequest("empty body: a JSON object is required")
		}
		var mbe *http.MaxBytesError
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		if errors.As(err, &mbe) || errors.As(err, &syn) || errors.As(err, &typ) || errors.Is(err, errSlowBody) {
			return err
		}
		return badRequest("%v", err)
	}
	// One object per request: trailing text is a client bug, not ignorable.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, errSlowBody) {
			return err
		}
		return badRequest("unexpected data after the JSON object")
	}
	return nil
}

func idParam(c *gin.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("%s must be a positive integer, got %q", name, c.Param(name))
	}
	return id, nil
}

// idQuery reads an optional id filter; absent is 0 (no filter).
func idQuery(c *gin.Context, name string) (int64, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("%s must be a positive integer, got %q", name, v)
	}
	return id, nil
}

func intQuery(c *gin.Context, name string, def int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badRequest("%s must be a non-negative integer, got %q", name, v)
	}
	return n, nil
}
