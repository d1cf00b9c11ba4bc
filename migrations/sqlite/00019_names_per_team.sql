-- +goose NO TRANSACTION
-- +goose Up
-- Names of systems and connections are unique per team, not across the
-- organisation (issue 24): a 409 on a name another team uses told a team
-- admin that the name exists. SQLite cannot drop a column's UNIQUE, so both
-- tables are rebuilt. Other tables reference them (some ON DELETE CASCADE),
-- so foreign keys are off while they are (a DROP TABLE with them on would
-- delete every connection's scripts, twins and events): that needs a
-- migration outside goose's transaction, with one of its own. Run again
-- after a crash between its COMMIT and goose's version row, it rebuilds
-- the same tables once more. The AUTOINCREMENT counters are kept, so a
-- deleted system's id (its webhook URL) is never given to a new one.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TEMP TABLE seq_keep AS SELECT name, seq FROM sqlite_sequence WHERE name IN ('systems', 'connections');
CREATE TABLE systems_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    settings         TEXT    NOT NULL DEFAULT '{}',
    secrets          BLOB,
    poll_interval_ms INTEGER NOT NULL DEFAULT 2000,
    cursor           TEXT    NOT NULL DEFAULT '',
    created_at       DATETIME NOT NULL,
    updated_at       DATETIME NOT NULL,
    rate_per_second  REAL    NOT NULL DEFAULT 0,
    rate_burst       INTEGER NOT NULL DEFAULT 0,
    team_id          INTEGER NOT NULL DEFAULT 1,
    poller_id        TEXT,
    poller_until     DATETIME,
    UNIQUE (team_id, name)
);
INSERT INTO systems_new (id, name, kind, settings, secrets, poll_interval_ms, cursor, created_at, updated_at,
    rate_per_second, rate_burst, team_id, poller_id, poller_until)
SELECT id, name, kind, settings, secrets, poll_interval_ms, cursor, created_at, updated_at,
    rate_per_second, rate_burst, team_id, poller_id, poller_until FROM systems;
DROP TABLE systems;
ALTER TABLE systems_new RENAME TO systems;
CREATE TABLE connections_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL,
    system_a_id      INTEGER NOT NULL REFERENCES systems (id),
    system_b_id      INTEGER NOT NULL REFERENCES systems (id),
    active           BOOLEAN NOT NULL DEFAULT 0,
    template         TEXT    NOT NULL DEFAULT '',
    created_at       DATETIME NOT NULL,
    updated_at       DATETIME NOT NULL,
    conflict_policy  TEXT    NOT NULL DEFAULT '',
    options          TEXT    NOT NULL DEFAULT '',
    team_id          INTEGER NOT NULL DEFAULT 1,
    template_id      INTEGER NOT NULL DEFAULT 0,
    template_version INTEGER NOT NULL DEFAULT 0,
    template_params  TEXT    NOT NULL DEFAULT '',
    paused_reason    TEXT    NOT NULL DEFAULT '',
    quarantined_at   DATETIME,
    limit_hits       INTEGER NOT NULL DEFAULT 0,
    limit_since      DATETIME,
    UNIQUE (team_id, name)
);
INSERT INTO connections_new (id, name, system_a_id, system_b_id, active, template, created_at, updated_at,
    conflict_policy, options, team_id, template_id, template_version, template_params, paused_reason,
    quarantined_at, limit_hits, limit_since)
SELECT id, name, system_a_id, system_b_id, active, template, created_at, updated_at,
    conflict_policy, options, team_id, template_id, template_version, template_params, paused_reason,
    quarantined_at, limit_hits, limit_since FROM connections;
DROP TABLE connections;
ALTER TABLE connections_new RENAME TO connections;
DELETE FROM sqlite_sequence WHERE name IN ('systems', 'connections');
INSERT INTO sqlite_sequence (name, seq) SELECT name, seq FROM seq_keep;
DROP TABLE seq_keep;
-- Whether team admins see every team's name (GET /api/teams?all=1), which
-- the org admin decides; off by default (docs/security.md, "Teams' names").
CREATE TABLE IF NOT EXISTS org_settings (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    team_directory BOOLEAN  NOT NULL DEFAULT 0,
    updated_at     DATETIME NOT NULL,
    updated_by     TEXT     NOT NULL DEFAULT ''
);
INSERT OR IGNORE INTO org_settings (id, team_directory, updated_at, updated_by) VALUES (1, 0, CURRENT_TIMESTAMP, 'migration 00019');
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
-- Back to names unique across the organisation: fails (and changes
-- nothing) while two teams use one name; rename one first.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
DROP TABLE org_settings;
CREATE TEMP TABLE seq_keep AS SELECT name, seq FROM sqlite_sequence WHERE name IN ('systems', 'connections');
CREATE TABLE systems_old (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL UNIQUE,
    kind             TEXT    NOT NULL,
    settings         TEXT    NOT NULL DEFAULT '{}',
    secrets          BLOB,
    poll_interval_ms INTEGER NOT NULL DEFAULT 2000,
    cursor           TEXT    NOT NULL DEFAULT '',
    created_at       DATETIME NOT NULL,
    updated_at       DATETIME NOT NULL,
    rate_per_second  REAL    NOT NULL DEFAULT 0,
    rate_burst       INTEGER NOT NULL DEFAULT 0,
    team_id          INTEGER NOT NULL DEFAULT 1,
    poller_id        TEXT,
    poller_until     DATETIME
);
INSERT INTO systems_old SELECT id, name, kind, settings, secrets, poll_interval_ms, cursor, created_at, updated_at,
    rate_per_second, rate_burst, team_id, poller_id, poller_until FROM systems;
DROP TABLE systems;
ALTER TABLE systems_old RENAME TO systems;
CREATE TABLE connections_old (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL UNIQUE,
    system_a_id      INTEGER NOT NULL REFERENCES systems (id),
    system_b_id      INTEGER NOT NULL REFERENCES systems (id),
    active           BOOLEAN NOT NULL DEFAULT 0,
    template         TEXT    NOT NULL DEFAULT '',
    created_at       DATETIME NOT NULL,
    updated_at       DATETIME NOT NULL,
    conflict_policy  TEXT    NOT NULL DEFAULT '',
    options          TEXT    NOT NULL DEFAULT '',
    team_id          INTEGER NOT NULL DEFAULT 1,
    template_id      INTEGER NOT NULL DEFAULT 0,
    template_version INTEGER NOT NULL DEFAULT 0,
    template_params  TEXT    NOT NULL DEFAULT '',
    paused_reason    TEXT    NOT NULL DEFAULT '',
    quarantined_at   DATETIME,
    limit_hits       INTEGER NOT NULL DEFAULT 0,
    limit_since      DATETIME
);
INSERT INTO connections_old SELECT id, name, system_a_id, system_b_id, active, template, created_at, updated_at,
    conflict_policy, options, team_id, template_id, template_version, template_params, paused_reason,
    quarantined_at, limit_hits, limit_since FROM connections;
DROP TABLE connections;
ALTER TABLE connections_old RENAME TO connections;
DELETE FROM sqlite_sequence WHERE name IN ('systems', 'connections');
INSERT INTO sqlite_sequence (name, seq) SELECT name, seq FROM seq_keep;
DROP TABLE seq_keep;
COMMIT;
PRAGMA foreign_keys = ON;
