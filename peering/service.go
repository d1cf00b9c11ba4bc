package peering

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/peerlink"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
)

// More refusals of the receiving edge.
var (
	ErrRateLimited = errors.New("too many messages from this peer")
	ErrAddress     = errors.New("peer address not on the allow-list")
	ErrDuplicate   = errors.New("message already taken")
	// ErrInput is a request an admin must fix (wrapped with the reason).
	ErrInput = errors.New("invalid peer link request")
)

// Engine is what the service needs of the sync engine.
type Engine interface {
	Wake()
	Reload(connectionID int64)
	// CheckScript compiles a script in a sandbox worker, never here.
	CheckScript(ctx context.Context, conn store.Connection, name string, kind scripting.Kind, src string) error
}

// Options wire a Service.
type Options struct {
	Store     *store.Store
	Box       *secret.Box
	Templates *scripts.Library
	Engine    Engine
	Logger    *slog.Logger
	// Client reaches peers; default: a client with a 15 s timeout.
	Client *http.Client
	// Transport, when set, is how a link's team reaches peers: serve
	// passes one that dials through the team's outbound policy, as for
	// systems (so an invitation code cannot make Duplex post to an address
	// the policy refuses), and trusts --ca-file.
	Transport func(teamID int64) http.RoundTripper
	// Allow, when not empty, is the only addresses peer requests are taken
	// from (DUPLEX_PEER_ALLOW).
	Allow []netip.Prefix
	// InviteTTL is how long an invitation is valid; default 24 h.
	InviteTTL time.Duration
	// Rate and Burst bound each link's incoming messages; default 50/s, 200.
	Rate  float64
	Burst int
}

// Service keeps peer links: invitations, the receiving edge and the sender.
type Service struct {
	o        Options
	clients  map[int64]*http.Client  // by team, when Options.Transport is set
	senders  map[int64]chan struct{} // each link's sender's wake-up, under mu
	kick     chan struct{}
	mu       sync.Mutex
	limiters map[int64]*rate.Limiter
	now      func() time.Time
	stats    Stats
}

// Stats are the counters for metrics, per link.
type Stats struct {
	mu    sync.Mutex
	links map[int64]*LinkStats
}

// LinkStats are one link's counters since the process started. LinkID 0
// (no name) counts the messages refused before a link was found: malformed,
// unknown link, refused address.
type LinkStats struct {
	LinkID                           int64
	Name                             string
	Sent, Received, Retries, Refused int64
	LastLag                          time.Duration // queued to delivered, last message
}

// New builds a Service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 15 * time.Second}
	}
	if o.InviteTTL <= 0 {
		o.InviteTTL = 24 * time.Hour
	}
	if o.Rate <= 0 {
		o.Rate, o.Burst = 50, 200
	}
	return &Service{o: o, kick: make(chan struct{}, 1), limiters: map[int64]*rate.Limiter{}, clients: map[int64]*http.Client{}, senders: map[int64]chan struct{}{}, now: time.Now}
}

// LinkCounters returns each link's counters (those with any), by link id.
func (s *Service) LinkCounters() []LinkStats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	out := make([]LinkStats, 0, len(s.stats.links))
	for _, c := range s.stats.links {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LinkID < out[j].LinkID })
	return out
}

// count changes the counters of link l (nil: no link was found). The name
// is taken each time, so a renamed link's series follow it.
func (s *Service) count(l *store.PeerLink, f func(*LinkStats)) {
	var id int64
	var name string
	if l != nil {
		id, name = l.ID, l.Name
	}
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	if s.stats.links == nil {
		s.stats.links = map[int64]*LinkStats{}
	}
	c := s.stats.links[id]
	if c == nil {
		c = &LinkStats{LinkID: id}
		s.stats.links[id] = c
	}
	c.Name = name
	f(c)
}

// Queued nudges the sender (engine.Options.PeerQueued).
func (s *Service) Queued(linkID int64) {
	s.mu.Lock()
	kick := s.senders[linkID]
	s.mu.Unlock()
	for _, c := range []chan struct{}{kick, s.kick} {
		select {
		case c <- struct{}{}: // a nil channel (no sender yet) is skipped
		default:
		}
	}
}

