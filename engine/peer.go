package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/peerlink"
	"github.com/duplexsync/duplex/engine/store"
)

// Peer links (docs/peers.md) fit into the engine as one connection whose
// one side is a stand-in system of kind "peer". Everything on the local
// side is unchanged: its trigger, echo check and outgoing script at
// intake, its incoming script, merge, conflicts and writes in the worker.
// Two places differ:
//
//   - an event towards the peer side is not applied here: its replica is
//     put in the link's outbox (sendToPeer) and the peer deployment runs
//     its own incoming script on its own entity; a delete goes as a
//     delete message, and the peer applies its own delete policy;
//   - an event from the peer side is queued by the link's inbox
//     (store.ReceivePeerReplica) with the peer's replica, so only the
//     local incoming script runs on it; a create answers with an
//     acknowledgement carrying the new entity's id, key and URL
//     (ackToPeer).
//
// The peer side's twin id is the pair key both deployments share: the node
// id of the deployment that made the twin and its twin id there.

// PeerMessage is the unsigned body of an outbox message: the sender
// (peering.Sender) adds the addresses and time and signs it when it goes.
type PeerMessage struct {
	Kind    string          `json:"kind"`
	Pair    string          `json:"pair"`
	Replica json.RawMessage `json:"replica,omitempty"`
	Created *PeerCreated    `json:"created,omitempty"`
}

// PeerCreated is what an acknowledgement tells the peer.
type PeerCreated struct {
	ID  string `json:"id"`
	Key string `json:"key,omitempty"`
	URL string `json:"url,omitempty"`
}

// peerLinkOf returns the link whose stand-in system is systemID, or nil
// when the system is an ordinary one.
func (e *Engine) peerLinkOf(ctx context.Context, systemID int64) (*store.PeerLink, error) {
	sys, err := e.system(ctx, systemID)
	if err != nil {
		return nil, err
	}
	if sys.sys.Kind != peerlink.Kind {
		return nil, nil
	}
	l, err := e.st.PeerLinkBySystem(ctx, systemID)
	if err != nil {
		return nil, fmt.Errorf("%w: peer system %d has no link: %w", errConfig, systemID, err)
	}
	return &l, nil
}

// sendToPeer is apply for a target on the peer side: the replica goes to
// the outbox, once per event (its message id is the event's).
func (e *Engine) sendToPeer(ctx context.Context, p *plan, link *store.PeerLink, twin *store.Twin, ev *store.SyncEvent, dst store.Side, logs *[]string) (outcome, *store.Twin, error) {
	if link.Status == store.PeerRevoked || link.Status == store.PeerRevokedByPeer {
		return outcome{}, nil, fmt.Errorf("%w: peer link %q is revoked", connectors.ErrInvalid, link.Name)
	}
	if ev.Action == actionDelete {
		return e.sendDeleteToPeer(ctx, link, twin, ev, dst)
	}
	replica, err := e.replicaOf(ctx, p, ev, twin, logs)
	if err != nil {
		return outcome{}, nil, err
	}
	dropPeerCopies(replica, loadLinks(twin), dst)
	pair := twin.EntityID(dst)
	if pair == "" {
		// Saved at once, not with the batch: the peer may answer about the
		// pair before this batch is recorded.
		pair = link.LocalNode + "." + strconv.FormatInt(twin.ID, 10)
		if err := e.st.SetTwinEntityID(ctx, twin.ID, dst, pair); err != nil {
			return outcome{}, nil, err
		}
		twin.SetEntityID(dst, pair)
	}
	raw, err := json.Marshal(replica)
	if err != nil {
		return outcome{}, nil, fmt.Errorf("%w: replica: %w", connectors.ErrInvalid, err)
	}
	body, err := json.Marshal(PeerMessage{Kind: "replica", Pair: pair, Replica: raw})
	if err != nil {
		return outcome{}, nil, err
	}
	m := store.PeerMessage{LinkID: link.ID, MsgID: link.LocalNode + "-r" + strconv.FormatInt(ev.ID, 10), Kind: "replica",
		EventID: ev.ID, PairKey: pair, Body: string(body)}
	if _, err := e.st.EnqueuePeer(ctx, &m); err != nil {
		return outcome{}, nil, err
	}
	if e.opts.PeerQueued != nil {
		e.opts.PeerQueued(link.ID)
	}
	e.settleSent(ctx, p, twin, ev)
	return outcome{Action: "send", TargetID: pair}, twin, nil
}

