package tryton

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// lookBack is how far before the newest stamp taken each poll looks again.
// Tryton stamps write_date with the transaction's start and makes it visible
// at commit, so a record can appear after a later-stamped one was listed;
// the window catches it, and the cursor's seen list keeps the records
// already taken in it from being taken twice.
const lookBack = 3 * time.Second

// cursor is the poll position: the newest stamp taken and, for the records
// stamped within lookBack of it, the stamp each was taken at (microseconds,
// Tryton's precision). A record written again gets a new stamp and is taken
// again.
type cursor struct {
	T    time.Time        `json:"t"`
	Seen map[string]int64 `json:"seen,omitempty"`
}

func parseCursor(s string) (cursor, error) {
	var c cursor
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("poll cursor %q: %w", s, err)
	}
	return c, nil
}

func (c cursor) since() time.Time {
	if c.T.IsZero() {
		return time.Time{}
	}
	return c.T.Add(-lookBack)
}

func (c cursor) taken(id string, t time.Time) bool {
	if !c.T.IsZero() && t.Before(c.since()) {
		return true
	}
	at, ok := c.Seen[id]
	return ok && at == t.UnixMicro()
}

// Changes lists records by their change stamp, write_date or, for records
// never written, create_date. Tryton cannot order by the two together, so
// it asks twice (written since, and created since and never written), each
// in stamp order and long enough to hold limit records not taken yet, and
// merges: the first limit of the merge are the first limit overall.
func (c *conn) Changes(ctx context.Context, cur string, limit int) (connectors.Page, error) {
	from, err := parseCursor(cur)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("%w: tryton: %w", connectors.ErrBadConfig, err)
	}
	if limit <= 0 {
		limit = 100
	}
	fetch := limit + len(from.Seen) + 1
	written := append(c.m.base(), []any{"write_date", "!=", nil})
	created := append(c.m.base(), []any{"write_date", "=", nil})
	if since := from.since(); !since.IsZero() {
		written = append(written, []any{"write_date", ">=", wireTime(since)})
		created = append(created, []any{"create_date", ">=", wireTime(since)})
	}
	var a, b []map[string]any
	if err := c.rpc.call(ctx, "model."+c.m.name+".search_read", []any{written, 0, fetch, [][]string{{"write_date", "ASC"}, {"id", "ASC"}}, c.m.read, c.ctx()}, &a); err != nil {
		return connectors.Page{}, fmt.Errorf("tryton poll %s: %w", c.m.name, err)
	}
	if err := c.rpc.call(ctx, "model."+c.m.name+".search_read", []any{created, 0, fetch, [][]string{{"create_date", "ASC"}, {"id", "ASC"}}, c.m.read, c.ctx()}, &b); err != nil {
		return connectors.Page{}, fmt.Errorf("tryton poll %s: %w", c.m.name, err)
	}
	// A stream cut at fetch may hold records past those it returned; the
	// merge may only use what lies before the cut of each full stream.
	var horizon time.Time
	for _, s := range [][]map[string]any{a, b} {
		if len(s) == fetch {
			if t := stamp(s[len(s)-1]); horizon.IsZero() || t.Before(horizon) {
				horizon = t
			}
		}
	}
	all := append(a, b...)
	sort.SliceStable(all, func(i, j int) bool {
		ti, tj := stamp(all[i]), stamp(all[j])
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return intOf(all[i]["id"]) < intOf(all[j]["id"])
	})
	var picked []map[string]any
	more := false
	for _, r := range all {
		t := stamp(r)
		if from.taken(strconv.FormatInt(intOf(r["id"]), 10), t) {
			continue
		}
		if len(picked) == limit || (!horizon.IsZero() && t.After(horizon)) {
			more = true
			break
		}
		picked = append(picked, r)
	}
	page := connectors.Page{More: more}
	if len(picked) == 0 {
		return page, nil
	}
	if page.Entities, err = c.entities(ctx, picked); err != nil {
		return connectors.Page{}, err
	}
	next := cursor{T: from.T, Seen: map[string]int64{}}
	for id, at := range from.Seen {
		next.Seen[id] = at
	}
	for _, r := range picked {
		t := stamp(r)
		if t.After(next.T) {
			next.T = t
		}
		next.Seen[strconv.FormatInt(intOf(r["id"]), 10)] = t.UnixMicro()
	}
	floor := next.T.Add(-lookBack).UnixMicro()
	for id, at := range next.Seen {
		if at < floor {
			delete(next.Seen, id)
		}
	}
	b2, err := json.Marshal(next)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("tryton poll cursor: %w", err)
	}
	page.Cursor = string(b2)
	return page, nil
}
