package server

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
)

// impactRoutes declares the impact preview: it reads the remote and runs
// scripts, so editors only (and impactgate admits a few at a time).
func (s *srv) impactRoutes(api gin.IRoutes) {
	s.handle(api, "POST", "/connections/:id/impact", teamRole("connection", "id", store.RoleEditor), s.impact,
		op{summary: "Replay recent synced changes through a draft of a direction's scripts and report what would differ (writes nothing)", tag: "scripts", in: impactIn{}, out: engine.ImpactResult{}})
}

// maxImpactBudget bounds how long one impact request may hold its caller
// (and the sandbox's interactive lane).
const maxImpactBudget = time.Minute

// impactIn is the body of impact: a direction, the draft versions of its
// trigger, scripts or rules (absent: the saved one), how many recent
// synced changes to replay and the time budget.
type impactIn struct {
	Direction string `json:"direction"`
	engine.ImpactDraft
	Changes       int     `json:"changes,omitempty"`        // default 200, at most 1000
	BudgetSeconds float64 `json:"budget_seconds,omitempty"` // default 10, at most 60
}

func (s *srv) impact(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in impactIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	d := store.Direction(in.Direction)
	if d != store.AToB && d != store.BToA {
		return badRequest("direction must be \"a_to_b\" or \"b_to_a\", got %q", in.Direction)
	}
	if in.Trigger == nil && in.Outgoing == nil && in.Incoming == nil && in.Rules == nil {
		return badRequest("give a draft: trigger, outgoing, incoming or rules")
	}
	if in.Changes < 0 || in.Changes > engine.MaxImpactChanges {
		return badRequest("changes must be between 1 and %d", engine.MaxImpactChanges)
	}
	budget := time.Duration(in.BudgetSeconds * float64(time.Second))
	if budget < 0 || budget > maxImpactBudget {
		return badRequest("budget_seconds must be between 0 and %v", maxImpactBudget.Seconds())
	}
	if err := s.impacts.enter(id); err != nil {
		return err
	}
	defer s.impacts.leave(id)
	res, err := s.eng.Impact(c.Request.Context(), id, d, in.ImpactDraft, in.Changes, budget)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, res)
	return nil
}
