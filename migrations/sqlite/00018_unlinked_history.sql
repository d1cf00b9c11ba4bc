-- +goose Up
-- Unlinking a pair through the API keeps its events (history in /api/events
-- and the counts) instead of deleting them with the twin: sync_events.twin_id
-- loses its foreign key (SQLite cannot drop one, so the table is rebuilt),
-- and unlinked_pair says which pair an event belonged to ("twin 7 (a 12,
-- b ENG-4)"). Engine unlinks still delete the twin's events explicitly
-- (store.DeleteTwin); deleting a connection still deletes all of them.
CREATE TABLE sync_events_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id     INTEGER NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    twin_id           INTEGER NOT NULL,
    direction         TEXT    NOT NULL CHECK (direction IN ('a_to_b', 'b_to_a')),
    source_id         TEXT    NOT NULL,
    replica           TEXT    NOT NULL,
    previous          TEXT,
    status            TEXT    NOT NULL DEFAULT 'queued',
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   DATETIME NOT NULL,
    last_error        TEXT    NOT NULL DEFAULT '',
    log               TEXT    NOT NULL DEFAULT '',
    created_at        DATETIME NOT NULL,
    updated_at        DATETIME NOT NULL,
    source_fields     TEXT,
    source_updated_at DATETIME,
    conflicts         TEXT,
    resolution        TEXT,
    action            TEXT    NOT NULL DEFAULT '',
    claimed_by        TEXT,
    lease_until       DATETIME,
    unlinked_pair     TEXT
);
INSERT INTO sync_events_new (id, connection_id, twin_id, direction, source_id, replica, previous, status, attempts,
    next_attempt_at, last_error, log, created_at, updated_at, source_fields, source_updated_at, conflicts, resolution,
    action, claimed_by, lease_until)
SELECT id, connection_id, twin_id, direction, source_id, replica, previous, status, attempts,
    next_attempt_at, last_error, log, created_at, updated_at, source_fields, source_updated_at, conflicts, resolution,
    action, claimed_by, lease_until FROM sync_events;
DROP TABLE sync_events;
ALTER TABLE sync_events_new RENAME TO sync_events;
CREATE INDEX sync_events_due ON sync_events (status, next_attempt_at, id);
CREATE INDEX sync_events_twin ON sync_events (twin_id, status, id);
CREATE INDEX sync_events_connection ON sync_events (connection_id, status);
CREATE INDEX sync_events_queue ON sync_events (status, id);
CREATE INDEX sync_events_claimed ON sync_events (claimed_by) WHERE claimed_by IS NOT NULL;

-- +goose Down
DELETE FROM sync_events WHERE twin_id NOT IN (SELECT id FROM twins);
CREATE TABLE sync_events_old (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id   INTEGER NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    twin_id         INTEGER NOT NULL REFERENCES twins (id) ON DELETE CASCADE,
    direction       TEXT    NOT NULL CHECK (direction IN ('a_to_b', 'b_to_a')),
    source_id       TEXT    NOT NULL,
    replica         TEXT    NOT NULL,
    previous        TEXT,
    status          TEXT    NOT NULL DEFAULT 'queued',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DATETIME NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    log             TEXT    NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL,
    source_fields TEXT, source_updated_at DATETIME, conflicts TEXT, resolution TEXT,
    action TEXT NOT NULL DEFAULT '', claimed_by TEXT, lease_until DATETIME
);
INSERT INTO sync_events_old SELECT id, connection_id, twin_id, direction, source_id, replica, previous, status, attempts,
    next_attempt_at, last_error, log, created_at, updated_at, source_fields, source_updated_at, conflicts, resolution,
    action, claimed_by, lease_until FROM sync_events;
DROP TABLE sync_events;
ALTER TABLE sync_events_old RENAME TO sync_events;
CREATE INDEX sync_events_due ON sync_events (status, next_attempt_at, id);
CREATE INDEX sync_events_twin ON sync_events (twin_id, status, id);
CREATE INDEX sync_events_connection ON sync_events (connection_id, status);
CREATE INDEX sync_events_queue ON sync_events (status, id);
CREATE INDEX sync_events_claimed ON sync_events (claimed_by) WHERE claimed_by IS NOT NULL;
