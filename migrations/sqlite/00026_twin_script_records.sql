-- +goose Up
-- What the scripts produced when a twin's last event in a direction was
-- applied (issue 16): the incoming script's target fields for the replica
-- it ran on, and the outgoing script's result for the source's base. The
-- merge and the source-base rule compare against it instead of running the
-- scripts again per change. NULL: nothing recorded; the engine runs them.
ALTER TABLE twins ADD COLUMN scripts_ab TEXT;
ALTER TABLE twins ADD COLUMN scripts_ba TEXT;

-- +goose Down
ALTER TABLE twins DROP COLUMN scripts_ba;
ALTER TABLE twins DROP COLUMN scripts_ab;
