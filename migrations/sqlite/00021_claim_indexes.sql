-- +goose Up
-- The hook loop claims pending deliveries per system, passing the systems it
-- is still busy with: through this index it finds the systems with pending
-- deliveries and reads each one's oldest first, instead of walking every
-- pending delivery of a busy system on each claim (store.ClaimDeliveriesExcept).
CREATE INDEX webhook_deliveries_system_pending ON webhook_deliveries (status, system_id, id);
-- The same for the worker's claim of queued events, passing connections
-- whose share of its work is full (store.ClaimEventsExcept).
CREATE INDEX sync_events_conn_queue ON sync_events (status, connection_id, id);

-- +goose Down
DROP INDEX sync_events_conn_queue;
DROP INDEX webhook_deliveries_system_pending;
