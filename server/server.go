// Package server is Duplex's HTTP edge: the Gin JSON API for systems,
// connections, scripts, twins, sync events and the audit log, health, and the
// browser app. It maps every error to a status and a stable JSON code in one
// place (errors.go).
package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/frontend"
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
	// TestRun runs a connection's scripts on one entity without writing.
	TestRun(ctx context.Context, connID int64, side store.Side, id string, ent *connectors.Entity) (engine.TestRunResult, error)
	// PreviewTrigger evaluates a trigger on up to limit entities of a
	// system, writing nothing, and returns the count and a sample of matches.
	PreviewTrigger(ctx context.Context, systemID int64, src string, limit, sample int) (engine.TriggerPreview, error)
	// LinkExisting pairs entities on both sides that share a key.
	LinkExisting(ctx context.Context, connID int64, aField, bField string) (int, error)
	// Wake tells the workers events were queued or retried.
	Wake()
	// Hook verifies and records a webhook request for a system.
	Hook(ctx context.Context, systemID int64, header http.Header, body []byte) (engine.HookResult, error)
}

// Options wires the server.
type Options struct {
	Store        *store.Store
	Engine       Engine
	Secrets      *secret.Box
	Templates    *scripts.Library
	Logger       *slog.Logger
	MaxBodyBytes int64 // default 1 MiB
}

type srv struct {
	st   *store.Store
	eng  Engine
	box  *secret.Box
	lib  *scripts.Library
	log  *slog.Logger
	max  int64
	page http.Handler
}

// New builds the HTTP handler.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	s := &srv{st: o.Store, eng: o.Engine, box: o.Secrets, lib: o.Templates, log: o.Logger, max: o.MaxBodyBytes,
		page: frontend.Handler()}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(s.recover)
	r.GET("/healthz", s.h(s.health))
	r.POST("/hooks/:system", s.h(s.hook))

	api := r.Group("/api")
	api.GET("/systems", s.h(s.listSystems))
	api.POST("/systems", s.h(s.createSystem))
	api.GET("/systems/:id", s.h(s.getSystem))
	api.PUT("/systems/:id", s.h(s.updateSystem))
	api.DELETE("/systems/:id", s.h(s.deleteSystem))
	api.GET("/systems/:id/schema", s.h(s.systemSchema))
	api.GET("/systems/:id/deliveries", s.h(s.listDeliveries))
	api.POST("/systems/:id/test", s.h(s.testSystem))

	api.GET("/connections", s.h(s.listConnections))
	api.POST("/connections", s.h(s.createConnection))
	api.GET("/connections/:id", s.h(s.getConnection))
	api.PUT("/connections/:id/scripts/:side/:kind", s.h(s.saveScript))
	api.GET("/connections/:id/scripts/:side/:kind/versions", s.h(s.scriptVersions))
	api.POST("/connections/:id/scripts/:side/:kind/validate", s.h(s.validateDraft))
	api.POST("/connections/:id/trigger-preview", s.h(s.triggerPreview))
	api.PUT("/connections/:id/conflict-policy", s.h(s.setPolicy))
	api.POST("/connections/:id/activate", s.h(s.setActive(true)))
	api.POST("/connections/:id/pause", s.h(s.setActive(false)))
	api.POST("/connections/:id/test-run", s.h(s.testRun))
	api.GET("/connections/:id/twins", s.h(s.listTwins))
	api.POST("/connections/:id/twins", s.h(s.linkTwin))
	api.PUT("/connections/:id/options", s.h(s.setOptions))
	api.POST("/connections/:id/backfill", s.h(s.startBackfill))
	api.GET("/connections/:id/backfills", s.h(s.listBackfills))
	api.POST("/connections/:id/link-existing", s.h(s.linkExisting))
	api.DELETE("/twins/:id", s.h(s.unlinkTwin))

	api.GET("/events", s.h(s.listEvents))
	api.GET("/events/:id", s.h(s.getEvent))
	api.POST("/events/:id/retry", s.h(s.retryEvent))
	api.POST("/events/:id/resolve", s.h(s.resolveEvent))
	api.POST("/events/:id/skip", s.h(s.skipEvent))
	api.POST("/connections/:id/retry-failed", s.h(s.retryFailed))

	api.GET("/audit", s.h(s.listAudit))
	api.GET("/templates", s.h(s.listTemplates))
	api.GET("/script-api.d.ts", s.scriptAPI)
	api.GET("/templates/:name", s.h(s.getTemplate))

	r.NoRoute(func(c *gin.Context) {
		if strings.HasPrefix(c.Request.URL.Path, "/api/") {
			c.JSON(http.StatusNotFound, apiError{Code: CodeNotFound, Message: "no such route: " + c.Request.Method + " " + c.Request.URL.Path})
			return
		}
		s.page.ServeHTTP(c.Writer, c.Request)
	})
	return r
}

// scriptAPI serves the script API's TypeScript declarations for the editor.
func (s *srv) scriptAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/typescript; charset=utf-8", []byte(scriptDeclarations))
}

var scriptDeclarations = scripting.Declarations() // built once

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
		if errors.As(err, &mbe) || errors.As(err, &syn) || errors.As(err, &typ) {
			return err
		}
		return badRequest("%v", err)
	}
	// One object per request: trailing text is a client bug, not ignorable.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
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

func (s *srv) audit(ctx context.Context, action string, connID *int64, detail string) {
	if err := s.st.AddAudit(ctx, &store.AuditEntry{Actor: "api", Action: action, ConnectionID: connID, Detail: detail}); err != nil {
		s.log.Error("audit", "action", action, "err", err)
	}
}
