package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
)

// Delivery statuses.
const (
	DeliveryPending = "pending"
	DeliveryDone    = "done"
	DeliveryFailed  = "failed"
)

// WebhookDelivery is one webhook request, recorded before it is answered.
type WebhookDelivery struct {
	ID         int64  `gorm:"primaryKey" json:"id"`
	SystemID   int64  `json:"system_id"`
	DeliveryID string `json:"delivery_id"`
	EntityIDs  string `json:"-"` // JSON list
	// Entities is the JSON list of the entities the webhook carried (the
	// state as of the event), "" when it named ids only.
	Entities    string     `json:"-"`
	Status      string     `json:"status"`
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"last_error"`
	ReceivedAt  time.Time  `json:"received_at"`
	ProcessedAt *time.Time `json:"processed_at,omitempty"`
	// rearmBefore: see RecordDeliveryOnce (not a column).
	rearmBefore time.Time
	// claim: see RecordDeliveryClaimed (claimed_by and lease_until when set).
	claim *Claim
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
// that delivery id; it reports whether it was new. entities is the JSON list
// of the entities the webhook carried, or "". It returns once the row is
// committed (the webhook is answered only then), but concurrent calls share
// one transaction: see deliveryCommitter.
func (s *Store) RecordDelivery(ctx context.Context, systemID int64, deliveryID string, entityIDs []string, entities string) (bool, error) {
	return s.RecordDeliveryOnce(ctx, systemID, deliveryID, entityIDs, entities, 0)
}

// RecordDeliveryOnce is RecordDelivery, except that with a non-zero
// replayWindow an existing row of that delivery id received longer ago than
// that (by the store's clock), and no longer pending, is made pending again with this delivery's entities
// (reported as new) instead of being a duplicate: a replay window for
// delivery ids derived from the body, which adds no row.
func (s *Store) RecordDeliveryOnce(ctx context.Context, systemID int64, deliveryID string, entityIDs []string, entities string, replayWindow time.Duration) (bool, error) {
	_, isNew, err := s.recordDelivery(ctx, systemID, deliveryID, entityIDs, entities, replayWindow, nil)
	return isNew, err
}

// RecordDeliveryClaimed is RecordDeliveryOnce for the process that will
// take the delivery in itself: a new row goes in already claimed by c and
// comes back, its ID set, so that process needs no claim of its own (a
// write transaction and a read in the webhook's way). The returned row's
// ID is 0 when the row went in unclaimed (a batch that failed, each row
// then inserted alone; or inside a transaction): it is then pending for
// any claimer, as RecordDeliveryOnce leaves it. A claimed row its process
// never takes (it died) is taken by others when the claim lapses.
func (s *Store) RecordDeliveryClaimed(ctx context.Context, systemID int64, deliveryID string, entityIDs []string, entities string, replayWindow time.Duration, c Claim) (WebhookDelivery, bool, error) {
	return s.recordDelivery(ctx, systemID, deliveryID, entityIDs, entities, replayWindow, &c)
}

func (s *Store) recordDelivery(ctx context.Context, systemID int64, deliveryID string, entityIDs []string, entities string, replayWindow time.Duration, c *Claim) (WebhookDelivery, bool, error) {
	enc, err := json.Marshal(entityIDs)
	if err != nil {
		return WebhookDelivery{}, false, err
	}
	d := WebhookDelivery{SystemID: systemID, DeliveryID: deliveryID, EntityIDs: string(enc), Entities: entities,
		Status: DeliveryPending, ReceivedAt: s.now()}
	if replayWindow > 0 {
		d.rearmBefore = d.ReceivedAt.Add(-replayWindow)
	}
	if s.hooks == nil { // inside a transaction: the caller commits; unclaimed
		isNew, err := s.insertDelivery(ctx, &d)
		return WebhookDelivery{}, isNew, err
	}
	d.claim = c
	return s.hooks.record(ctx, d)
}

// insertDelivery inserts one delivery row unless its (system, delivery id)
// exists; it reports whether it did.
func (s *Store) insertDelivery(ctx context.Context, d *WebhookDelivery) (bool, error) {
	if !d.rearmBefore.IsZero() {
		return s.insertOrRearmDelivery(ctx, d)
	}
	res, err := s.exec(ctx, `INSERT INTO webhook_deliveries (system_id, delivery_id, entity_ids, entities, status, attempts, last_error, received_at)
		VALUES (?, ?, ?, ?, ?, 0, '', ?) ON CONFLICT (system_id, delivery_id) DO NOTHING`,
		d.SystemID, d.DeliveryID, d.EntityIDs, d.Entities, d.Status, d.ReceivedAt)
	if err != nil {
		return false, wrap("record webhook delivery", err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap("record webhook delivery", err)
}

// insertOrRearmDelivery is insertDelivery with the replay window of
// RecordDeliveryOnce.
func (s *Store) insertOrRearmDelivery(ctx context.Context, d *WebhookDelivery) (bool, error) {
	res, err := s.exec(ctx, `INSERT INTO webhook_deliveries (system_id, delivery_id, entity_ids, entities, status, attempts, last_error, received_at)
		VALUES (?, ?, ?, ?, ?, 0, '', ?) ON CONFLICT (system_id, delivery_id) DO UPDATE SET
			entity_ids = excluded.entity_ids, entities = excluded.entities, status = excluded.status, attempts = 0,
			last_error = '', received_at = excluded.received_at, processed_at = NULL, claimed_by = NULL, lease_until = NULL
		WHERE webhook_deliveries.status <> ? AND webhook_deliveries.received_at < ?`,
		d.SystemID, d.DeliveryID, d.EntityIDs, d.Entities, d.Status, d.ReceivedAt, DeliveryPending, d.rearmBefore)
	if err != nil {
		return false, wrap("record webhook delivery", err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap("record webhook delivery", err)
}

// deliveryCommitter is the group commit of webhook deliveries. Every
// delivery must be durable before its request is answered, and a commit
// (an fsync on SQLite) costs far more than the insert: so deliveries that
// arrive together are inserted in one transaction, and each caller waits for
// that commit. A batch starts when it has deliveryBatchMax rows or its oldest
// row has waited deliveryLinger; rows arriving during a commit form the next
// batch. No goroutine runs while nothing is pending.
type deliveryCommitter struct {
	st      *Store
	mu      sync.Mutex
	queue   []*pendingDelivery
	running bool
	full    chan struct{} // signalled when the queue reaches deliveryBatchMax
}

type pendingDelivery struct {
	d      WebhookDelivery
	queued time.Time
	isNew  bool
	err    error
	done   chan struct{}
}

const (
	deliveryBatchMax = 256
	deliveryLinger   = time.Millisecond
)

func newDeliveryCommitter(st *Store) *deliveryCommitter {
	return &deliveryCommitter{st: st, full: make(chan struct{}, 1)}
}

func (c *deliveryCommitter) record(ctx context.Context, d WebhookDelivery) (WebhookDelivery, bool, error) {
	p := &pendingDelivery{d: d, queued: time.Now(), done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, p)
	if len(c.queue) >= deliveryBatchMax {
		select {
		case c.full <- struct{}{}:
		default:
		}
	}
	if !c.running {
		c.running = true
		go c.run()
	}
	c.mu.Unlock()
	cancel := ctx.Done()
	if d.claim != nil {
		// Claimed for this process: its answer is awaited whatever ctx
		// says (the commit is bounded by the busy timeout), so the row is
		// handed over even when the sender left; a claimed row nobody
		// took would wait for its lease.
		cancel = nil
	}
	select {
	case <-p.done:
		if !p.isNew || p.err != nil || p.d.ID == 0 || p.d.claim == nil {
			return WebhookDelivery{}, p.isNew, p.err
		}
		out := p.d
		out.rearmBefore, out.claim = time.Time{}, nil
		return out, true, nil
	case <-cancel:
		// The row may still be committed; a redelivery is then a duplicate.
		return WebhookDelivery{}, false, ctx.Err()
	}
}

// run commits batches until the queue is empty.
func (c *deliveryCommitter) run() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		wait := deliveryLinger - time.Since(c.queue[0].queued)
		c.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-c.full:
			}
			t.Stop()
		}
		c.mu.Lock()
		n := min(len(c.queue), deliveryBatchMax)
		batch := c.queue[:n:n]
		c.queue = c.queue[n:]
		select { // a stale "full" must not cut the next linger short
		case <-c.full:
		default:
		}
		if len(c.queue) >= deliveryBatchMax {
			c.full <- struct{}{}
		}
		c.mu.Unlock()
		c.commit(batch)
		for _, p := range batch {
			close(p.done)
		}
	}
}

// commit inserts a batch with one multi-row statement (two when it mixes
// deliveries with and without a replay window), in one transaction. If that
// fails, each row is tried alone, so one bad row (its system deleted
// meanwhile) fails no other.
func (c *deliveryCommitter) commit(batch []*pendingDelivery) {
	ctx := context.Background() // the batch is not any one request's
	plain, rearm, dups := splitDeliveries(batch)
	var err error
	if len(plain) == 0 || len(rearm) == 0 {
		err = c.st.insertDeliveries(ctx, append(plain, rearm...)) // one statement: its own commit
	} else {
		err = c.st.Tx(ctx, func(tx *Store) error {
			if err := tx.insertDeliveries(ctx, plain); err != nil {
				return err
			}
			return tx.insertDeliveries(ctx, rearm)
		})
	}
	if err != nil {
		for _, p := range batch {
			p.d.ID = 0 // inserted alone: unclaimed, its id not read back
			p.isNew, p.err = c.st.insertDelivery(ctx, &p.d)
		}
		return
	}
	for _, p := range dups {
		p.isNew = false // its first copy in the batch is the one that can be new
	}
}

type deliveryKey struct {
	system int64
	id     string
}

// splitDeliveries sorts a batch into the first copies of its delivery ids,
// without and with a replay window, and the later copies (duplicates of
// the first within one statement, which PostgreSQL's upsert refuses).
func splitDeliveries(batch []*pendingDelivery) (plain, rearm, dups []*pendingDelivery) {
	seen := make(map[deliveryKey]bool, len(batch))
	for _, p := range batch {
		k := deliveryKey{p.d.SystemID, p.d.DeliveryID}
		switch {
		case seen[k]:
			dups = append(dups, p)
		case p.d.rearmBefore.IsZero():
			plain = append(plain, p)
		default:
			rearm = append(rearm, p)
		}
		seen[k] = true
	}
	return plain, rearm, dups
}

// insertDeliveries inserts rows of one kind (all with a replay window or
// none) in one statement and sets each one's isNew from what it returns.
// With a replay window the statement re-arms an old row only if it was
// received before the earliest row's cut-off: within a batch the cut-offs
// differ by the batch's milliseconds, and the stricter one is kept.
func (s *Store) insertDeliveries(ctx context.Context, rows []*pendingDelivery) error {
	if len(rows) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO webhook_deliveries (system_id, delivery_id, entity_ids, entities, status, attempts, last_error, received_at, claimed_by, lease_until) VALUES `)
	args := make([]any, 0, 8*len(rows)+2)
	byKey := make(map[deliveryKey]*pendingDelivery, len(rows))
	cutoff := rows[0].d.rearmBefore
	for i, p := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, 0, '', ?, ?, ?)")
		d := &p.d
		var by, until any // NULL: unclaimed
		if d.claim != nil {
			by, until = d.claim.By, d.claim.Until.UTC()
		}
		args = append(args, d.SystemID, d.DeliveryID, d.EntityIDs, d.Entities, d.Status, d.ReceivedAt, by, until)
		byKey[deliveryKey{d.SystemID, d.DeliveryID}] = p
		p.isNew = false
		if d.rearmBefore.Before(cutoff) {
			cutoff = d.rearmBefore
		}
	}
	if cutoff.IsZero() {
		q.WriteString(` ON CONFLICT (system_id, delivery_id) DO NOTHING`)
	} else {
		q.WriteString(` ON CONFLICT (system_id, delivery_id) DO UPDATE SET
			entity_ids = excluded.entity_ids, entities = excluded.entities, status = excluded.status, attempts = 0,
			last_error = '', received_at = excluded.received_at, processed_at = NULL,
			claimed_by = excluded.claimed_by, lease_until = excluded.lease_until
		WHERE webhook_deliveries.status <> ? AND webhook_deliveries.received_at < ?`)
		args = append(args, DeliveryPending, cutoff)
	}
	q.WriteString(" RETURNING id, system_id, delivery_id")
	res, err := s.query(ctx, q.String(), args...)
	if err != nil {
		return wrap("record webhook deliveries", err)
	}
	defer res.Close()
	for res.Next() {
		var k deliveryKey
		var id int64
		if err := res.Scan(&id, &k.system, &k.id); err != nil {
			return wrap("record webhook deliveries", err)
		}
		if p := byKey[k]; p != nil {
			p.isNew, p.d.ID = true, id
		}
	}
	return wrap("record webhook deliveries", res.Err())
}

