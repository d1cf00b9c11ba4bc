package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/peering"
)

// PeerLinks is what the server needs of peer links (peering.Service): the
// admin routes under /api/peer-links and the peer's own endpoints under
// /peer/v1, which take only signed messages and never a user's session.
type PeerLinks interface {
	Invite(ctx context.Context, actor string, in peering.InviteIn) (peering.Invited, error)
	Accept(ctx context.Context, actor string, in peering.AcceptIn) (store.PeerLink, error)
	RedeemIn(ctx context.Context, body []byte, sig string) ([]byte, string, error)
	Receive(ctx context.Context, body []byte, sig string) error
	SetState(ctx context.Context, actor string, id int64, action string) (store.PeerLink, error)
	Get(ctx context.Context, id int64) (peering.View, error)
	List(ctx context.Context, teams []int64) ([]peering.View, error)
	Allowed(addr netip.Addr) error
}

func (s *srv) peerRoutes(r *gin.Engine, api *gin.RouterGroup) {
	s.handle(r, "POST", "/peer/v1/redeem", public(), s.peerRedeem,
		op{summary: "Peer endpoint: redeem an invitation (signed with the accepting side's new key; the answer is signed)", tag: "peers", in: peering.Redeem{}, out: peering.Redeemed{}})
	s.handle(r, "POST", "/peer/v1/messages", public(), s.peerMessage,
		op{summary: "Peer endpoint: one signed message (replica, acknowledgement, revoke); a duplicate answers 409 peer_message_duplicate", tag: "peers", in: peering.Envelope{}, out: peerAccepted{}})
	s.handle(api, "GET", "/peer-links", signedIn(), s.listPeerLinks, // filtered to one's teams
		op{summary: "Peer links of your teams with their status (last contact, messages waiting and taken, errors)", tag: "peers", out: []peering.View{}})
	s.handle(api, "POST", "/peer-links", signedIn(), s.invitePeer, // team admin of the body's team
		op{summary: "Invite another deployment to one connection (team admins); answers the one-time code", tag: "peers", in: peering.InviteIn{}, out: peering.Invited{}, status: 201})
	s.handle(api, "POST", "/peer-links/accept", signedIn(), s.acceptPeer,
		op{summary: "Accept another deployment's invitation code for one of your systems (team admins)", tag: "peers", in: peering.AcceptIn{}, out: peering.View{}, status: 201})
	s.handle(api, "GET", "/peer-links/:id", teamRole("peer_link", "id", store.RoleViewer), s.getPeerLink,
		op{summary: "One peer link with its status and what the peer created", tag: "peers", out: peering.View{}})
	s.handle(api, "POST", "/peer-links/:id/pause", teamRole("peer_link", "id", store.RoleAdmin), s.setPeerState("pause"),
		op{summary: "Pause a peer link and its connection at once (audited)", tag: "peers", out: peering.View{}})
	s.handle(api, "POST", "/peer-links/:id/resume", teamRole("peer_link", "id", store.RoleAdmin), s.setPeerState("resume"),
		op{summary: "Resume a paused peer link", tag: "peers", out: peering.View{}})
	s.handle(api, "POST", "/peer-links/:id/revoke", teamRole("peer_link", "id", store.RoleAdmin), s.setPeerState("revoke"),
		op{summary: "Revoke a peer link for good, at once, and tell the peer (audited)", tag: "peers", out: peering.View{}})
}

// peerBody reads a peer request: from an allowed address, at most
// peering.MaxBody bytes, with its signature header.
func (s *srv) peerBody(c *gin.Context) ([]byte, string, error) {
	host, _, err := net.SplitHostPort(c.Request.RemoteAddr)
	if err != nil {
		host = c.Request.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return nil, "", peering.ErrAddress
	}
	if err := s.peers.Allowed(addr); err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, peering.MaxBody))
	if err != nil {
		return nil, "", err
	}
	return body, c.GetHeader(peering.SignatureHeader), nil
}

func (s *srv) peerRedeem(c *gin.Context) error {
	body, sig, err := s.peerBody(c)
	if err != nil {
		return err
	}
	answer, answerSig, err := s.peers.RedeemIn(c.Request.Context(), body, sig)
	if err != nil {
		return err
	}
	c.Header(peering.SignatureHeader, answerSig)
	c.Data(http.StatusOK, "application/json", answer)
	return nil
}

type peerAccepted struct {
	Status string `json:"status"`
}

