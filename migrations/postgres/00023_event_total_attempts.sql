-- +goose Up
-- total_attempts counts every try, across a person's retries (see the
-- SQLite migration).
ALTER TABLE sync_events ADD COLUMN total_attempts INTEGER NOT NULL DEFAULT 0;
UPDATE sync_events SET total_attempts = attempts;

-- +goose Down
ALTER TABLE sync_events DROP COLUMN total_attempts;
