-- +goose Up
-- Alerts (internal/alerts): one row per time a connection or system started
-- failing. At most one open alert per subject and kind (the partial unique
-- index), so every process may evaluate and only the insert that wins opens
-- it. pending is the notice still to send ('open', 'resolved' or ''); a
-- process takes it with claimed_by and lease_until, as for events.
CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subject          TEXT    NOT NULL,
    connection_id    INTEGER REFERENCES connections (id) ON DELETE CASCADE,
    system_id        INTEGER REFERENCES systems (id) ON DELETE CASCADE,
    team_id          INTEGER NOT NULL DEFAULT 0,
    name             TEXT    NOT NULL DEFAULT '',
    kind             TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('open', 'resolved')),
    detail           TEXT    NOT NULL DEFAULT '',
    opened_at        DATETIME NOT NULL,
    resolved_at      DATETIME,
    notified_at      DATETIME,
    last_notified_at DATETIME,
    pending          TEXT    NOT NULL DEFAULT '',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  DATETIME NOT NULL,
    last_error       TEXT    NOT NULL DEFAULT '',
    claimed_by       TEXT,
    lease_until      DATETIME
);
CREATE UNIQUE INDEX alerts_open ON alerts (subject, kind) WHERE state = 'open';
CREATE INDEX alerts_pending ON alerts (pending, next_attempt_at) WHERE pending <> '';
CREATE INDEX alerts_team ON alerts (team_id, id);

-- The health of each system's polling, written by the process that polls it:
-- failing_since is the first failed poll of the current run of failures
-- (NULL once a poll succeeds).
CREATE TABLE poll_status (
    system_id     INTEGER PRIMARY KEY REFERENCES systems (id) ON DELETE CASCADE,
    failing_since DATETIME,
    failures      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT    NOT NULL DEFAULT '',
    last_ok_at    DATETIME,
    updated_at    DATETIME NOT NULL
);

-- +goose Down
DROP TABLE poll_status;
DROP TABLE alerts;
