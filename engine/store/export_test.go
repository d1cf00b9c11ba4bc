package store

import (
	"context"
	"fmt"
	"time"

	"github.com/duplexsync/duplex/migrations"
)

// SetCreatedLinger sets how long creates' answers wait for an intent.
func SetCreatedLinger(s *Store, d time.Duration) {
	s.intents.mu.Lock()
	s.intents.linger = d
	s.intents.mu.Unlock()
}

// QueueReadPlans returns the database's plan of each read that the queue's
// partial indexes (migration 00032) serve, by the index it should use (a
// trailing space tells two reads of one index apart). On PostgreSQL
// sequential scans are off for the plan: its planner takes one on tables
// this small, and what is asked is whether the index can serve the read.
func QueueReadPlans(ctx context.Context, s *Store, now time.Time) (map[string]string, error) {
	type read struct {
		q    string
		args []any
	}
	claimOne, claimArgs := s.dueQuery(now, 50, nil, 1)
	reads := map[string]read{
		"sync_events_conn_queue":             {claimOne, claimArgs},
		"sync_events_conn_queue ":            {queuedConnsSQL, nil},
		"webhook_deliveries_pending":         {pendingDeliveriesSQL, []any{50}},
		"webhook_deliveries_system_pending":  {pendingSystemsSQL, nil},
		"webhook_deliveries_system_pending ": {pendingOfSystemSQL + s.skipLocked("d"), []any{1, now, 50}},
	}
	set := ""
	if s.dialect == migrations.Postgres {
		set = "SET LOCAL enable_seqscan = off"
	}
	out := map[string]string{}
	for name, r := range reads {
		plan, err := s.explain(ctx, set, r.q, r.args...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = plan
	}
	return out, nil
}
