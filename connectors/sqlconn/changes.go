package sqlconn

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// position is a keyset position in one ordered stream: the last (time, id)
// read. At is the time as the cursor keeps it: the column's own text when
// Text is set (SQLite, whose columns compare as text), else RFC 3339.
type position struct {
	At   string `json:"at"`
	Text bool   `json:"text,omitempty"`
	ID   string `json:"id"`
}

// cursorState is what a Changes cursor encodes: one position in the rows
// ordered by (updated, id) and one in the comments ordered by (created, id).
// A nil position means that stream has not been read yet.
type cursorState struct {
	V        int       `json:"v"`
	Rows     *position `json:"rows,omitempty"`
	Comments *position `json:"comments,omitempty"`
}

const cursorVersion = 1

func decodeCursor(s string) (cursorState, error) {
	var c cursorState
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("%w: cursor %q: %w", connectors.ErrInvalid, s, err)
	}
	if c.V != cursorVersion {
		return c, fmt.Errorf("%w: cursor %q: unknown version %d", connectors.ErrInvalid, s, c.V)
	}
	return c, nil
}

func (c cursorState) encode() string {
	if c.Rows == nil && c.Comments == nil {
		return ""
	}
	c.V = cursorVersion
	b, _ := json.Marshal(c)
	return string(b)
}

// event is one change read from a stream: a row whose updated column moved
// (ent set) or a new comment on entity id.
type event struct {
	pos position
	at  time.Time
	id  string
	ent *connectors.Entity
}

// Changes returns the entities whose row changed or that got a new comment
// after cursor, oldest first, at most limit of them (limit <= 0 means 100).
// Each stream is read with a keyset on (time, id), so rows sharing a
// timestamp are never skipped or repeated across pages. An entity changed
// several times within the page appears once. The returned Cursor is always
// the one to store ("" only while nothing has been read); More tells whether
// another change is already waiting after it.
func (c *conn) Changes(ctx context.Context, cursor string, limit int) (connectors.Page, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	cur, err := decodeCursor(cursor)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("sqlconn %s: %w", c.name, err)
	}
	// Changes younger than the settle time wait for the next call: a write
	// stamped just before this read may not be committed (visible) yet, or
	// may share the millisecond of a change read now; either way the
	// keyset would pass it for good. The cutoff is taken before reading, so
	// that everything older than it had time to commit.
	cutoff := time.Now().Add(-c.settle)
	// Each stream reads one more than it may use, so that More is exact.
	rows, err := c.readStream(ctx, cur.Rows, limit+1, c.idInt, c.st.first, c.st.after, c.scanRowEvent)
	if err != nil {
		return connectors.Page{}, c.wrap("changes", err)
	}
	var comms []event
	if c.comments {
		comms, err = c.readStream(ctx, cur.Comments, limit+1, c.cIDInt, c.st.cFirst, c.st.cAfter, scanCommentEvent)
		if err != nil {
			return connectors.Page{}, c.wrap("changes in comments", err)
		}
	}

	// Merge the two streams by time, rows first on a tie, and take at most
	// limit events; each stream's position moves to its last event taken.
	var taken []event
	i, j := 0, 0
	settling := false
	for len(taken) < limit && (i < len(rows) || j < len(comms)) {
		fromRows := j == len(comms) || i < len(rows) && !rows[i].at.After(comms[j].at)
		next := rows
		k := i
		if !fromRows {
			next, k = comms, j
		}
		if c.settle > 0 && !next[k].at.Before(cutoff) {
			settling = true
			break
		}
		if fromRows {
			cur.Rows = &rows[i].pos
			taken = append(taken, rows[i])
			i++
		} else {
			cur.Comments = &comms[j].pos
			taken = append(taken, comms[j])
			j++
		}
	}
	page := connectors.Page{
		Cursor: cur.encode(),
		More:   !settling && (i < len(rows) || j < len(comms)),
	}

	// One entity per id, in order of its first event; rows come loaded
	// (their comments read below, in one query a chunk), entities that
	// only got a comment are read now.
	seen := make(map[string]bool, len(taken))
	var loaded []int // page.Entities read from a row
	for _, ev := range taken {
		if seen[ev.id] {
			continue
		}
		var e connectors.Entity
		if ev.ent != nil {
			e = *ev.ent
			loaded = append(loaded, len(page.Entities))
		} else {
			e, err = c.Get(ctx, ev.id)
			if errors.Is(err, connectors.ErrNotFound) {
				continue // a comment on a row that is gone
			}
			if err != nil {
				return connectors.Page{}, err
			}
		}
		seen[ev.id] = true
		page.Entities = append(page.Entities, e)
	}
	if c.comments && len(loaded) > 0 {
		// One query for the page's comments, not one per row.
		found := make(map[string]*connectors.Entity, len(loaded))
		ids := make([]string, len(loaded))
		for k, i := range loaded {
			found[page.Entities[i].ID], ids[k] = &page.Entities[i], page.Entities[i].ID
		}
		for start := 0; start < len(ids); start += getManyChunk {
			if err := c.commentsOfMany(ctx, ids[start:min(len(ids), start+getManyChunk)], found); err != nil {
				return connectors.Page{}, err
			}
		}
	}
	return page, nil
}

// readStream reads up to limit events after pos (from the start if nil).
func (c *conn) readStream(ctx context.Context, pos *position, limit int, idInt bool,
	first, after *sql.Stmt, scan func(*sql.Rows) (event, error)) ([]event, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if pos == nil {
		rows, err = first.QueryContext(ctx, int64(limit))
	} else {
		var at any
		if at, err = c.atArg(*pos); err != nil {
			return nil, err
		}
		id, ok := parseID(pos.ID, idInt)
		if !ok {
			return nil, fmt.Errorf("%w: cursor id %q is not an integer", connectors.ErrInvalid, pos.ID)
		}
		rows, err = after.QueryContext(ctx, at, at, id, int64(limit))
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]event, 0, min(limit, 1024))
	for rows.Next() {
		ev, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// atArg is the time argument for a keyset query: text compared as text, or
// a time.Time for timestamp columns.
func (c *conn) atArg(p position) (any, error) {
	if p.Text {
		return p.At, nil
	}
	t, err := time.Parse(time.RFC3339Nano, p.At)
	if err != nil {
		return nil, fmt.Errorf("%w: cursor time %q: %w", connectors.ErrInvalid, p.At, err)
	}
	return t, nil
}

func (c *conn) scanRowEvent(r *sql.Rows) (event, error) {
	e, pos, err := c.scanEntity(r)
	if err != nil {
		return event{}, err
	}
	return event{pos: pos, at: e.UpdatedAt, id: e.ID, ent: &e}, nil
}

func scanCommentEvent(r *sql.Rows) (event, error) {
	var created, cid, ent any
	if err := r.Scan(&created, &cid, &ent); err != nil {
		return event{}, err
	}
	at, text, t := positionOf(created)
	return event{pos: position{At: at, Text: text, ID: idString(cid)}, at: t, id: idString(ent)}, nil
}
