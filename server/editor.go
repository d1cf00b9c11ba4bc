package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// Endpoints the browser app's editor uses: checking a script without saving
// it, previewing what a trigger matches, and testing a system's connection.

// editorRoutes declares the editor's checks. Compiling a draft and
// previewing a trigger run scripts and read the remote: editors only.
func (s *srv) editorRoutes(api gin.IRoutes) {
	s.handle(api, "POST", "/connections/:id/scripts/:side/:kind/validate", teamRole("connection", "id", store.RoleEditor), s.validateDraft,
		op{summary: "Compile a draft without saving it", tag: "scripts", in: validateDraftIn{}, out: okOut{}})
	s.handle(api, "POST", "/connections/:id/trigger-preview", teamRole("connection", "id", store.RoleEditor), s.triggerPreview,
		op{summary: "How many entities a draft trigger matches (reads the remote)", tag: "scripts", in: triggerPreviewIn{}, out: engine.TriggerPreview{}})
	s.handle(api, "GET", "/script-api.d.ts", signedIn(), s.scriptAPI,
		op{summary: "TypeScript declarations of the script API (editor completion)", tag: "scripts", rawOut: "application/typescript"})
}

// validateDraftIn is the body of validateDraft.
type validateDraftIn struct {
	Source *string `json:"source"`
}

// validateDraft compiles a script or trigger as saving it would, and saves
// nothing: 200 {"ok": true}, or 422 script_invalid with line and column.
func (s *srv) validateDraft(c *gin.Context) error {
	conn, side, kind, err := s.scriptTarget(c)
	if err != nil {
		return err
	}
	var in validateDraftIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	if in.Source == nil {
		return badRequest("source is required")
	}
	if err := s.validateScript(c.Request.Context(), conn, side, kind, *in.Source); err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"ok": true})
	return nil
}

// Preview bounds: entities read from the system, matches returned.
const (
	previewScan   = 1000
	previewSample = 5
)

// triggerPreviewIn is the body of triggerPreview.
type triggerPreviewIn struct {
	Side   string  `json:"side"`
	Source *string `json:"source"`
}

// triggerPreview counts the entities of one side that a trigger (the saved
// one, or a draft in "source") matches, with a few of them.
func (s *srv) triggerPreview(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in triggerPreviewIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	side, err := parseSide(in.Side)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	conn := rowOf[store.Connection](c) // loaded by the access rule
	src := ""
	if in.Source != nil {
		src = *in.Source
	} else {
		cur, err := s.st.CurrentScripts(ctx, id)
		if err != nil {
			return err
		}
		src = cur[side][store.KindTrigger].Source
	}
	p, err := s.eng.PreviewTrigger(ctx, conn.SystemID(side), src, previewScan, previewSample)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, p)
	return nil
}

// systemTestOut is the answer of POST /api/systems/:id/test: a refusal to
// reach the system is an answer (ok false, a code), not an error.
type systemTestOut struct {
	OK      bool               `json:"ok"`
	Code    string             `json:"code,omitempty"`
	Message string             `json:"message,omitempty"`
	MS      int64              `json:"ms"`
	Schema  *connectors.Schema `json:"schema,omitempty"`
}

// testSystem reopens a system's connector and asks it to describe its
// entities: 200 {"ok": true, "schema": …, "ms": …}, or {"ok": false, "code",
// "message"} when the system cannot be reached or is misconfigured. The
// message is the connector's own, shown to the person who configured it.
func (s *srv) testSystem(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	sys := rowOf[store.System](c) // loaded by the access rule
	s.eng.ReloadSystem(id)        // a fresh connection, not a cached schema
	start := time.Now()
	schema, err := s.eng.Schema(ctx, id)
	ms := time.Since(start).Milliseconds()
	if err != nil {
		var se *scripting.Error
		if errors.As(err, &se) || errors.Is(err, store.ErrNotFound) {
			return err
		}
		code := CodeUnavailable
		var refused *connectors.RefusedError
		switch {
		case errors.As(err, &refused):
			_, body := classify(refused)
			code = body.Code // outbound_refused or store_is_not_a_system
		case errors.Is(err, connectors.ErrBadConfig):
			code = CodeBadConfig
		}
		if err := s.svc.TestedSystem(ctx, principalOf(c).Actor(), sys, false); err != nil {
			return err
		}
		c.JSON(http.StatusOK, systemTestOut{Code: code, Message: err.Error(), MS: ms})
		return nil
	}
	if err := s.svc.TestedSystem(ctx, principalOf(c).Actor(), sys, true); err != nil {
		return err
	}
	c.JSON(http.StatusOK, systemTestOut{OK: true, Schema: &schema, MS: ms})
	return nil
}

// scriptAPI serves the script API's TypeScript declarations for the editor.
func (s *srv) scriptAPI(c *gin.Context) error {
	c.Data(http.StatusOK, "application/typescript; charset=utf-8", []byte(scriptDeclarations))
	return nil
}

var scriptDeclarations = scripting.Declarations() // built once