// Setup is what both the inviting and the accepting admin give for their
// half: their team, their own system, and their own side's scripts (a
// built-in template's side, or sources).
type Setup struct {
	TeamID   int64  `json:"team_id"`
	Name     string `json:"name"`
	SystemID int64  `json:"system_id"`
	// Template is a built-in template; its scripts of the local side are
	// used, the other side's stay with the template (the peer has its own).
	Template string `json:"template,omitempty"`
	// Scripts (trigger, outgoing, incoming) override the template's.
	Scripts map[string]string `json:"scripts,omitempty"`
	// PublicURL is this deployment's address as the peer reaches it.
	PublicURL string `json:"public_url"`
}

// InviteIn is an invitation request.
type InviteIn struct {
	Setup
	// Side is the local side of the connection, "a" (default) or "b".
	Side string `json:"side,omitempty"`
	// ValidMinutes bounds the invitation (default and maximum: InviteTTL).
	ValidMinutes int `json:"valid_minutes,omitempty"`
}

// AcceptIn is an acceptance: the code and the local half.
type AcceptIn struct {
	Setup
	Code string `json:"code"`
}

// Invited is an invitation's answer: the code to hand over (shown once).
type Invited struct {
	Link      store.PeerLink `json:"link"`
	Code      string         `json:"code"`
	ExpiresAt time.Time      `json:"expires_at"`
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInput, fmt.Sprintf(format, args...))
}

// placeholder stands for the peer side's scripts: they run in the other
// deployment, which never shows them.
const placeholder = "// The peer deployment runs its own script for this side; it is not shown here.\n"

// scriptsFor renders the local side's scripts and the placeholders.
func (s *Service) scriptsFor(ctx context.Context, in Setup, local store.Side) (map[store.Side]map[store.ScriptKind]string, error) {
	out := map[store.Side]map[store.ScriptKind]string{
		local:         {},
		local.Other(): {store.KindTrigger: "false", store.KindOutgoing: placeholder, store.KindIncoming: placeholder},
	}
	if in.Template != "" {
		if s.o.Templates == nil {
			return nil, bad("no templates")
		}
		t, err := s.o.Templates.Get(in.Template)
		if err != nil {
			return nil, bad("%v", err)
		}
		src, err := t.Render(nil)
		if err != nil {
			return nil, bad("%v", err)
		}
		for k, v := range src[string(local)] {
			out[local][store.ScriptKind(k)] = v
		}
	}
	for k, v := range in.Scripts {
		kind := store.ScriptKind(k)
		if kind != store.KindTrigger && kind != store.KindOutgoing && kind != store.KindIncoming {
			return nil, bad("scripts.%s: trigger, outgoing or incoming", k)
		}
		out[local][kind] = v
	}
	for _, kind := range []store.ScriptKind{store.KindOutgoing, store.KindIncoming} {
		if err := s.o.Engine.CheckScript(ctx, store.Connection{Name: in.Name, TeamID: in.TeamID}, fmt.Sprintf("%s.%s.js", local, kind), scripting.Kind(kind), out[local][kind]); err != nil {
			return nil, err
		}
	}
	if out[local][store.KindTrigger] == "" {
		out[local][store.KindTrigger] = "true"
	}
	return out, nil
}

func checkURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.RawQuery != "" {
		return bad("public_url must be an http(s) address, got %q", u)
	}
	return nil
}

// half creates, in tx, the local half of a link: the stand-in system, the
// connection (inactive until the link is made) and the link row.
// src is scriptsFor's, checked before the transaction (a compile waits for
// a sandbox worker).
func (s *Service) half(ctx context.Context, tx *store.Store, in Setup, local store.Side, src map[store.Side]map[store.ScriptKind]string,
	l *store.PeerLink, invite *store.PeerInvite, actor string) error {
	sys, err := tx.GetSystem(ctx, in.SystemID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sys.TeamID != in.TeamID) {
		return bad("system %d is not a system of team %d", in.SystemID, in.TeamID)
	} else if err != nil {
		return err
	}
	if sys.Kind == peerlink.Kind {
		return bad("system %d is a peer link's stand-in; choose one of your own systems", in.SystemID)
	}
	sealed, err := s.o.Box.SealMap(nil)
	if err != nil {
		return err
	}
	stand := store.System{Name: "peer: " + in.Name, Kind: peerlink.Kind, TeamID: in.TeamID, Settings: "{}", Secrets: sealed,
		PollIntervalMS: int64(time.Hour / time.Millisecond)} // it has nothing to read
	if err := tx.CreateSystem(ctx, &stand); err != nil {
		return err
	}
	c := store.Connection{Name: in.Name, TeamID: in.TeamID, Template: in.Template, Active: false}
	if local == store.SideA {
		c.SystemAID, c.SystemBID = sys.ID, stand.ID
	} else {
		c.SystemAID, c.SystemBID = stand.ID, sys.ID
	}
	if err := tx.CreateConnection(ctx, &c, src, actor); err != nil {
		return err
	}
	l.TeamID, l.Name, l.ConnectionID, l.SystemID, l.PeerSide, l.LocalURL = in.TeamID, in.Name, c.ID, stand.ID, local.Other(), in.PublicURL
	return tx.CreatePeerLink(ctx, l, invite)
}

