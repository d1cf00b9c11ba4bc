package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// Twins are read on every change (intake's page and re-read, the worker's
// batch): raw statements with an explicit column list instead of gorm's
// reflection and callbacks (see raw.go), with the same values.
const twinSelect = `SELECT id, connection_id, a_id, b_id, a_hash, b_hash, sent_ab, sent_ba, comment_links, origin,
	base_a, base_b, a_written_at, b_written_at, created_at, updated_at, scripts_ab, scripts_ba FROM twins `

func scanTwin(sc interface{ Scan(...any) error }, t *Twin) error {
	var (
		strs   [8]sql.NullString // a_id, b_id, sent_ab, sent_ba, base_a, base_b, scripts_ab, scripts_ba
		times  [2]sql.NullTime   // a_written_at, b_written_at
		origin string
	)
	if err := sc.Scan(&t.ID, &t.ConnectionID, &strs[0], &strs[1], &t.AHash, &t.BHash, &strs[2], &strs[3], &t.CommentLinks, &origin,
		&strs[4], &strs[5], &times[0], &times[1], &t.CreatedAt, &t.UpdatedAt, &strs[6], &strs[7]); err != nil {
		return err
	}
	t.Origin = Side(origin)
	// The pointers point into one array each (one allocation, not one a
	// column): a twin is read per event.
	vals := new([8]string)
	for i, p := range []**string{&t.AID, &t.BID, &t.SentAB, &t.SentBA, &t.BaseA, &t.BaseB, &t.ScriptsAB, &t.ScriptsBA} {
		if strs[i].Valid {
			vals[i] = strs[i].String
			*p = &vals[i]
		}
	}
	if times[0].Valid || times[1].Valid {
		tms := new([2]time.Time)
		for i, p := range []**time.Time{&t.AWrittenAt, &t.BWrittenAt} {
			if times[i].Valid {
				tms[i] = times[i].Time
				*p = &tms[i]
			}
		}
	}
	return nil
}

// queryTwins runs a twin query (where: the query after FROM twins) and
// calls each for every row.
func (s *Store) queryTwins(ctx context.Context, what, where string, each func(*Twin), args ...any) error {
	return s.queryTwinsSQL(ctx, what, twinSelect+where, each, args...)
}

// queryTwinsSQL is queryTwins with the whole query, whose columns are
// twinSelect's.
func (s *Store) queryTwinsSQL(ctx context.Context, what, query string, each func(*Twin), args ...any) error {
	rows, err := s.readQuery(ctx, query, args...)
	if err != nil {
		return wrap(what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var t Twin
		if err := scanTwin(rows, &t); err != nil {
			return wrap(what, err)
		}
		each(&t)
	}
	return wrap(what, rows.Err())
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// twinBy is TwinBy's query.
func (s *Store) twinBy(ctx context.Context, connID int64, side Side, id string) (Twin, error) {
	var t Twin
	err := scanTwin(s.queryRow(ctx, twinSelect+"WHERE connection_id = ? AND "+string(side)+"_id = ? ORDER BY id LIMIT 1", connID, id), &t)
	if errors.Is(err, sql.ErrNoRows) {
		return Twin{}, wrap("twin", ErrNotFound)
	}
	return t, wrap("twin", err)
}
