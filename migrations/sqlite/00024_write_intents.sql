-- +goose Up
-- A write Duplex is about to make to one side of a twin, recorded before it
-- is made (engine/intent.go): a poll that reads the write before its batch
-- is recorded knows it for Duplex's own, and a retry after a crash between
-- a create and its record completes the twin from it. Rows go when their
-- event is recorded; echo=0 once a person's change of that side was taken
-- in (the expected state is no longer the side's).
CREATE TABLE write_intents (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    twin_id         INTEGER NOT NULL REFERENCES twins (id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL,
    connection_id   INTEGER NOT NULL,
    system_id       INTEGER NOT NULL,
    side            TEXT    NOT NULL CHECK (side IN ('a', 'b')),
    action          TEXT    NOT NULL,
    entity_id       TEXT    NOT NULL DEFAULT '',
    correlation_key TEXT    NOT NULL DEFAULT '',
    expected        TEXT    NOT NULL,
    partial         BOOLEAN NOT NULL DEFAULT 0,
    comments        TEXT    NOT NULL DEFAULT '[]',
    files           INTEGER NOT NULL DEFAULT 0,
    echo            BOOLEAN NOT NULL DEFAULT 1,
    created_at      DATETIME NOT NULL
);
CREATE INDEX write_intents_system ON write_intents (system_id, created_at);
CREATE INDEX write_intents_event ON write_intents (event_id);
CREATE INDEX write_intents_twin ON write_intents (twin_id, side);

-- +goose Down
DROP TABLE write_intents;
