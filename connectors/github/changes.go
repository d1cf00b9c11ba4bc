package github

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/pollwindow"
)

// maxListPages bounds one poll's walk through the Link pages.
const maxListPages = 1000

// maxETags bounds the remembered ETags (one per recent cursor).
const maxETags = 64

// Changes lists the repository's issues (open and closed) by updated_at,
// oldest first, following the Link header's rel="next" pages, and reads the
// comments of those that have any. GitHub's updated_at has whole seconds
// and "since" takes seconds too; pollwindow explains the cursor (a window
// of 3 s looked at again, the (issue, stamp) pairs taken in it skipped).
//
// Conditional requests: a poll whose answer held nothing new remembers the
// answer's ETag for its query and cursor; the next poll with the same cursor
// sends If-None-Match, and GitHub's 304 (which does not count against the
// rate limit) means nothing changed. An ETag is kept only for a one-page
// answer that was entirely taken already, so a 304 can never hide an issue
// the cursor has not taken, even if the engine did not keep a cursor.
func (c *conn) Changes(ctx context.Context, cur string, limit int) (connectors.Page, error) {
	from, err := pollwindow.Parse(cur)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("%w: github: %w", connectors.ErrBadConfig, err)
	}
	if limit <= 0 {
		limit = 100
	}
	q := url.Values{"state": {"all"}, "sort": {"updated"}, "direction": {"asc"}, "per_page": {"100"}}
	if since := from.Since(); !since.IsZero() {
		q.Set("since", since.Format(time.RFC3339))
	}
	first := c.repo + "/issues?" + q.Encode()
	etagKey := first + "\x00" + cur
	var picked []issue
	var now time.Time
	more, onePage, fresh := false, true, false
	path := first
	for page := 0; path != "" && !more; page++ {
		if page == maxListPages {
			return connectors.Page{}, fmt.Errorf("%w: github list issues: more than %d pages", connectors.ErrUnavailable, maxListPages)
		}
		etag := ""
		if page == 0 {
			etag = c.etag(etagKey)
		}
		var items []issue
		ci, err := c.do(ctx, etag, "GET", path, nil, &items)
		if err != nil {
			return connectors.Page{}, fmt.Errorf("github list issues: %w", err)
		}
		if page == 0 && etag != "" && ci.status == 304 {
			return connectors.Page{}, nil // nothing new since the remembered answer
		}
		if now.IsZero() {
			now = pollwindow.ServerNow(ci.header)
		}
		for _, is := range items {
			if is.isPR() {
				continue
			}
			if from.Taken(strconv.FormatInt(is.Number, 10), is.UpdatedAt) {
				continue
			}
			fresh = true
			if len(picked) == limit {
				more = true
				break
			}
			picked = append(picked, is)
		}
		path = ""
		if next := nextLink(ci.header); next != "" && len(items) > 0 {
			onePage = false
			if path, err = c.relPath(next); err != nil {
				return connectors.Page{}, err
			}
		}
		if page == 0 && onePage && !fresh {
			c.setETag(etagKey, ci.header.Get("ETag"))
		}
	}
	page := connectors.Page{More: more}
	if len(picked) == 0 {
		return page, nil
	}
	// Issues stamped in the second the server is still in are not recorded
	// (pollwindow): a page of only those makes no progress, so More would
	// have the engine ask again at once for the same page until the second
	// ends. It waits for its next poll instead.
	progress := false
	for _, is := range picked {
		progress = progress || now.IsZero() || is.UpdatedAt.Before(now.Truncate(time.Second))
	}
	page.More = more && progress
	next := from.Advance(now)
	for _, is := range picked {
		e, err := c.withComments(ctx, is)
		if err != nil {
			return connectors.Page{}, err
		}
		page.Entities = append(page.Entities, e)
		next.Take(strconv.FormatInt(is.Number, 10), is.UpdatedAt)
	}
	if page.Cursor, err = next.Encode(); err != nil {
		return connectors.Page{}, err
	}
	return page, nil
}

func (c *conn) etag(key string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.etags[key]
}

func (c *conn) setETag(key, etag string) {
	if etag == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.etags) >= maxETags {
		clear(c.etags)
	}
	c.etags[key] = etag
}
