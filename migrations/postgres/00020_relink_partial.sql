-- +goose Up
-- unlinked_twins remembers a pair the engine unlinked because its entity
-- stopped matching its trigger (on_unmatch "unlink"): the twin's row as it
-- was, under its own id. When the entity matches again the row goes back to
-- twins, so the pair goes on with its counterpart instead of creating a
-- second one (engine/relink.go).
CREATE TABLE unlinked_twins (
    id            BIGINT PRIMARY KEY,
    connection_id BIGINT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    a_id          TEXT,
    b_id          TEXT,
    a_hash        TEXT    NOT NULL DEFAULT '',
    b_hash        TEXT    NOT NULL DEFAULT '',
    sent_ab       TEXT,
    sent_ba       TEXT,
    comment_links TEXT    NOT NULL DEFAULT '{}',
    origin        TEXT    NOT NULL DEFAULT '',
    base_a        TEXT,
    base_b        TEXT,
    a_written_at  TIMESTAMPTZ,
    b_written_at  TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    unlinked_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX unlinked_twins_a ON unlinked_twins (connection_id, a_id);
CREATE INDEX unlinked_twins_b ON unlinked_twins (connection_id, b_id);

-- partial (JSON) is what an attempt that failed part-way wrote: the target
-- fields the system saved and the ones it refused (a workflow refusal), so
-- the event view names them and the retry sends only what is left.
ALTER TABLE sync_events ADD COLUMN partial TEXT;

-- +goose Down
ALTER TABLE sync_events DROP COLUMN partial;
DROP TABLE unlinked_twins;
