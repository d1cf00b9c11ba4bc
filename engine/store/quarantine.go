package store

import (
	"context"
	"fmt"
	"time"
)

// LimitHit is what RecordLimitHit did.
type LimitHit struct {
	Hits        int  // hits in the current window, this one included
	Quarantined bool // this call paused the connection (exactly one caller does)
	Already     bool // the connection was quarantined before this hit; not counted
}

// RecordLimitHit counts one script run of a connection that hit a limit, at
// at. A window starts at its first hit and lasts window; a hit after it
// starts a new one. When the count reaches threshold the connection is
// paused with reason in the same statement. The update is a compare-and-set
// on the count, so processes sharing the store count every hit once and only
// one of them quarantines.
func (s *Store) RecordLimitHit(ctx context.Context, id int64, at time.Time, window time.Duration, threshold int, reason string) (LimitHit, error) {
	at = at.UTC()
	for range 8 {
		var c Connection
		if err := s.q(ctx).First(&c, id).Error; err != nil {
			return LimitHit{}, wrap(fmt.Sprintf("connection %d", id), err)
		}
		if c.PausedReason != "" {
			return LimitHit{Hits: c.LimitHits, Already: true}, nil
		}
		hits, since := inWindow(c, at, window)
		q := `UPDATE connections SET limit_hits = ?, limit_since = ?`
		args := []any{hits, since}
		quarantine := hits >= threshold
		if quarantine {
			q += `, active = ?, paused_reason = ?, quarantined_at = ?, updated_at = ?`
			args = append(args, false, reason, at, s.now())
		}
		q += ` WHERE id = ? AND limit_hits = ? AND paused_reason = ''`
		args = append(args, id, c.LimitHits)
		res, err := s.exec(ctx, q, args...)
		if err != nil {
			return LimitHit{}, wrap("record limit hit", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return LimitHit{}, wrap("record limit hit", err)
		} else if n == 1 {
			return LimitHit{Hits: hits, Quarantined: quarantine}, nil
		}
		// Another process counted (or quarantined) meanwhile: read again.
	}
	return LimitHit{}, fmt.Errorf("record limit hit of connection %d: lost the race 8 times", id)
}

// inWindow is the count and start of the window after one more hit at at. A
// hit stamped before the window's start still belongs to it (and starts it
// earlier): the runs of a page start together and are counted in whatever
// order they end, so the later-stamped one may be counted first. Taking such
// a hit for the start of a new window lost the count, and a connection whose
// three entities each hit the limit was never quarantined.
func inWindow(c Connection, at time.Time, window time.Duration) (int, time.Time) {
	if c.LimitSince == nil || c.LimitHits <= 0 {
		return 1, at
	}
	since := *c.LimitSince
	if at.Before(since) {
		return c.LimitHits + 1, at
	}
	if at.Sub(since) <= window {
		return c.LimitHits + 1, since
	}
	return 1, at
}
