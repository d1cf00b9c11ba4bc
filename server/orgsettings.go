package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/engine/store"
)

// orgSettingsRoutes declares the organisation's settings (org admins).
func (s *srv) orgSettingsRoutes(api gin.IRoutes) {
	s.handle(api, "GET", "/org-settings", orgAdmin(), s.getOrgSettings,
		op{summary: "The organisation's settings: whether team admins see every team's name (org admin)", tag: "teams", out: store.OrgSettings{}})
	s.handle(api, "PUT", "/org-settings", orgAdmin(), s.putOrgSettings,
		op{summary: "Change the organisation's settings (org admin; audited)", tag: "teams", in: orgSettingsIn{}, out: store.OrgSettings{}})
}

// orgSettingsIn is the body of PUT /api/org-settings; a field left out
// keeps its value.
type orgSettingsIn struct {
	TeamDirectory *bool `json:"team_directory"`
}

func (s *srv) getOrgSettings(c *gin.Context) error {
	o, err := s.st.OrgSettings(c.Request.Context())
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, o)
	return nil
}

// putOrgSettings is the org admin's (audited): whether team admins see
// every team's name (docs/security.md, "Teams' names").
func (s *srv) putOrgSettings(c *gin.Context) error {
	var in orgSettingsIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	ctx := c.Request.Context()
	o, err := s.st.OrgSettings(ctx)
	if err != nil {
		return err
	}
	if in.TeamDirectory != nil {
		o.TeamDirectory = *in.TeamDirectory
	}
	if err := s.svc.SetOrgSettings(ctx, principalOf(c).Actor(), o); err != nil {
		return err
	}
	return s.getOrgSettings(c)
}
