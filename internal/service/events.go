package service

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/duplexsync/duplex/internal/plural"

	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
)

// The queue's and twins' operations a person makes, each audited in the
// transaction of its change like the configuration changes.

// RetryEvent queues a failed event again.
func (s *Service) RetryEvent(ctx context.Context, actor string, id int64) (store.SyncEvent, error) {
	var ev store.SyncEvent
	_, err := s.write(ctx, actor, "event.retry", func(tx *store.Store) (int64, string, error) {
		if err := tx.RetryEvent(ctx, id); err != nil {
			return 0, "", err
		}
		var err error
		ev, err = tx.GetEvent(ctx, id)
		return ev.ConnectionID, fmt.Sprintf("event %d", id), err
	})
	if err == nil {
		s.wake()
	}
	return ev, err
}

// SkipEvent gives up on an event, with a reason kept on it and in the audit log.
func (s *Service) SkipEvent(ctx context.Context, actor string, id int64, reason string) (store.SyncEvent, error) {
	var ev store.SyncEvent
	if reason == "" {
		return ev, invalid("reason is required")
	}
	_, err := s.write(ctx, actor, "event.skip", func(tx *store.Store) (int64, string, error) {
		if err := tx.SkipEvent(ctx, id, reason); err != nil {
			return 0, "", err
		}
		var err error
		ev, err = tx.GetEvent(ctx, id)
		return ev.ConnectionID, fmt.Sprintf("event %d: %s", id, reason), err
	})
	return ev, err
}

// ResolveEvent records a person's choice for each conflicting field and
// queues the event again.
func (s *Service) ResolveEvent(ctx context.Context, actor string, id int64, choices map[string]engine.Resolution) (store.SyncEvent, error) {
	var ev store.SyncEvent
	if len(choices) == 0 {
		return ev, invalid("give a choice for each conflicting field")
	}
	for field, r := range choices {
		if r.Take != "source" && r.Take != "target" && r.Take != "value" {
			return ev, invalid("field %q: take must be source, target or value", field)
		}
	}
	enc, err := json.Marshal(choices)
	if err != nil {
		return ev, err
	}
	_, err = s.write(ctx, actor, "event.resolve", func(tx *store.Store) (int64, string, error) {
		if err := tx.ResolveConflict(ctx, id, string(enc)); err != nil {
			return 0, "", err
		}
		var err error
		ev, err = tx.GetEvent(ctx, id)
		return ev.ConnectionID, fmt.Sprintf("event %d: %s", id, enc), err
	})
	if err == nil {
		s.wake()
	}
	return ev, err
}

// RetryFailed queues every failed event of a connection again.
func (s *Service) RetryFailed(ctx context.Context, actor string, connID int64) (int64, error) {
	var n int64
	_, err := s.write(ctx, actor, "event.retry_all", func(tx *store.Store) (int64, string, error) {
		if _, err := tx.GetConnection(ctx, connID); err != nil {
			return 0, "", err
		}
		var err error
		n, err = tx.RetryFailed(ctx, connID)
		return connID, plural.Of(n, "event"), err
	})
	if err == nil {
		s.wake()
	}
	return n, err
}

// LinkTwin pairs two entities that already exist, writing to neither system.
func (s *Service) LinkTwin(ctx context.Context, actor string, connID int64, aID, bID string) (store.Twin, error) {
	var t store.Twin
	if aID == "" || bID == "" {
		return t, invalid("a_id and b_id are required")
	}
	_, err := s.write(ctx, actor, "twin.link", func(tx *store.Store) (int64, string, error) {
		if _, err := tx.GetConnection(ctx, connID); err != nil {
			return 0, "", err
		}
		var err error
		t, err = tx.LinkTwin(ctx, connID, aID, bID)
		return connID, fmt.Sprintf("a %s ↔ b %s", aID, bID), err
	})
	return t, err
}

// UnlinkTwin forgets a pair; its events stay as history.
func (s *Service) UnlinkTwin(ctx context.Context, actor string, id int64) (store.Twin, error) {
	var t store.Twin
	_, err := s.write(ctx, actor, "twin.unlink", func(tx *store.Store) (int64, string, error) {
		var err error
		t, err = tx.UnlinkTwin(ctx, id)
		return t.ConnectionID, store.UnlinkedPair(t), err
	})
	return t, err
}

// StartBackfill records a "sync existing" job over one side.
func (s *Service) StartBackfill(ctx context.Context, actor string, connID int64, side store.Side) (store.Backfill, error) {
	var job store.Backfill
	_, err := s.write(ctx, actor, "connection.backfill", func(tx *store.Store) (int64, string, error) {
		if _, err := tx.GetConnection(ctx, connID); err != nil {
			return 0, "", err
		}
		var err error
		job, err = tx.StartBackfill(ctx, connID, side)
		return connID, fmt.Sprintf("sync existing on side %s (job %d)", side, job.ID), err
	})
	return job, err
}
