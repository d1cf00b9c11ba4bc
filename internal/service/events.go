package service

import (
	"context"
	"encoding/json"
	"errors"
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

// LinkExisting links the pairs the engine matched by a key (aField and
// bField name it for the audit entry), leaving alone entities already
// linked, and returns how many pairs it made.
func (s *Service) LinkExisting(ctx context.Context, actor string, connID int64, aField, bField string, pairs []engine.Pair) (int, error) {
	linked := 0
	_, err := s.write(ctx, actor, "twin.link_existing", func(tx *store.Store) (int64, string, error) {
		if _, err := tx.GetConnection(ctx, connID); err != nil {
			return 0, "", err
		}
		for _, p := range pairs {
			_, errA := tx.TwinBy(ctx, connID, store.SideA, p.A)
			_, errB := tx.TwinBy(ctx, connID, store.SideB, p.B)
			if !errors.Is(errA, store.ErrNotFound) || !errors.Is(errB, store.ErrNotFound) {
				continue // one of them is linked already (or the lookup failed)
			}
			if _, err := tx.LinkTwin(ctx, connID, p.A, p.B); err != nil {
				return 0, "", err
			}
			linked++
		}
		return connID, fmt.Sprintf("%s by a.%s = b.%s", plural.Of(int64(linked), "pair"), aField, bField), nil
	})
	if err != nil {
		return 0, err
	}
	return linked, nil
}

// SetOrgSettings changes the organisation's settings (the store writes
// them and their audit entry in one transaction).
func (s *Service) SetOrgSettings(ctx context.Context, actor string, o store.OrgSettings) error {
	return s.st.SetOrgSettings(ctx, o, actor, fmt.Sprintf("team_directory %v", o.TeamDirectory))
}

// SetOutboundPolicy replaces the outbound policy (its JSON, audited whole:
// it holds no secret), then calls committed (nil for none: the server's
// guards forget the old policy there) and reopens every connector so open
// pools follow it.
func (s *Service) SetOutboundPolicy(ctx context.Context, actor, policy string, committed func()) error {
	if err := s.st.SetOutboundPolicy(ctx, policy, actor, "outbound policy set: "+policy); err != nil {
		return err
	}
	if committed != nil {
		committed()
	}
	if s.eng == nil {
		return nil
	}
	systems, err := s.st.ListSystems(ctx)
	if err != nil {
		return err
	}
	for _, sys := range systems {
		s.eng.ReloadSystem(sys.ID)
	}
	return nil
}

// TestedSystem records that a person tested a system's connection and how
// it went; it changes nothing else.
func (s *Service) TestedSystem(ctx context.Context, actor string, sys store.System, ok bool) error {
	result := "ok"
	if !ok {
		result = "failed"
	}
	return s.teamChange(ctx, actor, "system.test", sys.TeamID, func(*store.Store) (string, error) {
		return fmt.Sprintf("system %d %q: %s", sys.ID, sys.Name, result), nil
	})
}
