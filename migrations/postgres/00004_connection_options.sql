-- +goose Up
-- Lifecycle options of a connection, JSON: {"on_unmatch": "keep" | "unlink"}.
ALTER TABLE connections ADD COLUMN options TEXT NOT NULL DEFAULT '';
-- The side whose change created the twin ('' when linked by hand).
ALTER TABLE twins ADD COLUMN origin TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE twins DROP COLUMN origin;
ALTER TABLE connections DROP COLUMN options;
