package server

import "github.com/gin-gonic/gin"

// maxEventsLimit is the most events one GET /api/events answers (the
// store's cap on a page).
const maxEventsLimit = 500

// maxListLimit is the most rows the audit log, twin and delivery lists
// answer in one page; maxAlertsLimit the store's cap on alerts.
const (
	maxListLimit   = 1000
	maxAlertsLimit = 500
)

// limitQuery reads ?name= as intQuery does and refuses a value over max with
// a 400 that names the maximum: the store cut such a request back to 100
// rows without a word (issue 19).
func limitQuery(c *gin.Context, name string, def, max int) (int, error) {
	n, err := intQuery(c, name, def)
	if err == nil && n > max {
		return 0, badRequest("%s must be at most %d, got %d", name, max, n)
	}
	return n, err
}
