-- +goose Up
-- Teams own systems, connections and templates. Rows that existed before
-- teams belong to team 1, "default".
CREATE TABLE teams (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    created_at DATETIME NOT NULL
);
INSERT INTO teams (id, name, created_at) VALUES (1, 'default', CURRENT_TIMESTAMP);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL DEFAULT '',
    org_admin     BOOLEAN NOT NULL DEFAULT 0,
    disabled      BOOLEAN NOT NULL DEFAULT 0,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL
);

CREATE TABLE memberships (
    team_id    INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    created_at DATETIME NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- Only hashes of session and API tokens are stored: a copy of the database
-- does not sign anyone in.
CREATE TABLE sessions (
    id           TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf         TEXT    NOT NULL,
    created_at   DATETIME NOT NULL,
    expires_at   DATETIME NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    hash         TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    expires_at   DATETIME,
    last_used_at DATETIME,
    revoked_at   DATETIME,
    created_at   DATETIME NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- SQLite refuses ADD COLUMN ... REFERENCES with a non-NULL default while
-- foreign keys are on, so the team references are checked by the store.
ALTER TABLE systems ADD COLUMN team_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE connections ADD COLUMN team_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN team_id INTEGER;
CREATE INDEX audit_log_team ON audit_log (team_id, id);

-- Team templates: every publish is a new version; a version's body holds the
-- sources, parameters, options and fixtures as JSON.
CREATE TABLE templates (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id             INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name                TEXT    NOT NULL,
    title               TEXT    NOT NULL DEFAULT '',
    description         TEXT    NOT NULL DEFAULT '',
    visibility          TEXT    NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'shared', 'org')),
    forked_from_id      INTEGER,
    forked_from_version INTEGER,
    created_at          DATETIME NOT NULL,
    updated_at          DATETIME NOT NULL,
    UNIQUE (team_id, name)
);
CREATE TABLE template_versions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    template_id INTEGER NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    author      TEXT    NOT NULL DEFAULT '',
    note        TEXT    NOT NULL DEFAULT '',
    created_at  DATETIME NOT NULL,
    UNIQUE (template_id, version)
);
CREATE TABLE template_shares (
    template_id INTEGER NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    team_id     INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    PRIMARY KEY (template_id, team_id)
);
-- Which team template (and version) a connection was made from; 0 when none.
ALTER TABLE connections ADD COLUMN template_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN template_version INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE connections DROP COLUMN template_version;
ALTER TABLE connections DROP COLUMN template_id;
DROP TABLE template_shares;
DROP TABLE template_versions;
DROP TABLE templates;
DROP INDEX audit_log_team;
ALTER TABLE audit_log DROP COLUMN team_id;
ALTER TABLE connections DROP COLUMN team_id;
ALTER TABLE systems DROP COLUMN team_id;
DROP TABLE api_tokens;
DROP TABLE sessions;
DROP TABLE memberships;
DROP TABLE users;
DROP TABLE teams;
