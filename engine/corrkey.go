package engine

import (
	"context"
	"fmt"

	"github.com/duplexsync/duplex/engine/store"
)

// Correlation keys. A connector that can correlate (connectors.Correlating)
// stores the key of a create with the entity, and a retry of the create
// looks it up before creating again: a crash between the create and its
// record does not make a second entity. The key must name one twin of one
// deployment: connection and twin ids repeat from one Duplex store to the
// next (two deployments, or a reinstall on a new store, writing to one
// Redmine), and a key found there would pair a stranger's entity with the
// twin and then write over it. So it carries the store's deployment id
// (store.Deployment, migration 00031):
//
//	duplex:<deployment>:<connection>:<twin>   e.g. duplex:3f9a0c21b7e4:2:1834
//
// The id is 12 hex digits (48 random bits): a key is about 25 characters,
// 59 at most, and the tightest place a connector stores it is ServiceNow's
// correlation_id (100). It starts with the id, so a legacy key (below) is
// never part of a new one for the stores that match substrings (Redmine).
//
// A create keeps the key it was first tried with. Its write intent records
// the key (intent.go). A twin made before migration 00031
// (store.Deployment.LegacyTwinMax) uses the recorded one, and when its
// create's intent is gone keeps the old key, duplex:<connection>:<twin>,
// which is what that create may have left on the entity.

// correlationKey is the key of a create made by this deployment.
func correlationKey(deployment string, connID, twinID int64) string {
	return fmt.Sprintf("duplex:%s:%d:%d", deployment, connID, twinID)
}

// legacyKey is the key before deployment ids (unique within one store).
func legacyKey(connID, twinID int64) string {
	return fmt.Sprintf("duplex:%d:%d", connID, twinID)
}

// createKey returns the correlation key of the create of twin's dst side:
// for a twin from before the deployment id, the one an earlier attempt
// recorded, else the legacy key; for any other twin, this deployment's.
//
// A twin made after the deployment id has had only this key (the id never
// changes in a store), so its creates skip the look-up of a recorded key:
// one query per create less. A change of the key's format would have to
// mark where it starts, as LegacyTwinMax does, and look up below that mark.
func (e *Engine) createKey(ctx context.Context, connID int64, twin *store.Twin, dst store.Side) (string, error) {
	d, err := e.deploymentID(ctx)
	if err != nil {
		return "", err
	}
	if twin.ID <= 0 || twin.ID > d.LegacyTwinMax {
		return correlationKey(d.ID, connID, twin.ID), nil
	}
	key, err := e.st.CreateKey(ctx, twin.ID, dst)
	if err != nil || key != "" {
		return key, err
	}
	return legacyKey(connID, twin.ID), nil
}

// deploymentID reads the store's deployment once: it never changes.
func (e *Engine) deploymentID(ctx context.Context) (store.Deployment, error) {
	if d := e.deployment.Load(); d != nil {
		return *d, nil
	}
	d, err := e.st.Deployment(ctx)
	if err != nil {
		return d, fmt.Errorf("correlation key: %w", err)
	}
	if d.ID == "" {
		return d, fmt.Errorf("correlation key: the store has an empty deployment id")
	}
	e.deployment.Store(&d)
	return d, nil
}
