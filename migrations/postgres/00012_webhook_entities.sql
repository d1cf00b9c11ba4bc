-- +goose Up
-- A webhook may carry the changed entities themselves (connectors.Delivery
-- Entities): they are kept with the delivery (JSON list, each entity bounded
-- by the engine) so a crash between the answer and the processing loses
-- nothing, and the hook loop uses them instead of reading each entity back.
ALTER TABLE webhook_deliveries ADD COLUMN entities TEXT NOT NULL DEFAULT '';
-- The newest update time (the system's own stamp, in nanoseconds) of each
-- entity of a system with webhooks, as Duplex took it (webhook, read-back or
-- poll): an entity carried by a webhook that is not newer than this is an
-- older or repeated state, and is read back instead of being used.
CREATE TABLE entity_seen (
    system_id  BIGINT  NOT NULL REFERENCES systems (id) ON DELETE CASCADE,
    entity_id  TEXT    NOT NULL,
    updated_ns BIGINT  NOT NULL,
    PRIMARY KEY (system_id, entity_id)
);

-- +goose Down
DROP TABLE entity_seen;
ALTER TABLE webhook_deliveries DROP COLUMN entities;
