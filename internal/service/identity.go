package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/credential"
)

// Teams, their members, users, API tokens and sessions: each change with
// its audit entry in one transaction, like the configuration's.

// WithPasswords sets how new passwords are hashed (the server's options);
// without it, credential's defaults.
func (s *Service) WithPasswords(p credential.Params) *Service {
	s.passwords = &p
	return s
}

// HashPassword checks a new password's strength and hashes it.
func (s *Service) HashPassword(pw string) (string, error) {
	if err := credential.CheckPassword(pw); err != nil {
		return "", invalid("%v", err)
	}
	p := credential.Default
	if s.passwords != nil {
		p = *s.passwords
	}
	return credential.HashPassword(pw, p)
}

// CreateTeam creates a team named name.
func (s *Service) CreateTeam(ctx context.Context, actor, name string) (store.Team, error) {
	t := store.Team{Name: strings.TrimSpace(name)}
	if t.Name == "" || len(t.Name) > 100 {
		return t, invalid("a team needs a name (up to 100 characters)")
	}
	err := s.st.Tx(ctx, func(tx *store.Store) error {
		if err := tx.Identity().CreateTeam(ctx, &t); err != nil {
			return err
		}
		return tx.AddAudit(ctx, &store.AuditEntry{Actor: actor, Action: "team.create", TeamID: &t.ID,
			Detail: fmt.Sprintf("team %d %q", t.ID, t.Name)})
	})
	return t, err
}

// keepAnAdmin refuses a change that would leave a team without an admin:
// nobody could then manage its members or secrets but an org admin. It
// reads inside the change's transaction.
func keepAnAdmin(ctx context.Context, tx *store.Store, team, user int64, newRole store.Role) error {
	roles, err := tx.Identity().Memberships(ctx, user)
	if err != nil {
		return err
	}
	if roles[team] != store.RoleAdmin || newRole == store.RoleAdmin {
		return nil
	}
	n, err := tx.Identity().CountTeamAdmins(ctx, team)
	if err != nil {
		return err
	}
	if n <= 1 {
		return fmt.Errorf("user %d is the last admin of team %d: make someone else admin first: %w", user, team, store.ErrConflict)
	}
	return nil
}

// SetMember gives user role in team (adding them), keeping an admin.
func (s *Service) SetMember(ctx context.Context, actor string, team, user int64, role store.Role) (store.User, error) {
	if !role.Valid() {
		return store.User{}, invalid("role must be admin, editor or viewer, got %q", role)
	}
	var u store.User
	err := s.teamChange(ctx, actor, "member.role", team, func(tx *store.Store) (string, error) {
		var err error
		u, err = tx.Identity().GetUser(ctx, user)
		if errors.Is(err, store.ErrNotFound) {
			return "", invalid("user %d does not exist", user)
		} else if err != nil {
			return "", err
		}
		if err := keepAnAdmin(ctx, tx, team, user, role); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s is %s", u.Email, role), tx.Identity().SetMembership(ctx, team, user, role)
	})
	return u, err
}

// RemoveMember takes user out of team, keeping an admin.
func (s *Service) RemoveMember(ctx context.Context, actor string, team, user int64) error {
	return s.teamChange(ctx, actor, "member.remove", team, func(tx *store.Store) (string, error) {
		if err := keepAnAdmin(ctx, tx, team, user, ""); err != nil {
			return "", err
		}
		return fmt.Sprintf("user %d", user), tx.Identity().RemoveMembership(ctx, team, user)
	})
}

// NewUser is a person to add.
type NewUser struct {
	Email, Name, Password string
	OrgAdmin              bool
}

func (s *Service) newUser(in NewUser) (store.User, error) {
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if email == "" || !strings.Contains(email, "@") {
		return store.User{}, invalid("a valid email is required")
	}
	hash, err := s.HashPassword(in.Password)
	if err != nil {
		return store.User{}, err
	}
	return store.User{Email: email, Name: strings.TrimSpace(in.Name), PasswordHash: hash, OrgAdmin: in.OrgAdmin}, nil
}

// CreateUser validates and stores a user with a hashed password.
func (s *Service) CreateUser(ctx context.Context, actor string, in NewUser) (store.User, error) {
	u, err := s.newUser(in)
	if err != nil {
		return u, err
	}
	err = s.teamChange(ctx, actor, "user.create", 0, func(tx *store.Store) (string, error) {
		return fmt.Sprintf("%s (org admin %v)", u.Email, u.OrgAdmin), tx.Identity().CreateUser(ctx, &u)
	})
	return u, err
}

// Setup creates the first user: an org admin and admin of the default team.
func (s *Service) Setup(ctx context.Context, in NewUser) (store.User, error) {
	in.OrgAdmin = true
	u, err := s.newUser(in)
	if err != nil {
		return u, err
	}
	err = s.teamChange(ctx, u.Email, "user.setup", store.DefaultTeamID, func(tx *store.Store) (string, error) {
		if err := tx.Identity().CreateUser(ctx, &u); err != nil {
			return "", err
		}
		return "first admin " + u.Email, tx.Identity().SetMembership(ctx, store.DefaultTeamID, u.ID, store.RoleAdmin)
	})
	return u, err
}

// UserEdit changes a user; nil fields keep their value.
type UserEdit struct {
	Name     *string
	OrgAdmin *bool
	Disabled *bool
	// Also words changes made elsewhere for the audit entry (a sign-in
	// delay cleared).
	Also []string
}

