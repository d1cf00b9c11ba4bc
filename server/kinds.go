package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/connectors"
)

// kindRoutes declares the connector kinds' specs (any user: the forms
// that create systems are built from them).
func (s *srv) kindRoutes(api gin.IRoutes) {
	s.handle(api, "GET", "/connector-kinds", signedIn(), s.listConnectorKinds,
		op{summary: "Every connector kind's spec: settings, secrets, capabilities", tag: "systems", out: []connectors.Spec{}})
}

// listConnectorKinds answers every registered kind's spec: the app builds
// its system form from it. Specs hold no secret and no team's data, so any
// signed-in user may read them.
func (s *srv) listConnectorKinds(c *gin.Context) error {
	out := []connectors.Spec{}
	if s.kinds != nil {
		out = s.kinds.Specs()
	}
	c.JSON(http.StatusOK, out)
	return nil
}