// pendingDeliveriesSQL reads the oldest pending deliveries
// (webhook_deliveries_pending).
const pendingDeliveriesSQL = `SELECT * FROM webhook_deliveries WHERE status = ` + pendingSQL + ` ORDER BY id LIMIT ?`

// PendingDeliveries returns deliveries waiting to be processed, oldest first.
func (s *Store) PendingDeliveries(ctx context.Context, limit int) ([]WebhookDelivery, error) {
	var out []WebhookDelivery
	err := s.q(ctx).Raw(pendingDeliveriesSQL, limit).Scan(&out).Error
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

// FinishDeliveries marks deliveries processed, in one statement.
func (s *Store) FinishDeliveries(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return wrap("finish deliveries", s.q(ctx).Model(&WebhookDelivery{}).Where("id IN ?", ids).Updates(map[string]any{
		"attempts": gorm.Expr("attempts + 1"), "status": DeliveryDone, "processed_at": s.now(), "last_error": ""}).Error)
}

// ListDeliveries returns a system's latest deliveries, newest first.
func (s *Store) ListDeliveries(ctx context.Context, systemID int64, limit int) ([]WebhookDelivery, error) {
	var out []WebhookDelivery
	err := s.q(ctx).Where("system_id = ?", systemID).Order("id DESC").Limit(limit).Find(&out).Error
	return out, wrap("deliveries", err)
}

// SeenOf returns, for those of ids that have one, the newest update time
// (the system's own stamp) Duplex has taken of each entity of a system
// with webhooks (see MarkSeen).
func (s *Store) SeenOf(ctx context.Context, systemID int64, ids []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(ids))
	const chunk = 500
	for len(ids) > 0 {
		part := ids[:min(chunk, len(ids))]
		ids = ids[len(part):]
		args := make([]any, 0, len(part)+1)
		args = append(args, systemID)
		for _, id := range part {
			args = append(args, id)
		}
		s.stats.Statements.Add(1)
		rows, err := s.db.Statement.ConnPool.QueryContext(ctx, s.bind(`SELECT entity_id, updated_ns FROM entity_seen WHERE system_id = ? AND entity_id IN (?`+
			strings.Repeat(", ?", len(part)-1)+`)`), args...)
		if err != nil {
			return nil, wrap("entities seen", err)
		}
		for rows.Next() {
			var id string
			var ns int64
			if err := rows.Scan(&id, &ns); err != nil {
				rows.Close()
				return nil, wrap("entities seen", err)
			}
			out[id] = time.Unix(0, ns).UTC()
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, wrap("entities seen", err)
		}
	}
	return out, nil
}

// MarkSeen records the update times of entities Duplex took from a system
// with webhooks; a stored time only moves forward. One statement per 300
// entities.
func (s *Store) MarkSeen(ctx context.Context, systemID int64, seen map[string]time.Time) error {
	ids := make([]string, 0, len(seen))
	for id, t := range seen {
		if !t.IsZero() {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids) // the same order in every process: no lock order inversions
	const chunk = 300
	for len(ids) > 0 {
		part := ids[:min(chunk, len(ids))]
		ids = ids[len(part):]
		args := make([]any, 0, 3*len(part))
		for _, id := range part {
			args = append(args, systemID, id, seen[id].UnixNano())
		}
		q := `INSERT INTO entity_seen (system_id, entity_id, updated_ns) VALUES (?, ?, ?)` + strings.Repeat(", (?, ?, ?)", len(part)-1) +
			` ON CONFLICT (system_id, entity_id) DO UPDATE SET updated_ns = excluded.updated_ns WHERE entity_seen.updated_ns < excluded.updated_ns`
		if _, err := s.exec(ctx, q, args...); err != nil {
			return wrap("mark entities seen", err)
		}
	}
	return nil
}
