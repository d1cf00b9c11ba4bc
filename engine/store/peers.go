package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PeerLink is this deployment's half of a peer link (docs/peers.md): one
// connection whose PeerSide is another Duplex deployment.
type PeerLink struct {
	ID           int64  `gorm:"primaryKey" json:"id"`
	TeamID       int64  `json:"team_id"`
	Name         string `json:"name"`
	ConnectionID int64  `json:"connection_id"`
	// SystemID is the stand-in system of kind "peer" on PeerSide of the
	// connection: it reads nothing and writes nothing (engine/peer.go).
	SystemID   int64  `json:"system_id"`
	PeerSide   Side   `json:"peer_side"`
	LocalNode  string `json:"local_node"`
	RemoteNode string `json:"remote_node"`
	RemoteURL  string `json:"remote_url"`
	LocalURL   string `json:"local_url"`
	PrivateKey []byte `json:"-"` // sealed with the secret box
	PublicKey  []byte `json:"public_key"`
	RemoteKey  []byte `json:"remote_key,omitempty"`
	// Status: invited (waiting for the other admin), active, paused,
	// revoked (here), revoked_by_peer.
	Status        string     `json:"status"`
	StatusReason  string     `json:"status_reason,omitempty"`
	LastContactAt *time.Time `json:"last_contact_at,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	// RemoteWaiting is how many messages the peer said it still had for
	// this side, in its last message (signed with it).
	RemoteWaiting int64     `json:"remote_waiting"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Peer link statuses.
const (
	PeerInvited       = "invited"
	PeerActive        = "active"
	PeerPaused        = "paused"
	PeerRevoked       = "revoked"
	PeerRevokedByPeer = "revoked_by_peer"
)

// PeerInvite is an invitation's stored half: the hash of its secret.
type PeerInvite struct {
	ID         int64 `gorm:"primaryKey"`
	LinkID     int64
	SecretHash string
	ExpiresAt  time.Time
	UsedAt     *time.Time
	CreatedAt  time.Time
}

// PeerMessage is one row of the outbox.
type PeerMessage struct {
	ID            int64  `gorm:"primaryKey" json:"id"`
	LinkID        int64  `json:"link_id"`
	MsgID         string `json:"msg_id"`
	Kind          string `json:"kind"`
	EventID       int64  `json:"event_id,omitempty"`
	PairKey       string `json:"pair_key,omitempty"`
	Body          string `json:"-"` // the unsigned envelope; signed when sent
	Attempts      int    `json:"attempts"`
	NextAttemptAt time.Time
	SentAt        *time.Time `json:"sent_at,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}

// TableName keeps gorm off its plural guess.
func (PeerMessage) TableName() string { return "peer_outbox" }

// PeerPair is what the peer reported creating for a pair.
type PeerPair struct {
	LinkID    int64     `json:"link_id"`
	PairKey   string    `json:"pair_key"`
	RemoteID  string    `json:"remote_id"`
	RemoteKey string    `json:"remote_key,omitempty"`
	RemoteURL string    `json:"remote_url,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CreatePeerLink stores a new link with its invitation (invite may be nil:
// the accepting side has none).
func (s *Store) CreatePeerLink(ctx context.Context, l *PeerLink, invite *PeerInvite) error {
	now := s.now()
	l.CreatedAt, l.UpdatedAt = now, now
	return s.Tx(ctx, func(tx *Store) error {
		if err := tx.q(ctx).Create(l).Error; err != nil {
			return wrap("create peer link", err)
		}
		if invite == nil {
			return nil
		}
		invite.LinkID, invite.CreatedAt = l.ID, now
		return wrap("create invitation", tx.q(ctx).Create(invite).Error)
	})
}

// SavePeerLink writes a link's row.
func (s *Store) SavePeerLink(ctx context.Context, l *PeerLink) error {
	l.UpdatedAt = s.now()
	return wrap("save peer link", s.q(ctx).Save(l).Error)
}

// GetPeerLink reads a link by id.
func (s *Store) GetPeerLink(ctx context.Context, id int64) (PeerLink, error) {
	var l PeerLink
	return l, wrap("peer link", s.q(ctx).First(&l, id).Error)
}

// PeerLinkByNode reads the link whose local node id is node.
func (s *Store) PeerLinkByNode(ctx context.Context, node string) (PeerLink, error) {
	var l PeerLink
	return l, wrap("peer link", s.q(ctx).Where("local_node = ?", node).First(&l).Error)
}

// PeerLinkBySystem reads the link whose stand-in system is systemID.
func (s *Store) PeerLinkBySystem(ctx context.Context, systemID int64) (PeerLink, error) {
	var l PeerLink
	return l, wrap("peer link", s.q(ctx).Where("system_id = ?", systemID).First(&l).Error)
}

// ListPeerLinks lists links, newest first.
func (s *Store) ListPeerLinks(ctx context.Context) ([]PeerLink, error) {
	var out []PeerLink
	return out, wrap("list peer links", s.q(ctx).Order("id DESC").Find(&out).Error)
}

// RedeemInvite spends the invitation of link node whose secret hashes to
// hash, and records the accepting side on the link, in one transaction:
// an expired, spent or unknown invitation is ErrNotFound and changes
// nothing.
func (s *Store) RedeemInvite(ctx context.Context, node, hash string, remoteNode, remoteURL string, remoteKey []byte) (PeerLink, error) {
	var l PeerLink
	err := s.Tx(ctx, func(tx *Store) error {
		if err := tx.q(ctx).Where("local_node = ? AND status = ?", node, PeerInvited).First(&l).Error; err != nil {
			return wrap("peer link", err)
		}
		now := s.now()
		res := tx.q(ctx).Model(&PeerInvite{}).
			Where("link_id = ? AND secret_hash = ? AND used_at IS NULL AND expires_at > ?", l.ID, hash, now).
			Update("used_at", now)
		if res.Error != nil {
			return wrap("redeem invitation", res.Error)
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("invitation: %w", ErrNotFound)
		}
		l.RemoteNode, l.RemoteURL, l.RemoteKey, l.Status, l.LastContactAt = remoteNode, remoteURL, remoteKey, PeerActive, &now
		l.UpdatedAt = now
		return wrap("save peer link", tx.q(ctx).Save(&l).Error)
	})
	return l, err
}

// EnqueuePeer adds a message to the outbox. A message id already there (an
// event's apply run again after a crash) is left as it was: ok=false.
func (s *Store) EnqueuePeer(ctx context.Context, m *PeerMessage) (ok bool, err error) {
	now := s.now()
	if m.NextAttemptAt.IsZero() {
		m.NextAttemptAt = now
	}
	m.CreatedAt = now
	err = s.queryRow(ctx, `INSERT INTO peer_outbox (link_id, msg_id, kind, event_id, pair_key, body, attempts, next_attempt_at, last_error, created_at)
		VALUES (?, ?, ?, ?, ?, ?, 0, ?, '', ?) ON CONFLICT DO NOTHING RETURNING id`,
		m.LinkID, m.MsgID, m.Kind, m.EventID, m.PairKey, m.Body, m.NextAttemptAt, now).Scan(&m.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, wrap("enqueue peer message", err)
}

// NextPeerMessage is the oldest unsent message of a link: messages go in
// order, one at a time, so a twin's changes arrive in the order they were
// made. ok=false: none waits.
func (s *Store) NextPeerMessage(ctx context.Context, linkID int64) (PeerMessage, bool, error) {
	var m PeerMessage
	err := s.q(ctx).Where("link_id = ? AND sent_at IS NULL", linkID).Order("id").First(&m).Error
	if errors.Is(wrap("", err), ErrNotFound) {
		return m, false, nil
	}
	return m, err == nil, wrap("next peer message", err)
}

// PeerSent marks a message delivered (the peer answered that it holds it).
func (s *Store) PeerSent(ctx context.Context, id int64) error {
	return wrap("peer message sent", s.q(ctx).Model(&PeerMessage{}).Where("id = ?", id).
		Updates(map[string]any{"sent_at": s.now(), "last_error": ""}).Error)
}

// PeerRetry records a failed delivery and when to try again.
func (s *Store) PeerRetry(ctx context.Context, id int64, attempts int, next time.Time, msg string) error {
	return wrap("peer message retry", s.q(ctx).Model(&PeerMessage{}).Where("id = ?", id).
		Updates(map[string]any{"attempts": attempts, "next_attempt_at": next, "last_error": msg}).Error)
}

// PeerCounts is a link's traffic for its status.
type PeerCounts struct {
	Waiting  int64 `json:"waiting"`  // in the outbox, not delivered yet
	Sent     int64 `json:"sent"`     // delivered
	Received int64 `json:"received"` // taken from the peer
}

// PeerLinkCounts counts a link's messages.
func (s *Store) PeerLinkCounts(ctx context.Context, linkID int64) (PeerCounts, error) {
	var c PeerCounts
	err := s.queryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM peer_outbox WHERE link_id = ? AND sent_at IS NULL),
		(SELECT COUNT(*) FROM peer_outbox WHERE link_id = ? AND sent_at IS NOT NULL),
		(SELECT COUNT(*) FROM peer_inbox WHERE link_id = ?)`, linkID, linkID, linkID).Scan(&c.Waiting, &c.Sent, &c.Received)
	return c, wrap("peer counts", err)
}

// PeerPairs lists what the peer created for a link's pairs.
func (s *Store) PeerPairs(ctx context.Context, linkID int64) ([]PeerPair, error) {
	var out []PeerPair
	return out, wrap("peer pairs", s.q(ctx).Where("link_id = ?", linkID).Order("pair_key").Find(&out).Error)
}

// takeInbox records a message id in tx; dup=true: it was taken before.
func (s *Store) takeInbox(ctx context.Context, linkID int64, msgID, kind string) (dup bool, err error) {
	res, err := s.exec(ctx, `INSERT INTO peer_inbox (link_id, msg_id, kind, received_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		linkID, msgID, kind, s.now())
	if err != nil {
		return false, wrap("peer inbox", err)
	}
	n, err := res.RowsAffected()
	return n == 0, wrap("peer inbox", err)
}

// ReceivePeerReplica takes a replica from the peer: the message id, the
// pair's twin (made on first sight, the peer side holding the pair key) and
// a sync event from the peer side, all in one transaction. dup=true: the
// message was taken before and nothing was written.
func (s *Store) ReceivePeerReplica(ctx context.Context, l PeerLink, msgID, pair, replica string) (dup bool, err error) {
	err = s.Tx(ctx, func(tx *Store) error {
		if dup, err = tx.takeInbox(ctx, l.ID, msgID, "replica"); err != nil || dup {
			return err
		}
		d := DirectionFrom(l.PeerSide)
		t, err := tx.TwinBy(ctx, l.ConnectionID, l.PeerSide, pair)
		var previous *string
		switch {
		case errors.Is(err, ErrNotFound):
			var ok bool
			if t, ok, err = tx.NewTwin(ctx, l.ConnectionID, l.PeerSide, pair, d, &replica); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("twin of pair %s: %w", pair, ErrConflict)
			}
		case err != nil:
			return err
		default:
			previous = t.Sent(d)
			if err := tx.SetSent(ctx, t.ID, d, replica); err != nil {
				return err
			}
		}
		return tx.InsertEvents(ctx, []SyncEvent{{ConnectionID: l.ConnectionID, TwinID: t.ID, Direction: d,
			SourceID: pair, Replica: replica, Previous: previous}})
	})
	return dup, err
}

// ReceivePeerDelete takes the peer's delete of a pair's source entity: the
// message id and a delete event from the peer side (the worker applies the
// connection's delete policy to the local entity, as for a local delete),
// in one transaction. A pair this side never saw has no twin: only the
// message id is recorded. dup=true: the message was taken before.
func (s *Store) ReceivePeerDelete(ctx context.Context, l PeerLink, msgID, pair string) (dup bool, err error) {
	err = s.Tx(ctx, func(tx *Store) error {
		if dup, err = tx.takeInbox(ctx, l.ID, msgID, "delete"); err != nil || dup {
			return err
		}
		t, err := tx.TwinBy(ctx, l.ConnectionID, l.PeerSide, pair)
		if errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		return tx.InsertEvents(ctx, []SyncEvent{{ConnectionID: l.ConnectionID, TwinID: t.ID, Direction: DirectionFrom(l.PeerSide),
			SourceID: pair, Replica: "{}", Action: "delete"}})
	})
	return dup, err
}

// ReceivePeerAck records what the peer created for a pair, with the
// message id, in one transaction.
func (s *Store) ReceivePeerAck(ctx context.Context, l PeerLink, msgID string, p PeerPair) (dup bool, err error) {
	err = s.Tx(ctx, func(tx *Store) error {
		if dup, err = tx.takeInbox(ctx, l.ID, msgID, "ack"); err != nil || dup {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO peer_pairs (link_id, pair_key, remote_id, remote_key, remote_url, updated_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (link_id, pair_key) DO UPDATE SET remote_id = excluded.remote_id, remote_key = excluded.remote_key,
			remote_url = excluded.remote_url, updated_at = excluded.updated_at`,
			l.ID, p.PairKey, p.RemoteID, p.RemoteKey, p.RemoteURL, s.now())
		return wrap("peer pair", err)
	})
	return dup, err
}

// ReceivePeerRevoke records the peer's revocation: the link stops and its
// connection is paused, with the message id, in one transaction.
func (s *Store) ReceivePeerRevoke(ctx context.Context, l PeerLink, msgID string) (dup bool, err error) {
	return dup, s.Tx(ctx, func(tx *Store) error {
		if dup, err = tx.takeInbox(ctx, l.ID, msgID, "revoke"); err != nil || dup {
			return err
		}
		l.Status, l.StatusReason = PeerRevokedByPeer, "the peer revoked the link"
		if err := tx.SavePeerLink(ctx, &l); err != nil {
			return err
		}
		return tx.SetActive(ctx, l.ConnectionID, false)
	})
}

// PeerWaiting records what the peer said it has waiting for this side.
func (s *Store) PeerWaiting(ctx context.Context, id, waiting int64) error {
	return wrap("peer waiting", s.q(ctx).Model(&PeerLink{}).Where("id = ?", id).Update("remote_waiting", waiting).Error)
}

// TouchPeerLink records a contact with the peer (errMsg "" on success).
func (s *Store) TouchPeerLink(ctx context.Context, id int64, contact bool, errMsg string) error {
	set := map[string]any{"last_error": errMsg}
	if contact {
		set["last_contact_at"] = s.now()
	}
	return wrap("touch peer link", s.q(ctx).Model(&PeerLink{}).Where("id = ?", id).Updates(set).Error)
}

// DeletePeerLink removes a link (its invitations, outbox, inbox and pairs
// go with it).
func (s *Store) DeletePeerLink(ctx context.Context, id int64) error {
	for _, q := range []string{"DELETE FROM peer_pairs WHERE link_id = ?", "DELETE FROM peer_inbox WHERE link_id = ?",
		"DELETE FROM peer_outbox WHERE link_id = ?", "DELETE FROM peer_invites WHERE link_id = ?", "DELETE FROM peer_links WHERE id = ?"} {
		if _, err := s.exec(ctx, q, id); err != nil {
			return wrap("delete peer link", err)
		}
	}
	return nil
}
