package rt

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/pollwindow"
)

// Changes searches the queue by LastUpdated (whole seconds, see pollwindow),
// then reads each ticket with its history. Tickets RT marked deleted come as
// Deleted entities.
func (c *conn) Changes(ctx context.Context, cur string, limit int) (connectors.Page, error) {
	from, err := pollwindow.Parse(cur)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("%w: rt: %w", connectors.ErrBadConfig, err)
	}
	if limit <= 0 {
		limit = 100
	}
	q := "Queue = " + quote(c.queueName)
	if since := from.Since(); !since.IsZero() {
		// With an explicit offset RT reads the time as given, whatever the
		// user's time zone; a "Z" suffix it would misread.
		q += " AND LastUpdated >= '" + since.Format("2006-01-02T15:04:05") + "+00:00'"
	}
	type listed struct {
		ID          string
		LastUpdated time.Time
		key         string // cursor key when not the ticket id
	}
	var picked []listed
	var now time.Time
	more := false
	for page := 1; page <= 1000 && !more; page++ {
		v := url.Values{"query": {q}, "fields": {"LastUpdated"}, "per_page": {"100"}, "page": {strconv.Itoa(page)}}
		v["orderby"] = []string{"LastUpdated", "id"}
		v["order"] = []string{"ASC", "ASC"}
		var out struct {
			Items []struct {
				ID          string    `json:"id"`
				LastUpdated time.Time `json:"LastUpdated"`
			} `json:"items"`
			Pages float64 `json:"pages"`
		}
		h, err := c.call(ctx, "GET", "/tickets?"+v.Encode(), nil, &out)
		if err != nil {
			return connectors.Page{}, fmt.Errorf("rt search tickets: %w", err)
		}
		if now.IsZero() {
			now = pollwindow.ServerNow(h)
		}
		for _, it := range out.Items {
			if from.Taken(it.ID, it.LastUpdated) {
				continue
			}
			if len(picked) == limit {
				more = true
				break
			}
			picked = append(picked, listed{ID: it.ID, LastUpdated: it.LastUpdated})
		}
		if float64(page) >= out.Pages {
			break
		}
	}
	// Deleted tickets vanish from searches; RT's transaction feed still
	// has the status change. From the start there is nothing to delete.
	if since := from.Since(); !since.IsZero() {
		var out struct {
			Items []struct {
				ID       string    `json:"id"`
				ObjectID string    `json:"ObjectId"`
				Created  time.Time `json:"Created"`
			} `json:"items"`
		}
		cond := []map[string]string{
			{"field": "ObjectType", "value": "RT::Ticket"},
			{"field": "Type", "value": "Status"},
			{"field": "NewValue", "value": "deleted"},
			// This search compares the stored text: UTC, without a zone.
			{"field": "Created", "operator": ">=", "value": since.Format("2006-01-02 15:04:05")},
		}
		if err := c.do(ctx, "POST", "/transactions?fields=ObjectId,Created&per_page=100", cond, &out); err != nil {
			return connectors.Page{}, fmt.Errorf("rt deletion feed: %w", err)
		}
		for _, it := range out.Items {
			if !from.Taken("tx"+it.ID, it.Created) {
				picked = append(picked, listed{ID: it.ObjectID, LastUpdated: it.Created, key: "tx" + it.ID})
			}
		}
	}
	p := connectors.Page{More: more}
	if len(picked) == 0 {
		return p, nil
	}
	next := from.Advance(now)
	for _, l := range picked {
		e, err := c.Get(ctx, l.ID)
		if err != nil && !errors.Is(err, connectors.ErrNotFound) {
			return connectors.Page{}, err
		}
		if err == nil {
			e.Deleted = e.Fields["status"] == "deleted"
			p.Entities = append(p.Entities, e)
		}
		key := l.ID
		if l.key != "" {
			key = l.key
		}
		next.Take(key, l.LastUpdated)
	}
	if p.Cursor, err = next.Encode(); err != nil {
		return connectors.Page{}, err
	}
	return p, nil
}

var (
	reBreak = regexp.MustCompile(`(?i)<br\s*/?>|</(p|div|li|tr|h[1-6])>`)
	reTag   = regexp.MustCompile(`<[^>]*>`)
	reBlank = regexp.MustCompile(`\n{3,}`)
)

// htmlText is the text of an HTML message part (RT's rich-text editor
// sends HTML only): breaks kept, tags dropped, entities decoded.
func htmlText(s string) string {
	s = reBreak.ReplaceAllString(s, "\n")
	s = html.UnescapeString(reTag.ReplaceAllString(s, ""))
	return strings.TrimSpace(reBlank.ReplaceAllString(s, "\n\n"))
}