func (s *Service) newKeys(l *store.PeerLink) (ed25519.PrivateKey, error) {
	pub, priv, err := NewKey()
	if err != nil {
		return nil, err
	}
	sealed, err := s.o.Box.Seal(priv)
	if err != nil {
		return nil, err
	}
	l.PublicKey, l.PrivateKey, l.LocalNode = pub, sealed, RandomID(12)
	return priv, nil
}

func (s *Service) audit(ctx context.Context, tx *store.Store, actor string, l store.PeerLink, action, detail string) error {
	team, conn := l.TeamID, l.ConnectionID
	return tx.AddAudit(ctx, &store.AuditEntry{Actor: actor, TeamID: &team, ConnectionID: &conn, Action: action,
		Detail: fmt.Sprintf("peer link %d %q: %s", l.ID, l.Name, detail)})
}

func (in *Setup) check() error {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || in.SystemID == 0 || in.TeamID == 0 {
		return bad("name, team_id and system_id are required")
	}
	return checkURL(in.PublicURL)
}

// Invite makes the inviting half and its one-time code.
func (s *Service) Invite(ctx context.Context, actor string, in InviteIn) (Invited, error) {
	if err := in.check(); err != nil {
		return Invited{}, err
	}
	local := store.Side(in.Side)
	if in.Side == "" {
		local = store.SideA
	}
	if !local.Valid() {
		return Invited{}, bad("side must be a or b")
	}
	ttl := s.o.InviteTTL
	if in.ValidMinutes > 0 && time.Duration(in.ValidMinutes)*time.Minute < ttl {
		ttl = time.Duration(in.ValidMinutes) * time.Minute
	}
	var l store.PeerLink
	if _, err := s.newKeys(&l); err != nil {
		return Invited{}, err
	}
	l.Status = store.PeerInvited
	secretText := RandomID(24)
	exp := s.now().Add(ttl).UTC().Truncate(time.Second)
	inv := store.PeerInvite{SecretHash: HashSecret(secretText), ExpiresAt: exp}
	src, err := s.scriptsFor(ctx, in.Setup, local)
	if err != nil {
		return Invited{}, err
	}
	err = s.o.Store.Tx(ctx, func(tx *store.Store) error {
		if err := s.half(ctx, tx, in.Setup, local, src, &l, &inv, actor); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, l, "peer.invite", "invitation valid until "+exp.Format(time.RFC3339))
	})
	if err != nil {
		return Invited{}, err
	}
	code := Invitation{URL: strings.TrimSuffix(in.PublicURL, "/"), Node: l.LocalNode, Secret: secretText, Expires: exp,
		Side: string(local.Other()), Key: l.PublicKey}.Encode()
	return Invited{Link: l, Code: code, ExpiresAt: exp}, nil
}

