package engine

import (
	"context"
	"time"

	"github.com/duplexsync/duplex/engine/store"
)

// What the engine needs of the store, declared here where it is used, by
// aggregate; *store.Store has all of it. Inside a transaction (Tx) the
// engine gets the transaction's whole store, which writes a change and
// what it depends on together.

// configReader is the configuration the engine runs; it never changes it (internal/service does).
type configReader interface {
	GetConnection(ctx context.Context, id int64) (store.Connection, error)
	GetSystem(ctx context.Context, id int64) (store.System, error)
	ListConnections(ctx context.Context) ([]store.Connection, error)
	ListSystems(ctx context.Context) ([]store.System, error)
	CurrentScripts(ctx context.Context, connID int64) (map[store.Side]map[store.ScriptKind]store.ScriptVersion, error)
	CurrentRules(ctx context.Context, connID int64) (map[store.Side]store.ScriptVersion, error)
}

// queueStore is the sync event queue and backfill jobs the workers claim.
type queueStore interface {
	ClaimEventsExcept(ctx context.Context, c store.Claim, limit int, release []int64, busy store.Busy) ([]store.SyncEvent, int, error)
	ClaimBackfills(ctx context.Context, c store.Claim) ([]store.Backfill, error)
	ClearClaims(ctx context.Context) error
	ReleaseClaims(ctx context.Context, by string) (int64, error)
	RenewEvents(ctx context.Context, c store.Claim, ids []int64) error
	RecentSynced(ctx context.Context, connID int64, d store.Direction, limit int) ([]store.SyncEvent, error)
	SetEventPartial(ctx context.Context, id int64, partial string) error
	SaveBackfill(ctx context.Context, b *store.Backfill) error
	QueuedEvents(ctx context.Context, connID int64, limit int) (int, error)
}

// twinStore is the pairs of entities and what was last sent between them.
type twinStore interface {
	TwinBy(ctx context.Context, connID int64, side store.Side, id string) (store.Twin, error)
	TwinsByID(ctx context.Context, ids []int64) (map[int64]*store.Twin, error)
	TwinsOf(ctx context.Context, connID int64, side store.Side, ids []string) (map[string]store.Twin, error)
	UnlinkedTwin(ctx context.Context, connID int64, side store.Side, id string) (store.Twin, bool, error)
	SetTwinEntityID(ctx context.Context, twinID int64, side store.Side, id string) error
	SetSentIf(ctx context.Context, twinID int64, d store.Direction, replica string, was *string) (bool, error)
	AppliedBefore(ctx context.Context, twinID int64, d store.Direction, id int64) (*string, error)
	SeenOf(ctx context.Context, systemID int64, ids []string) (map[string]time.Time, error)
}

// intentStore is the creates the engine has announced before making them.
type intentStore interface {
	AddIntent(ctx context.Context, in *store.Intent) error
	IntentCreated(ctx context.Context, intentID, twinID int64, side store.Side, entityID, expected string, intentsComing bool) error
	OpenIntents(ctx context.Context, systemID int64, since time.Time) ([]store.Intent, error)
	PendingCreate(ctx context.Context, twinID int64, side store.Side) (*store.Intent, error)
	IntentsOfEvent(ctx context.Context, eventID int64, side store.Side) ([]store.Intent, error)
	CreateKey(ctx context.Context, twinID int64, side store.Side) (string, error)
	Deployment(ctx context.Context) (store.Deployment, error)
	SupersedeIntents(ctx context.Context, ids []int64) error
}

// pollStore is the pollers' leases and health, and the webhook deliveries.
type pollStore interface {
	LeasePoller(ctx context.Context, systemID int64, c store.Claim) (held bool, prev string, err error)
	RecordPollOK(ctx context.Context, systemID int64, at time.Time) error
	RecordPollFailure(ctx context.Context, systemID int64, msg string, at time.Time) error
	ClaimDeliveriesExcept(ctx context.Context, c store.Claim, limit int, release, busy []int64) ([]store.WebhookDelivery, error)
	FinishDelivery(ctx context.Context, id int64, procErr error, maxAttempts int) error
	RecordDeliveryOnce(ctx context.Context, systemID int64, deliveryID string, entityIDs []string, entities string, replayWindow time.Duration) (bool, error)
	RecordDeliveryClaimed(ctx context.Context, systemID int64, deliveryID string, entityIDs []string, entities string, replayWindow time.Duration, c store.Claim) (store.WebhookDelivery, bool, error)
}

// peerStore is a peer link's side of a connection (peer.go): the link that
// stands for a system, and its outbox.
type peerStore interface {
	PeerLinkBySystem(ctx context.Context, systemID int64) (store.PeerLink, error)
	EnqueuePeer(ctx context.Context, m *store.PeerMessage) (ok bool, err error)
}

// Store is what the engine reads and writes: the aggregates above, whether
// the store is shared by several processes, and one transaction.
type Store interface {
	configReader
	queueStore
	twinStore
	intentStore
	pollStore
	peerStore
	Shared() bool
	Tx(ctx context.Context, fn func(tx *store.Store) error) error
}

var _ Store = (*store.Store)(nil)
