package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/engine/store"
)

// alertRoutes declares the alerts list, filtered to the caller's teams.
func (s *srv) alertRoutes(api gin.IRoutes) {
	s.handle(api, "GET", "/alerts", signedIn(), s.listAlerts,
		op{summary: "Alerts of one's teams: open ones first, then recently resolved (?state=open|resolved)", tag: "alerts", out: []store.Alert{}, query: []string{"state", "limit"}})
}

// listAlerts answers GET /api/alerts: open alerts first, then the most
// recent resolved ones, of the caller's teams (internal/alerts opens and
// resolves them).
func (s *srv) listAlerts(c *gin.Context) error {
	f := store.AlertFilter{State: c.Query("state")}
	switch f.State {
	case "", store.AlertOpen, store.AlertResolved:
	default:
		return badRequest("state must be open or resolved")
	}
	var err error
	if f.Limit, err = limitQuery(c, "limit", 50, maxAlertsLimit); err != nil {
		return err
	}
	f.Teams = principalOf(c).Teams(store.RoleViewer)
	out, err := s.st.Alerts().ListAlerts(c.Request.Context(), f)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, out)
	return nil
}