// Accept makes the accepting half from a code: it redeems the code at the
// inviter (which pins this side's new key), pins the inviter's key from the
// code, and starts the connection.
func (s *Service) Accept(ctx context.Context, actor string, in AcceptIn) (store.PeerLink, error) {
	if err := in.check(); err != nil {
		return store.PeerLink{}, err
	}
	inv, err := DecodeInvitation(in.Code)
	if err != nil {
		return store.PeerLink{}, err
	}
	if !s.now().Before(inv.Expires) {
		return store.PeerLink{}, fmt.Errorf("%w: it expired at %s", ErrInvitation, inv.Expires.Format(time.RFC3339))
	}
	var l store.PeerLink
	priv, err := s.newKeys(&l)
	if err != nil {
		return l, err
	}
	l.Status, l.RemoteNode, l.RemoteURL, l.RemoteKey = store.PeerInvited, inv.Node, inv.URL, inv.Key
	src, err := s.scriptsFor(ctx, in.Setup, store.Side(inv.Side))
	if err != nil {
		return l, err
	}
	err = s.o.Store.Tx(ctx, func(tx *store.Store) error {
		return s.half(ctx, tx, in.Setup, store.Side(inv.Side), src, &l, nil, actor)
	})
	if err != nil {
		return l, err
	}
	red := Redeem{Node: inv.Node, Secret: inv.Secret, From: l.LocalNode, URL: strings.TrimSuffix(in.PublicURL, "/"), PublicKey: l.PublicKey, Name: in.Name}
	var out Redeemed
	if err := s.post(ctx, in.TeamID, inv.URL+"/peer/v1/redeem", red, priv, inv.Key, &out); err != nil {
		s.drop(ctx, l)
		return l, err
	}
	if out.Node != inv.Node || !bytes.Equal(out.PublicKey, inv.Key) {
		s.drop(ctx, l)
		return l, fmt.Errorf("%w: the inviter answered with another node or key than the code's", ErrSignature)
	}
	now := s.now()
	l.Status, l.LastContactAt = store.PeerActive, &now
	err = s.o.Store.Tx(ctx, func(tx *store.Store) error {
		if err := tx.SavePeerLink(ctx, &l); err != nil {
			return err
		}
		if err := tx.SetActive(ctx, l.ConnectionID, true); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, l, "peer.accept", "accepted the invitation of node "+inv.Node+" at "+inv.URL)
	})
	if err == nil {
		s.o.Engine.Reload(l.ConnectionID)
	}
	return l, err
}

// drop removes a half whose redeem failed: nothing of it stays.
func (s *Service) drop(ctx context.Context, l store.PeerLink) {
	ctx = context.WithoutCancel(ctx)
	err := s.o.Store.Tx(ctx, func(tx *store.Store) error {
		if err := tx.DeletePeerLink(ctx, l.ID); err != nil {
			return err
		}
		if err := tx.DeleteConnection(ctx, l.ConnectionID); err != nil {
			return err
		}
		return tx.DeleteSystem(ctx, l.SystemID)
	})
	if err != nil {
		s.o.Logger.Warn("peer link: removing a failed acceptance", "link", l.ID, "err", err)
	}
}

// client is the HTTP client for a team's links.
func (s *Service) client(team int64) *http.Client {
	if s.o.Transport == nil {
		return s.o.Client
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[team]
	if !ok {
		c = &http.Client{Timeout: s.o.Client.Timeout, Transport: s.o.Transport(team)}
		s.clients[team] = c
	}
	return c
}

// post sends a signed JSON request to a peer and, when out is not nil,
// checks the answer's signature with want and decodes it.
func (s *Service) post(ctx context.Context, team int64, target string, body any, key ed25519.PrivateKey, want ed25519.PublicKey, out any) error {
	raw, sig, err := Sign(body, key)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, sig)
	resp, err := s.client(team).Do(req)
	if errors.Is(err, connectors.ErrRefused) {
		return fmt.Errorf("peer address %s: %w", target, err) // the outbound policy's refusal, as for a system
	}
	if err != nil {
		return &PeerError{Code: "peer_unreachable", Message: err.Error()}
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return &PeerError{Status: resp.StatusCode, Code: "peer_unreachable", Message: err.Error()}
	}
	if resp.StatusCode/100 != 2 {
		pe := &PeerError{Status: resp.StatusCode}
		_ = json.Unmarshal(answer, pe)
		return pe
	}
	if out == nil {
		return nil
	}
	if err := Verify(want, answer, resp.Header.Get(SignatureHeader)); err != nil {
		return fmt.Errorf("the peer's answer: %w", err)
	}
	return json.Unmarshal(answer, out)
}

