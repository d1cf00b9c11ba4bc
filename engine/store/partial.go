package store

import "context"

// SetEventPartial records what an event's refused attempt wrote to its
// target (SyncEvent.Partial). It is written as soon as the refusal is known,
// apart from the event's batch record, which leaves the column alone.
func (s *Store) SetEventPartial(ctx context.Context, id int64, partial string) error {
	_, err := s.exec(ctx, `UPDATE sync_events SET partial = ? WHERE id = ?`, partial, id)
	return wrap("save partial apply", err)
}