// settleSent makes the source's state as sent its base, as settle does for
// an event applied here (but for the changed fields its outgoing script does
// not carry): in the outbox the change is in sync, the link delivers it.
// Without it the base kept only Duplex's writes from the peer, so a
// person's change sent earlier (a comment, a state) stayed out of the echo
// reference of Duplex's next write, and that write (the close of a deleted
// ticket's issue) went back to the peer as a person's change.
func (e *Engine) settleSent(ctx context.Context, p *plan, twin *store.Twin, ev *store.SyncEvent) {
	src := ev.Direction.Source()
	r := &applyRun{p: p, ev: ev, twin: *twin, src: src, dst: src.Other(), rec: loadRecord(twin, ev.Direction)}
	in, _ := e.settleInput(ctx, r) // only its source half counts here
	if b := sourceBase(in); b != nil {
		twin.SetBase(src, *b)
	}
}

// sendDeleteToPeer tells the peer that the source entity of a pair was
// deleted; the peer applies its own connection's delete policy to its
// entity (unlink, close or delete), as for a local delete. A twin never
// sent has no pair on the peer: nothing goes. The message id is the
// pair's, not the event's: a retried apply writes it once, and so does a
// deleted entity seen deleted again (a soft-deleted row that a later
// write touched queues another delete event); the peer's inbox refuses
// the same id too. So a pair is deleted over the link once, for good.
func (e *Engine) sendDeleteToPeer(ctx context.Context, link *store.PeerLink, twin *store.Twin, ev *store.SyncEvent, dst store.Side) (outcome, *store.Twin, error) {
	pair := twin.EntityID(dst)
	if pair == "" {
		return outcome{Action: "none", Reason: "never sent to the peer"}, twin, nil
	}
	body, err := json.Marshal(PeerMessage{Kind: "delete", Pair: pair})
	if err != nil {
		return outcome{}, nil, err
	}
	m := store.PeerMessage{LinkID: link.ID, MsgID: link.LocalNode + "-d" + pair, Kind: "delete",
		EventID: ev.ID, PairKey: pair, Body: string(body)}
	if ok, err := e.st.EnqueuePeer(ctx, &m); err != nil {
		return outcome{}, nil, err
	} else if !ok {
		return outcome{Action: "none", TargetID: pair, Reason: "the delete was sent to the peer before"}, twin, nil
	}
	if e.opts.PeerQueued != nil {
		e.opts.PeerQueued(link.ID)
	}
	return outcome{Action: "send", TargetID: pair}, twin, nil
}

// dropPeerCopies removes from a replica going to the peer the comments
// that came from the peer (copies Duplex made here): the peer has them,
// and its incoming script may have changed their text, so they could not
// be told apart from new ones there.
func dropPeerCopies(replica map[string]any, links commentLinks, peer store.Side) {
	list, ok := replica["comments"].([]any)
	if !ok {
		return
	}
	copies := map[string]bool{}
	for k, v := range links {
		if strings.HasPrefix(k, string(peer)+":") {
			copies[strings.TrimPrefix(v, string(peer.Other())+":")] = true
		}
	}
	kept := list[:0:0]
	for _, item := range list {
		if m, ok := item.(map[string]any); ok && copies[str(m["id"])] {
			continue
		}
		kept = append(kept, item)
	}
	replica["comments"] = kept
}

// ackToPeer answers a create made for the peer's pair with the new
// entity's id, key and URL. A lost ack only leaves the peer's status page
// without the link: it is logged, never fails the event (the entity exists).
func (e *Engine) ackToPeer(ctx context.Context, p *plan, src store.Side, ev *store.SyncEvent, created connectors.Entity) {
	link, err := e.peerLinkOf(ctx, p.conn.SystemID(src))
	if err != nil || link == nil {
		return
	}
	body, err := json.Marshal(PeerMessage{Kind: "ack", Pair: ev.SourceID,
		Created: &PeerCreated{ID: created.ID, Key: created.Key, URL: created.URL}})
	if err == nil {
		m := store.PeerMessage{LinkID: link.ID, MsgID: link.LocalNode + "-a" + strconv.FormatInt(ev.ID, 10), Kind: "ack",
			EventID: ev.ID, PairKey: ev.SourceID, Body: string(body)}
		_, err = e.st.EnqueuePeer(ctx, &m)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		e.log.Warn("peer link: acknowledgement not queued", "link", link.ID, "pair", ev.SourceID, "err", err)
		return
	}
	if e.opts.PeerQueued != nil {
		e.opts.PeerQueued(link.ID)
	}
}
