package server

import (
	"encoding/json"
	"net/http"
	"sort"

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

// checkConfig is the pure check of a system's kind, settings and secret
// names before anything is stored (connectors.Registry.Validate); nil
// secrets: the secrets are left as they are. Without a registry (tests) it
// checks nothing.
func (s *srv) checkConfig(kind string, settings json.RawMessage, secrets *map[string]string) error {
	if s.kinds == nil {
		return nil
	}
	var names []string
	if secrets != nil {
		for k := range *secrets {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	return s.kinds.Validate(kind, settings, names)
}