// UpdateUser changes a user's name, org admin flag or disabled flag; by
// is the user asking, who may not demote or disable themself. Disabling
// signs the user out everywhere (tokens stop at once: every request loads
// the user).
func (s *Service) UpdateUser(ctx context.Context, actor string, by, id int64, in UserEdit) (store.User, error) {
	if id == by && ((in.OrgAdmin != nil && !*in.OrgAdmin) || (in.Disabled != nil && *in.Disabled)) {
		return store.User{}, invalid("you cannot remove your own org admin role or disable yourself")
	}
	var u store.User
	err := s.teamChange(ctx, actor, "user.update", 0, func(tx *store.Store) (string, error) {
		var err error
		if u, err = tx.Identity().GetUser(ctx, id); err != nil {
			return "", err
		}
		var changes []string
		if in.Name != nil {
			u.Name = strings.TrimSpace(*in.Name)
			changes = append(changes, "name")
		}
		if in.OrgAdmin != nil {
			u.OrgAdmin = *in.OrgAdmin
			changes = append(changes, fmt.Sprintf("org_admin=%v", u.OrgAdmin))
		}
		if in.Disabled != nil {
			u.Disabled = *in.Disabled
			changes = append(changes, fmt.Sprintf("disabled=%v", u.Disabled))
		}
		changes = append(changes, in.Also...)
		if err := tx.Identity().UpdateUser(ctx, &u); err != nil {
			return "", err
		}
		if u.Disabled {
			if err := tx.Identity().DeleteUserSessions(ctx, u.ID); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("%s: %s", u.Email, strings.Join(changes, ", ")), nil
	})
	return u, err
}

// ChangePassword sets u's new password (checked and hashed) and signs u
// out of every session; the caller starts a new one if it had one.
func (s *Service) ChangePassword(ctx context.Context, actor string, u store.User, password string) (store.User, error) {
	hash, err := s.HashPassword(password)
	if err != nil {
		return u, err
	}
	u.PasswordHash = hash
	err = s.teamChange(ctx, actor, "user.password", 0, func(tx *store.Store) (string, error) {
		if err := tx.Identity().UpdateUser(ctx, &u); err != nil {
			return "", err
		}
		return u.Email, tx.Identity().DeleteUserSessions(ctx, u.ID)
	})
	return u, err
}

// TokenPrefix starts every API token, so a leaked one is recognisable.
const TokenPrefix = "dpx_"

// CreateToken makes an API token for u, expiring after days (0: never);
// the token itself is returned once and only its hash is stored.
func (s *Service) CreateToken(ctx context.Context, actor string, u store.User, name string, days int) (store.APIToken, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return store.APIToken{}, "", invalid("a token needs a name (up to 100 characters)")
	}
	if days < 0 || days > 3650 {
		return store.APIToken{}, "", invalid("expires_in_days must be between 0 (never) and 3650")
	}
	tok, err := credential.NewToken(TokenPrefix)
	if err != nil {
		return store.APIToken{}, "", err
	}
	t := store.APIToken{UserID: u.ID, Name: name, Hash: credential.HashToken(tok), Prefix: tok[:len(TokenPrefix)+6]}
	if days > 0 {
		exp := s.st.Now().Add(time.Duration(days) * 24 * time.Hour)
		t.ExpiresAt = &exp
	}
	err = s.teamChange(ctx, actor, "token.create", 0, func(tx *store.Store) (string, error) {
		return fmt.Sprintf("%s: token %q (%s…)", u.Email, t.Name, t.Prefix), tx.Identity().CreateAPIToken(ctx, &t)
	})
	return t, tok, err
}

// RevokeToken revokes one of u's tokens.
func (s *Service) RevokeToken(ctx context.Context, actor string, u store.User, id int64) error {
	return s.teamChange(ctx, actor, "token.revoke", 0, func(tx *store.Store) (string, error) {
		return fmt.Sprintf("%s: token %d", u.Email, id), tx.Identity().RevokeAPIToken(ctx, u.ID, id)
	})
}

// StartSession records a browser session of u for ttl, audited as
// identity.session.start (how says how: "password", "auto", "setup",
// "password change") in the same transaction, so a sign-in whose entry
// cannot be written opens no session. The cookie's value is returned,
// only its hash is stored.
func (s *Service) StartSession(ctx context.Context, u store.User, ttl time.Duration, how string) (store.Session, string, error) {
	tok, err := credential.NewToken("dps_")
	if err != nil {
		return store.Session{}, "", err
	}
	csrf, err := credential.NewToken("")
	if err != nil {
		return store.Session{}, "", err
	}
	se := store.Session{ID: credential.HashToken(tok), UserID: u.ID, CSRF: csrf, ExpiresAt: s.st.Now().Add(ttl)}
	err = s.teamChange(ctx, u.Email, "identity.session.start", 0, func(tx *store.Store) (string, error) {
		return fmt.Sprintf("%s: signed in (%s)", u.Email, how), tx.Identity().CreateSession(ctx, &se)
	})
	return se, tok, err
}

// SweepSessions deletes expired sessions.
func (s *Service) SweepSessions(ctx context.Context) error {
	_, err := s.st.Identity().DeleteExpiredSessions(ctx)
	return err
}

// EndSession deletes u's session id (sign-out), audited as
// identity.session.end in the same transaction.
func (s *Service) EndSession(ctx context.Context, u store.User, id string) error {
	return s.teamChange(ctx, u.Email, "identity.session.end", 0, func(tx *store.Store) (string, error) {
		return fmt.Sprintf("%s: signed out", u.Email), tx.Identity().DeleteSession(ctx, id)
	})
}
