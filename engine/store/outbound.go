package store

import (
	"context"
	"time"
)

// OutboundPolicyRow is the stored outbound policy (internal/outbound reads
// its JSON).
type OutboundPolicyRow struct {
	ID        int64     `gorm:"primaryKey" json:"-"`
	Policy    string    `json:"-"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

// TableName maps OutboundPolicyRow to its table.
func (OutboundPolicyRow) TableName() string { return "outbound_policy" }

// OutboundPolicy reads the policy row (migration 00016 creates it).
func (s *Store) OutboundPolicy(ctx context.Context) (OutboundPolicyRow, error) {
	var r OutboundPolicyRow
	return r, wrap("outbound policy", s.q(ctx).First(&r, 1).Error)
}

// SetOutboundPolicy replaces the policy and records the audit entry in the
// same transaction.
func (s *Store) SetOutboundPolicy(ctx context.Context, policy, actor, detail string) error {
	return s.Tx(ctx, func(tx *Store) error {
		r := OutboundPolicyRow{ID: 1, Policy: policy, UpdatedAt: tx.now(), UpdatedBy: actor}
		if err := wrap("set outbound policy", tx.q(ctx).Save(&r).Error); err != nil {
			return err
		}
		return tx.AddAudit(ctx, &AuditEntry{Actor: actor, Action: "outbound_policy.set", Detail: detail})
	})
}
