package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
)

// hookRoutes declares the webhook receiver. Webhooks carry their own
// proof: the connector verifies the signature, so the route is public.
func (s *srv) hookRoutes(r gin.IRoutes) {
	s.handle(r, "POST", "/hooks/:system", public(), s.hook,
		op{summary: "Receive a signed webhook for a system", tag: "webhooks", rawIn: "application/octet-stream", out: engine.HookResult{}, status: 202})
}

// hook takes one webhook request for a system: the connector verifies its
// signature and names the changed entities, the engine records the delivery
// and the answer goes back at once (202); the engine does the work after.
// Refusals record nothing: a body over the limit is 413 too_large, one that
// names over engine.MaxDeliveryEntities entities 413 too_many_entities, a
// malformed one 400. The sender is anonymous until its signature verifies,
// so an unknown system, a system whose connector takes no webhooks or has
// no secret, and a bad or missing signature all answer the same 401
// signature_invalid (errHookRefused): nothing about the system (its name,
// kind, whether it exists) is told to whoever guesses a URL. The reason
// goes to the log at debug level.
func (s *srv) hook(c *gin.Context) error {
	id, err := strconv.ParseInt(c.Param("system"), 10, 64)
	if err != nil || id <= 0 {
		return errHookRefused
	}
	body, err := io.ReadAll(c.Request.Body) // bounded and timed by limitBodies
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, errSlowBody) {
			return err
		}
		return badRequest("read webhook body: %v", err)
	}
	res, err := s.eng.Hook(c.Request.Context(), id, c.Request.Header, body)
	switch {
	case err == nil:
		c.JSON(http.StatusAccepted, res)
		return nil
	case errors.Is(err, engine.ErrUnverified):
		lvl := slog.LevelDebug // guessed URLs and bad signatures are the sender's business
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, engine.ErrNoWebhooks) && !errors.Is(err, connectors.ErrSignature) {
			lvl = slog.LevelWarn // the system cannot be opened: its admins should know
		}
		s.log.Log(c.Request.Context(), lvl, "webhook refused", "system", id, "err", err)
		return errHookRefused
	case errors.Is(err, engine.ErrTooManyEntities):
		return err // verified: the sender may know the bound
	case errors.Is(err, connectors.ErrInvalid):
		return badRequest("malformed webhook: %v", err)
	case errors.Is(err, connectors.ErrRefused):
		// The sender is anonymous: the refused address or file is the
		// team's business (their system test and the log name it).
		s.log.Warn("webhook for a system the outbound policy refuses", "system", id, "err", err)
		return fmt.Errorf("%w: cannot take webhooks now", connectors.ErrUnavailable)
	default:
		// The store failed: 500 with no detail, the log has it. %v, not
		// %w: nothing in the chain may pick another answer (a system
		// deleted meanwhile would say not_found).
		return fmt.Errorf("webhook for system %d: %v", id, err)
	}
}

// errHookRefused is every refusal of an unverified webhook: 401.
var errHookRefused = fmt.Errorf("%w: the request's signature does not verify for this URL", connectors.ErrSignature)

// listDeliveries shows a system's latest webhook deliveries with their
// status and error, newest first, so a lost or failing webhook is visible.
func (s *srv) listDeliveries(c *gin.Context) error {
	id, err := idParam(c, "id")
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
	ds, err := s.st.ListDeliveries(c.Request.Context(), id, limit)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, ds)
	return nil
}
