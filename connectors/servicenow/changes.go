package servicenow

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/pollwindow"
)

// Changes lists the table's records updated at or after the cursor's
// window (sys_updated_on, whole seconds, UTC), ordered by sys_updated_on
// and then sys_id, so that records stamped in the same second keep one
// order across polls; the (sys_id, stamp) pairs taken in the window are
// skipped (pollwindow). The answer's Date header is the server's clock.
// The setting query, when set, narrows the poll. Deleted records are not
// seen (the Table API lists no deletes).
func (c *conn) Changes(ctx context.Context, cur string, limit int) (connectors.Page, error) {
	from, err := pollwindow.Parse(cur)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("%w: servicenow: %w", connectors.ErrBadConfig, err)
	}
	if limit <= 0 {
		limit = 100
	}
	query := ""
	if since := from.Since(); !since.IsZero() {
		query = "sys_updated_on>=" + since.UTC().Format(snTime) + "^"
	}
	if c.s.Query != "" {
		query += c.s.Query + "^"
	}
	query += "ORDERBYsys_updated_on^ORDERBYsys_id"
	top := limit + len(from.Seen) + 1
	q := c.readQuery()
	q.Set("sysparm_query", query)
	q.Set("sysparm_limit", strconv.Itoa(top))
	var a struct {
		Result []record `json:"result"`
	}
	h, err := c.doHeader(ctx, "GET", c.tablePath("")+"?"+q.Encode(), nil, &a)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("servicenow poll %s: %w", c.s.Table, err)
	}
	now := pollwindow.ServerNow(h)
	var picked []record
	more := len(a.Result) == top
	for _, r := range a.Result {
		if from.Taken(r.value("sys_id"), r.time("sys_updated_on")) {
			continue
		}
		if len(picked) == limit {
			more = true
			break
		}
		picked = append(picked, r)
	}
	page := connectors.Page{}
	if len(picked) == 0 {
		return page, nil
	}
	progress := false
	for _, r := range picked {
		progress = progress || now.IsZero() || r.time("sys_updated_on").Before(now.Truncate(time.Second))
	}
	page.More = more && progress
	next := from.Advance(now)
	for _, r := range picked {
		e, err := c.withJournal(ctx, r)
		if err != nil {
			return connectors.Page{}, err
		}
		page.Entities = append(page.Entities, e)
		next.Take(r.value("sys_id"), r.time("sys_updated_on"))
	}
	if page.Cursor, err = next.Encode(); err != nil {
		return connectors.Page{}, err
	}
	return page, nil
}
