package store

import (
	"context"
)

// Forwarders to internal/identity, kept so that branches written before
// the split still compile. Deprecated: call st.Identity().Method.

// CreateTeam forwards to identity.Store.CreateTeam.
//
// Deprecated: use s.Identity().CreateTeam.
func (s *Store) CreateTeam(ctx context.Context, t *Team) error {
	return s.Identity().CreateTeam(ctx, t)
}

// GetTeam forwards to identity.Store.GetTeam.
//
// Deprecated: use s.Identity().GetTeam.
func (s *Store) GetTeam(ctx context.Context, id int64) (Team, error) {
	return s.Identity().GetTeam(ctx, id)
}

// TeamByName forwards to identity.Store.TeamByName.
//
// Deprecated: use s.Identity().TeamByName.
func (s *Store) TeamByName(ctx context.Context, name string) (Team, error) {
	return s.Identity().TeamByName(ctx, name)
}

// ListTeams forwards to identity.Store.ListTeams.
//
// Deprecated: use s.Identity().ListTeams.
func (s *Store) ListTeams(ctx context.Context) ([]Team, error) {
	return s.Identity().ListTeams(ctx)
}

// CountUsers forwards to identity.Store.CountUsers.
//
// Deprecated: use s.Identity().CountUsers.
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	return s.Identity().CountUsers(ctx)
}

// CreateUser forwards to identity.Store.CreateUser.
//
// Deprecated: use s.Identity().CreateUser.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	return s.Identity().CreateUser(ctx, u)
}

// GetUser forwards to identity.Store.GetUser.
//
// Deprecated: use s.Identity().GetUser.
func (s *Store) GetUser(ctx context.Context, id int64) (User, error) {
	return s.Identity().GetUser(ctx, id)
}

// UserByEmail forwards to identity.Store.UserByEmail.
//
// Deprecated: use s.Identity().UserByEmail.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	return s.Identity().UserByEmail(ctx, email)
}

// ListUsers forwards to identity.Store.ListUsers.
//
// Deprecated: use s.Identity().ListUsers.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	return s.Identity().ListUsers(ctx)
}

// UpdateUser forwards to identity.Store.UpdateUser.
//
// Deprecated: use s.Identity().UpdateUser.
func (s *Store) UpdateUser(ctx context.Context, u *User) error {
	return s.Identity().UpdateUser(ctx, u)
}

// SetMembership forwards to identity.Store.SetMembership.
//
// Deprecated: use s.Identity().SetMembership.
func (s *Store) SetMembership(ctx context.Context, teamID, userID int64, role Role) error {
	return s.Identity().SetMembership(ctx, teamID, userID, role)
}

// RemoveMembership forwards to identity.Store.RemoveMembership.
//
// Deprecated: use s.Identity().RemoveMembership.
func (s *Store) RemoveMembership(ctx context.Context, teamID, userID int64) error {
	return s.Identity().RemoveMembership(ctx, teamID, userID)
}

// Memberships forwards to identity.Store.Memberships.
//
// Deprecated: use s.Identity().Memberships.
func (s *Store) Memberships(ctx context.Context, userID int64) (map[int64]Role, error) {
	return s.Identity().Memberships(ctx, userID)
}

// TeamMembers forwards to identity.Store.TeamMembers.
//
// Deprecated: use s.Identity().TeamMembers.
func (s *Store) TeamMembers(ctx context.Context, teamID int64) ([]Membership, error) {
	return s.Identity().TeamMembers(ctx, teamID)
}

// CountTeamAdmins forwards to identity.Store.CountTeamAdmins.
//
// Deprecated: use s.Identity().CountTeamAdmins.
func (s *Store) CountTeamAdmins(ctx context.Context, teamID int64) (int64, error) {
	return s.Identity().CountTeamAdmins(ctx, teamID)
}

// CreateSession forwards to identity.Store.CreateSession.
//
// Deprecated: use s.Identity().CreateSession.
func (s *Store) CreateSession(ctx context.Context, se *Session) error {
	return s.Identity().CreateSession(ctx, se)
}

// GetSession forwards to identity.Store.GetSession.
//
// Deprecated: use s.Identity().GetSession.
func (s *Store) GetSession(ctx context.Context, id string) (Session, error) {
	return s.Identity().GetSession(ctx, id)
}

// DeleteSession forwards to identity.Store.DeleteSession.
//
// Deprecated: use s.Identity().DeleteSession.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.Identity().DeleteSession(ctx, id)
}

// DeleteUserSessions forwards to identity.Store.DeleteUserSessions.
//
// Deprecated: use s.Identity().DeleteUserSessions.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) error {
	return s.Identity().DeleteUserSessions(ctx, userID)
}

// DeleteExpiredSessions forwards to identity.Store.DeleteExpiredSessions.
//
// Deprecated: use s.Identity().DeleteExpiredSessions.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	return s.Identity().DeleteExpiredSessions(ctx)
}

// CreateAPIToken forwards to identity.Store.CreateAPIToken.
//
// Deprecated: use s.Identity().CreateAPIToken.
func (s *Store) CreateAPIToken(ctx context.Context, t *APIToken) error {
	return s.Identity().CreateAPIToken(ctx, t)
}

// APITokenByHash forwards to identity.Store.APITokenByHash.
//
// Deprecated: use s.Identity().APITokenByHash.
func (s *Store) APITokenByHash(ctx context.Context, hash string) (APIToken, error) {
	return s.Identity().APITokenByHash(ctx, hash)
}

// ListAPITokens forwards to identity.Store.ListAPITokens.
//
// Deprecated: use s.Identity().ListAPITokens.
func (s *Store) ListAPITokens(ctx context.Context, userID int64) ([]APIToken, error) {
	return s.Identity().ListAPITokens(ctx, userID)
}

// RevokeAPIToken forwards to identity.Store.RevokeAPIToken.
//
// Deprecated: use s.Identity().RevokeAPIToken.
func (s *Store) RevokeAPIToken(ctx context.Context, userID, id int64) error {
	return s.Identity().RevokeAPIToken(ctx, userID, id)
}