// PeerError is a peer's refusal (its JSON code) or an unreachable peer.
type PeerError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *PeerError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("peer: %s: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("peer answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Allowed says whether a request from addr may reach the peer endpoints.
func (s *Service) Allowed(addr netip.Addr) error {
	if len(s.o.Allow) == 0 {
		return nil
	}
	for _, p := range s.o.Allow {
		if p.Contains(addr.Unmap()) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrAddress, addr)
}

// RedeemIn takes a redeem request (the inviter's side). It answers with
// this side's node and key, signed.
func (s *Service) RedeemIn(ctx context.Context, body []byte, sig string) (answer []byte, answerSig string, err error) {
	var r Redeem
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	// The request proves it holds the key it brings.
	if err := Verify(r.PublicKey, body, sig); err != nil {
		return nil, "", err
	}
	if r.From == "" || checkURL(r.URL) != nil {
		return nil, "", fmt.Errorf("%w: from and url are required", ErrMalformed)
	}
	l, err := s.o.Store.RedeemInvite(ctx, r.Node, HashSecret(r.Secret), r.From, r.URL, r.PublicKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", ErrInvitation
	} else if err != nil {
		return nil, "", err
	}
	err = s.o.Store.Tx(ctx, func(tx *store.Store) error {
		if err := tx.SetActive(ctx, l.ConnectionID, true); err != nil {
			return err
		}
		return s.audit(ctx, tx, "peer "+r.From, l, "peer.redeem", "the invitation was accepted by node "+r.From+" at "+r.URL)
	})
	if err != nil {
		return nil, "", err
	}
	s.o.Engine.Reload(l.ConnectionID)
	priv, err := s.key(l)
	if err != nil {
		return nil, "", err
	}
	return Sign(Redeemed{Node: l.LocalNode, PublicKey: l.PublicKey}, priv)
}

func (s *Service) key(l store.PeerLink) (ed25519.PrivateKey, error) {
	k, err := s.o.Box.Open(l.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("peer link %d key: %w", l.ID, err)
	}
	return ed25519.PrivateKey(k), nil
}

func (s *Service) limiter(id int64) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.limiters[id]
	if !ok {
		l = rate.NewLimiter(rate.Limit(s.o.Rate), s.o.Burst)
		s.limiters[id] = l
	}
	return l
}

// Receive takes one message. Every check comes before anything is
// recorded: the link (by the receiver's node id and the sender's), the
// signature, the link's state, the time window, the rate; then the message
// id and its effect are recorded in one transaction. ErrDuplicate: taken
// before, nothing done.
func (s *Service) Receive(ctx context.Context, body []byte, sig string) (err error) {
	var known *store.PeerLink // the link the refusal is counted on, once found
	defer func() {
		if err != nil && !errors.Is(err, ErrDuplicate) {
			s.count(known, func(c *LinkStats) { c.Refused++ })
		}
	}()
	env, err := ParseEnvelope(body)
	if err != nil {
		return err
	}
	l, err := s.o.Store.PeerLinkByNode(ctx, env.To)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (l.RemoteNode != env.From || len(l.RemoteKey) == 0)) {
		return ErrUnknown
	} else if err != nil {
		return err
	}
	known = &l
	if err := Verify(l.RemoteKey, body, sig); err != nil {
		return err
	}
	switch l.Status {
	case store.PeerRevoked, store.PeerRevokedByPeer:
		return ErrRevoked
	case store.PeerPaused:
		return ErrPaused
	case store.PeerActive:
	default:
		return ErrUnknown
	}
	if err := CheckTime(env.Time, s.now()); err != nil {
		return err
	}
	if !s.limiter(l.ID).Allow() {
		return ErrRateLimited
	}
	var dup bool
	switch env.Kind {
	case KindReplica:
		var obj map[string]any
		if err := json.Unmarshal(env.Replica, &obj); err != nil || obj == nil {
			return fmt.Errorf("%w: the replica is not a JSON object", ErrMalformed)
		}
		if !strings.HasPrefix(env.Pair, l.LocalNode+".") && !strings.HasPrefix(env.Pair, l.RemoteNode+".") {
			return fmt.Errorf("%w: pair %q is not of this link", ErrMalformed, env.Pair)
		}
		dup, err = s.o.Store.ReceivePeerReplica(ctx, l, env.ID, env.Pair, string(env.Replica))
		if err == nil && !dup {
			s.o.Engine.Wake()
		}
	case KindDelete:
		if !strings.HasPrefix(env.Pair, l.LocalNode+".") && !strings.HasPrefix(env.Pair, l.RemoteNode+".") {
			return fmt.Errorf("%w: pair %q is not of this link", ErrMalformed, env.Pair)
		}
		dup, err = s.o.Store.ReceivePeerDelete(ctx, l, env.ID, env.Pair)
		if err == nil && !dup {
			s.o.Engine.Wake()
		}
	case KindAck:
		dup, err = s.o.Store.ReceivePeerAck(ctx, l, env.ID, store.PeerPair{PairKey: env.Pair,
			RemoteID: env.Created.ID, RemoteKey: env.Created.Key, RemoteURL: env.Created.URL})
	case KindRevoke:
		dup, err = s.o.Store.ReceivePeerRevoke(ctx, l, env.ID)
		if err == nil && !dup {
			team, conn := l.TeamID, l.ConnectionID
			_ = s.o.Store.AddAudit(ctx, &store.AuditEntry{Actor: "peer " + l.RemoteNode, TeamID: &team, ConnectionID: &conn,
				Action: "peer.revoked_by_peer", Detail: fmt.Sprintf("peer link %d %q: the peer revoked it", l.ID, l.Name)})
			s.o.Engine.Reload(l.ConnectionID)
		}
	}
	if err != nil {
		return err
	}
	_ = s.o.Store.TouchPeerLink(ctx, l.ID, true, "")
	if dup {
		return ErrDuplicate
	}
	_ = s.o.Store.PeerWaiting(ctx, l.ID, max(env.Waiting, 0))
	s.count(&l, func(c *LinkStats) { c.Received++ })
	return nil
}

