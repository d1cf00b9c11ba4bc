package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

type connectionOut struct {
	store.Connection
	Counts  map[string]int64                                        `json:"counts"`
	Scripts map[store.Side]map[store.ScriptKind]store.ScriptVersion `json:"scripts,omitempty"`
}

func (s *srv) withCounts(ctx context.Context, conn store.Connection) (connectionOut, error) {
	counts, err := s.st.EventCounts(ctx, conn.ID)
	return connectionOut{Connection: conn, Counts: counts}, err
}

func (s *srv) listConnections(c *gin.Context) {
	ctx := c.Request.Context()
	conns, err := s.st.ListConnections(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]connectionOut, 0, len(conns))
	for _, conn := range conns {
		o, err := s.withCounts(ctx, conn)
		if err != nil {
			s.fail(c, err)
			return
		}
		out = append(out, o)
	}
	c.JSON(http.StatusOK, out)
}

type connectionIn struct {
	Name           string                       `json:"name"`
	SystemAID      int64                        `json:"system_a_id"`
	SystemBID      int64                        `json:"system_b_id"`
	Active         bool                         `json:"active"`
	Scripts        map[string]map[string]string `json:"scripts"`
	Template       string                       `json:"template"`
	Params         map[string]any               `json:"params"`
	ConflictPolicy *engine.Policy               `json:"conflict_policy"`
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

// validateScript compiles one piece as the engine will; a compile error is a
// *scripting.Error with line and column, mapped to 422.
func (s *srv) validateScript(ctx context.Context, conn store.Connection, side store.Side, kind store.ScriptKind, src string) error {
	switch kind {
	case store.KindTrigger:
		return s.eng.ValidateTrigger(ctx, conn.SystemID(side), src)
	default:
		_, err := scripting.Compile(fmt.Sprintf("%s.%s.js", side, kind), scripting.Kind(kind), src)
		return err
	}
}

func (s *srv) createConnection(c *gin.Context) {
	ctx := c.Request.Context()
	var in connectionIn
	if err := s.bind(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || in.SystemAID == 0 || in.SystemBID == 0 {
		s.fail(c, badRequest("name, system_a_id and system_b_id are required"))
		return
	}
	for _, id := range []int64{in.SystemAID, in.SystemBID} {
		if _, err := s.st.GetSystem(ctx, id); err != nil {
			s.fail(c, badRequest("system %d does not exist", id))
			return
		}
	}
	sources := in.Scripts
	if in.Template != "" {
		if in.Scripts != nil {
			s.fail(c, badRequest("give either scripts or a template, not both"))
			return
		}
		tpl, err := s.lib.Get(in.Template)
		if err != nil {
			s.fail(c, err)
			return
		}
		rendered, err := tpl.Render(in.Params)
		if err != nil {
			s.fail(c, badRequest("%v", err))
			return
		}
		sources = rendered
	}
	conn := store.Connection{Name: in.Name, SystemAID: in.SystemAID, SystemBID: in.SystemBID, Active: in.Active, Template: in.Template}
	if in.ConflictPolicy != nil {
		enc, err := policyJSON(*in.ConflictPolicy)
		if err != nil {
			s.fail(c, err)
			return
		}
		conn.ConflictPolicy = enc
	}
	byKind := map[store.Side]map[store.ScriptKind]string{store.SideA: {}, store.SideB: {}}
	for sideName, kinds := range sources {
		side, err := parseSide(sideName)
		if err != nil {
			s.fail(c, err)
			return
		}
		for kindName, src := range kinds {
			kind, err := parseKind(kindName)
			if err != nil {
				s.fail(c, err)
				return
			}
			if err := s.validateScript(ctx, conn, side, kind, src); err != nil {
				s.fail(c, err)
				return
			}
			byKind[side][kind] = src
		}
	}
	if err := s.st.CreateConnection(ctx, &conn, byKind, "api"); err != nil {
		s.fail(c, err)
		return
	}
	s.audit(ctx, "connection.create", &conn.ID, fmt.Sprintf("connection %q (template %q)", conn.Name, conn.Template))
	s.respondConnection(c, http.StatusCreated, conn.ID)
}

func policyJSON(p engine.Policy) (string, error) {
	b, err := jsonMarshal(p)
	if err != nil {
		return "", err
	}
	if _, err := engine.ParsePolicy(b); err != nil {
		return "", badRequest("%v", err)
	}
	return b, nil
}

func (s *srv) respondConnection(c *gin.Context, status int, id int64) {
	ctx := c.Request.Context()
	conn, err := s.st.GetConnection(ctx, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	out, err := s.withCounts(ctx, conn)
	if err != nil {
		s.fail(c, err)
		return
	}
	if out.Scripts, err = s.st.CurrentScripts(ctx, id); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(status, out)
}

func (s *srv) getConnection(c *gin.Context) {
	id, err := idParam(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	s.respondConnection(c, http.StatusOK, id)
}

func (s *srv) scriptTarget(c *gin.Context) (store.Connection, store.Side, store.ScriptKind, error) {
	id, err := idParam(c, "id")
	if err != nil {
		return store.Connection{}, "", "", err
	}
	side, err := parseSide(c.Param("side"))
	if err != nil {
		return store.Connection{}, "", "", err
	}
	kind, err := parseKind(c.Param("kind"))
	if err != nil {
		return store.Connection{}, "", "", err
	}
	conn, err := s.st.GetConnection(c.Request.Context(), id)
	return conn, side, kind, err
}

func (s *srv) saveScript(c *gin.Context) {
	conn, side, kind, err := s.scriptTarget(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var in struct {
		Source *string `json:"source"`
	}
	if err := s.bind(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	if in.Source == nil {
		s.fail(c, badRequest("source is required"))
		return
	}
	ctx := c.Request.Context()
	if err := s.validateScript(ctx, conn, side, kind, *in.Source); err != nil {
		s.fail(c, err)
		return
	}
	v, err := s.st.SaveScript(ctx, conn.ID, side, kind, *in.Source, "api")
	if err != nil {
		s.fail(c, err)
		return
	}
	s.eng.Reload(conn.ID)
	s.audit(ctx, "script.save", &conn.ID, fmt.Sprintf("%s.%s version %d", side, kind, v.Version))
	c.JSON(http.StatusOK, v)
}

func (s *srv) scriptVersions(c *gin.Context) {
	conn, side, kind, err := s.scriptTarget(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	vs, err := s.st.ScriptHistory(c.Request.Context(), conn.ID, side, kind)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, vs)
}

func (s *srv) setPolicy(c *gin.Context) {
	id, err := idParam(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var p engine.Policy
	if err := s.bind(c, &p); err != nil {
		s.fail(c, err)
		return
	}
	enc, err := policyJSON(p)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.st.SetConflictPolicy(c.Request.Context(), id, enc); err != nil {
		s.fail(c, err)
		return
	}
	s.eng.Reload(id)
	s.audit(c.Request.Context(), "connection.conflict_policy", &id, enc)
	s.respondConnection(c, http.StatusOK, id)
}

func (s *srv) setActive(active bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := idParam(c, "id")
		if err != nil {
			s.fail(c, err)
			return
		}
		if err := s.st.SetActive(c.Request.Context(), id, active); err != nil {
			s.fail(c, err)
			return
		}
		s.eng.Reload(id)
		action := "connection.pause"
		if active {
			action = "connection.activate"
		}
		s.audit(c.Request.Context(), action, &id, "")
		s.respondConnection(c, http.StatusOK, id)
	}
}

// testRunOut is the JSON of a test run; a script error keeps its position.
type testRunOut struct {
	engine.TestRunResult
	Error *apiError `json:"error,omitempty"`
}

func (s *srv) testRun(c *gin.Context) {
	id, err := idParam(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var in struct {
		Side     string             `json:"side"`
		EntityID string             `json:"entity_id"`
		Entity   *connectors.Entity `json:"entity"`
	}
	if err := s.bind(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	side, err := parseSide(in.Side)
	if err != nil {
		s.fail(c, err)
		return
	}
	if (in.EntityID == "") == (in.Entity == nil) {
		s.fail(c, badRequest("give either entity_id (to read it from the system) or entity (pasted)"))
		return
	}
	if in.Entity != nil && in.Entity.Fields == nil {
		in.Entity.Fields = map[string]any{}
	}
	res, err := s.eng.TestRun(c.Request.Context(), id, side, in.EntityID, in.Entity)
	if err != nil {
		s.fail(c, err)
		return
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
}

func (s *srv) listTwins(c *gin.Context) {
	id, err := idParam(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	limit, err := intQuery(c, "limit", 100)
	if err != nil {
		s.fail(c, err)
		return
	}
	offset, err := intQuery(c, "offset", 0)
	if err != nil {
		s.fail(c, err)
		return
	}
	if limit == 0 || limit > 1000 {
		limit = 100
	}
	twins, err := s.st.ListTwins(c.Request.Context(), id, limit, offset)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, twins)
}

func (s *srv) setOptions(c *gin.Context) {
	id, err := idParam(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var in engine.Lifecycle
	if err := s.bind(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	enc, err := jsonMarshal(in)
	if err != nil {
		s.fail(c, err)
		return
	}
	if _, err := engine.ParseLifecycle(enc); err != nil {
		s.fail(c, badRequest("%v", err))
		return
	}
	if err := s.st.SetOptions(c.Request.Context(), id, enc); err != nil {
		s.fail(c, err)
		return
	}
	s.eng.Reload(id)
	s.audit(c.Request.Context(), "connection.options", &id, enc)
	s.respondConnection(c, http.StatusOK, id)
}

// linkTwin pairs two entities that already exist on both sides, writing
// nothing to either system.
func (s *srv) linkTwin(c *gin.Context) {
	id, err := idParam(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var in struct {
		AID string `json:"a_id"`
		BID string `json:"b_id"`
	}
	if err := s.bind(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	if in.AID == "" || in.BID == "" {
		s.fail(c, badRequest("a_id and b_id are required"))
		return
	}
	ctx := c.Request.Context()
	if _, err := s.st.GetConnection(ctx, id); err != nil {
		s.fail(c, err)
		return
	}
	t, err := s.st.LinkTwin(ctx, id, in.AID, in.BID)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.audit(ctx, "twin.link", &id, fmt.Sprintf("a %s ↔ b %s", in.AID, in.BID))
	c.JSON(http.StatusCreated, t)
}

// unlinkTwin forgets a pair; both entities stay, and they sync again only if
// a trigger matches one of them.
func (s *srv) unlinkTwin(c *gin.Context) {
	id, err := idParam(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	t, err := s.st.DeleteTwin(c.Request.Context(), id)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.audit(c.Request.Context(), "twin.unlink", &t.ConnectionID, fmt.Sprintf("twin %d (a %s, b %s)", id, t.EntityID(store.SideA), t.EntityID(store.SideB)))
	c.Status(http.StatusNoContent)
}

// startBackfill starts "sync existing" over one side; progress is at
// GET /api/connections/:id/backfills.
func (s *srv) startBackfill(c *gin.Context) {
	id, err := idParam(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var in struct {
		Side string `json:"side"`
	}
	if err := s.bind(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	side, err := parseSide(in.Side)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	if _, err := s.st.GetConnection(ctx, id); err != nil {
		s.fail(c, err)
		return
	}
	job, err := s.st.StartBackfill(ctx, id, side)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.audit(ctx, "connection.backfill", &id, fmt.Sprintf("sync existing on side %s (job %d)", side, job.ID))
	c.JSON(http.StatusAccepted, job)
}

func (s *srv) listBackfills(c *gin.Context) {
	id, err := idParam(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	jobs, err := s.st.ListBackfills(c.Request.Context(), id)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, jobs)
}

// linkExisting pairs entities on both sides that share a key.
func (s *srv) linkExisting(c *gin.Context) {
	id, err := idParam(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var in struct {
		AField string `json:"a_field"`
		BField string `json:"b_field"`
	}
	if err := s.bind(c, &in); err != nil {
		s.fail(c, err)
		return
	}
	if in.AField == "" || in.BField == "" {
		s.fail(c, badRequest("a_field and b_field are required (a field name, or id/key)"))
		return
	}
	n, err := s.eng.LinkExisting(c.Request.Context(), id, in.AField, in.BField)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.audit(c.Request.Context(), "twin.link_existing", &id, fmt.Sprintf("%d pair(s) by a.%s = b.%s", n, in.AField, in.BField))
	c.JSON(http.StatusOK, gin.H{"linked": n})
}
