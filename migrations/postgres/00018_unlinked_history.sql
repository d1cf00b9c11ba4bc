-- +goose Up
-- Unlinking a pair through the API keeps its events (see the SQLite
-- migration): twin_id loses its foreign key, unlinked_pair names the pair.
ALTER TABLE sync_events DROP CONSTRAINT IF EXISTS sync_events_twin_id_fkey;
ALTER TABLE sync_events ADD COLUMN unlinked_pair TEXT;

-- +goose Down
DELETE FROM sync_events WHERE twin_id NOT IN (SELECT id FROM twins);
ALTER TABLE sync_events DROP COLUMN unlinked_pair;
ALTER TABLE sync_events ADD CONSTRAINT sync_events_twin_id_fkey FOREIGN KEY (twin_id) REFERENCES twins (id) ON DELETE CASCADE;
