-- +goose Up
-- Webhook deliveries: recorded before answering, processed by the engine.
-- The unique index makes a delivery sent twice count once.
CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    system_id    INTEGER NOT NULL REFERENCES systems (id) ON DELETE CASCADE,
    delivery_id  TEXT    NOT NULL,
    entity_ids   TEXT    NOT NULL DEFAULT '[]',
    status       TEXT    NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    received_at  DATETIME NOT NULL,
    processed_at DATETIME
);
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (system_id, delivery_id);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (status, id);

-- +goose Down
DROP TABLE webhook_deliveries;
