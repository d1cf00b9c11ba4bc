package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// DefaultTeamID is the team migration 00008 creates; rows made before teams
// existed, and rows created without a team, belong to it.
const DefaultTeamID int64 = 1

// Role is what a member may do in a team.
type Role string

// Roles, strongest first.
const (
	RoleAdmin  Role = "admin"  // members, secrets, and everything an editor does
	RoleEditor Role = "editor" // scripts, triggers, connections, test runs
	RoleViewer Role = "viewer" // read only: no secrets, no test runs that read remote data
)

// Rank orders roles: admin 3, editor 2, viewer 1, anything else 0.
func (r Role) Rank() int {
	switch r {
	case RoleAdmin:
		return 3
	case RoleEditor:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r.Rank() > 0 }

// Team owns systems, connections and templates.
type Team struct {
	ID        int64     `gorm:"primaryKey" json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// User is a person (or a robot account) that signs in.
type User struct {
	ID           int64     `gorm:"primaryKey" json:"id"`
	Email        string    `json:"email"`
	Name         string    `json:"name"`
	PasswordHash string    `json:"-"`
	OrgAdmin     bool      `json:"org_admin"`
	Disabled     bool      `json:"disabled"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Membership gives a user a role in a team.
type Membership struct {
	TeamID    int64     `gorm:"primaryKey;autoIncrement:false" json:"team_id"`
	UserID    int64     `gorm:"primaryKey;autoIncrement:false" json:"user_id"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// Session is a signed-in browser; ID is the hash of the cookie's token.
type Session struct {
	ID        string    `gorm:"primaryKey" json:"-"`
	UserID    int64     `json:"user_id"`
	CSRF      string    `gorm:"column:csrf" json:"-"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// APIToken is a personal token; only its hash is stored.
type APIToken struct {
	ID         int64      `gorm:"primaryKey" json:"id"`
	UserID     int64      `json:"user_id"`
	Name       string     `json:"name"`
	Hash       string     `json:"-"`
	Prefix     string     `json:"prefix"` // the first characters, so people can tell tokens apart
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
}

// TableName maps APIToken to its table.
func (APIToken) TableName() string { return "api_tokens" }

// Now is the store's clock (UTC), for callers that stamp rows it keeps.
func (s *Store) Now() time.Time { return s.now() }

// CreateTeam inserts a team.
func (s *Store) CreateTeam(ctx context.Context, t *Team) error {
	t.CreatedAt = s.now()
	return wrap("create team", s.q(ctx).Create(t).Error)
}

// GetTeam reads one team.
func (s *Store) GetTeam(ctx context.Context, id int64) (Team, error) {
	var t Team
	return t, wrap(fmt.Sprintf("team %d", id), s.q(ctx).First(&t, id).Error)
}

// TeamByName reads a team by its unique name.
func (s *Store) TeamByName(ctx context.Context, name string) (Team, error) {
	var t Team
	return t, wrap(fmt.Sprintf("team %q", name), s.q(ctx).Where("name = ?", name).First(&t).Error)
}

// ListTeams returns every team by id.
func (s *Store) ListTeams(ctx context.Context) ([]Team, error) {
	var out []Team
	return out, wrap("list teams", s.q(ctx).Order("id").Find(&out).Error)
}

// CountUsers tells whether first-run setup is still open (0 users).
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	return n, wrap("count users", s.q(ctx).Model(&User{}).Count(&n).Error)
}

// CreateUser inserts a user.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	u.CreatedAt, u.UpdatedAt = s.now(), s.now()
	return wrap("create user", s.q(ctx).Create(u).Error)
}

// GetUser reads one user.
func (s *Store) GetUser(ctx context.Context, id int64) (User, error) {
	var u User
	return u, wrap(fmt.Sprintf("user %d", id), s.q(ctx).First(&u, id).Error)
}

// UserByEmail reads a user by email (compared as stored: callers lower-case).
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	var u User
	return u, wrap("user", s.q(ctx).Where("email = ?", email).First(&u).Error)
}

// ListUsers returns every user by id.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	var out []User
	return out, wrap("list users", s.q(ctx).Order("id").Find(&out).Error)
}

// UpdateUser saves a user's name, password hash, org admin and disabled flags.
func (s *Store) UpdateUser(ctx context.Context, u *User) error {
	res := s.q(ctx).Model(&User{}).Where("id = ?", u.ID).Updates(map[string]any{
		"name": u.Name, "password_hash": u.PasswordHash, "org_admin": u.OrgAdmin,
		"disabled": u.Disabled, "updated_at": s.now(),
	})
	if res.Error == nil && res.RowsAffected == 0 {
		return fmt.Errorf("user %d: %w", u.ID, ErrNotFound)
	}
	return wrap("update user", res.Error)
}

