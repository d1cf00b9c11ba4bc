package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/service"
	"github.com/duplexsync/duplex/scripts"
)

// connectionRoutes declares connections, their scripts, policy, options,
// twins and backfills. Creating one is open to any user: the handler
// checks the editor role on the body's team.
func (s *srv) connectionRoutes(api gin.IRoutes) {
	const viewer, editor = store.RoleViewer, store.RoleEditor
	s.handle(api, "GET", "/connections", signedIn(), s.listConnections,
		op{summary: "Connections of one's teams, with event counts", tag: "connections", out: []connectionOut{}})
	s.handle(api, "POST", "/connections", signedIn(), s.createConnection, // editor of the body's team
		op{summary: "Create a connection from scripts, a built-in or a team template", tag: "connections", in: connectionIn{}, out: connectionOut{}, status: 201})
	s.handle(api, "GET", "/connections/:id", teamRole("connection", "id", viewer), s.getConnection,
		op{summary: "A connection with its current scripts", tag: "connections", out: connectionOut{}})
	s.handle(api, "PUT", "/connections/:id/scripts/:side/:kind", teamRole("connection", "id", editor), s.saveScript,
		op{summary: "Save a script or trigger as its next version", tag: "scripts", in: saveScriptIn{}, out: store.ScriptVersion{}})
	s.handle(api, "GET", "/connections/:id/scripts/:side/:kind/versions", teamRole("connection", "id", viewer), s.scriptVersions,
		op{summary: "Every version of a script, newest first", tag: "scripts", out: []store.ScriptVersion{}})
	s.handle(api, "PUT", "/connections/:id/conflict-policy", teamRole("connection", "id", editor), s.setPolicy,
		op{summary: "Set the conflict policy", tag: "connections", in: engine.Policy{}, out: connectionOut{}})
	s.handle(api, "POST", "/connections/:id/activate", teamRole("connection", "id", editor), s.setActive(true),
		op{summary: "Start syncing", tag: "connections", out: connectionOut{}})
	s.handle(api, "POST", "/connections/:id/pause", teamRole("connection", "id", editor), s.setActive(false),
		op{summary: "Pause (changes queue until resumed)", tag: "connections", out: connectionOut{}})
	s.handle(api, "POST", "/connections/:id/test-run", teamRole("connection", "id", editor), s.testRun,
		op{summary: "Run the scripts (saved, or unsaved drafts from the body) on one entity without writing anything", tag: "scripts", in: testRunIn{}, out: testRunOut{}})
	s.handle(api, "GET", "/connections/:id/twins", teamRole("connection", "id", viewer), s.listTwins,
		op{summary: "Linked entity pairs", tag: "twins", out: []twinOut{}, query: []string{"limit"}})
	s.handle(api, "POST", "/connections/:id/twins", teamRole("connection", "id", editor), s.linkTwin,
		op{summary: "Link two existing entities by hand", tag: "twins", in: linkTwinIn{}, out: twinOut{}, status: 201})
	s.handle(api, "PUT", "/connections/:id/options", teamRole("connection", "id", editor), s.setOptions,
		op{summary: "Set lifecycle options", tag: "connections", in: engine.Lifecycle{}, out: connectionOut{}})
	s.handle(api, "POST", "/connections/:id/backfill", teamRole("connection", "id", editor), s.startBackfill,
		op{summary: "Sync what already exists on one side", tag: "connections", in: startBackfillIn{}, out: store.Backfill{}, status: 202})
	s.handle(api, "GET", "/connections/:id/backfills", teamRole("connection", "id", viewer), s.listBackfills,
		op{summary: "Backfill jobs and their progress", tag: "connections", out: []store.Backfill{}})
	s.handle(api, "POST", "/connections/:id/link-existing", teamRole("connection", "id", editor), s.linkExisting,
		op{summary: "Pair entities that share a key on both sides", tag: "twins", in: linkExistingIn{}, out: countOut{}})
	s.handle(api, "DELETE", "/twins/:id", teamRole("twin", "id", editor), s.unlinkTwin,
		op{summary: "Unlink a pair (both entities stay; its events stay as history, marked unlinked_pair)", tag: "twins"})
}

type connectionOut struct {
	connectionBody
	Counts  map[string]int64                                        `json:"counts"`
	Scripts map[store.Side]map[store.ScriptKind]store.ScriptVersion `json:"scripts,omitempty"`
}

