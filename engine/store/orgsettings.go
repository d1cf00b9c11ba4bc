package store

import (
	"context"
	"time"
)

// OrgSettings are the organisation's settings an org admin decides
// (migration 00019 creates the one row).
type OrgSettings struct {
	ID int64 `gorm:"primaryKey" json:"-"`
	// TeamDirectory lets team admins see every team's id and name in GET
	// /api/teams?all=1 (to share templates by name); off, they see only
	// the names of teams they belong to or whose templates they can see.
	TeamDirectory bool      `json:"team_directory"`
	UpdatedAt     time.Time `json:"updated_at"`
	UpdatedBy     string    `json:"updated_by"`
}

// TableName maps OrgSettings to its table.
func (OrgSettings) TableName() string { return "org_settings" }

// OrgSettings reads the settings row.
func (s *Store) OrgSettings(ctx context.Context) (OrgSettings, error) {
	var r OrgSettings
	return r, wrap("org settings", s.q(ctx).First(&r, 1).Error)
}

// SetOrgSettings replaces the settings and records the audit entry in the
// same transaction.
func (s *Store) SetOrgSettings(ctx context.Context, o OrgSettings, actor, detail string) error {
	return s.Tx(ctx, func(tx *Store) error {
		o.ID, o.UpdatedAt, o.UpdatedBy = 1, tx.now(), actor
		if err := wrap("set org settings", tx.q(ctx).Save(&o).Error); err != nil {
			return err
		}
		return tx.AddAudit(ctx, &AuditEntry{Actor: actor, Action: "org_settings.set", Detail: detail})
	})
}
