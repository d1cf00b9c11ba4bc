-- +goose Up
CREATE TABLE systems (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL UNIQUE,
    kind             TEXT    NOT NULL,
    settings         TEXT    NOT NULL DEFAULT '{}',
    secrets          BLOB,
    poll_interval_ms INTEGER NOT NULL DEFAULT 2000,
    cursor           TEXT    NOT NULL DEFAULT '',
    created_at       DATETIME NOT NULL,
    updated_at       DATETIME NOT NULL
);

CREATE TABLE connections (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    system_a_id INTEGER NOT NULL REFERENCES systems (id),
    system_b_id INTEGER NOT NULL REFERENCES systems (id),
    active      BOOLEAN NOT NULL DEFAULT 0,
    template    TEXT    NOT NULL DEFAULT '',
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL
);

-- Every save of a trigger or script is a new row; the highest version is current.
CREATE TABLE script_versions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id INTEGER NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    side          TEXT    NOT NULL CHECK (side IN ('a', 'b')),
    kind          TEXT    NOT NULL CHECK (kind IN ('trigger', 'outgoing', 'incoming')),
    version       INTEGER NOT NULL,
    source        TEXT    NOT NULL,
    author        TEXT    NOT NULL DEFAULT '',
    created_at    DATETIME NOT NULL,
    UNIQUE (connection_id, side, kind, version)
);

-- A twin is created when the first change of an entity is accepted, before the
-- other side exists (b_id or a_id still NULL): recording intent first is what
-- makes "two changes for one new entity" end in one counterpart.
CREATE TABLE twins (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id INTEGER NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    a_id          TEXT,
    b_id          TEXT,
    a_hash        TEXT    NOT NULL DEFAULT '',
    b_hash        TEXT    NOT NULL DEFAULT '',
    sent_ab       TEXT,
    sent_ba       TEXT,
    comment_links TEXT    NOT NULL DEFAULT '{}',
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL,
    UNIQUE (connection_id, a_id),
    UNIQUE (connection_id, b_id)
);

CREATE TABLE sync_events (
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
    updated_at      DATETIME NOT NULL
);
CREATE INDEX sync_events_due ON sync_events (status, next_attempt_at, id);
CREATE INDEX sync_events_twin ON sync_events (twin_id, status, id);
CREATE INDEX sync_events_connection ON sync_events (connection_id, status);

CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            DATETIME NOT NULL,
    actor         TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    connection_id INTEGER,
    twin_id       INTEGER,
    event_id      INTEGER,
    detail        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_connection ON audit_log (connection_id, id);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE sync_events;
DROP TABLE twins;
DROP TABLE script_versions;
DROP TABLE connections;
DROP TABLE systems;
