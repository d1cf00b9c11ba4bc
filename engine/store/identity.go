package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/duplexsync/duplex/internal/identity"
)

// Teams, users, memberships, sessions and tokens live in internal/identity;
// these names keep the code that says store.User compiling.
type (
	Role       = identity.Role
	Team       = identity.Team
	User       = identity.User
	Membership = identity.Membership
	Session    = identity.Session
	APIToken   = identity.APIToken
)

// DefaultTeamID is the team migration 00008 creates (identity's).
const DefaultTeamID = identity.DefaultTeamID

// Roles, strongest first (identity's).
const (
	RoleAdmin  = identity.RoleAdmin
	RoleEditor = identity.RoleEditor
	RoleViewer = identity.RoleViewer
)

// Identity is the identity aggregate over the same handle: inside Tx, the
// same transaction.
func (s *Store) Identity() *identity.Store { return identity.New(s.db, s.now) }

// Now is the store's clock (UTC), for callers that stamp rows it keeps.
func (s *Store) Now() time.Time { return s.now() }

// ResourceTeam returns the team owning a system, connection, twin or sync
// event, for authorisation. kind is "system", "connection", "twin" or "event".
func (s *Store) ResourceTeam(ctx context.Context, kind string, id int64) (int64, error) {
	var q *gorm.DB
	switch kind {
	case "system":
		q = s.q(ctx).Model(&System{}).Select("team_id").Where("id = ?", id)
	case "connection":
		q = s.q(ctx).Model(&Connection{}).Select("team_id").Where("id = ?", id)
	case "twin":
		q = s.q(ctx).Table("twins").Select("connections.team_id").
			Joins("JOIN connections ON connections.id = twins.connection_id").Where("twins.id = ?", id)
	case "peer_link":
		q = s.q(ctx).Model(&PeerLink{}).Select("team_id").Where("id = ?", id)
	case "event":
		q = s.q(ctx).Table("sync_events").Select("connections.team_id").
			Joins("JOIN connections ON connections.id = sync_events.connection_id").Where("sync_events.id = ?", id)
	default:
		return 0, fmt.Errorf("resource team: unknown kind %q", kind)
	}
	var teams []int64
	if err := q.Limit(1).Pluck("team_id", &teams).Error; err != nil {
		return 0, wrap(kind, err)
	}
	if len(teams) == 0 {
		return 0, fmt.Errorf("%s %d: %w", kind, id, ErrNotFound)
	}
	return teams[0], nil
}