// SetState pauses, resumes or revokes a link, with its connection, in one
// transaction with the audit entry: it takes effect at once (the sender
// sends nothing more, the edge refuses the peer's messages). A revoke is
// also told to the peer, once, best effort.
func (s *Service) SetState(ctx context.Context, actor string, id int64, action string) (store.PeerLink, error) {
	var l store.PeerLink
	err := s.o.Store.Tx(ctx, func(tx *store.Store) error {
		var err error
		if l, err = tx.GetPeerLink(ctx, id); err != nil {
			return err
		}
		if l.Status == store.PeerRevoked || l.Status == store.PeerRevokedByPeer {
			return bad("peer link %d is revoked; make a new invitation", id)
		}
		active := false
		switch action {
		case "pause":
			l.Status = store.PeerPaused
		case "resume":
			if l.Status == store.PeerInvited {
				return bad("peer link %d is not accepted yet", id)
			}
			l.Status, active = store.PeerActive, true
		case "revoke":
			l.Status = store.PeerRevoked
		default:
			return bad("unknown action %q", action)
		}
		l.StatusReason = action + " by " + actor
		if err := tx.SavePeerLink(ctx, &l); err != nil {
			return err
		}
		if err := tx.SetActive(ctx, l.ConnectionID, active); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, l, "peer."+action, action+"d")
	})
	if err != nil {
		return l, err
	}
	s.o.Engine.Reload(l.ConnectionID)
	if action == "revoke" && l.RemoteNode != "" && len(l.RemoteKey) > 0 {
		if err := s.deliver(ctx, l, store.PeerMessage{MsgID: l.LocalNode + "-revoke", Kind: KindRevoke, Body: `{"kind":"revoke"}`}); err != nil {
			s.o.Logger.Warn("peer link revoked here; telling the peer failed (it is refused from now on anyway)", "link", l.ID, "err", err)
		}
	}
	if action == "resume" {
		s.Queued(l.ID)
	}
	return l, nil
}

// Run sends the outboxes until ctx ends: one sender per link, so a peer
// that answers slowly holds up only its own link; per link the oldest
// message first and one at a time (so a twin's changes arrive in order),
// with backoff while the peer does not take them.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(2 * time.Second) // new links are picked up by then
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		links, err := s.o.Store.ListPeerLinks(ctx)
		if err != nil && ctx.Err() == nil {
			s.o.Logger.Error("peer sender", "err", err)
		}
		for _, l := range links {
			s.mu.Lock()
			_, running := s.senders[l.ID]
			kick := make(chan struct{}, 1)
			if !running {
				s.senders[l.ID] = kick
			}
			s.mu.Unlock()
			if !running {
				wg.Add(1)
				go func(id int64) { defer wg.Done(); s.sendLoop(ctx, id, kick) }(l.ID)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.kick: // a link may be new
		case <-t.C:
		}
	}
}