func (s *srv) peerMessage(c *gin.Context) error {
	body, sig, err := s.peerBody(c)
	if err != nil {
		return err
	}
	if err := s.peers.Receive(c.Request.Context(), body, sig); err != nil {
		if errors.Is(err, peering.ErrPaused) {
			c.Header("Retry-After", "30")
		}
		return err
	}
	c.JSON(http.StatusOK, peerAccepted{Status: "accepted"})
	return nil
}

func (s *srv) listPeerLinks(c *gin.Context) error {
	out, err := s.peers.List(c.Request.Context(), principalOf(c).Teams(store.RoleViewer))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, out)
	return nil
}

func (s *srv) getPeerLink(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	v, err := s.peers.Get(c.Request.Context(), id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, v)
	return nil
}

// peerTeam fills and checks the team of a link's local half: linking a
// system to another company is a team admin's decision.
func (s *srv) peerTeam(c *gin.Context, in *peering.Setup) error {
	if in.TeamID == 0 {
		t, err := defaultTeam(principalOf(c), store.RoleAdmin)
		if err != nil {
			return err
		}
		in.TeamID = t
	}
	return s.requireTeam(c, in.TeamID, store.RoleAdmin)
}

func (s *srv) invitePeer(c *gin.Context) error {
	var in peering.InviteIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	if err := s.peerTeam(c, &in.Setup); err != nil {
		return err
	}
	out, err := s.peers.Invite(c.Request.Context(), principalOf(c).Actor(), in)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, out)
	return nil
}

func (s *srv) acceptPeer(c *gin.Context) error {
	var in peering.AcceptIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	if err := s.peerTeam(c, &in.Setup); err != nil {
		return err
	}
	l, err := s.peers.Accept(c.Request.Context(), principalOf(c).Actor(), in)
	if err != nil {
		return err
	}
	v, err := s.peers.Get(c.Request.Context(), l.ID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, v)
	return nil
}

func (s *srv) setPeerState(action string) handler {
	return func(c *gin.Context) error {
		id, err := idParam(c, "id")
		if err != nil {
			return err
		}
		if _, err := s.peers.SetState(c.Request.Context(), principalOf(c).Actor(), id, action); err != nil {
			return err
		}
		v, err := s.peers.Get(c.Request.Context(), id)
		if err != nil {
			return err
		}
		c.JSON(http.StatusOK, v)
		return nil
	}
}

// classifyPeer maps the peer link errors to a status and a stable code;
// ok=false: not one of them.
func classifyPeer(err error) (int, apiError, bool) {
	var pe *peering.PeerError
	m := func(status int, code string) (int, apiError, bool) {
		return status, apiError{Code: code, Message: err.Error()}, true
	}
	switch {
	case errors.As(err, &pe):
		// The other deployment refused (or was not reached) while this one
		// acted for an admin: its code is passed on.
		if pe.Status >= 400 && pe.Status < 500 {
			return http.StatusUnprocessableEntity, apiError{Code: pe.Code, Message: pe.Error()}, true
		}
		return m(http.StatusBadGateway, CodePeerUnreachable)
	case errors.Is(err, peering.ErrSignature):
		return m(http.StatusUnauthorized, CodePeerSignature)
	case errors.Is(err, peering.ErrReplay):
		return m(http.StatusUnauthorized, CodePeerReplay)
	case errors.Is(err, peering.ErrDuplicate):
		return m(http.StatusConflict, CodePeerDuplicate)
	case errors.Is(err, peering.ErrUnknown):
		return m(http.StatusForbidden, CodePeerUnknown)
	case errors.Is(err, peering.ErrRevoked):
		return m(http.StatusForbidden, CodePeerRevoked)
	case errors.Is(err, peering.ErrPaused):
		return m(http.StatusServiceUnavailable, CodePeerPaused)
	case errors.Is(err, peering.ErrInvitation):
		return m(http.StatusForbidden, CodePeerInvitation)
	case errors.Is(err, peering.ErrMalformed):
		return m(http.StatusBadRequest, CodePeerMalformed)
	case errors.Is(err, peering.ErrRateLimited):
		return m(http.StatusTooManyRequests, CodePeerRateLimited)
	case errors.Is(err, peering.ErrAddress):
		return m(http.StatusForbidden, CodePeerAddress)
	case errors.Is(err, peering.ErrInput):
		return m(http.StatusBadRequest, CodeBadRequest)
	}
	return 0, apiError{}, false
}
