// Package peering is the protocol of peer links (docs/peers.md): two Duplex
// deployments share one connection, each running only its own side's
// trigger and scripts, and exchange signed replicas and acknowledgements.
//
// This file is the wire format and its checks, with no store and no HTTP:
// invitation codes, Ed25519 signatures over whole message bodies, and the
// replay window. service.go keeps the links, the outbox and the inbox.
package peering

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Errors the receiving edge maps to stable codes; nothing is recorded for
// any of them.
var (
	ErrSignature  = errors.New("peer message signature invalid")
	ErrReplay     = errors.New("peer message replayed or outside the time window")
	ErrUnknown    = errors.New("unknown peer link")
	ErrRevoked    = errors.New("peer link revoked")
	ErrPaused     = errors.New("peer link paused")
	ErrInvitation = errors.New("invitation invalid, expired or already used")
	ErrMalformed  = errors.New("malformed peer message")
)

// Window is how far a message's timestamp may be from the receiver's clock.
// Message ids are kept for good (peer_inbox), so a replay inside the window
// is refused by its id and one outside it by its time.
const Window = 5 * time.Minute

// MaxBody bounds one peer message (a replica is at most 1 MiB, see
// engine's maxReplicaBytes, plus the envelope).
const MaxBody = 2 << 20

// SignatureHeader carries the base64 Ed25519 signature of the body.
const SignatureHeader = "X-Duplex-Peer-Signature"

// Invitation is what the inviting admin hands over (out of band) to the
// other company's admin, as a code: where to redeem it and the secret.
type Invitation struct {
	URL     string    `json:"url"`  // the inviter's public address
	Node    string    `json:"node"` // the inviter's node id of this link
	Secret  string    `json:"secret"`
	Expires time.Time `json:"expires"`
	// Side is the side of the connection the accepting deployment takes
	// ("a" or "b"): the inviter's local side is the other one.
	Side string `json:"side"`
	// Key is the inviter's public key: the acceptor pins it from the code,
	// so the answer to its redeem request is checked, not trusted.
	Key []byte `json:"key"`
}

const codePrefix = "dpxpeer1."

// Encode renders an invitation as one copyable code.
func (i Invitation) Encode() string {
	b, _ := json.Marshal(i)
	return codePrefix + base64.RawURLEncoding.EncodeToString(b)
}

// DecodeInvitation parses a code made by Encode.
func DecodeInvitation(code string) (Invitation, error) {
	var i Invitation
	raw, ok := strings.CutPrefix(strings.TrimSpace(code), codePrefix)
	if !ok {
		return i, fmt.Errorf("%w: not a Duplex peer invitation code", ErrInvitation)
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return i, fmt.Errorf("%w: %w", ErrInvitation, err)
	}
	if err := json.Unmarshal(b, &i); err != nil {
		return i, fmt.Errorf("%w: %w", ErrInvitation, err)
	}
	u, err := url.Parse(i.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return i, fmt.Errorf("%w: bad address %q", ErrInvitation, i.URL)
	}
	if i.Secret == "" || i.Node == "" || (i.Side != "a" && i.Side != "b") || len(i.Key) != ed25519.PublicKeySize {
		return i, fmt.Errorf("%w: incomplete code", ErrInvitation)
	}
	return i, nil
}

// HashSecret is how an invitation's secret is stored: only its hash.
func HashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// SameHash compares two hashes in constant time.
func SameHash(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// RandomID is a random hex id (node ids, message ids, secrets).
func RandomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("peering: no randomness: " + err.Error()) // the OS is broken
	}
	return hex.EncodeToString(b)
}

// NewKey makes a link's long-term key pair.
func NewKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}

// Redeem is the accepting side's first request to the inviter, authorised
// by the invitation's secret (and signed with the new key, proving it).
type Redeem struct {
	Node      string `json:"node"`   // the inviter's node id (from the code)
	Secret    string `json:"secret"` // the invitation's one-time secret
	From      string `json:"from"`   // the acceptor's node id
	URL       string `json:"url"`    // the acceptor's public address
	PublicKey []byte `json:"public_key"`
	Name      string `json:"name,omitempty"`
}

// Redeemed is the inviter's answer: its own key, which the acceptor pins.
type Redeemed struct {
	Node      string `json:"node"`
	PublicKey []byte `json:"public_key"`
}

// Message kinds.
const (
	KindReplica = "replica" // a replica of one pair, from the sender's outgoing script
	KindAck     = "ack"     // what the receiver created for a pair
	KindRevoke  = "revoke"  // the sender revoked the link
	KindDelete  = "delete"  // the sender's entity of a pair was deleted
)

// Envelope is every message after the link is made. The signature covers
// the whole body, so From, To, ID and Time cannot be changed in transit.
type Envelope struct {
	From string    `json:"from"` // sender's node id
	To   string    `json:"to"`   // receiver's node id
	ID   string    `json:"id"`   // unique per sender; the receiver keeps it
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	// Pair names the twin on the wire: the node id of the side that
	// created it and that side's twin id. Both deployments store it as
	// the peer side's entity id of their twin.
	Pair string `json:"pair,omitempty"`
	// Replica is the sender's outgoing script's result (KindReplica).
	Replica json.RawMessage `json:"replica,omitempty"`
	// Created is the receiver's new entity for Pair (KindAck).
	Created *Created `json:"created,omitempty"`
	// Waiting is how many more messages the sender has queued for the
	// receiver after this one (shown on the receiver's link status).
	Waiting int64 `json:"waiting,omitempty"`
}

// Created is an acknowledgement's content: only what identifies the
// entity, never its fields.
type Created struct {
	ID  string `json:"id"`
	Key string `json:"key,omitempty"`
	URL string `json:"url,omitempty"`
}

// Sign marshals env and signs it; the body and signature go on the wire.
func Sign(env any, key ed25519.PrivateKey) (body []byte, sig string, err error) {
	body, err = json.Marshal(env)
	if err != nil {
		return nil, "", err
	}
	return body, base64.StdEncoding.EncodeToString(ed25519.Sign(key, body)), nil
}

// Verify checks sig over body with pub.
func Verify(pub ed25519.PublicKey, body []byte, sig string) error {
	s, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, body, s) {
		return ErrSignature
	}
	return nil
}

// CheckTime refuses a message stamped outside the window around now.
func CheckTime(at, now time.Time) error {
	d := now.Sub(at)
	if d > Window || d < -Window {
		return fmt.Errorf("%w: stamped %s, %s from this clock", ErrReplay, at.UTC().Format(time.RFC3339), d.Round(time.Second))
	}
	return nil
}

// ParseEnvelope decodes a message body (unknown fields refused).
func ParseEnvelope(body []byte) (Envelope, error) {
	var env Envelope
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return env, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if env.From == "" || env.To == "" || env.ID == "" || env.Time.IsZero() {
		return env, fmt.Errorf("%w: from, to, id and time are required", ErrMalformed)
	}
	switch env.Kind {
	case KindReplica:
		if env.Pair == "" || len(env.Replica) == 0 {
			return env, fmt.Errorf("%w: a replica needs pair and replica", ErrMalformed)
		}
	case KindAck:
		if env.Pair == "" || env.Created == nil {
			return env, fmt.Errorf("%w: an ack needs pair and created", ErrMalformed)
		}
	case KindDelete:
		if env.Pair == "" {
			return env, fmt.Errorf("%w: a delete needs pair", ErrMalformed)
		}
	case KindRevoke:
	default:
		return env, fmt.Errorf("%w: unknown kind %q", ErrMalformed, env.Kind)
	}
	return env, nil
}
