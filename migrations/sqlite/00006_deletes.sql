-- +goose Up
-- "" for a sync, "delete" for an entity deleted at the source.
ALTER TABLE sync_events ADD COLUMN action TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE sync_events DROP COLUMN action;
