-- +goose Up
-- This store's deployment id (engine/corrkey.go): a random name, made once
-- here, that the correlation keys of the entities Duplex creates carry, so
-- that two Duplex deployments (or one reinstalled on a new, empty store)
-- writing to one remote system never find each other's entities by key.
-- A backup copies it (the same deployment); `duplex export` does not.
-- legacy_twin_max: the twins made before this migration, whose creates
-- used keys without the id (duplex:<connection>:<twin>), keep them.
CREATE TABLE deployment (
    one             INTEGER PRIMARY KEY CHECK (one = 1),
    id              TEXT    NOT NULL,
    legacy_twin_max BIGINT  NOT NULL
);
INSERT INTO deployment (one, id, legacy_twin_max)
SELECT 1, substr(replace(gen_random_uuid()::text, '-', ''), 1, 12), COALESCE((SELECT MAX(id) FROM twins), 0);

-- +goose Down
DROP TABLE deployment;
