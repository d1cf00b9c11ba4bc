-- +goose Up
-- base_a/base_b: each side's fields as of the last sync (JSON), the reference
-- for "did this side change since"; *_written_at: when Duplex last wrote there.
ALTER TABLE twins ADD COLUMN base_a TEXT;
ALTER TABLE twins ADD COLUMN base_b TEXT;
ALTER TABLE twins ADD COLUMN a_written_at TIMESTAMPTZ;
ALTER TABLE twins ADD COLUMN b_written_at TIMESTAMPTZ;
-- The source entity's fields and change time when the event was queued.
ALTER TABLE sync_events ADD COLUMN source_fields TEXT;
ALTER TABLE sync_events ADD COLUMN source_updated_at TIMESTAMPTZ;
-- Conflicts waiting for a person, and the person's choices.
ALTER TABLE sync_events ADD COLUMN conflicts TEXT;
ALTER TABLE sync_events ADD COLUMN resolution TEXT;
-- {"default": "a" | "b" | "newest" | "manual", "fields": {"<field>": policy}}
ALTER TABLE connections ADD COLUMN conflict_policy TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE connections DROP COLUMN conflict_policy;
ALTER TABLE sync_events DROP COLUMN resolution;
ALTER TABLE sync_events DROP COLUMN conflicts;
ALTER TABLE sync_events DROP COLUMN source_updated_at;
ALTER TABLE sync_events DROP COLUMN source_fields;
ALTER TABLE twins DROP COLUMN b_written_at;
ALTER TABLE twins DROP COLUMN a_written_at;
ALTER TABLE twins DROP COLUMN base_b;
ALTER TABLE twins DROP COLUMN base_a;
