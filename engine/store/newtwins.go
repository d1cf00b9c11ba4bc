package store

import (
	"context"
	"strings"
)

// NewTwinRow is one new entity for NewTwins: its connection, its id on side Side and, when
// Sent is not nil, the replica queued for it in direction Dir.
type NewTwinRow struct {
	Conn int64
	Side Side
	ID   string
	Dir  Direction
	Sent *string
}

// newTwinsChunk bounds one insert's rows (8 arguments each), well under
// SQLite's and PostgreSQL's limits on bound arguments.
const newTwinsChunk = 500

// NewTwins is NewTwin for many entities: one multi-row
// insert per newTwinsChunk rows instead of one per entity (a backfill's
// page). It returns the twins created, by row index; a row whose twin
// exists already (the unique index decides) is absent, nothing written for
// it, and the caller takes the general path for it.
func (s *Store) NewTwins(ctx context.Context, rows []NewTwinRow) (map[int]Twin, error) {
	out := make(map[int]Twin, len(rows))
	for start := 0; start < len(rows); start += newTwinsChunk {
		if err := s.newTwins(ctx, rows[start:min(len(rows), start+newTwinsChunk)], start, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) newTwins(ctx context.Context, rows []NewTwinRow, offset int, out map[int]Twin) error {
	now := s.now()
	var q strings.Builder
	q.WriteString(`INSERT INTO twins (connection_id, a_id, b_id, sent_ab, sent_ba, comment_links, origin, created_at, updated_at) VALUES `)
	args := make([]any, 0, 8*len(rows))
	made := make([]Twin, len(rows))
	at := make(map[twinRowKey]int, len(rows))
	for i, r := range rows {
		t := Twin{ConnectionID: r.Conn, CommentLinks: "{}", Origin: r.Side, CreatedAt: now, UpdatedAt: now}
		t.SetEntityID(r.Side, r.ID)
		if r.Sent != nil {
			t.SetSent(r.Dir, *r.Sent)
		}
		made[i] = t
		at[twinRowKey{r.Conn, r.Side, r.ID}] = i
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, '{}', ?, ?, ?)")
		args = append(args, r.Conn, t.AID, t.BID, t.SentAB, t.SentBA, string(r.Side), now, now)
	}
	q.WriteString(" ON CONFLICT DO NOTHING RETURNING id, connection_id, a_id, b_id")
	res, err := s.query(ctx, q.String(), args...)
	if err != nil {
		return wrap("create twins", err)
	}
	defer res.Close()
	for res.Next() {
		var id, conn int64
		var a, b *string
		if err := res.Scan(&id, &conn, &a, &b); err != nil {
			return wrap("create twins", err)
		}
		// A new twin holds the id of its origin side only.
		for _, k := range []twinRowKey{{conn, SideA, deref(a)}, {conn, SideB, deref(b)}} {
			if i, ok := at[k]; ok && k.id != "" {
				t := made[i]
				t.ID = id
				out[offset+i] = t
			}
		}
	}
	return wrap("create twins", res.Err())
}

type twinRowKey struct {
	conn int64
	side Side
	id   string
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// QueuedEvents counts a connection's queued events, up to limit (the count
// stops there, so a long queue costs no more than limit rows).
func (s *Store) QueuedEvents(ctx context.Context, connID int64, limit int) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM sync_events WHERE status = ? AND connection_id = ? LIMIT ?) q`,
		StatusQueued, connID, limit).Scan(&n)
	return n, wrap("queued events", err)
}
