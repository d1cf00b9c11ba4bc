-- +goose Up
-- The worker takes queued events oldest first (ORDER BY id LIMIT n): with
-- this index it reads them in that order and stops after n, instead of
-- sorting every due event of a long queue for each batch.
CREATE INDEX sync_events_queue ON sync_events (status, id);

-- +goose Down
DROP INDEX sync_events_queue;
