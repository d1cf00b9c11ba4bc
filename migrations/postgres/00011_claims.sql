-- +goose Up
-- Several processes on one PostgreSQL: what each one is working on.
-- claimed_by is the process id (host-pid-random), lease_until when the claim
-- lapses if that process dies; a claim is cleared when the work is recorded
-- (at the process's next claim round) or the process stops gracefully.
ALTER TABLE sync_events ADD COLUMN claimed_by TEXT, ADD COLUMN lease_until TIMESTAMPTZ;
CREATE INDEX sync_events_claimed ON sync_events (claimed_by) WHERE claimed_by IS NOT NULL;
ALTER TABLE webhook_deliveries ADD COLUMN claimed_by TEXT, ADD COLUMN lease_until TIMESTAMPTZ;
ALTER TABLE backfills ADD COLUMN claimed_by TEXT, ADD COLUMN lease_until TIMESTAMPTZ;
-- One active poller per system across the cluster: the holder renews its
-- lease while it polls; another process takes the system once it lapses.
ALTER TABLE systems ADD COLUMN poller_id TEXT, ADD COLUMN poller_until TIMESTAMPTZ;

-- +goose Down
ALTER TABLE systems DROP COLUMN poller_id, DROP COLUMN poller_until;
ALTER TABLE backfills DROP COLUMN claimed_by, DROP COLUMN lease_until;
ALTER TABLE webhook_deliveries DROP COLUMN claimed_by, DROP COLUMN lease_until;
DROP INDEX sync_events_claimed;
ALTER TABLE sync_events DROP COLUMN claimed_by, DROP COLUMN lease_until;
