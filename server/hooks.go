package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/connectors"
)

// hook takes one webhook request for a system: the connector verifies its
// signature and names the changed entities, the engine records the delivery
// and the answer goes back at once (202); the engine does the work after.
// Refusals record nothing: a bad or missing signature is 401, a body over
// the limit 413, a malformed one 400.
func (s *srv) hook(c *gin.Context) error {
	id, err := idParam(c, "system")
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("read webhook body: %v", err)
	}
	res, err := s.eng.Hook(c.Request.Context(), id, c.Request.Header, body)
	if errors.Is(err, connectors.ErrInvalid) {
		return badRequest("malformed webhook: %v", err)
	}
	if errors.Is(err, connectors.ErrRefused) {
		// The sender is anonymous: the refused address or file is the
		// team's business (their system test and the log name it).
		s.log.Warn("webhook for a system the outbound policy refuses", "system", id, "err", err)
		return fmt.Errorf("%w: cannot take webhooks now", connectors.ErrUnavailable)
	}
	if err != nil {
		return fmt.Errorf("webhook for system %d: %w", id, err)
	}
	c.JSON(http.StatusAccepted, res)
	return nil
}

// listDeliveries shows a system's latest webhook deliveries with their
// status and error, newest first, so a lost or failing webhook is visible.
func (s *srv) listDeliveries(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	if _, err := s.st.GetSystem(c.Request.Context(), id); err != nil {
		return err
	}
	limit, err := intQuery(c, "limit", 100)
	if err != nil {
		return err
	}
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	ds, err := s.st.ListDeliveries(c.Request.Context(), id, limit)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, ds)
	return nil
}
