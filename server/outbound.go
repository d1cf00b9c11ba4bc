package server

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/internal/outbound"
)

// outboundRoutes declares what systems may reach: the organisation's
// policy, not a team's (org admins).
func (s *srv) outboundRoutes(api gin.IRoutes) {
	s.handle(api, "GET", "/outbound-policy", orgAdmin(), s.getOutboundPolicy,
		op{summary: "The outbound policy: what systems may reach (org admin)", tag: "teams", out: outboundOut{}})
	s.handle(api, "PUT", "/outbound-policy", orgAdmin(), s.putOutboundPolicy,
		op{summary: "Replace the outbound policy (org admin; audited)", tag: "teams", in: outbound.Policy{}, out: outboundOut{}})
}

// outboundOut is the policy with who set it last.
type outboundOut struct {
	outbound.Policy
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

func (s *srv) getOutboundPolicy(c *gin.Context) error {
	row, err := s.st.OutboundPolicy(c.Request.Context())
	if err != nil {
		return err
	}
	p, err := outbound.Parse([]byte(row.Policy))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, outboundOut{Policy: p, UpdatedAt: row.UpdatedAt, UpdatedBy: row.UpdatedBy})
	return nil
}

// putOutboundPolicy replaces the policy (audited with the whole new policy:
// it holds no secret), then reopens every connector so open pools follow it.
func (s *srv) putOutboundPolicy(c *gin.Context) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.max))
	if err != nil {
		return err
	}
	p, err := outbound.Parse(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if !errors.Is(err, outbound.ErrInvalid) {
			return badRequest("%v", err)
		}
		return err
	}
	ctx := c.Request.Context()
	js := p.JSON()
	var forget func()
	if s.guards != nil {
		forget = s.guards.Forget // before the connectors reopen
	}
	if err := s.svc.SetOutboundPolicy(ctx, principalOf(c).Actor(), js, forget); err != nil {
		return err
	}
	return s.getOutboundPolicy(c)
}
