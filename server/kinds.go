package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/connectors"
)

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