func (s *srv) withCounts(ctx context.Context, conn store.Connection) (connectionOut, error) {
	counts, err := s.st.EventCounts(ctx, conn.ID)
	return connectionOut{connectionBody: connectionBodyOf(conn), Counts: counts}, err
}

func (s *srv) listConnections(c *gin.Context) error {
	ctx := c.Request.Context()
	conns, err := s.st.ListConnections(ctx)
	if err != nil {
		return err
	}
	who := principalOf(c)
	out := make([]connectionOut, 0, len(conns))
	for _, conn := range conns {
		if who.Role(conn.TeamID) == "" {
			continue
		}
		o, err := s.withCounts(ctx, conn)
		if err != nil {
			return err
		}
		out = append(out, o)
	}
	c.JSON(http.StatusOK, out)
	return nil
}

type connectionIn struct {
	Name      string                       `json:"name"`
	SystemAID int64                        `json:"system_a_id"`
	SystemBID int64                        `json:"system_b_id"`
	Active    bool                         `json:"active"`
	Scripts   map[string]map[string]string `json:"scripts"`
	Template  string                       `json:"template"`
	// TemplateID names a team template (TemplateVersion 0: its latest).
	TemplateID      int64             `json:"template_id"`
	TemplateVersion int               `json:"template_version"`
	Params          map[string]any    `json:"params"`
	ConflictPolicy  *engine.Policy    `json:"conflict_policy"`
	Options         *engine.Lifecycle `json:"options"`
	TeamID          int64             `json:"team_id"` // default: the caller's only team
}

func parseSide(v string) (store.Side, error) {
	s := store.Side(v)
	if !s.Valid() {
		return s, badRequest("side must be \"a\" or \"b\", got %q", v)
	}
	return s, nil
}

func parseKind(v string) (store.ScriptKind, error) {
	for _, k := range store.ScriptKinds {
		if string(k) == v {
			return k, nil
		}
	}
	return "", badRequest("kind must be trigger, outgoing or incoming, got %q", v)
}

// validateScript compiles one piece as the engine will (the service's
// check); a compile error is a *scripting.Error with line and column, 422.
func (s *srv) validateScript(ctx context.Context, conn store.Connection, side store.Side, kind store.ScriptKind, src string) error {
	return s.svc.CheckScript(ctx, conn, side, kind, src)
}

func (s *srv) createConnection(c *gin.Context) error {
	ctx := c.Request.Context()
	var in connectionIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	if in.TeamID == 0 {
		t, err := defaultTeam(principalOf(c), store.RoleEditor)
		if err != nil {
			return err
		}
		in.TeamID = t
	}
	if err := s.requireTeam(c, in.TeamID, store.RoleEditor); err != nil {
		return err
	}
	nc, err := s.newConnection(ctx, in)
	if err != nil {
		return err
	}
	conn, err := s.svc.CreateConnection(ctx, principalOf(c).Actor(), nc)
	if err != nil {
		return err
	}
	return s.respondConnection(c, http.StatusCreated, conn.ID)
}

// newConnection turns the body into what the service creates: a template
// (built-in or a team template the team sees) rendered into scripts, and
// its options unless the body gives some.
func (s *srv) newConnection(ctx context.Context, in connectionIn) (service.NewConnection, error) {
	nc := service.NewConnection{Name: in.Name, TeamID: in.TeamID, SystemAID: in.SystemAID, SystemBID: in.SystemBID,
		Active: in.Active, Template: in.Template}
	if in.ConflictPolicy != nil {
		enc, err := jsonMarshal(in.ConflictPolicy)
		if err != nil {
			return nc, err
		}
		nc.ConflictPolicy = enc
	}
	sources := in.Scripts
	var tplOptions json.RawMessage
	switch {
	case in.Template != "" && in.TemplateID != 0:
		return nc, badRequest("give either template (a built-in) or template_id (a team template), not both")
	case (in.Template != "" || in.TemplateID != 0) && in.Scripts != nil:
		return nc, badRequest("give either scripts or a template, not both")
	case in.Template != "":
		tpl, err := s.lib.Get(in.Template)
		if err != nil {
			return nc, err
		}
		rendered, err := tpl.Render(in.Params)
		if err != nil {
			return nc, badRequest("%v", err)
		}
		sources, tplOptions, nc.Kinds = rendered, tpl.Options, tpl.SideKinds
	case in.TemplateID != 0:
		// The team that will own the connection must see the template:
		// its status and upgrades read the template again later.
		t, v, body, err := s.teamTemplateFor(ctx, in.TeamID, in.TemplateID, in.TemplateVersion)
		if errors.Is(err, store.ErrNotFound) {
			return nc, badRequest("%v", err) // a reference in the body, like a missing system
		} else if err != nil {
			return nc, err
		}
		rendered, err := body.Template(t.Name).Render(in.Params)
		if err != nil {
			return nc, badRequest("%v", err)
		}
		sources, tplOptions, nc.Kinds = rendered, body.Options, body.SideKinds
		nc.TemplateID, nc.TemplateVersion, nc.TemplateParams = t.ID, v.Version, in.Params
	case in.TemplateVersion != 0:
		return nc, badRequest("template_version needs template_id")
	}
	if in.Options == nil && len(tplOptions) > 0 {
		var o engine.Lifecycle
		if err := json.Unmarshal(tplOptions, &o); err != nil {
			return nc, fmt.Errorf("template options: %w", err)
		}
		in.Options = &o
	}
	var err error
	if in.Options != nil {
		if nc.Options, err = jsonMarshal(in.Options); err != nil {
			return nc, err
		}
	}
	nc.Scripts, err = scriptsByKind(sources)
	return nc, err
}

