package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

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

// ErrUnverified wraps every refusal of Hook made before the request's
// signature verified (no such system, it cannot be opened, it takes no
// webhooks, a bad signature): the server answers them all alike, so an
// anonymous sender learns nothing about the system.
var ErrUnverified = errors.New("webhook not verified")

// ErrTooManyEntities refuses a delivery naming more than MaxDeliveryEntities
// entities (413): one delivery must not hold the intake for minutes.
var ErrTooManyEntities = errors.New("the delivery names too many entities")

// MaxDeliveryEntities bounds the entities one delivery names (ids and
// carried entities together). A sender with more sends several deliveries;
// the poller is the safety net for bulk changes.
const MaxDeliveryEntities = 1000

// ReplayWindow is how long a delivery whose id the sender does not sign is
// known by its body: the same body again within it is a duplicate, whatever
// delivery id it carries (an id outside the signature proves nothing).
// After it, the same body re-arms the same row (never a new one), so an
// id-only notice about an entity that changed again is taken once more.
const ReplayWindow = 5 * time.Minute

// Hook verifies and records one webhook request for a system, and nothing
// more: the answer goes back at once, and HooksOnce (the hook loop in Run)
// reads the entities it names. A delivery id seen before is recorded once.
// Its errors do not name the system: the sender is anonymous until the
// signature verifies, and the server answers from them.
func (e *Engine) Hook(ctx context.Context, systemID int64, header http.Header, body []byte) (HookResult, error) {
	st, err := e.system(ctx, systemID)
	if err != nil {
		return HookResult{}, fmt.Errorf("%w: system %d: %w", ErrUnverified, systemID, err)
	}
	h, ok := hooked(st.conn)
	if !ok {
		return HookResult{}, fmt.Errorf("%w: system %d: %w", ErrUnverified, systemID, ErrNoWebhooks)
	}
	d, err := h.Webhook(header, body)
	if errors.Is(err, connectors.ErrSignature) {
		return HookResult{}, fmt.Errorf("%w: system %d: %w", ErrUnverified, systemID, err)
	}
	if err != nil { // after the signature verified (the Hooked contract)
		return HookResult{}, fmt.Errorf("system %d webhook: %w", systemID, err)
	}
	var window time.Duration
	if d.ID == "" || !d.IDSigned {
		sum := sha256.Sum256(body)
		d.ID = "sha256:" + hex.EncodeToString(sum[:])
		window = ReplayWindow
	}
	ids, bodies, err := deliveryEntities(d)
	if err != nil {
		return HookResult{}, fmt.Errorf("system %d webhook: %w", systemID, err)
	}
	res := HookResult{Delivery: d.ID, Entities: len(ids)}
	isNew, err := e.recordDelivery(ctx, systemID, d.ID, ids, bodies, window)
	res.Duplicate = !isNew
	return res, err
}

// recordDelivery records a delivery and wakes the hook loop for it: handed
// over in memory when it went in claimed by this process (hookhand.go),
// else pending in the store for the loop's next claim.
func (e *Engine) recordDelivery(ctx context.Context, systemID int64, id string, ids []string, bodies string, window time.Duration) (bool, error) {
	if !e.handed.reserve() {
		isNew, err := e.st.RecordDeliveryOnce(ctx, systemID, id, ids, bodies, window)
		if err == nil && isNew && len(ids) > 0 {
			e.woken.add(systemID)
			e.wakeHooks()
		}
		return isNew, err
	}
	c := e.claim()
	row, isNew, err := e.st.RecordDeliveryClaimed(ctx, systemID, id, ids, bodies, window, c)
	switch {
	case err != nil || !isNew:
		e.handed.unreserve()
	case row.ID == 0: // went in unclaimed
		e.handed.unreserve()
		e.woken.add(systemID)
		e.wakeHooks()
	case e.handed.put(row, c.Now.Add(c.Until.Sub(c.Now)/2)):
		e.wakeHooks()
	}
	return isNew, err
}

