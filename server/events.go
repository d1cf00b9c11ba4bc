package server

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
)

// eventRoutes declares the sync events, retrying a connection's failed
// ones, and the audit log (signed in: team admins see their teams'
// entries, org admins everything; the handler filters).
func (s *srv) eventRoutes(api gin.IRoutes) {
	const viewer, editor = store.RoleViewer, store.RoleEditor
	s.handle(api, "GET", "/events", signedIn(), s.listEvents,
		op{summary: "Sync events of one's teams, newest first", tag: "events", out: []eventOut{}, query: []string{"connection_id", "status", "limit"}})
	s.handle(api, "GET", "/events/:id", teamRole("event", "id", viewer), s.getEvent,
		op{summary: "One sync event with its log", tag: "events", out: eventOut{}})
	s.handle(api, "POST", "/events/:id/retry", teamRole("event", "id", editor), s.retryEvent,
		op{summary: "Requeue a failed event", tag: "events", out: eventOut{}})
	s.handle(api, "POST", "/events/:id/resolve", teamRole("event", "id", editor), s.resolveEvent,
		op{summary: "Choose per conflicting field: source, target or a value", tag: "events", in: map[string]engine.Resolution{}, out: eventOut{}})
	s.handle(api, "POST", "/events/:id/skip", teamRole("event", "id", editor), s.skipEvent,
		op{summary: "Give up on an event, with a reason", tag: "events", in: skipEventIn{}, out: eventOut{}})
	s.handle(api, "POST", "/connections/:id/retry-failed", teamRole("connection", "id", editor), s.retryFailed,
		op{summary: "Requeue every failed event of the connection", tag: "events", out: countOut{}})
	s.handle(api, "GET", "/audit", signedIn(), s.listAudit, // team admins: their teams' entries
		op{summary: "Audit log: one's teams as admin; everything for org admins", tag: "audit", out: []store.AuditEntry{}, query: []string{"connection_id", "action", "limit"}})
}

// countOut says how many rows an action on many changed.
type countOut struct {
	Linked  int `json:"linked,omitempty"`
	Retried int `json:"retried,omitempty"`
}

func jsonMarshal(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

var statuses = map[string]bool{"": true, store.StatusQueued: true, store.StatusDone: true,
	store.StatusFailed: true, store.StatusSkipped: true, store.StatusConflict: true}

func (s *srv) listEvents(c *gin.Context) error {
	var f store.EventFilter
	var err error
	if f.ConnectionID, err = idQuery(c, "connection_id"); err != nil {
		return err
	}
	f.Status = c.Query("status")
	if !statuses[f.Status] {
		return badRequest("status must be queued, done, failed, skipped or conflict")
	}
	if f.Limit, err = limitQuery(c, "limit", 100, maxEventsLimit); err != nil {
		return err
	}
	f.Teams = principalOf(c).Teams(store.RoleViewer)
	evs, err := s.st.ListEvents(c.Request.Context(), f)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, eventBodies(evs))
	return nil
}

func (s *srv) getEvent(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	ev, err := s.st.GetEvent(c.Request.Context(), id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, eventBody(ev))
	return nil
}

func (s *srv) retryEvent(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	ev, err := s.svc.RetryEvent(c.Request.Context(), principalOf(c).Actor(), id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, eventBody(ev))
	return nil
}

// skipEventIn is the body of skipEvent.
type skipEventIn struct {
	Reason string `json:"reason"`
}

// skipEvent gives up on an event with a reason, kept on the event and in the
// audit log.
func (s *srv) skipEvent(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in skipEventIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	ev, err := s.svc.SkipEvent(c.Request.Context(), principalOf(c).Actor(), id, in.Reason)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, eventBody(ev))
	return nil
}

// retryFailed requeues every failed event of a connection.
func (s *srv) retryFailed(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	n, err := s.svc.RetryFailed(c.Request.Context(), principalOf(c).Actor(), id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"retried": n})
	return nil
}

// resolveEvent takes a person's choice for each conflicting field:
// {"priority": {"take": "source"}, "title": {"take": "value", "value": "…"}}.
func (s *srv) resolveEvent(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in map[string]engine.Resolution
	if err := s.bind(c, &in); err != nil {
		return err
	}
	ev, err := s.svc.ResolveEvent(c.Request.Context(), principalOf(c).Actor(), id, in)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, eventBody(ev))
	return nil
}

func (s *srv) listAudit(c *gin.Context) error {
	connID, err := idQuery(c, "connection_id")
	if err != nil {
		return err
	}
	limit, err := limitQuery(c, "limit", 100, maxListLimit)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = 100
	}
	// The audit log is for team admins: their teams' entries; org admins
	// see everything, including org-level entries (users, teams).
	teams := principalOf(c).Teams(store.RoleAdmin)
	if teams != nil && len(teams) == 0 {
		return forbidden("the audit log needs the admin role in a team")
	}
	entries, err := s.st.ListAuditFor(c.Request.Context(), store.AuditFilter{
		ConnectionID: connID, Action: c.Query("action"), Limit: limit, Teams: teams})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, entries)
	return nil
}

func (s *srv) getTemplate(c *gin.Context) error {
	t, err := s.lib.Get(c.Param("name"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, t)
	return nil
}
