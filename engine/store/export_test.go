package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
	"time"

	"github.com/duplexsync/duplex/migrations"
)

// SetCreatedLinger sets how long creates' answers wait for an intent.
func SetCreatedLinger(s *Store, d time.Duration) {
	s.intents.mu.Lock()
	s.intents.linger = d
	s.intents.mu.Unlock()
}

// QueuePlan is the database's plan of one read, with the index that
// should serve it.
type QueuePlan struct {
	Index, Plan string
}

// QueueReadPlans returns the plans of the reads that the queue's partial
// indexes (migration 00032) serve. On PostgreSQL sequential scans are off
// for the plan: its planner takes one on tables this small, and what is
// asked is whether the index can serve the read.
func QueueReadPlans(ctx context.Context, s *Store, now time.Time) ([]QueuePlan, error) {
	claimOne, claimArgs := s.dueQuery(now, 50, nil, 1)
	reads := []struct {
		index, q string
		args     []any
	}{
		{"sync_events_conn_queue", claimOne, claimArgs},
		{"sync_events_conn_queue", queuedConnsSQL, nil},
		{"webhook_deliveries_pending", pendingDeliveriesSQL, []any{50}},
		{"webhook_deliveries_system_pending", pendingSystemsSQL, nil},
		{"webhook_deliveries_system_pending", pendingOfSystemSQL + s.skipLocked("d"), []any{1, now, 50}},
	}
	set := ""
	if s.dialect == migrations.Postgres {
		set = "SET LOCAL enable_seqscan = off"
	}
	out := make([]QueuePlan, 0, len(reads))
	for _, r := range reads {
		plan, err := s.explain(ctx, set, r.q, r.args...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.index, err)
		}
		out = append(out, QueuePlan{Index: r.index, Plan: plan})
	}
	return out, nil
}

// TwinsOfPlan is PostgreSQL's plan of TwinsOf's read, as it would run now
// (whatever the table's statistics are).
func TwinsOfPlan(ctx context.Context, s *Store, connID int64, side Side, ids []string) (string, error) {
	return s.explain(ctx, "", twinsOfPGQuery(side), textArray(ids), connID)
}

// textArray is a PostgreSQL array literal: gorm's Raw (explain) would
// expand a []string into a list.
type textArray []string

func (a textArray) Value() (driver.Value, error) {
	q := make([]string, len(a))
	for i, s := range a {
		q[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	return "{" + strings.Join(q, ",") + "}", nil
}