// takeHanded takes the handed deliveries of idle systems; those that
// waited too long in memory are released at the next claim and claimed
// from the store (hookhand.go).
func (e *Engine) takeHanded(idle func(int64) bool) (map[int64][]store.WebhookDelivery, []int64) {
	groups, order, stale := e.handed.take(idle, e.opts.Now())
	if len(stale) > 0 {
		ids := make([]int64, len(stale))
		for i, d := range stale {
			ids[i] = d.ID
			e.woken.add(d.SystemID)
		}
		e.releaseDeliveries(ids)
		e.wakeHooks()
	}
	return groups, order
}

// maxEntityIDBytes bounds one entity id named by a webhook.
const maxEntityIDBytes = 512

// checkEntityID refuses an id no system would give: empty, too long, not
// UTF-8 or with control characters. Types are the connector's to check (an
// object printed as "map[a:1]" passes here).
func checkEntityID(id string) error {
	if id == "" || len(id) > maxEntityIDBytes || !utf8.ValidString(id) {
		return fmt.Errorf("%w: an entity id in the webhook is empty, over %d bytes or not UTF-8", connectors.ErrInvalid, maxEntityIDBytes)
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: an entity id in the webhook has a control character", connectors.ErrInvalid)
		}
	}
	return nil
}

// deliveryEntities lists the ids a delivery names (EntityIDs, then those
// of Entities not among them) and encodes the entities it carries for the
// delivery row: a JSON list, each entity at most
// connectors.MaxWebhookEntityBytes ("" when it carries none).
func deliveryEntities(d connectors.Delivery) ([]string, string, error) {
	if n := len(d.EntityIDs) + len(d.Entities); n > MaxDeliveryEntities {
		return nil, "", fmt.Errorf("%w: %d, over the limit of %d per delivery (send several)", ErrTooManyEntities, n, MaxDeliveryEntities)
	}
	ids := d.EntityIDs
	for _, id := range ids {
		if err := checkEntityID(id); err != nil {
			return nil, "", err
		}
	}
	if len(d.Entities) == 0 {
		return ids, "", nil
	}
	named := make(map[string]bool, len(ids))
	for _, id := range ids {
		named[id] = true
	}
	var b []byte
	b = append(b, '[')
	for i, ent := range d.Entities {
		if ent.ID == "" {
			return nil, "", fmt.Errorf("%w: an entity in the webhook has no id", connectors.ErrInvalid)
		}
		if err := checkEntityID(ent.ID); err != nil {
			return nil, "", err
		}
		enc, err := json.Marshal(ent)
		if err != nil {
			return nil, "", fmt.Errorf("%w: entity %s in the webhook: %w", connectors.ErrInvalid, ent.ID, err)
		}
		if len(enc) > connectors.MaxWebhookEntityBytes {
			return nil, "", fmt.Errorf("%w: entity %s in the webhook is %d bytes of JSON, over the limit of %d for an entity carried by a webhook (send its id only and Duplex reads it back)",
				connectors.ErrInvalid, ent.ID, len(enc), connectors.MaxWebhookEntityBytes)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, enc...)
		if !named[ent.ID] {
			named[ent.ID] = true
			ids = append(ids, ent.ID)
		}
	}
	return ids, string(append(b, ']')), nil
}

// wokenSystems records which systems have new deliveries since the hook
// loop last looked, so a wake for systems it is still busy with costs no
// claim: under a burst every request woke the loop, and each claim (a
// write transaction) found only the busy system's deliveries, to pass.
type wokenSystems struct {
	mu  sync.Mutex
	ids map[int64]bool
}

func (w *wokenSystems) add(id int64) {
	w.mu.Lock()
	if w.ids == nil {
		w.ids = map[int64]bool{}
	}
	w.ids[id] = true
	w.mu.Unlock()
}