// SetMembership gives a user a role in a team, replacing any earlier role.
func (s *Store) SetMembership(ctx context.Context, teamID, userID int64, role Role) error {
	return s.Tx(ctx, func(tx *Store) error {
		res := tx.q(ctx).Model(&Membership{}).Where("team_id = ? AND user_id = ?", teamID, userID).Update("role", role)
		if res.Error != nil {
			return wrap("set membership", res.Error)
		}
		if res.RowsAffected > 0 {
			return nil
		}
		return wrap("set membership", tx.q(ctx).Create(&Membership{TeamID: teamID, UserID: userID, Role: role, CreatedAt: tx.now()}).Error)
	})
}

// RemoveMembership takes a user out of a team.
func (s *Store) RemoveMembership(ctx context.Context, teamID, userID int64) error {
	res := s.q(ctx).Where("team_id = ? AND user_id = ?", teamID, userID).Delete(&Membership{})
	if res.Error == nil && res.RowsAffected == 0 {
		return fmt.Errorf("membership of user %d in team %d: %w", userID, teamID, ErrNotFound)
	}
	return wrap("remove membership", res.Error)
}

// Memberships returns a user's roles by team id.
func (s *Store) Memberships(ctx context.Context, userID int64) (map[int64]Role, error) {
	var rows []Membership
	if err := s.q(ctx).Where("user_id = ?", userID).Find(&rows).Error; err != nil {
		return nil, wrap("memberships", err)
	}
	out := make(map[int64]Role, len(rows))
	for _, m := range rows {
		out[m.TeamID] = m.Role
	}
	return out, nil
}

// TeamMembers lists a team's memberships.
func (s *Store) TeamMembers(ctx context.Context, teamID int64) ([]Membership, error) {
	var out []Membership
	return out, wrap("team members", s.q(ctx).Where("team_id = ?", teamID).Order("user_id").Find(&out).Error)
}

// CountTeamAdmins counts a team's admins, so the last one cannot be removed.
func (s *Store) CountTeamAdmins(ctx context.Context, teamID int64) (int64, error) {
	var n int64
	err := s.q(ctx).Model(&Membership{}).Where("team_id = ? AND role = ?", teamID, RoleAdmin).Count(&n).Error
	return n, wrap("count team admins", err)
}

// CreateSession stores a session.
func (s *Store) CreateSession(ctx context.Context, se *Session) error {
	se.CreatedAt = s.now()
	return wrap("create session", s.q(ctx).Create(se).Error)
}

// GetSession reads a live session by its hashed id.
func (s *Store) GetSession(ctx context.Context, id string) (Session, error) {
	var se Session
	err := s.q(ctx).Where("id = ? AND expires_at > ?", id, s.now()).First(&se).Error
	return se, wrap("session", err)
}

// DeleteSession signs a session out.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return wrap("delete session", s.q(ctx).Where("id = ?", id).Delete(&Session{}).Error)
}

// DeleteUserSessions signs a user out everywhere (password change, disable).
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) error {
	return wrap("delete sessions", s.q(ctx).Where("user_id = ?", userID).Delete(&Session{}).Error)
}

// DeleteExpiredSessions removes sessions past their expiry.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	res := s.q(ctx).Where("expires_at <= ?", s.now()).Delete(&Session{})
	return res.RowsAffected, wrap("delete expired sessions", res.Error)
}

// CreateAPIToken stores a token (its hash).
func (s *Store) CreateAPIToken(ctx context.Context, t *APIToken) error {
	t.CreatedAt = s.now()
	return wrap("create token", s.q(ctx).Create(t).Error)
}

// APITokenByHash reads a usable token: not revoked, not expired. It records
// the use at most once a minute, so a busy client does not write per request.
func (s *Store) APITokenByHash(ctx context.Context, hash string) (APIToken, error) {
	var t APIToken
	now := s.now()
	err := s.q(ctx).Where("hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)", hash, now).First(&t).Error
	if err != nil {
		return t, wrap("token", err)
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > time.Minute {
		if err := s.q(ctx).Model(&APIToken{}).Where("id = ?", t.ID).Update("last_used_at", now).Error; err != nil {
			return t, wrap("token", err)
		}
		t.LastUsedAt = &now
	}
	return t, nil
}

// ListAPITokens lists a user's tokens, newest first.
func (s *Store) ListAPITokens(ctx context.Context, userID int64) ([]APIToken, error) {
	var out []APIToken
	return out, wrap("list tokens", s.q(ctx).Where("user_id = ?", userID).Order("id DESC").Find(&out).Error)
}

// RevokeAPIToken revokes one of a user's tokens.
func (s *Store) RevokeAPIToken(ctx context.Context, userID, id int64) error {
	res := s.q(ctx).Model(&APIToken{}).Where("id = ? AND user_id = ? AND revoked_at IS NULL", id, userID).
		Update("revoked_at", s.now())
	if res.Error == nil && res.RowsAffected == 0 {
		return fmt.Errorf("token %d: %w", id, ErrNotFound)
	}
	return wrap("revoke token", res.Error)
}

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
