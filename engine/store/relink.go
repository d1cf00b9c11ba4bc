package store

import (
	"context"
	"database/sql"
	"errors"
)

// twinColumns are the columns a remembered pair keeps (unlinked_twins has
// the same ones, plus unlinked_at).
const twinColumns = `id, connection_id, a_id, b_id, a_hash, b_hash, sent_ab, sent_ba, comment_links, origin,
	base_a, base_b, a_written_at, b_written_at, created_at, updated_at`

// RememberUnlinked keeps a twin's row before the engine unlinks it (an
// entity that stopped matching its trigger), so that a later match of the
// same entity restores the pair (RestoreUnlinked) instead of creating a
// second counterpart. An older memory of either entity is replaced.
func (s *Store) RememberUnlinked(ctx context.Context, id int64) error {
	if _, err := s.exec(ctx, `DELETE FROM unlinked_twins WHERE id = ? OR (connection_id, a_id) IN (SELECT connection_id, a_id FROM twins WHERE id = ?)
		OR (connection_id, b_id) IN (SELECT connection_id, b_id FROM twins WHERE id = ?)`, id, id, id); err != nil {
		return wrap("remember unlinked pair", err)
	}
	_, err := s.exec(ctx, `INSERT INTO unlinked_twins (`+twinColumns+`, unlinked_at)
		SELECT `+twinColumns+`, ? FROM twins WHERE id = ?`, s.now(), id)
	return wrap("remember unlinked pair", err)
}

// UnlinkedTwin reads the remembered pair of entity id on side side, if any.
func (s *Store) UnlinkedTwin(ctx context.Context, connID int64, side Side, id string) (Twin, bool, error) {
	var t Twin
	err := s.q(ctx).Table("unlinked_twins").Where("connection_id = ? AND "+string(side)+"_id = ?", connID, id).
		Order("unlinked_at DESC").Limit(1).Take(&t).Error
	if errors.Is(wrap("", err), ErrNotFound) {
		return Twin{}, false, nil
	}
	return t, err == nil, wrap("unlinked pair", err)
}

// RestoreUnlinked puts a remembered pair back among the twins, under its old
// id and with its old state (bases, echo hashes, comment links), and forgets
// the memory. ok=false: there is no such memory any more (restored by
// another intake meanwhile), or one of its entities is linked again in
// another pair (a person's link): nothing is restored then.
func (s *Store) RestoreUnlinked(ctx context.Context, twinID int64) (ok bool, err error) {
	var id int64
	err = s.queryRow(ctx, `INSERT INTO twins (`+twinColumns+`)
		SELECT `+twinColumns+` FROM unlinked_twins WHERE id = ? ON CONFLICT DO NOTHING RETURNING id`, twinID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap("restore unlinked pair", err)
	}
	_, err = s.exec(ctx, `DELETE FROM unlinked_twins WHERE id = ?`, twinID)
	return true, wrap("restore unlinked pair", err)
}
