-- +goose Up
-- Claims and poller leases (see the PostgreSQL migration). A SQLite store has
-- one process, so they are never contested there, but the engine takes work
-- the same way on both.
ALTER TABLE sync_events ADD COLUMN claimed_by TEXT;
ALTER TABLE sync_events ADD COLUMN lease_until DATETIME;
CREATE INDEX sync_events_claimed ON sync_events (claimed_by) WHERE claimed_by IS NOT NULL;
ALTER TABLE webhook_deliveries ADD COLUMN claimed_by TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN lease_until DATETIME;
ALTER TABLE backfills ADD COLUMN claimed_by TEXT;
ALTER TABLE backfills ADD COLUMN lease_until DATETIME;
ALTER TABLE systems ADD COLUMN poller_id TEXT;
ALTER TABLE systems ADD COLUMN poller_until DATETIME;

-- +goose Down
DROP INDEX sync_events_claimed;
ALTER TABLE systems DROP COLUMN poller_until;
ALTER TABLE systems DROP COLUMN poller_id;
ALTER TABLE backfills DROP COLUMN lease_until;
ALTER TABLE backfills DROP COLUMN claimed_by;
ALTER TABLE webhook_deliveries DROP COLUMN lease_until;
ALTER TABLE webhook_deliveries DROP COLUMN claimed_by;
ALTER TABLE sync_events DROP COLUMN lease_until;
ALTER TABLE sync_events DROP COLUMN claimed_by;
