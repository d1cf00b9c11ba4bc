-- +goose Up
-- Names of systems and connections are unique per team, not across the
-- organisation (issue 24): a 409 on a name another team uses told a team
-- admin that the name exists.
ALTER TABLE systems DROP CONSTRAINT systems_name_key;
ALTER TABLE systems ADD CONSTRAINT systems_team_name_key UNIQUE (team_id, name);
ALTER TABLE connections DROP CONSTRAINT connections_name_key;
ALTER TABLE connections ADD CONSTRAINT connections_team_name_key UNIQUE (team_id, name);
-- Whether team admins see every team's name (GET /api/teams?all=1), which
-- the org admin decides; off by default (docs/security.md, "Teams' names").
CREATE TABLE org_settings (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    team_directory BOOLEAN     NOT NULL DEFAULT FALSE,
    updated_at     TIMESTAMPTZ NOT NULL,
    updated_by     TEXT        NOT NULL DEFAULT ''
);
INSERT INTO org_settings (id, team_directory, updated_at, updated_by) VALUES (1, FALSE, now(), 'migration 00019');

-- +goose Down
-- Back to names unique across the organisation: fails while two teams use
-- one name; rename one first.
DROP TABLE org_settings;
ALTER TABLE connections DROP CONSTRAINT connections_team_name_key;
ALTER TABLE connections ADD CONSTRAINT connections_name_key UNIQUE (name);
ALTER TABLE systems DROP CONSTRAINT systems_team_name_key;
ALTER TABLE systems ADD CONSTRAINT systems_name_key UNIQUE (name);
