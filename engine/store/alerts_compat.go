package store

import (
	"context"
	"time"
)

// Forwarders to the Alerts aggregate, kept so that branches written before
// the split still compile. Deprecated: call st.Alerts().Method.

// ConnectionHealths forwards to Alerts.ConnectionHealths.
//
// Deprecated: use s.Alerts().ConnectionHealths.
func (s *Store) ConnectionHealths(ctx context.Context, since time.Time) ([]ConnectionHealth, error) {
	return s.Alerts().ConnectionHealths(ctx, since)
}

// FailingSystems forwards to Alerts.FailingSystems.
//
// Deprecated: use s.Alerts().FailingSystems.
func (s *Store) FailingSystems(ctx context.Context) ([]SystemHealth, error) {
	return s.Alerts().FailingSystems(ctx)
}

// OpenAlert forwards to Alerts.OpenAlert.
//
// Deprecated: use s.Alerts().OpenAlert.
func (s *Store) OpenAlert(ctx context.Context, a *Alert) (bool, error) {
	return s.Alerts().OpenAlert(ctx, a)
}

// ResolveAlert forwards to Alerts.ResolveAlert.
//
// Deprecated: use s.Alerts().ResolveAlert.
func (s *Store) ResolveAlert(ctx context.Context, id int64, detail string, at time.Time) (bool, error) {
	return s.Alerts().ResolveAlert(ctx, id, detail, at)
}

// SetAlertDetail forwards to Alerts.SetAlertDetail.
//
// Deprecated: use s.Alerts().SetAlertDetail.
func (s *Store) SetAlertDetail(ctx context.Context, id int64, detail string) error {
	return s.Alerts().SetAlertDetail(ctx, id, detail)
}

// OpenAlerts forwards to Alerts.OpenAlerts.
//
// Deprecated: use s.Alerts().OpenAlerts.
func (s *Store) OpenAlerts(ctx context.Context) ([]Alert, error) {
	return s.Alerts().OpenAlerts(ctx)
}

// GetAlert forwards to Alerts.GetAlert.
//
// Deprecated: use s.Alerts().GetAlert.
func (s *Store) GetAlert(ctx context.Context, id int64) (Alert, error) {
	return s.Alerts().GetAlert(ctx, id)
}

// ListAlerts forwards to Alerts.ListAlerts.
//
// Deprecated: use s.Alerts().ListAlerts.
func (s *Store) ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	return s.Alerts().ListAlerts(ctx, f)
}

// ClaimAlertNotices forwards to Alerts.ClaimAlertNotices.
//
// Deprecated: use s.Alerts().ClaimAlertNotices.
func (s *Store) ClaimAlertNotices(ctx context.Context, by string, now time.Time, lease time.Duration, limit int) ([]Alert, error) {
	return s.Alerts().ClaimAlertNotices(ctx, by, now, lease, limit)
}

// AlertNoticeSent forwards to Alerts.AlertNoticeSent.
//
// Deprecated: use s.Alerts().AlertNoticeSent.
func (s *Store) AlertNoticeSent(ctx context.Context, id int64, notice string, at time.Time) error {
	return s.Alerts().AlertNoticeSent(ctx, id, notice, at)
}

// AlertNoticeFailed forwards to Alerts.AlertNoticeFailed.
//
// Deprecated: use s.Alerts().AlertNoticeFailed.
func (s *Store) AlertNoticeFailed(ctx context.Context, id int64, notice, msg string, next time.Time, giveUp bool) error {
	return s.Alerts().AlertNoticeFailed(ctx, id, notice, msg, next, giveUp)
}

// DropAlertNotice forwards to Alerts.DropAlertNotice.
//
// Deprecated: use s.Alerts().DropAlertNotice.
func (s *Store) DropAlertNotice(ctx context.Context, id int64, notice string) error {
	return s.Alerts().DropAlertNotice(ctx, id, notice)
}