// anyOf reports whether the record names a system for which ok is true,
// and removes those; the others (systems the loop is busy with) stay for
// when their group ends.
func (w *wokenSystems) anyOf(ok func(int64) bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	found := false
	for id := range w.ids {
		if ok(id) {
			delete(w.ids, id)
			found = true
		}
	}
	return found
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
// one transaction for all, which is what keeps up with bursts; systems are
// handled concurrently, so a slow one holds up no other (processGroup). It
// returns how many deliveries it finished.
func (e *Engine) HooksOnce(ctx context.Context) (int, error) {
	pending, err := e.claimDeliveries(ctx, nil) // claim.go: shared with other processes
	if err != nil {
		return 0, err
	}
	groups, order := bySystem(pending)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
		errs []error
	)
	for _, sys := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := e.processGroup(ctx, sys, groups[sys])
			mu.Lock()
			done += n
			errs = append(errs, err)
			mu.Unlock()
		}()
	}
	wg.Wait() // each transaction woke the worker for what it queued (handing.done)
	return done, errors.Join(errs...)
}

// bySystem groups deliveries by system, systems in order of first delivery.
func bySystem(ds []store.WebhookDelivery) (map[int64][]store.WebhookDelivery, []int64) {
	groups := map[int64][]store.WebhookDelivery{}
	var order []int64
	for _, d := range ds {
		if _, ok := groups[d.SystemID]; !ok {
			order = append(order, d.SystemID)
		}
		groups[d.SystemID] = append(groups[d.SystemID], d)
	}
	return groups, order
}

