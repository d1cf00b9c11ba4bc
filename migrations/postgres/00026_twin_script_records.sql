-- +goose Up
-- What the scripts produced when a twin's last event in a direction was
-- applied (see the SQLite migration).
ALTER TABLE twins ADD COLUMN scripts_ab TEXT;
ALTER TABLE twins ADD COLUMN scripts_ba TEXT;

-- +goose Down
ALTER TABLE twins DROP COLUMN scripts_ba;
ALTER TABLE twins DROP COLUMN scripts_ab;
