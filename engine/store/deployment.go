package store

import (
	"context"
)

// Deployment names this store's Duplex deployment (migration 00031): ID is
// random, made once when the store was created or migrated to 00031, and
// the correlation keys of the entities this deployment creates carry it
// (engine/corrkey.go). A backup or restore of the store keeps it; config
// as code (`duplex export`/`apply`) never carries it to another store.
type Deployment struct {
	ID string
	// LegacyTwinMax is the highest twin id when the id was made: twins up
	// to it may have a create on the way under a key without the id.
	LegacyTwinMax int64
}

// TableName keeps gorm off its plural guess.
func (Deployment) TableName() string { return "deployment" }

// Deployment reads the store's deployment id.
func (s *Store) Deployment(ctx context.Context) (Deployment, error) {
	var d Deployment
	err := s.q(ctx).Select("id", "legacy_twin_max").Where("one = 1").Take(&d).Error
	return d, wrap("deployment", err)
}

// CreateKey returns the correlation key that the newest recorded create of
// a twin's side used, or "" when none is recorded: a retry of that create
// must look for its entity under the same key, whatever the key format of
// the code that retries.
func (s *Store) CreateKey(ctx context.Context, twinID int64, side Side) (string, error) {
	var keys []string
	err := s.q(ctx).Model(&Intent{}).Where("twin_id = ? AND side = ? AND action = ? AND correlation_key <> ''", twinID, side, "create").
		Order("id DESC").Limit(1).Pluck("correlation_key", &keys).Error
	if err != nil || len(keys) == 0 {
		return "", wrap("create key", err)
	}
	return keys[0], nil
}
