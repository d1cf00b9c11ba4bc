-- +goose Up
-- A per-system request budget (token bucket); 0 means unlimited.
ALTER TABLE systems ADD COLUMN rate_per_second REAL NOT NULL DEFAULT 0;
ALTER TABLE systems ADD COLUMN rate_burst INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE systems DROP COLUMN rate_burst;
ALTER TABLE systems DROP COLUMN rate_per_second;
