package store

import (
	"context"
	"time"
)

// Intent is a write Duplex is about to make to one side of a twin, recorded
// before it is made: what the side is expected to hold once the write is
// through. A change read from that side which matches an open intent is
// Duplex's own write even when its batch is not recorded yet (a poll in
// between, or a crash in between), and a create whose record was lost is
// completed from it (engine/intent.go).
type Intent struct {
	ID             int64  `gorm:"primaryKey"`
	TwinID         int64  // the twin written for
	EventID        int64  // the event whose apply writes; its record settles the intent
	ConnectionID   int64  //
	SystemID       int64  // the system written to
	Side           Side   // the side written to
	Action         string // create or update
	EntityID       string // the entity written; "" for a create before its answer
	CorrelationKey string // a create's correlation key
	// Expected is the side's state once the write is through (the engine's
	// snapshot JSON: fields, comment ids, attachment ids). Partial: its
	// fields are only those a create sends (the rest is the system's).
	Expected  string
	Partial   bool
	Comments  string // JSON list of the bodies of the comments the write adds
	Files     int    // how many attachments the write adds
	Echo      bool   // false once a person's change of the side was taken in
	CreatedAt time.Time
}

// TableName keeps gorm off its plural guess.
func (Intent) TableName() string { return "write_intents" }

// AddIntent records an intent; it must be committed before the write.
func (s *Store) AddIntent(ctx context.Context, in *Intent) error {
	if in.CreatedAt.IsZero() {
		in.CreatedAt = s.now()
	}
	// Raw SQL: one per write on the hot path (raw.go).
	err := s.queryRow(ctx, `INSERT INTO write_intents (twin_id, event_id, connection_id, system_id, side, action, entity_id,
		correlation_key, expected, partial, comments, files, echo, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		in.TwinID, in.EventID, in.ConnectionID, in.SystemID, string(in.Side), in.Action, in.EntityID, in.CorrelationKey,
		in.Expected, in.Partial, in.Comments, in.Files, in.Echo, in.CreatedAt).Scan(&in.ID)
	return wrap("record intent", err)
}

// IntentCreated notes a create's answer: the twin gets the new entity's id
// and the intent the entity as created, in one transaction, so a crash
// leaves either neither or both.
func (s *Store) IntentCreated(ctx context.Context, intentID, twinID int64, side Side, entityID, expected string) error {
	return s.Tx(ctx, func(tx *Store) error {
		if err := tx.SetTwinEntityID(ctx, twinID, side, entityID); err != nil {
			return err
		}
		_, err := tx.exec(ctx, "UPDATE write_intents SET entity_id = ?, expected = ?, partial = ? WHERE id = ?",
			entityID, expected, false, intentID)
		return wrap("record intent", err)
	})
}

// OpenIntents lists the unsettled intents on a system recorded since the
// given time (superseded ones too: their comments are still Duplex's).
func (s *Store) OpenIntents(ctx context.Context, systemID int64, since time.Time) ([]Intent, error) {
	var out []Intent
	err := s.q(ctx).Where("system_id = ? AND created_at > ?", systemID, since).Order("id").Find(&out).Error
	return out, wrap("intents", err)
}

// PendingCreate returns the newest create intent for a twin's side whose
// entity was created (its id known) but whose event is not recorded yet,
// or nil. Its age does not matter: the entity is Duplex's either way.
func (s *Store) PendingCreate(ctx context.Context, twinID int64, side Side) (*Intent, error) {
	var out []Intent
	err := s.q(ctx).Where("twin_id = ? AND side = ? AND action = ? AND entity_id <> ''", twinID, side, "create").
		Order("id DESC").Limit(1).Find(&out).Error
	if err != nil || len(out) == 0 {
		return nil, wrap("intents", err)
	}
	return &out[0], nil
}

// SupersedeIntents stops the listed intents from counting as echoes: a
// person's change of their side was taken in, so the state they expect is
// no longer the side's, and a person changing it back to that state later
// must not be taken for Duplex's write. A create intent still completes its
// twin after a crash.
func (s *Store) SupersedeIntents(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return wrap("supersede intents", s.q(ctx).Model(&Intent{}).Where("id IN ?", ids).Update("echo", false).Error)
}

// SettleIntents removes the intents of events whose result is recorded:
// their writes are accounted for in the twins now. Run in the record's
// transaction.
func (s *Store) SettleIntents(ctx context.Context, eventIDs []int64) error {
	if len(eventIDs) == 0 {
		return nil
	}
	return wrap("settle intents", s.q(ctx).Where("event_id IN ?", eventIDs).Delete(&Intent{}).Error)
}

// DeleteIntentsBefore removes intents older than t (events that never
// settled: failed for good, skipped by a person) and returns how many.
func (s *Store) DeleteIntentsBefore(ctx context.Context, t time.Time) (int64, error) {
	res := s.q(ctx).Where("created_at < ?", t).Delete(&Intent{})
	return res.RowsAffected, wrap("expire intents", res.Error)
}
