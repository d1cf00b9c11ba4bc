package jira

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// LookBack is how far before the newest update taken each poll searches
// again. JQL compares `updated` to the minute ("yyyy-MM-dd HH:mm", read in
// the API user's time zone), and Jira's search index may show an update a
// little after later ones: so a poll asks for updated >= the minute of
// (T - LookBack), T being the newest `updated` taken, and skips the
// (key, updated) pairs it already took. Jira stamps `updated` to the
// millisecond, so an issue updated again carries a new stamp and is taken
// again, even within the same minute.
const LookBack = 2 * time.Minute

// searchPage is how many issues one search request asks for.
const searchPage = 100

// cursor is the poll position, JSON-encoded in Page.Cursor.
type cursor struct {
	T    time.Time        `json:"t"`
	Seen map[string]int64 `json:"seen,omitempty"` // issue key → updated, Unix ms
}

func parseCursor(s string) (cursor, error) {
	var c cursor
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("%w: jira poll cursor %q: %w", connectors.ErrBadConfig, s, err)
	}
	return c, nil
}

func (c cursor) since() time.Time {
	if c.T.IsZero() {
		return time.Time{}
	}
	return c.T.Add(-LookBack)
}

func (c cursor) taken(key string, updated time.Time) bool {
	at, ok := c.Seen[key]
	return ok && at == updated.UnixMilli()
}

// jql is the poll's query: the project, the optional extra filter, the
// window's lower bound (minute resolution, in the user's time zone) and
// an order that breaks ties by key.
func (c *conn) pollJQL(since time.Time) string {
	q := "project = " + jqlQuote(c.s.Project)
	if extra := strings.TrimSpace(c.s.JQL); extra != "" {
		q += " AND (" + extra + ")"
	}
	if !since.IsZero() {
		q += ` AND updated >= "` + since.In(c.loc).Format("2006-01-02 15:04") + `"`
	}
	return q + " ORDER BY updated ASC, key ASC"
}

// Changes searches the project by `updated` (POST /rest/api/3/search/jql,
// paged with nextPageToken), then reads each picked issue's comments.
func (c *conn) Changes(ctx context.Context, cur string, limit int) (connectors.Page, error) {
	from, err := parseCursor(cur)
	if err != nil {
		return connectors.Page{}, err
	}
	if limit <= 0 {
		limit = searchPage
	}
	jql := c.pollJQL(from.since())
	type listed struct {
		is      issue
		updated time.Time
	}
	var picked []listed
	more := false
	token := ""
	for pages := 0; pages < 1000 && !more; pages++ {
		body := map[string]any{"jql": jql, "maxResults": searchPage, "fields": []string{"*all"}}
		if token != "" {
			body["nextPageToken"] = token
		}
		var out struct {
			Issues        []issue `json:"issues"`
			NextPageToken string  `json:"nextPageToken"`
			IsLast        *bool   `json:"isLast"`
		}
		if err := c.http.Do(ctx, "POST", api+"/search/jql", body, &out); err != nil {
			return connectors.Page{}, fmt.Errorf("jira search: %w", jiraErrors(err, nil))
		}
		for _, is := range out.Issues {
			var up jiraTime
			if err := json.Unmarshal(is.Fields["updated"], &up); err != nil || up.IsZero() {
				return connectors.Page{}, fmt.Errorf("%w: jira search: issue %s has no readable updated time", connectors.ErrUnavailable, is.Key)
			}
			if from.taken(is.Key, up.Time) {
				continue
			}
			if len(picked) == limit {
				more = true
				break
			}
			picked = append(picked, listed{is: is, updated: up.Time})
		}
		token = out.NextPageToken
		if token == "" || (out.IsLast != nil && *out.IsLast) || len(out.Issues) == 0 {
			break
		}
	}
	page := connectors.Page{More: more}
	if len(picked) == 0 {
		return page, nil
	}
	next := cursor{T: from.T, Seen: make(map[string]int64, len(from.Seen)+len(picked))}
	for k, v := range from.Seen {
		next.Seen[k] = v
	}
	for _, l := range picked {
		e, err := c.full(ctx, l.is)
		if err != nil && !errors.Is(err, connectors.ErrNotFound) {
			return connectors.Page{}, err
		}
		if err == nil { // else deleted since the search: nothing to send
			page.Entities = append(page.Entities, e)
		}
		if l.updated.After(next.T) {
			next.T = l.updated
		}
		next.Seen[l.is.Key] = l.updated.UnixMilli()
	}
	// Forget what the next query can no longer return: stamps before the
	// minute its window starts in.
	floor := next.since().In(c.loc).Truncate(time.Minute).UnixMilli()
	for k, at := range next.Seen {
		if at < floor {
			delete(next.Seen, k)
		}
	}
	b, err := json.Marshal(next)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("jira poll cursor: %w", err)
	}
	page.Cursor = string(b)
	return page, nil
}
