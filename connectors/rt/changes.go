package rt

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/pollwindow"
	"github.com/duplexsync/duplex/internal/htmltext"
)

// Changes reads the queue's ticket transactions since the cursor (RT's
// transaction search, TxnSQL) and then each ticket they touched, with its
// history. One list request answers both what changed and what was deleted:
// RT's ticket search never shows a deleted ticket, while its status change
// to "deleted" is a transaction like any other. A quiet poll so costs one
// request. The cursor (pollwindow) keys transactions, not tickets: a
// transaction's time never changes. Deleted tickets come as Deleted entities.
func (c *conn) Changes(ctx context.Context, cur string, limit int) (connectors.Page, error) {
	from, err := pollwindow.Parse(cur)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("%w: rt: %w", connectors.ErrBadConfig, err)
	}
	if limit <= 0 {
		limit = 100
	}
	q := "ObjectType = 'RT::Ticket' AND TicketQueue = " + quote(c.queueName)
	if since := from.Since(); !since.IsZero() {
		// With an explicit offset RT reads the time as given, whatever the
		// user's time zone; a "Z" suffix it would misread.
		q += " AND Created >= '" + since.Format("2006-01-02T15:04:05") + "+00:00'"
	}
	type txn struct {
		key string
		at  time.Time
	}
	type listed struct {
		id   string
		txns []txn
	}
	var picked []*listed
	byTicket := map[string]*listed{}
	var now time.Time
	more := false
	for page := 1; page <= 1000 && !more; page++ {
		v := url.Values{"query": {q}, "fields": {"ObjectId,Created"}, "per_page": {"100"}, "page": {strconv.Itoa(page)},
			"orderby": {"id"}, "order": {"ASC"}}
		var out struct {
			Items []struct {
				ID       string    `json:"id"`
				ObjectID string    `json:"ObjectId"`
				Created  time.Time `json:"Created"`
			} `json:"items"`
			Pages float64 `json:"pages"`
		}
		h, err := c.call(ctx, "GET", "/transactions?"+v.Encode(), nil, &out)
		if err != nil {
			return connectors.Page{}, fmt.Errorf("rt search transactions: %w", err)
		}
		if now.IsZero() {
			now = pollwindow.ServerNow(h)
		}
		for _, it := range out.Items {
			key := "tx" + it.ID
			if from.Taken(key, it.Created) {
				continue
			}
			l := byTicket[it.ObjectID]
			if l == nil {
				if len(picked) == limit {
					more = true
					break
				}
				l = &listed{id: it.ObjectID}
				byTicket[it.ObjectID] = l
				picked = append(picked, l)
			}
			l.txns = append(l.txns, txn{key, it.Created})
		}
		if float64(page) >= out.Pages {
			break
		}
	}
	p := connectors.Page{More: more}
	if len(picked) == 0 {
		return p, nil
	}
	next := from.Advance(now)
	for _, l := range picked {
		e, err := c.Get(ctx, l.id)
		if err != nil && !errors.Is(err, connectors.ErrNotFound) {
			return connectors.Page{}, err
		}
		if err == nil {
			e.Deleted = e.Fields["status"] == "deleted"
			p.Entities = append(p.Entities, e)
		}
		for _, t := range l.txns {
			next.Take(t.key, t.at)
		}
	}
	if p.Cursor, err = next.Encode(); err != nil {
		return connectors.Page{}, err
	}
	return p, nil
}

// htmlText is the text of an HTML message part (RT's rich-text editor
// sends HTML only; so do many mail clients): see internal/htmltext.
func htmlText(s string) string { return htmltext.Text(s) }
