package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

// Re-linking (on_unmatch "unlink"). An entity that stops matching the
// trigger of the side it came from is unlinked, and its pair is remembered
// (store.RememberUnlinked). When the entity matches again, intake takes the
// remembered pair as its twin and commit puts it back: the pair goes on
// with the counterpart it had (an update of the same Redmine issue, the
// same comment links), never a second counterpart. See docs/templates.md.

// rememberedTwin is the pair of an entity that matches its trigger again
// after an unlink, if the connection unlinks and one is remembered.
func (e *Engine) rememberedTwin(ctx context.Context, p *plan, side store.Side, ent connectors.Entity) (store.Twin, bool) {
	if p.options.OnUnmatch != "unlink" {
		return store.Twin{}, false
	}
	t, ok, err := e.st.UnlinkedTwin(ctx, p.conn.ID, side, ent.ID)
	if err != nil {
		// Going on as a new pair is what happened before pairs were
		// remembered; the error says why a second counterpart may appear.
		e.log.Error("reading an unlinked pair failed; the entity is taken as new", "connection", p.conn.Name, "entity", ent.ID, "err", err)
		return store.Twin{}, false
	}
	return t, ok
}

// relinkOnly reports a candidate that only restores its pair: the entity is
// as Duplex left it (an echo), there is nothing to queue.
func (c candidate) relinkOnly() bool {
	return c.relink != 0 && c.replica == "" && c.failure == ""
}

// unlinkRemembering unlinks a pair whose entity stopped matching its
// trigger, remembering it for a later match.
func unlinkRemembering(ctx context.Context, tx *store.Store, c candidate) error {
	if err := tx.RememberUnlinked(ctx, c.unlink); err != nil {
		return err
	}
	if _, err := tx.DeleteTwin(ctx, c.unlink); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil // unlinked meanwhile
		}
		return err
	}
	return tx.AddAudit(ctx, &store.AuditEntry{Actor: "engine", Action: "twin.unlink", ConnectionID: &c.connID,
		Detail: fmt.Sprintf("%s entity %s no longer matches the trigger; the pair is remembered for when it matches again", c.side, c.entityID)})
}

// relinkPair restores a candidate's remembered pair inside the intake
// transaction. restored=false: it was not (another intake restored it
// meanwhile, or a person linked one of its entities again); the candidate
// then goes on as any other.
func relinkPair(ctx context.Context, tx *store.Store, c candidate) (restored bool, err error) {
	ok, err := tx.RestoreUnlinked(ctx, c.relink)
	if err != nil || !ok {
		return false, err
	}
	twinID := c.relink
	return true, tx.AddAudit(ctx, &store.AuditEntry{Actor: "engine", Action: "twin.relink", ConnectionID: &c.connID, TwinID: &twinID,
		Detail: fmt.Sprintf("%s entity %s matches the trigger again: linked again with the counterpart it had", c.side, c.entityID)})
}