// scriptsByKind keys sources by side and kind, refusing unknown names.
func scriptsByKind(sources scripts.Sources) (map[store.Side]map[store.ScriptKind]string, error) {
	byKind := map[store.Side]map[store.ScriptKind]string{store.SideA: {}, store.SideB: {}}
	for sideName, kinds := range sources {
		side, err := parseSide(sideName)
		if err != nil {
			return nil, err
		}
		for kindName, src := range kinds {
			kind, err := parseKind(kindName)
			if err != nil {
				return nil, err
			}
			byKind[side][kind] = src
		}
	}
	return byKind, nil
}

func (s *srv) respondConnection(c *gin.Context, status int, id int64) error {
	ctx := c.Request.Context()
	conn, err := s.st.GetConnection(ctx, id)
	if err != nil {
		return err
	}
	out, err := s.withCounts(ctx, conn)
	if err != nil {
		return err
	}
	if out.Scripts, err = s.st.CurrentScripts(ctx, id); err != nil {
		return err
	}
	c.JSON(status, out)
	return nil
}

func (s *srv) getConnection(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	return s.respondConnection(c, http.StatusOK, id)
}

func (s *srv) scriptTarget(c *gin.Context) (store.Connection, store.Side, store.ScriptKind, error) {
	side, err := parseSide(c.Param("side"))
	if err != nil {
		return store.Connection{}, "", "", err
	}
	kind, err := parseKind(c.Param("kind"))
	if err != nil {
		return store.Connection{}, "", "", err
	}
	conn := rowOf[store.Connection](c) // loaded by the access rule
	return conn, side, kind, nil
}

// saveScriptIn is the body of saveScript.
type saveScriptIn struct {
	Source *string `json:"source"`
}

func (s *srv) saveScript(c *gin.Context) error {
	conn, side, kind, err := s.scriptTarget(c)
	if err != nil {
		return err
	}
	var in saveScriptIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	if in.Source == nil {
		return badRequest("source is required")
	}
	v, err := s.svc.SaveScript(c.Request.Context(), principalOf(c).Actor(), conn, side, kind, *in.Source)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, v)
	return nil
}

func (s *srv) scriptVersions(c *gin.Context) error {
	conn, side, kind, err := s.scriptTarget(c)
	if err != nil {
		return err
	}
	vs, err := s.st.ScriptHistory(c.Request.Context(), conn.ID, side, kind)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, vs)
	return nil
}

func (s *srv) setPolicy(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var p engine.Policy
	if err := s.bind(c, &p); err != nil {
		return err
	}
	enc, err := jsonMarshal(p)
	if err != nil {
		return err
	}
	if err := s.svc.SetPolicy(c.Request.Context(), principalOf(c).Actor(), id, enc); err != nil {
		return err
	}
	return s.respondConnection(c, http.StatusOK, id)
}

func (s *srv) setActive(active bool) handler {
	return func(c *gin.Context) error {
		id, err := idParam(c, "id")
		if err != nil {
			return err
		}
		if err := s.svc.SetActive(c.Request.Context(), principalOf(c).Actor(), id, active); err != nil {
			return err
		}
		return s.respondConnection(c, http.StatusOK, id)
	}
}

// testRunOut is the JSON of a test run; a script error keeps its position.
type testRunOut struct {
	engine.TestRunResult
	Error *apiError `json:"error,omitempty"`
}

