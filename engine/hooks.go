package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

// ErrNoWebhooks is returned for a system whose connector takes no webhooks.
var ErrNoWebhooks = errors.New("this system's connector does not take webhooks")

// HookResult is what the webhook intake answers.
type HookResult struct {
	Delivery  string `json:"delivery"`
	Entities  int    `json:"entities"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// hooked finds the webhook capability under the rate-limit wrapper.
func hooked(c connectors.Connector) (connectors.Hooked, bool) {
	if l, ok := c.(*limited); ok {
		c = l.next
	}
	h, ok := c.(connectors.Hooked)
	return h, ok
}

// Hook verifies and records one webhook request for a system, and nothing
// more: the answer goes back at once, and HooksOnce (the hook loop in Run)
// reads the entities it names. A delivery id seen before is recorded once.
func (e *Engine) Hook(ctx context.Context, systemID int64, header http.Header, body []byte) (HookResult, error) {
	st, err := e.system(ctx, systemID)
	if err != nil {
		return HookResult{}, err
	}
	h, ok := hooked(st.conn)
	if !ok {
		return HookResult{}, fmt.Errorf("system %q (%s): %w", st.sys.Name, st.sys.Kind, ErrNoWebhooks)
	}
	d, err := h.Webhook(header, body)
	if err != nil {
		return HookResult{}, fmt.Errorf("system %q webhook: %w", st.sys.Name, err)
	}
	if d.ID == "" {
		sum := sha256.Sum256(body)
		d.ID = "sha256:" + hex.EncodeToString(sum[:])
	}
	res := HookResult{Delivery: d.ID, Entities: len(d.EntityIDs)}
	isNew, err := e.st.RecordDelivery(ctx, systemID, d.ID, d.EntityIDs)
	if err != nil {
		return res, err
	}
	res.Duplicate = !isNew
	if isNew && len(d.EntityIDs) > 0 {
		e.wakeHooks()
	}
	return res, nil
}

func (e *Engine) wakeHooks() {
	select {
	case e.hookWake <- struct{}{}:
	default:
	}
}

// HooksOnce processes pending deliveries: each named entity is read and goes
// through the same intake as a polled change, and its events are committed
// with the deliveries' "done" marks, so a crash repeats a delivery rather
// than losing it (a repeat is harmless: an unchanged entity queues nothing).
// Deliveries of one system are handled together, each entity read once and
// one transaction for all, which is what keeps up with bursts; if that fails,
// each delivery is tried alone so one bad delivery holds up no other. It
// returns how many deliveries it finished.
func (e *Engine) HooksOnce(ctx context.Context) (int, error) {
	pending, err := e.st.PendingDeliveries(ctx, hookPage)
	if err != nil {
		return 0, err
	}
	bySystem := map[int64][]store.WebhookDelivery{}
	var order []int64
	for _, d := range pending {
		if _, ok := bySystem[d.SystemID]; !ok {
			order = append(order, d.SystemID)
		}
		bySystem[d.SystemID] = append(bySystem[d.SystemID], d)
	}
	done := 0
	for _, sys := range order {
		group := bySystem[sys]
		if err := e.processDeliveries(ctx, sys, group); err == nil {
			done += len(group)
			continue
		} else if ctx.Err() != nil {
			return done, ctx.Err()
		}
		for _, d := range group {
			if err := e.processDeliveries(ctx, sys, []store.WebhookDelivery{d}); err != nil {
				if ctx.Err() != nil {
					return done, ctx.Err()
				}
				e.log.Warn("webhook delivery", "system", d.SystemID, "delivery", d.DeliveryID, "err", err)
				if ferr := e.st.FinishDelivery(ctx, d.ID, err, e.opts.MaxAttempts); ferr != nil {
					return done, ferr
				}
				continue
			}
			done++
		}
	}
	if done > 0 {
		e.Wake()
	}
	return done, nil
}

// hookPage is how many pending deliveries one HooksOnce takes.
const hookPage = 200

func (e *Engine) processDeliveries(ctx context.Context, systemID int64, ds []store.WebhookDelivery) error {
	var ids []string
	seen := map[string]bool{}
	for _, d := range ds {
		some, err := d.IDs()
		if err != nil {
			return err
		}
		for _, id := range some {
			if !seen[id] { // read once: the entity's state now covers every delivery about it
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	st, err := e.system(ctx, systemID)
	if err != nil {
		return err
	}
	uses, err := e.usesOf(ctx, systemID)
	if err != nil {
		return err
	}
	readAt := e.opts.Now() // before reading, as a poll does: a later write by Duplex makes these stale
	// Hot path: each entity is read back from its system (a network round
	// trip for most connectors), up to Workers of them at once, so a page of
	// deliveries costs a few round trips of wall time rather than one each.
	// Then their twins are read in one query and each entity goes through
	// intake; the candidates keep the deliveries' order.
	ents := make([]connectors.Entity, 0, len(ids))
	got := make([]*connectors.Entity, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, e.opts.Workers)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ent, err := st.conn.Get(ctx, id)
			if errors.Is(err, connectors.ErrNotFound) {
				return // gone since; a delete is the poller's to report
			}
			if err != nil {
				errs[i] = fmt.Errorf("read %s: %w", id, err)
				return
			}
			got[i] = &ent
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, ent := range got {
		if ent != nil {
			ents = append(ents, *ent)
		}
	}
	twins, err := e.twinsOfPage(ctx, uses, ents)
	if err != nil {
		return err
	}
	perEnt := make([][]candidate, len(ents)) // scripts run on up to Workers cores
	for i, ent := range ents {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, u := range uses {
				if c, ok := e.intake(ctx, u.plan, u.side, ent, twins); ok {
					c.readAt = readAt
					perEnt[i] = append(perEnt[i], c)
				}
			}
		}()
	}
	wg.Wait()
	var cands []candidate
	for _, cs := range perEnt {
		cands = append(cands, cs...)
	}
	done := make([]int64, len(ds))
	for i, d := range ds {
		done[i] = d.ID
	}
	return e.st.Tx(ctx, func(tx *store.Store) error {
		if _, err := commit(ctx, tx, cands); err != nil {
			return err
		}
		return tx.FinishDeliveries(ctx, done)
	})
}

// hookLoop processes deliveries when woken, and every second for retries.
// After a full page it goes on at once: a burst bigger than a page must not
// wait for the next wake or tick (it once drained at 200 per second).
func (e *Engine) hookLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		n, err := e.HooksOnce(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Error("webhook deliveries", "err", err)
		}
		if err == nil && n >= hookPage {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-e.hookWake:
		case <-t.C:
		}
	}
}
