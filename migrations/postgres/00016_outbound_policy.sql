-- +goose Up
-- The organisation's outbound policy (internal/outbound): one row, the JSON
-- the org admin sets. The default has no allow rule: loopback, link-local,
-- metadata, private addresses and every SQLite file are refused. Systems of
-- an existing store that reach them fail with a named error (rule loopback,
-- sqlite-dir, ...) until an org admin allows them: docs/operations.md.
CREATE TABLE outbound_policy (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    policy     TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by TEXT        NOT NULL DEFAULT ''
);
INSERT INTO outbound_policy (id, policy, updated_at, updated_by)
    VALUES (1, '{"only_listed":false,"allow":[]}', now(), 'migration 00016');

-- +goose Down
DROP TABLE outbound_policy;
