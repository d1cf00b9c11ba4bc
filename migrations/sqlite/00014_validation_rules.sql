-- +goose Up
-- Validation rules are a fourth kind of script version per connection side
-- ("rules": a JSON list of rules), versioned, audited and loaded like the
-- others. SQLite cannot change a CHECK constraint, so the table is rebuilt.
CREATE TABLE script_versions_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id INTEGER NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    side          TEXT    NOT NULL CHECK (side IN ('a', 'b')),
    kind          TEXT    NOT NULL CHECK (kind IN ('trigger', 'outgoing', 'incoming', 'rules')),
    version       INTEGER NOT NULL,
    source        TEXT    NOT NULL,
    author        TEXT    NOT NULL DEFAULT '',
    created_at    DATETIME NOT NULL,
    UNIQUE (connection_id, side, kind, version)
);
INSERT INTO script_versions_new (id, connection_id, side, kind, version, source, author, created_at)
    SELECT id, connection_id, side, kind, version, source, author, created_at FROM script_versions;
DROP TABLE script_versions;
ALTER TABLE script_versions_new RENAME TO script_versions;

-- +goose Down
DELETE FROM script_versions WHERE kind = 'rules';
CREATE TABLE script_versions_old (
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
INSERT INTO script_versions_old SELECT * FROM script_versions;
DROP TABLE script_versions;
ALTER TABLE script_versions_old RENAME TO script_versions;
