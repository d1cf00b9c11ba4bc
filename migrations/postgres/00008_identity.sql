-- +goose Up
-- Teams own systems, connections and templates. Rows that existed before
-- teams belong to team 1, "default".
CREATE TABLE teams (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);
INSERT INTO teams (id, name, created_at) VALUES (1, 'default', now());
SELECT setval(pg_get_serial_sequence('teams', 'id'), 1);

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL DEFAULT '',
    org_admin     BOOLEAN NOT NULL DEFAULT FALSE,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE memberships (
    team_id    BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT   NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- Only hashes of session and API tokens are stored: a copy of the database
-- does not sign anyone in.
CREATE TABLE sessions (
    id         TEXT   PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       TEXT   NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT   NOT NULL,
    hash         TEXT   NOT NULL UNIQUE,
    prefix       TEXT   NOT NULL,
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

ALTER TABLE systems ADD COLUMN team_id BIGINT NOT NULL DEFAULT 1 REFERENCES teams (id);
ALTER TABLE connections ADD COLUMN team_id BIGINT NOT NULL DEFAULT 1 REFERENCES teams (id);
ALTER TABLE audit_log ADD COLUMN team_id BIGINT;
CREATE INDEX audit_log_team ON audit_log (team_id, id);

-- Team templates: every publish is a new version; a version's body holds the
-- sources, parameters, options and fixtures as JSON.
CREATE TABLE templates (
    id                  BIGSERIAL PRIMARY KEY,
    team_id             BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name                TEXT   NOT NULL,
    title               TEXT   NOT NULL DEFAULT '',
    description         TEXT   NOT NULL DEFAULT '',
    visibility          TEXT   NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'shared', 'org')),
    forked_from_id      BIGINT,
    forked_from_version INTEGER,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (team_id, name)
);
CREATE TABLE template_versions (
    id          BIGSERIAL PRIMARY KEY,
    template_id BIGINT  NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    author      TEXT    NOT NULL DEFAULT '',
    note        TEXT    NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (template_id, version)
);
CREATE TABLE template_shares (
    template_id BIGINT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    team_id     BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    PRIMARY KEY (template_id, team_id)
);
ALTER TABLE connections ADD COLUMN template_id BIGINT NOT NULL DEFAULT 0;
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
