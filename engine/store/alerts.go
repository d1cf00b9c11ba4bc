package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Alert kinds.
const (
	AlertFailures    = "failures"    // N events of a connection failed within a window
	AlertPaused      = "paused"      // a paused connection with changes waiting
	AlertQueueAge    = "queue_age"   // the oldest queued event of an active connection is too old
	AlertUnreachable = "unreachable" // a system's polls have failed for a while
	AlertQuarantined = "quarantined" // the engine paused a connection whose scripts keep hitting a limit
)

// Alert states and the notices an alert may still owe.
const (
	AlertOpen     = "open"
	AlertResolved = "resolved"
)

// Alert is one time a connection or system started failing, open until it
// heals. Subject is "connection:<id>" or "system:<id>".
type Alert struct {
	ID             int64      `gorm:"primaryKey" json:"id"`
	Subject        string     `json:"subject"`
	ConnectionID   *int64     `json:"connection_id,omitempty"`
	SystemID       *int64     `json:"system_id,omitempty"`
	TeamID         int64      `json:"team_id"`
	Name           string     `json:"name"` // the connection's or system's name when it opened
	Kind           string     `json:"kind"`
	State          string     `json:"state"`
	Detail         string     `json:"detail"`
	OpenedAt       time.Time  `json:"opened_at"`
	ResolvedAt     *time.Time `json:"resolved_at,omitempty"`
	NotifiedAt     *time.Time `json:"notified_at,omitempty"` // the opening notice was delivered
	LastNotifiedAt *time.Time `json:"last_notified_at,omitempty"`
	// Pending is the notice still to send: "open", "resolved" or "".
	Pending       string     `json:"pending,omitempty"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt time.Time  `json:"-"`
	LastError     string     `json:"last_error,omitempty"`
	ClaimedBy     *string    `json:"-"`
	LeaseUntil    *time.Time `json:"-"`
}

// ConnectionHealth is what the alert evaluator reads of one connection.
type ConnectionHealth struct {
	ID           int64
	Name         string
	TeamID       int64
	Active       bool
	Queued       int64
	OldestQueued *time.Time
	RecentFailed int64  // failed events last changed since the window's start
	LastError    string // the newest failed event's error
	PausedReason string // why the engine paused it (quarantine); "" otherwise
}

// SystemHealth is a system whose polls are failing.
type SystemHealth struct {
	ID           int64
	Name         string
	TeamID       int64
	FailingSince time.Time
	Failures     int64
	LastError    string
}

// ConnectionHealths reads every connection's queue and recent failures

// Alerts is the alerts' aggregate: connections' and systems' health and the
// alerts opened and resolved from it, over the store's handle (inside Tx,
// the same transaction).
type Alerts struct{ s *Store }

// Alerts is the alerts' aggregate over s's handle.
func (s *Store) Alerts() *Alerts { return &Alerts{s: s} }

// (failed events whose last change is at or after since) in one query.
func (agg *Alerts) ConnectionHealths(ctx context.Context, since time.Time) ([]ConnectionHealth, error) {
	s := agg.s
	var rows []struct {
		ID           int64
		Name         string
		TeamID       int64
		Active       bool
		Queued       int64
		Oldest       *string
		RecentFailed int64
		LastError    *string
		PausedReason string
	}
	err := s.q(ctx).Raw(`SELECT c.id, c.name, c.team_id, c.active, c.paused_reason,
		(SELECT COUNT(*) FROM sync_events e WHERE e.connection_id = c.id AND e.status = ?) AS queued,
		(SELECT MIN(e.created_at) FROM sync_events e WHERE e.connection_id = c.id AND e.status = ?) AS oldest,
		(SELECT COUNT(*) FROM sync_events e WHERE e.connection_id = c.id AND e.status = ? AND e.updated_at >= ?) AS recent_failed,
		(SELECT e.last_error FROM sync_events e WHERE e.connection_id = c.id AND e.status = ? ORDER BY e.updated_at DESC, e.id DESC LIMIT 1) AS last_error
		FROM connections c ORDER BY c.id`,
		StatusQueued, StatusQueued, StatusFailed, since.UTC(), StatusFailed).Scan(&rows).Error
	if err != nil {
		return nil, wrap("connection health", err)
	}
	out := make([]ConnectionHealth, 0, len(rows))
	for _, r := range rows {
		h := ConnectionHealth{ID: r.ID, Name: r.Name, TeamID: r.TeamID, Active: r.Active, Queued: r.Queued, RecentFailed: r.RecentFailed,
			PausedReason: r.PausedReason}
		if r.Oldest != nil {
			if t, ok := parseDBTime(*r.Oldest); ok {
				h.OldestQueued = &t
			}
		}
		if r.LastError != nil {
			h.LastError = *r.LastError
		}
		out = append(out, h)
	}
	return out, nil
}

// FailingSystems lists the systems whose last poll failed.
func (agg *Alerts) FailingSystems(ctx context.Context) ([]SystemHealth, error) {
	s := agg.s
	var out []SystemHealth
	err := s.q(ctx).Raw(`SELECT s.id, s.name, s.team_id, p.failing_since, p.failures, p.last_error
		FROM poll_status p JOIN systems s ON s.id = p.system_id
		WHERE p.failing_since IS NOT NULL ORDER BY s.id`).Scan(&out).Error
	return out, wrap("failing systems", err)
}

// RecordPollFailure counts a failed poll of a system; the first of a run of
// failures sets failing_since.
func (s *Store) RecordPollFailure(ctx context.Context, systemID int64, msg string, at time.Time) error {
	at = at.UTC()
	_, err := s.exec(ctx, `INSERT INTO poll_status (system_id, failing_since, failures, last_error, updated_at)
		VALUES (?, ?, 1, ?, ?)
		ON CONFLICT (system_id) DO UPDATE SET failing_since = COALESCE(poll_status.failing_since, excluded.failing_since),
		failures = poll_status.failures + 1, last_error = excluded.last_error, updated_at = excluded.updated_at`,
		systemID, at, msg, at)
	return wrap("record poll failure", err)
}

// RecordPollOK marks a system's polls healthy again.
func (s *Store) RecordPollOK(ctx context.Context, systemID int64, at time.Time) error {
	at = at.UTC()
	_, err := s.exec(ctx, `INSERT INTO poll_status (system_id, failing_since, failures, last_error, last_ok_at, updated_at)
		VALUES (?, NULL, 0, '', ?, ?)
		ON CONFLICT (system_id) DO UPDATE SET failing_since = NULL, failures = 0, last_error = '',
		last_ok_at = excluded.last_ok_at, updated_at = excluded.updated_at`, systemID, at, at)
	return wrap("record poll ok", err)
}

// OpenAlert opens a (with its opening notice pending) unless one of the same
// subject and kind is open already: ok says whether this call opened it, so
// of several processes evaluating at once exactly one does.
func (agg *Alerts) OpenAlert(ctx context.Context, a *Alert) (bool, error) {
	s := agg.s
	a.State, a.Pending, a.Attempts = AlertOpen, AlertOpen, 0
	a.OpenedAt = a.OpenedAt.UTC()
	a.NextAttemptAt = a.OpenedAt
	err := s.queryRow(ctx, `INSERT INTO alerts (subject, connection_id, system_id, team_id, name, kind, state, detail,
		opened_at, pending, attempts, next_attempt_at, last_error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, '') ON CONFLICT DO NOTHING RETURNING id`,
		a.Subject, a.ConnectionID, a.SystemID, a.TeamID, a.Name, a.Kind, a.State, a.Detail,
		a.OpenedAt, a.Pending, a.NextAttemptAt).Scan(&a.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap("open alert", err)
	}
	return true, nil
}

// ResolveAlert closes an open alert. A recovery notice is owed only when the
// opening notice went out (or is being sent right now); otherwise nothing is.
func (agg *Alerts) ResolveAlert(ctx context.Context, id int64, detail string, at time.Time) (bool, error) {
	s := agg.s
	at = at.UTC()
	res, err := s.exec(ctx, `UPDATE alerts SET state = ?, resolved_at = ?, detail = ?, attempts = 0, next_attempt_at = ?, last_error = '',
		pending = CASE WHEN notified_at IS NULL AND claimed_by IS NULL THEN '' ELSE ? END
		WHERE id = ? AND state = ?`, AlertResolved, at, detail, at, AlertResolved, id, AlertOpen)
	if err != nil {
		return false, wrap("resolve alert", err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap("resolve alert", err)
}

// SetAlertDetail updates an open alert's detail (what it says now, such as
// its failure count); a resolved alert keeps the detail it resolved with.
func (agg *Alerts) SetAlertDetail(ctx context.Context, id int64, detail string) error {
	s := agg.s
	_, err := s.exec(ctx, `UPDATE alerts SET detail = ? WHERE id = ? AND state = ?`, detail, id, AlertOpen)
	return wrap("alert detail", err)
}

// OpenAlerts lists every open alert.
func (agg *Alerts) OpenAlerts(ctx context.Context) ([]Alert, error) {
	s := agg.s
	var out []Alert
	return out, wrap("open alerts", s.q(ctx).Where("state = ?", AlertOpen).Order("id").Find(&out).Error)
}

// GetAlert reads one alert.
func (agg *Alerts) GetAlert(ctx context.Context, id int64) (Alert, error) {
	s := agg.s
	var a Alert
	return a, wrap("alert", s.q(ctx).First(&a, id).Error)
}

// AlertFilter selects alerts to list.
type AlertFilter struct {
	State string // "open", "resolved" or "" for both
	Limit int
	// Teams, when not nil, keeps alerts of these teams (empty: none).
	Teams []int64
}

// ListAlerts returns alerts, open ones first, then newest first.
func (agg *Alerts) ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	s := agg.s
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	out := []Alert{}
	q := s.q(ctx).Order("CASE WHEN state = 'open' THEN 0 ELSE 1 END, id DESC").Limit(f.Limit)
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	if f.Teams != nil {
		if len(f.Teams) == 0 {
			return out, nil
		}
		q = q.Where("team_id IN ?", f.Teams)
	}
	return out, wrap("list alerts", q.Find(&out).Error)
}

// ClaimAlertNotices takes up to limit alerts whose notice is due and not
// held by a live claim, for process by: each notice is sent by one process.
func (agg *Alerts) ClaimAlertNotices(ctx context.Context, by string, now time.Time, lease time.Duration, limit int) ([]Alert, error) {
	s := agg.s
	now = now.UTC()
	var cands []Alert
	err := s.q(ctx).Where("pending <> '' AND next_attempt_at <= ? AND (claimed_by IS NULL OR lease_until < ?)", now, now).
		Order("id").Limit(limit).Find(&cands).Error
	if err != nil {
		return nil, wrap("due alert notices", err)
	}
	out := cands[:0]
	for _, a := range cands {
		// The conditional update decides between processes.
		res, err := s.exec(ctx, `UPDATE alerts SET claimed_by = ?, lease_until = ?
			WHERE id = ? AND pending = ? AND (claimed_by IS NULL OR lease_until < ?)`,
			by, now.Add(lease), a.ID, a.Pending, now)
		if err != nil {
			return nil, wrap("claim alert notice", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			out = append(out, a)
		}
	}
	return out, nil
}

// AlertNoticeSent records a delivered notice (notice is "open" or
// "resolved"); a notice that became due meanwhile (the alert resolved while
// its opening notice was on the way) stays pending.
func (agg *Alerts) AlertNoticeSent(ctx context.Context, id int64, notice string, at time.Time) error {
	s := agg.s
	at = at.UTC()
	set, args := "", []any{}
	if notice == AlertOpen {
		set, args = "notified_at = ?, ", []any{at}
	}
	_, err := s.exec(ctx, `UPDATE alerts SET `+set+`last_notified_at = ?, attempts = 0, last_error = '',
		claimed_by = NULL, lease_until = NULL, pending = CASE WHEN pending = ? THEN '' ELSE pending END WHERE id = ?`,
		append(args, at, notice, id)...)
	return wrap("alert notice sent", err)
}

// AlertNoticeFailed records a failed try: the notice is tried again at next,
// or given up (pending cleared) when giveUp.
func (agg *Alerts) AlertNoticeFailed(ctx context.Context, id int64, notice, msg string, next time.Time, giveUp bool) error {
	s := agg.s
	pending := "pending"
	if giveUp {
		pending = "CASE WHEN pending = ? THEN '' ELSE pending END"
	}
	q := `UPDATE alerts SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, claimed_by = NULL, lease_until = NULL,
		pending = ` + pending + ` WHERE id = ?`
	args := []any{msg, next.UTC()}
	if giveUp {
		args = append(args, notice)
	}
	_, err := s.exec(ctx, q, append(args, id)...)
	return wrap("alert notice failed", err)
}

// DropAlertNotice clears a notice that needs no sending (a recovery of an
// alert whose opening was never delivered).
func (agg *Alerts) DropAlertNotice(ctx context.Context, id int64, notice string) error {
	s := agg.s
	_, err := s.exec(ctx, `UPDATE alerts SET claimed_by = NULL, lease_until = NULL,
		pending = CASE WHEN pending = ? THEN '' ELSE pending END WHERE id = ?`, notice, id)
	return wrap("drop alert notice", err)
}
