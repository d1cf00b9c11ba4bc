package store

import (
	"context"
	"fmt"
)

// UnlinkedPair is how an event of an unlinked pair names it, as the audit
// entry of the unlink does.
func UnlinkedPair(t Twin) string {
	return fmt.Sprintf("twin %d (a %s, b %s)", t.ID, t.EntityID(SideA), t.EntityID(SideB))
}

// UnlinkTwin forgets a pair (a person's unlink) but keeps its events as
// history, marked with the pair they belonged to, in one transaction:
// events still waiting (queued, failed, conflict) are skipped, since there
// is no pair left to apply them to, and lose any claim, so a worker that
// holds one finds its claim lost and writes nothing.
func (s *Store) UnlinkTwin(ctx context.Context, id int64) (Twin, error) {
	var t Twin
	err := s.Tx(ctx, func(tx *Store) error {
		if err := tx.q(ctx).First(&t, id).Error; err != nil {
			return wrap(fmt.Sprintf("twin %d", id), err)
		}
		pair := UnlinkedPair(t)
		now := tx.now()
		if err := tx.q(ctx).Model(&SyncEvent{}).Where("twin_id = ? AND status IN ?", id, []string{StatusQueued, StatusFailed, StatusConflict}).
			Updates(map[string]any{"status": StatusSkipped, "last_error": "skipped: the pair was unlinked",
				"claimed_by": nil, "lease_until": nil, "updated_at": now}).Error; err != nil {
			return wrap("unlink", err)
		}
		if err := tx.q(ctx).Model(&SyncEvent{}).Where("twin_id = ?", id).
			Update("unlinked_pair", pair).Error; err != nil {
			return wrap("unlink", err)
		}
		return wrap("unlink", tx.q(ctx).Delete(&Twin{}, id).Error)
	})
	return t, err
}
