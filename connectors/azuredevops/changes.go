package azuredevops

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/pollwindow"
)

// batchSize is the most ids one workitemsbatch request takes.
const batchSize = 200

// wiqlString quotes s as a WIQL string literal.
func wiqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// wiql runs a flat query and returns the ids in its order and the
// server's asOf time.
func (c *conn) wiql(ctx context.Context, query string, top int) ([]int64, time.Time, error) {
	var r struct {
		AsOf      time.Time `json:"asOf"`
		WorkItems []struct {
			ID int64 `json:"id"`
		} `json:"workItems"`
	}
	path := fmt.Sprintf("%s/wit/wiql?$top=%d&timePrecision=true&api-version=%s", c.proj, top, apiVersion)
	if err := c.do(ctx, "POST", path, map[string]any{"query": query}, &r); err != nil {
		return nil, time.Time{}, fmt.Errorf("wiql: %w", err)
	}
	ids := make([]int64, len(r.WorkItems))
	for i, w := range r.WorkItems {
		ids[i] = w.ID
	}
	return ids, r.AsOf.UTC(), nil
}

// batch reads work items by id, 200 a request; items deleted meanwhile
// are left out (errorPolicy omit answers null for them).
func (c *conn) batch(ctx context.Context, ids []int64) ([]workItem, error) {
	var out []workItem
	for len(ids) > 0 {
		n := min(len(ids), batchSize)
		var r struct {
			Value []*workItem `json:"value"`
		}
		body := map[string]any{"ids": ids[:n], "errorPolicy": "omit", "$expand": "relations"}
		if err := c.do(ctx, "POST", fmt.Sprintf("%s/wit/workitemsbatch?api-version=%s", c.proj, apiVersion), body, &r); err != nil {
			return nil, fmt.Errorf("azuredevops batch read: %w", err)
		}
		for _, w := range r.Value {
			if w != nil {
				out = append(out, *w)
			}
		}
		ids = ids[n:]
	}
	return out, nil
}

// Changes asks WIQL for the project's work items changed at or after the
// cursor's window (System.ChangedDate with time precision, oldest first,
// ties by id), reads them in batches and then their comments. pollwindow
// explains the cursor: the window is looked at again and the (id, stamp)
// pairs taken in it are skipped; the query's asOf is the server's clock.
// Work items deleted to the recycle bin leave WIQL's answers: polling does
// not see deletes (a service hook's workitem.deleted does, as a read that
// finds nothing).
func (c *conn) Changes(ctx context.Context, cur string, limit int) (connectors.Page, error) {
	from, err := pollwindow.Parse(cur)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("%w: azuredevops: %w", connectors.ErrBadConfig, err)
	}
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project"
	if since := from.Since(); !since.IsZero() {
		q += " AND [System.ChangedDate] >= " + wiqlString(since.Format(time.RFC3339))
	}
	if c.s.AreaPath != "" {
		q += " AND [System.AreaPath] UNDER " + wiqlString(c.s.AreaPath)
	}
	q += " ORDER BY [System.ChangedDate] ASC, [System.Id] ASC"
	top := limit + len(from.Seen) + 1
	ids, asOf, err := c.wiql(ctx, q, top)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("azuredevops poll: %w", err)
	}
	items, err := c.batch(ctx, ids)
	if err != nil {
		return connectors.Page{}, err
	}
	sort.SliceStable(items, func(i, j int) bool {
		ti, tj := items[i].time("System.ChangedDate"), items[j].time("System.ChangedDate")
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return items[i].ID < items[j].ID
	})
	var picked []workItem
	more := false
	for _, w := range items {
		if from.Taken(strconv.FormatInt(w.ID, 10), w.time("System.ChangedDate")) {
			continue
		}
		if len(picked) == limit {
			more = true
			break
		}
		picked = append(picked, w)
	}
	more = more || len(ids) == top
	page := connectors.Page{}
	if len(picked) == 0 {
		return page, nil
	}
	progress := false
	for _, w := range picked {
		progress = progress || asOf.IsZero() || w.time("System.ChangedDate").Before(asOf.Truncate(time.Second))
	}
	page.More = more && progress
	next := from.Advance(asOf)
	for _, w := range picked {
		e, err := c.withComments(ctx, w)
		if err != nil {
			return connectors.Page{}, err
		}
		page.Entities = append(page.Entities, e)
		next.Take(strconv.FormatInt(w.ID, 10), w.time("System.ChangedDate"))
	}
	if page.Cursor, err = next.Encode(); err != nil {
		return connectors.Page{}, err
	}
	return page, nil
}
