-- +goose Up
-- A person's retry puts attempts back to 0 (the engine's retry budget starts
-- over); total_attempts keeps counting every try, so a failed event shows
-- its real attempt count (issue 19). Earlier events start from attempts.
ALTER TABLE sync_events ADD COLUMN total_attempts INTEGER NOT NULL DEFAULT 0;
UPDATE sync_events SET total_attempts = attempts;

-- +goose Down
ALTER TABLE sync_events DROP COLUMN total_attempts;
