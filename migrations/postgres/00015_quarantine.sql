-- +goose Up
-- Quarantine (engine/quarantine.go): a connection whose scripts hit a limit
-- (deadline, memory, a killed sandbox worker) too often is paused with a
-- reason. limit_hits counts such runs in the window that started at
-- limit_since; activating the connection clears all four.
ALTER TABLE connections ADD COLUMN paused_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN quarantined_at TIMESTAMPTZ;
ALTER TABLE connections ADD COLUMN limit_hits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN limit_since TIMESTAMPTZ;

-- +goose Down
ALTER TABLE connections DROP COLUMN limit_since;
ALTER TABLE connections DROP COLUMN limit_hits;
ALTER TABLE connections DROP COLUMN quarantined_at;
ALTER TABLE connections DROP COLUMN paused_reason;