// testRunIn is the body of testRun. Draft holds unsaved versions of the
// tested direction's trigger, scripts or rules (the impact preview's
// shape); absent or empty: the saved versions run, as before drafts.
type testRunIn struct {
	Side     string              `json:"side"`
	EntityID string              `json:"entity_id"`
	Entity   *connectors.Entity  `json:"entity"`
	Draft    *engine.ImpactDraft `json:"draft,omitempty"`
}

func (s *srv) testRun(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in testRunIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	side, err := parseSide(in.Side)
	if err != nil {
		return err
	}
	if (in.EntityID == "") == (in.Entity == nil) {
		return badRequest("give either entity_id (to read it from the system) or entity (pasted)")
	}
	if in.Entity != nil && in.Entity.Fields == nil {
		in.Entity.Fields = map[string]any{}
	}
	var draft engine.ImpactDraft
	if in.Draft != nil {
		draft = *in.Draft
	}
	// A draft that does not compile comes back as an error: 422
	// script_invalid with its line and column, as the validate endpoint.
	res, err := s.eng.TestRunDraft(c.Request.Context(), id, side, in.EntityID, in.Entity, draft)
	if err != nil {
		return err
	}
	out := testRunOut{TestRunResult: res}
	if res.Error != nil {
		_, body := classify(res.Error)
		if body.Code == CodeInternal {
			body.Message = res.Error.Error() // a trigger or data error is the user's to see
		}
		out.Error = &body
	}
	c.JSON(http.StatusOK, out)
	return nil
}

func (s *srv) listTwins(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	limit, err := limitQuery(c, "limit", 100, maxListLimit)
	if err != nil {
		return err
	}
	offset, err := intQuery(c, "offset", 0)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = 100
	}
	// An empty list must mean "no twins yet", not "no such connection".
	twins, err := s.st.ListTwins(c.Request.Context(), id, limit, offset)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, twinBodies(twins))
	return nil
}

func (s *srv) setOptions(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in engine.Lifecycle
	if err := s.bind(c, &in); err != nil {
		return err
	}
	enc, err := jsonMarshal(in)
	if err != nil {
		return err
	}
	if err := s.svc.SetOptions(c.Request.Context(), principalOf(c).Actor(), id, enc); err != nil {
		return err
	}
	return s.respondConnection(c, http.StatusOK, id)
}

// linkTwinIn is the body of linkTwin.
type linkTwinIn struct {
	AID string `json:"a_id"`
	BID string `json:"b_id"`
}

// linkTwin pairs two entities that already exist on both sides, writing
// nothing to either system.
func (s *srv) linkTwin(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in linkTwinIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	t, err := s.svc.LinkTwin(c.Request.Context(), principalOf(c).Actor(), id, in.AID, in.BID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, twinBody(t))
	return nil
}

// unlinkTwin forgets a pair; both entities stay, and they sync again only if
// a trigger matches one of them. Its events stay as history, marked with
// the pair (unlinked_pair).
func (s *srv) unlinkTwin(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	if _, err := s.svc.UnlinkTwin(c.Request.Context(), principalOf(c).Actor(), id); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

// startBackfillIn is the body of startBackfill.
type startBackfillIn struct {
	Side string `json:"side"`
}

// startBackfill starts "sync existing" over one side; progress is at
// GET /api/connections/:id/backfills.
func (s *srv) startBackfill(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in startBackfillIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	side, err := parseSide(in.Side)
	if err != nil {
		return err
	}
	job, err := s.svc.StartBackfill(c.Request.Context(), principalOf(c).Actor(), id, side)
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, job)
	return nil
}

func (s *srv) listBackfills(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	jobs, err := s.st.ListBackfills(c.Request.Context(), id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, jobs)
	return nil
}

// linkExistingIn is the body of linkExisting.
type linkExistingIn struct {
	AField string `json:"a_field"`
	BField string `json:"b_field"`
}

// linkExisting pairs entities on both sides that share a key.
func (s *srv) linkExisting(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in linkExistingIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	if in.AField == "" || in.BField == "" {
		return badRequest("a_field and b_field are required (a field name, or id/key)")
	}
	pairs, err := s.eng.MatchExisting(c.Request.Context(), id, in.AField, in.BField)
	if err != nil {
		return err
	}
	n, err := s.svc.LinkExisting(c.Request.Context(), principalOf(c).Actor(), id, in.AField, in.BField, pairs)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"linked": n})
	return nil
}
