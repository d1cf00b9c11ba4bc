package store

import "context"

// RecentSynced returns up to limit of a connection's applied (done) sync
// events of one direction, newest first: the changes an impact preview
// replays. Deletions are left out (no script runs on them).
func (s *Store) RecentSynced(ctx context.Context, connID int64, d Direction, limit int) ([]SyncEvent, error) {
	var out []SyncEvent
	err := s.q(ctx).Where("connection_id = ? AND direction = ? AND status = ? AND action = ''", connID, d, StatusDone).
		Order("id DESC").Limit(limit).Find(&out).Error
	return out, wrap("recent synced events", err)
}