// sendLoop is one link's sender; it reads the link each round, so a pause
// or revoke stops it at once.
func (s *Service) sendLoop(ctx context.Context, id int64, kick <-chan struct{}) {
	t := time.NewTicker(500 * time.Millisecond) // also how late a retry after backoff goes
	defer t.Stop()
	for {
		l, err := s.o.Store.GetPeerLink(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if err == nil && l.Status == store.PeerActive {
			s.sendLink(ctx, l)
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-t.C:
		}
	}
}

func backoff(attempts int) time.Duration {
	d := 500 * time.Millisecond
	for i := 1; i < attempts && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// sendLink sends a link's due messages, oldest first, until one fails.
func (s *Service) sendLink(ctx context.Context, l store.PeerLink) {
	for {
		m, ok, err := s.o.Store.NextPeerMessage(ctx, l.ID)
		if err != nil || !ok || m.NextAttemptAt.After(s.now()) {
			return
		}
		if err := s.deliver(ctx, l, m); err != nil {
			if ctx.Err() != nil {
				return
			}
			m.Attempts++
			s.count(&l, func(c *LinkStats) { c.Retries++ })
			_ = s.o.Store.PeerRetry(ctx, m.ID, m.Attempts, s.now().Add(backoff(m.Attempts)), err.Error())
			_ = s.o.Store.TouchPeerLink(ctx, l.ID, false, err.Error())
			return
		}
		_ = s.o.Store.PeerSent(ctx, m.ID)
		_ = s.o.Store.TouchPeerLink(ctx, l.ID, true, "")
		s.count(&l, func(c *LinkStats) { c.Sent++; c.LastLag = s.now().Sub(m.CreatedAt) })
	}
}

// deliver signs and posts one message; the peer holding it already
// (duplicate) counts as delivered.
func (s *Service) deliver(ctx context.Context, l store.PeerLink, m store.PeerMessage) error {
	var body engine.PeerMessage
	if err := json.Unmarshal([]byte(m.Body), &body); err != nil {
		return err
	}
	env := Envelope{From: l.LocalNode, To: l.RemoteNode, ID: m.MsgID, Time: s.now().UTC(), Kind: m.Kind, Pair: body.Pair, Replica: body.Replica}
	if c, err := s.o.Store.PeerLinkCounts(ctx, l.ID); err == nil && c.Waiting > 0 {
		env.Waiting = c.Waiting - 1 // this one is on its way
	}
	if body.Created != nil {
		env.Created = &Created{ID: body.Created.ID, Key: body.Created.Key, URL: body.Created.URL}
	}
	priv, err := s.key(l)
	if err != nil {
		return err
	}
	err = s.post(ctx, l.TeamID, l.RemoteURL+"/peer/v1/messages", env, priv, nil, nil)
	var pe *PeerError
	if errors.As(err, &pe) && pe.Code == CodeDuplicate {
		return nil
	}
	return err
}

// The stable JSON codes of the peer endpoints (server maps the errors).
const (
	CodeSignature   = "peer_signature_invalid"
	CodeReplay      = "peer_message_replayed"
	CodeDuplicate   = "peer_message_duplicate"
	CodeUnknown     = "peer_unknown"
	CodeRevoked     = "peer_revoked"
	CodePaused      = "peer_paused"
	CodeInvitation  = "peer_invitation_invalid"
	CodeMalformed   = "peer_message_malformed"
	CodeRateLimited = "peer_rate_limited"
	CodeAddress     = "peer_address_refused"
)

// View is a link as its status page shows it.
type View struct {
	store.PeerLink
	Counts store.PeerCounts `json:"counts"`
	Pairs  []store.PeerPair `json:"pairs"`
}

// Get returns a link's view.
func (s *Service) Get(ctx context.Context, id int64) (View, error) {
	l, err := s.o.Store.GetPeerLink(ctx, id)
	if err != nil {
		return View{}, err
	}
	return s.view(ctx, l)
}

func (s *Service) view(ctx context.Context, l store.PeerLink) (View, error) {
	c, err := s.o.Store.PeerLinkCounts(ctx, l.ID)
	if err != nil {
		return View{}, err
	}
	pairs, err := s.o.Store.PeerPairs(ctx, l.ID)
	if pairs == nil {
		pairs = []store.PeerPair{}
	}
	return View{PeerLink: l, Counts: c, Pairs: pairs}, err
}

// List returns the links of the given teams (nil: every team).
func (s *Service) List(ctx context.Context, teams []int64) ([]View, error) {
	links, err := s.o.Store.ListPeerLinks(ctx)
	if err != nil {
		return nil, err
	}
	out := []View{}
	for _, l := range links {
		if teams != nil && !containsTeam(teams, l.TeamID) {
			continue
		}
		v, err := s.view(ctx, l)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func containsTeam(teams []int64, t int64) bool {
	for _, x := range teams {
		if x == t {
			return true
		}
	}
	return false
}
