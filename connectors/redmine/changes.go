package redmine

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/pollwindow"
)

// listPage is how many issues one list request asks for (Redmine's maximum).
const listPage = 100

// Changes lists the project's issues (open and closed) by updated_on, then
// reads each with its journals: the list does not carry journals. Redmine's
// updated_on has whole seconds; pollwindow explains the cursor.
func (c *conn) Changes(ctx context.Context, cur string, limit int) (connectors.Page, error) {
	from, err := pollwindow.Parse(cur)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("%w: redmine: %w", connectors.ErrBadConfig, err)
	}
	if limit <= 0 {
		limit = listPage
	}
	var picked []issue
	var now time.Time
	more := false
	for offset := 0; ; {
		q := url.Values{
			"project_id": {strconv.FormatInt(c.projectID, 10)},
			"status_id":  {"*"}, // closed issues too
			"sort":       {"updated_on,id"},
			"limit":      {strconv.Itoa(listPage)},
			"offset":     {strconv.Itoa(offset)},
		}
		if since := from.Since(); !since.IsZero() {
			q.Set("updated_on", ">="+since.Format(time.RFC3339))
		}
		var out struct {
			Issues     []issue `json:"issues"`
			TotalCount int     `json:"total_count"`
		}
		h, err := c.http.DoHeader(ctx, "GET", "/issues.json?"+q.Encode(), nil, &out)
		if err != nil {
			return connectors.Page{}, fmt.Errorf("redmine list issues: %w", err)
		}
		if now.IsZero() {
			now = pollwindow.ServerNow(h)
		}
		for _, is := range out.Issues {
			if from.Taken(strconv.FormatInt(is.ID, 10), is.UpdatedOn) {
				continue
			}
			if len(picked) == limit {
				more = true
				break
			}
			picked = append(picked, is)
		}
		offset += len(out.Issues)
		if more || len(out.Issues) == 0 || offset >= out.TotalCount {
			break
		}
	}
	page := connectors.Page{More: more}
	if len(picked) == 0 {
		return page, nil
	}
	next := from.Advance(now)
	for _, listed := range picked {
		full, err := c.getIssue(ctx, listed.ID)
		if err != nil && !errors.Is(err, connectors.ErrNotFound) {
			return connectors.Page{}, err
		}
		if err == nil { // else deleted or moved since the list: nothing to send
			page.Entities = append(page.Entities, c.entity(full))
		}
		// The cursor follows the listed time: that is what the filter sees.
		next.Take(strconv.FormatInt(listed.ID, 10), listed.UpdatedOn)
	}
	if page.Cursor, err = next.Encode(); err != nil {
		return connectors.Page{}, err
	}
	return page, nil
}
