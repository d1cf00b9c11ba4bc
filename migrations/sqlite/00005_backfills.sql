-- +goose Up
-- "Sync existing": a resumable walk over every entity of one side.
CREATE TABLE backfills (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id INTEGER NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    side          TEXT    NOT NULL CHECK (side IN ('a', 'b')),
    cursor        TEXT    NOT NULL DEFAULT '',
    scanned       INTEGER NOT NULL DEFAULT 0,
    queued        INTEGER NOT NULL DEFAULT 0,
    status        TEXT    NOT NULL DEFAULT 'running',
    last_error    TEXT    NOT NULL DEFAULT '',
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL
);
CREATE INDEX backfills_status ON backfills (status);

-- +goose Down
DROP TABLE backfills;