// processGroup processes one system's claimed deliveries together; if that
// fails, each delivery is tried alone so one bad delivery holds up no other.
// It releases their claims when done and returns how many it finished; the
// error is the context's or the store's.
func (e *Engine) processGroup(ctx context.Context, sys int64, group []store.WebhookDelivery) (int, error) {
	ids := make([]int64, len(group))
	for i, d := range group {
		ids[i] = d.ID
	}
	defer e.releaseDeliveries(ids)
	err := e.processDeliveries(ctx, sys, group, false)
	// A create in flight (markOwnWrites): wait for its answer a little, as
	// a poll defers its page, without using up the deliveries' attempts.
	for errors.Is(err, errUndecided) {
		if !e.deferPoll(sys) {
			err = e.processDeliveries(ctx, sys, group, true)
			break
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(hookDeferWait):
		}
		err = e.processDeliveries(ctx, sys, group, false)
	}
	if err == nil {
		return len(group), nil
	} else if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	done := 0
	for _, d := range group {
		if err := e.processDeliveries(ctx, sys, []store.WebhookDelivery{d}, true); err != nil {
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
	return done, nil
}

// hookPage is how many pending deliveries one HooksOnce takes.
const hookPage = 200

// errUndecided: a delivery names an entity that may be a create's in flight
// (markOwnWrites); processGroup waits and tries again.
var errUndecided = errors.New("an entity of the delivery may be a create in flight")

// hookDeferWait is how long a system's deliveries wait for a create in
// flight before they are read again (at most maxPollDeferrals times in a
// row): a create's answer is saved within milliseconds of the create.
const hookDeferWait = 100 * time.Millisecond

// processDeliveries takes a group of one system's deliveries in. Unless
// decide is set, it returns errUndecided, having taken nothing in, when an
// entity named may be a create in flight.
func (e *Engine) processDeliveries(ctx context.Context, systemID int64, ds []store.WebhookDelivery, decide bool) error {
	n, err := namedIn(ds)
	if err != nil {
		return err
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
	twins := pageTwins{}
	undecided, err := e.checkCarried(ctx, systemID, uses, n.carried, n.readBack, twins)
	if err != nil {
		return err
	}
	ents, fetched, err := e.readNamed(ctx, st, n)
	if err != nil {
		return err
	}
	// The twins of the entities read back are read after them, as a poll
	// does: a twin older than the entity read could miss the echo hash of
	// Duplex's own write seen in it.
	more, moreUndecided, err := e.twinsOfPageUndecided(ctx, uses, fetched)
	if err != nil {
		return err
	}
	if (undecided || moreUndecided) && !decide {
		return errUndecided
	} else if !undecided && !moreUndecided {
		e.pollDecided(systemID)
	}
	for k, t := range more {
		twins[k] = t
	}
	reread := e.readStale(ctx, st, uses, ents, twins, readAt) // stale.go
	cands := e.intakeAll(ctx, uses, ents, twins, readAt)
	reread.stamp(cands)
	done := make([]int64, len(ds))
	for i, d := range ds {
		done[i] = d.ID
	}
	g := e.handingFor()
	err = e.st.Tx(ctx, func(tx *store.Store) error {
		cands, err := freshOnly(ctx, tx, systemID, ents, cands, n.usable)
		if err != nil {
			return err
		}
		if _, err := commit(ctx, tx, cands, g); err != nil {
			return err
		}
		if err := tx.MarkSeen(ctx, systemID, seenTimes(ents)); err != nil {
			return err
		}
		return tx.FinishDeliveries(ctx, done)
	})
	g.done(err) // wakes the worker for what it did not hand over
	return err
}

// namedEntities is what a page of deliveries names: the entities, in order,
// each taken once (its state now covers every delivery about it); per
// entity the newest state carried by a delivery, unless one names it
// without its state or two carry different states with the same stamp:
// then it is read back.
type namedEntities struct {
	ids      []string
	carried  map[string]*connectors.Entity
	readBack map[string]bool
}

// usable reports whether the entity's carried state is taken as it is.
func (n namedEntities) usable(id string) bool { return n.carried[id] != nil && !n.readBack[id] }

func namedIn(ds []store.WebhookDelivery) (namedEntities, error) {
	n := namedEntities{carried: map[string]*connectors.Entity{}, readBack: map[string]bool{}}
	named := map[string]bool{}
	for _, d := range ds {
		some, err := d.IDs()
		if err != nil {
			return n, err
		}
		bodies, err := decodeEntities(d)
		if err != nil {
			return n, err
		}
		for _, id := range some {
			if !named[id] {
				named[id] = true
				n.ids = append(n.ids, id)
			}
			b := bodies[id]
			switch cur := n.carried[id]; {
			case b == nil || b.Deleted || b.UpdatedAt.IsZero():
				n.readBack[id] = true
			case cur == nil || b.UpdatedAt.After(cur.UpdatedAt):
				n.carried[id] = b
			case b.UpdatedAt.Equal(cur.UpdatedAt) && contentHash(*b) != contentHash(*cur):
				n.readBack[id] = true
			}
		}
	}
	return n, nil
}

// readNamed returns the named entities, in order: carried ones as they
// came, the others read back from their system (hot path: a network round
// trip for most connectors), up to Workers of them at once, so a page of
// deliveries costs a few round trips of wall time rather than one each.
// fetched are the ones read back.
func (e *Engine) readNamed(ctx context.Context, st *systemState, n namedEntities) (ents, fetched []connectors.Entity, err error) {
	got := make([]*connectors.Entity, len(n.ids))
	errs := make([]error, len(n.ids))
	sem := make(chan struct{}, e.opts.Workers)
	var wg sync.WaitGroup
	for i, id := range n.ids {
		if n.usable(id) {
			got[i] = n.carried[id]
			continue
		}
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
		return nil, nil, err
	}
	ents = make([]connectors.Entity, 0, len(n.ids))
	for i, ent := range got {
		if ent != nil {
			ents = append(ents, *ent)
			if !n.usable(n.ids[i]) {
				fetched = append(fetched, *ent)
			}
		}
	}
	return ents, fetched, nil
}

// intakeAll runs intake for each entity and each use of its system, the
// scripts up to intakeWidth at once; the candidates keep the entities' order.
func (e *Engine) intakeAll(ctx context.Context, uses []use, ents []connectors.Entity, twins pageTwins, readAt time.Time) []candidate {
	perEnt := make([][]candidate, len(ents))
	sem := make(chan struct{}, e.intakeWidth())
	var wg sync.WaitGroup
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
	return cands
}

// checkCarried decides which carried entities can be taken as they are;
// the others are marked to be read back. A carried state is used only if it
// is newer than the newest state Duplex took of that entity (entity_seen:
// by webhook, read-back or poll), so a webhook redelivered or arriving late
// cannot put an older state over a newer one, and only if Duplex never wrote
// to the entity, unless the state is its write coming back (the echo hash):
// a state from before Duplex's write would otherwise pass for a person's
// change, and Duplex's writes are stamped by the system, not seen here
// (entity_seen does not move with them; that would let more states through).
// It fills twins with those of the entities taken as carried.
// undecided: a carried entity taken as it is may be a create in flight
// (markOwnWrites).
func (e *Engine) checkCarried(ctx context.Context, systemID int64, uses []use, carried map[string]*connectors.Entity, readBack map[string]bool, twins pageTwins) (undecided bool, err error) {
	var ids []string
	for id := range carried {
		if !readBack[id] {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return false, nil
	}
	seen, err := e.st.SeenOf(ctx, systemID, ids)
	if err != nil {
		return false, err
	}
	ents := make([]connectors.Entity, 0, len(ids))
	for _, id := range ids {
		if t, ok := seen[id]; ok && !carried[id].UpdatedAt.After(t) {
			readBack[id] = true
			continue
		}
		ents = append(ents, *carried[id])
	}
	got, undecided, err := e.twinsOfPageUndecided(ctx, uses, ents)
	if err != nil {
		return false, err
	}
	for _, ent := range ents {
		hash := ""
		for _, u := range uses {
			t, ok := got[twinKey{u.plan.conn.ID, u.side, ent.ID}]
			if !ok || t.WrittenAt(u.side) == nil {
				continue
			}
			if hash == "" {
				hash = contentHash(ent)
			}
			if t.Hash(u.side) != hash {
				readBack[ent.ID] = true
			}
		}
		if !readBack[ent.ID] {
			for _, u := range uses {
				k := twinKey{u.plan.conn.ID, u.side, ent.ID}
				if t, ok := got[k]; ok {
					twins[k] = t
				}
			}
		}
	}
	return undecided, nil
}

// errCarriedStale fails a page of deliveries (it is tried again, and the
// entity then read back) when a newer state of a carried entity was taken
// while the page was processed (a poll of the same system).
var errCarriedStale = errors.New("a newer state of a carried entity was taken meanwhile")

// freshOnly runs in the transaction that records states taken from a system
// with webhooks (ents; cands are their candidates) and compares them with
// entity_seen as committed: a state older than one taken meanwhile by
// another path (the hook loop and the poller run concurrently) is dropped,
// so it cannot be queued after the newer one. A carried state (isCarried)
// not newer than the mark fails with errCarriedStale instead, so it is read
// back on the next try: with whole-second stamps "the same stamp" can be a
// later edit.
func freshOnly(ctx context.Context, tx *store.Store, systemID int64, ents []connectors.Entity, cands []candidate, isCarried func(string) bool) ([]candidate, error) {
	if len(ents) == 0 {
		return cands, nil
	}
	ids := make([]string, len(ents))
	for i := range ents {
		ids[i] = ents[i].ID
	}
	seen, err := tx.SeenOf(ctx, systemID, ids)
	if err != nil || len(seen) == 0 {
		return cands, err
	}
	for _, ent := range ents {
		if t, ok := seen[ent.ID]; ok && isCarried(ent.ID) && !ent.UpdatedAt.After(t) {
			return nil, fmt.Errorf("entity %s: %w", ent.ID, errCarriedStale)
		}
	}
	out := cands[:0:0]
	for _, c := range cands {
		if t, ok := seen[c.entityID]; ok && !c.deleted && !c.updated.IsZero() && c.updated.Before(t) {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// decodeEntities reads the entities a delivery carried, by id (the newest
// state when one id appears twice).
func decodeEntities(d store.WebhookDelivery) (map[string]*connectors.Entity, error) {
	if d.Entities == "" {
		return nil, nil
	}
	list, ok := fastEntities(d.Entities)
	if !ok {
		dec := json.NewDecoder(strings.NewReader(d.Entities))
		dec.UseNumber() // integers stay exact, as decodeObject reads stored fields
		if err := dec.Decode(&list); err != nil {
			return nil, fmt.Errorf("delivery %d entities: %w", d.ID, err)
		}
	}
	out := make(map[string]*connectors.Entity, len(list))
	for i := range list {
		ent := &list[i]
		if ent.Fields == nil {
			ent.Fields = map[string]any{}
		}
		ent.Fields = normalizeNumbers(ent.Fields).(map[string]any)
		if cur := out[ent.ID]; cur == nil || !ent.UpdatedAt.Before(cur.UpdatedAt) {
			out[ent.ID] = ent
		}
	}
	return out, nil
}

// seenTimes maps entities to their update times, for Store.MarkSeen.
func seenTimes(ents []connectors.Entity) map[string]time.Time {
	out := make(map[string]time.Time, len(ents))
	for _, ent := range ents {
		if t := out[ent.ID]; ent.UpdatedAt.After(t) {
			out[ent.ID] = ent.UpdatedAt
		}
	}
	return out
}

// hookLoop processes deliveries when woken, and every second for retries.
// Deliveries this process received come handed over in memory (hookhand.go);
// the store is claimed from when a woken system may have others there
// (received unclaimed, or by another process), every second (retries,
// lapsed claims) and while a claim fills a whole page.
func (e *Engine) hookLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	e.handed.setOpen(true)
	defer e.handed.setOpen(false) // what is left stays claimed until Run releases its claims
	g := hookGroups{e: e, ctx: ctx, busy: map[int64]bool{}, finished: make(chan struct{}, 1)}
	defer g.wg.Wait()
	for claim := true; ; {
		g.launch(e.takeHanded(g.idle))
		if !claim {
			select {
			case <-ctx.Done():
				return
			case <-e.hookWake:
				claim = e.woken.anyOf(g.idle)
			case <-t.C:
				claim = true
			case <-g.finished:
				claim = e.woken.anyOf(g.idle)
			}
			continue
		}
		pending, err := e.claimDeliveries(ctx, g.busyNow())
		if err != nil && ctx.Err() == nil {
			e.log.Error("webhook deliveries", "err", err)
		}
		g.launch(bySystem(pending))
		if err == nil && len(pending) >= hookPage {
			continue
		}
		claim = false
		select {
		case <-ctx.Done():
			return
		case <-e.hookWake:
			claim = e.woken.anyOf(g.idle)
		case <-t.C:
			claim = true
		case <-g.finished:
			claim = e.woken.anyOf(g.idle)
		}
	}
}

// hookGroups runs the hook loop's groups, one at a time per system.
type hookGroups struct {
	e        *Engine
	ctx      context.Context
	wg       sync.WaitGroup
	mu       sync.Mutex
	busy     map[int64]bool
	finished chan struct{} // a group ended: its system's next deliveries may wait
}

func (g *hookGroups) idle(sys int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.busy[sys]
}

func (g *hookGroups) busyNow() []int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]int64, 0, len(g.busy))
	for sys := range g.busy {
		out = append(out, sys)
	}
	return out
}

// launch processes each system's group in a goroutine of its own. A group
// that did not finish every delivery marks its system woken: what failed
// is pending in the store for the next claim.
func (g *hookGroups) launch(groups map[int64][]store.WebhookDelivery, order []int64) {
	for _, sys := range order {
		g.mu.Lock()
		g.busy[sys] = true
		g.mu.Unlock()
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			// Its transactions woke the worker for what they queued (handing.done).
			n, err := g.e.processGroup(g.ctx, sys, groups[sys])
			if err != nil && g.ctx.Err() == nil {
				g.e.log.Error("webhook deliveries", "system", sys, "err", err)
			}
			if err != nil || n < len(groups[sys]) {
				g.e.woken.add(sys)
			}
			g.mu.Lock()
			delete(g.busy, sys)
			g.mu.Unlock()
			select {
			case g.finished <- struct{}{}:
			default:
			}
		}()
	}
}
