package zendesk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"

	"github.com/duplexsync/duplex/connectors"
)

// maxPerPage is the most tickets the cursor-based export returns a page.
const maxPerPage = 1000

// cursor is the poll position: Zendesk's after_cursor of the last page
// taken; empty before the first poll (which starts at start_time).
type cursor struct {
	After string `json:"after"`
}

// Changes pages through the cursor-based incremental ticket export
// (GET /incremental/tickets/cursor.json). Zendesk's cursor is exact (no
// ticket is skipped or repeated between pages, ties included), so the
// connector's cursor is Zendesk's after_cursor; each poll asks for
// per_page = limit so that a page is always taken whole. end_of_stream
// false means another page is ready (More). Deleted tickets come with
// status "deleted" and are handed on as deleted. The export is limited to
// 10 requests a minute; a 429 carries Retry-After.
func (c *conn) Changes(ctx context.Context, cur string, limit int) (connectors.Page, error) {
	var from cursor
	if cur != "" {
		if err := json.Unmarshal([]byte(cur), &from); err != nil || from.After == "" {
			return connectors.Page{}, fmt.Errorf("%w: zendesk: poll cursor %q is not one this connector wrote", connectors.ErrBadConfig, cur)
		}
	}
	if limit <= 0 || limit > maxPerPage {
		limit = min(max(limit, 100), maxPerPage)
	}
	q := url.Values{"per_page": {strconv.Itoa(limit)}}
	if from.After != "" {
		q.Set("cursor", from.After)
	} else {
		q.Set("start_time", strconv.FormatInt(c.start, 10))
	}
	var p struct {
		Tickets     []ticket `json:"tickets"`
		AfterCursor string   `json:"after_cursor"`
		EndOfStream bool     `json:"end_of_stream"`
	}
	if err := c.do(ctx, "GET", "/incremental/tickets/cursor.json?"+q.Encode(), nil, &p); err != nil {
		return connectors.Page{}, fmt.Errorf("zendesk incremental export: %w", err)
	}
	sort.SliceStable(p.Tickets, func(i, j int) bool { return p.Tickets[i].UpdatedAt.Before(p.Tickets[j].UpdatedAt) })
	page := connectors.Page{More: !p.EndOfStream && p.AfterCursor != "" && p.AfterCursor != from.After}
	for _, t := range p.Tickets {
		var (
			e   connectors.Entity
			err error
		)
		if t.Status == "deleted" {
			e, err = c.entity(ctx, t, nil, nil)
		} else {
			e, err = c.withComments(ctx, t)
		}
		if err != nil {
			return connectors.Page{}, err
		}
		page.Entities = append(page.Entities, e)
	}
	if p.AfterCursor != "" {
		b, _ := json.Marshal(cursor{After: p.AfterCursor})
		page.Cursor = string(b)
	}
	return page, nil
}
