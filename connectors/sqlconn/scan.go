package sqlconn

import (
	"context"
	"fmt"

	"github.com/duplexsync/duplex/connectors"
)

// Scan lists every row in id order, at most limit per call (limit <= 0
// means 100), each with its comments: what a backfill ("sync existing")
// reads. It walks the id column (the primary key), where Changes orders by
// the updated column and so sorts the whole table for every page when that
// column has no index (most of a 100,000-row backfill's read time). cursor
// is the last id read, "" from the start; the returned Cursor is the one to
// pass next, and More tells whether rows remain after it.
func (c *conn) Scan(ctx context.Context, cursor string, limit int) (connectors.Page, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	q := c.q.selectAll + " WHERE " + c.updQ + " IS NOT NULL"
	var args []any
	if cursor != "" {
		v, ok := parseID(cursor, c.idInt)
		if !ok {
			return connectors.Page{}, fmt.Errorf("sqlconn %s: %w: scan cursor %q is not an integer", c.name, connectors.ErrInvalid, cursor)
		}
		q += " AND " + c.idQ + " > ?"
		args = append(args, v)
	}
	q += " ORDER BY " + c.idQ + " LIMIT ?"
	args = append(args, int64(limit+1)) // one more than used, so that More is exact
	rows, err := c.db.QueryContext(ctx, c.d.rebind(q), args...)
	if err != nil {
		return connectors.Page{}, c.wrap("scan", err)
	}
	var ents []connectors.Entity
	for rows.Next() {
		e, _, err := c.scanEntity(rows)
		if err != nil {
			rows.Close()
			return connectors.Page{}, c.wrap("scan", err)
		}
		ents = append(ents, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return connectors.Page{}, c.wrap("scan", err)
	}
	page := connectors.Page{Cursor: cursor, More: len(ents) > limit}
	ents = ents[:min(len(ents), limit)]
	if len(ents) == 0 {
		return page, nil
	}
	page.Cursor = ents[len(ents)-1].ID
	if c.comments {
		found := make(map[string]*connectors.Entity, len(ents))
		ids := make([]string, len(ents))
		for i := range ents {
			found[ents[i].ID], ids[i] = &ents[i], ents[i].ID
		}
		for start := 0; start < len(ids); start += getManyChunk {
			if err := c.commentsOfMany(ctx, ids[start:min(len(ids), start+getManyChunk)], found); err != nil {
				return connectors.Page{}, err
			}
		}
	}
	page.Entities = ents
	return page, nil
}
