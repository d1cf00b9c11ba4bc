package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Delivery statuses.
const (
	DeliveryPending = "pending"
	DeliveryDone    = "done"
	DeliveryFailed  = "failed"
)

// WebhookDelivery is one webhook request, recorded before it is answered.
type WebhookDelivery struct {
	ID          int64      `gorm:"primaryKey" json:"id"`
	SystemID    int64      `json:"system_id"`
	DeliveryID  string     `json:"delivery_id"`
	EntityIDs   string     `json:"-"` // JSON list
	Status      string     `json:"status"`
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"last_error"`
	ReceivedAt  time.Time  `json:"received_at"`
	ProcessedAt *time.Time `json:"processed_at,omitempty"`
}

// IDs decodes EntityIDs.
func (d WebhookDelivery) IDs() ([]string, error) {
	var ids []string
	if err := json.Unmarshal([]byte(d.EntityIDs), &ids); err != nil {
		return nil, fmt.Errorf("delivery %d entity ids: %w", d.ID, err)
	}
	return ids, nil
}

// RecordDelivery stores a delivery unless the system already has one with
// that delivery id; it reports whether it was new.
func (s *Store) RecordDelivery(ctx context.Context, systemID int64, deliveryID string, entityIDs []string) (bool, error) {
	enc, err := json.Marshal(entityIDs)
	if err != nil {
		return false, err
	}
	d := WebhookDelivery{SystemID: systemID, DeliveryID: deliveryID, EntityIDs: string(enc), Status: DeliveryPending, ReceivedAt: s.now()}
	res := s.q(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&d)
	if res.Error != nil {
		return false, wrap("record webhook delivery", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// PendingDeliveries returns deliveries waiting to be processed, oldest first.
func (s *Store) PendingDeliveries(ctx context.Context, limit int) ([]WebhookDelivery, error) {
	var out []WebhookDelivery
	err := s.q(ctx).Where("status = ?", DeliveryPending).Order("id").Limit(limit).Find(&out).Error
	return out, wrap("pending deliveries", err)
}

// FinishDelivery marks a delivery processed, or records its error: it stays
// pending for another attempt until attempts reach maxAttempts, then fails.
func (s *Store) FinishDelivery(ctx context.Context, id int64, procErr error, maxAttempts int) error {
	now := s.now()
	upd := map[string]any{"attempts": gorm.Expr("attempts + 1")}
	if procErr == nil {
		upd["status"], upd["processed_at"], upd["last_error"] = DeliveryDone, now, ""
	} else {
		msg := procErr.Error()
		if len(msg) > 2000 {
			msg = msg[:2000]
		}
		upd["last_error"] = msg
		var d WebhookDelivery
		if err := s.q(ctx).First(&d, id).Error; err != nil {
			return wrap("delivery", err)
		}
		if d.Attempts+1 >= maxAttempts {
			upd["status"] = DeliveryFailed
		}
	}
	return wrap("finish delivery", s.q(ctx).Model(&WebhookDelivery{}).Where("id = ?", id).Updates(upd).Error)
}

// ListDeliveries returns a system's latest deliveries, newest first.
func (s *Store) ListDeliveries(ctx context.Context, systemID int64, limit int) ([]WebhookDelivery, error) {
	var out []WebhookDelivery
	err := s.q(ctx).Where("system_id = ?", systemID).Order("id DESC").Limit(limit).Find(&out).Error
	return out, wrap("deliveries", err)
}
