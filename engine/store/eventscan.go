package store

import (
	"context"
	"database/sql"
)

// The worker's claim reads its events with a raw statement and an explicit
// column list, as the twin reads do (twinscan.go): gorm's scan of the
// claim's rows was about 5 % of the server's allocations under make bench
// (reflection per column and row), with the same values.
const eventColumns = `e.id, e.connection_id, e.twin_id, e.direction, e.source_id, e.action, e.replica, e.previous, e.status,
	e.attempts, e.total_attempts, e.next_attempt_at, e.last_error, e.log, e.source_fields, e.source_updated_at,
	e.conflicts, e.resolution, e.unlinked_pair, e.partial, e.created_at, e.updated_at, e.claimed_by`

func scanClaimRow(sc interface{ Scan(...any) error }, r *claimRow) error {
	var (
		strs      [7]sql.NullString // previous, source_fields, conflicts, resolution, unlinked_pair, partial, claimed_by
		srcAt     sql.NullTime
		direction string
	)
	e := &r.SyncEvent
	if err := sc.Scan(&e.ID, &e.ConnectionID, &e.TwinID, &direction, &e.SourceID, &e.Action, &e.Replica, &strs[0], &e.Status,
		&e.Attempts, &e.TotalAttempts, &e.NextAttemptAt, &e.LastError, &e.Log, &strs[1], &srcAt,
		&strs[2], &strs[3], &strs[4], &strs[5], &e.CreatedAt, &e.UpdatedAt, &strs[6]); err != nil {
		return err
	}
	e.Direction = Direction(direction)
	vals := new([7]string) // one allocation for the set ones, not one a column
	for i, p := range []**string{&e.Previous, &e.SourceFields, &e.Conflicts, &e.Resolution, &e.UnlinkedPair, &e.Partial, &r.ClaimedBy} {
		if strs[i].Valid {
			vals[i] = strs[i].String
			*p = &vals[i]
		}
	}
	if srcAt.Valid {
		t := srcAt.Time
		e.SourceUpdatedAt = &t
	}
	return nil
}

// queryClaimRows runs a claim's read of events.
func (s *Store) queryClaimRows(ctx context.Context, q string, args ...any) ([]claimRow, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, wrap("claim events", err)
	}
	defer rows.Close()
	var out []claimRow
	for rows.Next() {
		var r claimRow
		if err := scanClaimRow(rows, &r); err != nil {
			return nil, wrap("claim events", err)
		}
		out = append(out, r)
	}
	return out, wrap("claim events", rows.Err())
}
