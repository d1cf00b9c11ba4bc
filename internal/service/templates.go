package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripts"
)

// Team templates. Who may do what depends on the template's visibility and
// shares, so it is decided here rather than by the API's route table:
//
//   - see (read, use, fork, export): a member of the owner team, of a team it
//     is shared with, anyone when it is org-wide; org admins see all. A
//     template the caller may not see is not found, as if it did not exist.
//   - publish a version: an editor of the owner team only; forks never write
//     to the original.
//   - change visibility and shares: an admin of the owner team.
//   - fork or import into a team: an editor of that team.

// Caller is who asks for a change: the audit actor and their roles.
type Caller struct {
	Actor    string
	OrgAdmin bool
	Roles    map[int64]store.Role
}

// Role is the caller's role in a team ("" when not a member); org admins
// are admins of every team.
func (c Caller) Role(team int64) store.Role {
	if c.OrgAdmin {
		return store.RoleAdmin
	}
	return c.Roles[team]
}

// Teams lists the teams the caller belongs to (any role), sorted.
func (c Caller) Teams() []int64 {
	ids := make([]int64, 0, len(c.Roles))
	for id, r := range c.Roles {
		if r.Valid() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Require refuses (ErrForbidden) unless the caller has at least min in
// team, saying what was refused.
func (c Caller) Require(team int64, min store.Role, what string) error {
	r := c.Role(team)
	if r == "" {
		return fmt.Errorf("%w: %s: you are not a member of team %d", ErrForbidden, what, team)
	}
	if r.Rank() < min.Rank() {
		return fmt.Errorf("%w: %s: this needs the %s role in team %d; you are %s", ErrForbidden, what, min, team, r)
	}
	return nil
}

// VisibleToTeam reports whether team sees t (shares are t's share list).
func VisibleToTeam(t store.TeamTemplate, shares []int64, team int64) bool {
	return t.TeamID == team || t.Visibility == store.VisibilityOrg ||
		(t.Visibility == store.VisibilityShared && slices.Contains(shares, team))
}

// CanSee reports whether the caller sees t through any of its teams.
func (c Caller) CanSee(t store.TeamTemplate, shares []int64) bool {
	if c.OrgAdmin || c.Role(t.TeamID).Valid() {
		return true
	}
	for _, team := range c.Teams() {
		if VisibleToTeam(t, shares, team) {
			return true
		}
	}
	return false
}

// VisibleTemplate reads a template the caller may see, with its shares;
// one they may not see is store.ErrNotFound (not 403: another team's
// private template should not be confirmed to exist).
func (s *Service) VisibleTemplate(ctx context.Context, who Caller, id int64) (store.TeamTemplate, []int64, error) {
	t, err := s.st.Templates().GetTemplate(ctx, id)
	if err != nil {
		return t, nil, err
	}
	shares, err := s.st.Templates().TemplateShares(ctx, id)
	if err != nil {
		return t, nil, err
	}
	if !who.CanSee(t, shares) {
		return t, nil, fmt.Errorf("template %d: %w", id, store.ErrNotFound)
	}
	return t, shares, nil
}

// TemplateFor reads the template (and one version's body) a connection of
// team uses; one the team no longer sees is not found.
func (s *Service) TemplateFor(ctx context.Context, team, id int64, version int) (store.TeamTemplate, store.TemplateVersion, scripts.Body, error) {
	t, err := s.st.Templates().GetTemplate(ctx, id)
	if err != nil {
		return t, store.TemplateVersion{}, scripts.Body{}, err
	}
	shares, err := s.st.Templates().TemplateShares(ctx, id)
	if err != nil {
		return t, store.TemplateVersion{}, scripts.Body{}, err
	}
	if !VisibleToTeam(t, shares, team) {
		return t, store.TemplateVersion{}, scripts.Body{}, fmt.Errorf("template %d (not shared with team %d): %w", id, team, store.ErrNotFound)
	}
	v, err := s.st.Templates().GetTemplateVersion(ctx, id, version)
	if err != nil {
		return t, v, scripts.Body{}, err
	}
	b, err := DecodeBody(v)
	return t, v, b, err
}

// DecodeBody reads a stored version's body.
func DecodeBody(v store.TemplateVersion) (scripts.Body, error) {
	var b scripts.Body
	if err := json.Unmarshal([]byte(v.Body), &b); err != nil {
		return b, fmt.Errorf("template %d version %d body: %w", v.TemplateID, v.Version, err)
	}
	return b, nil
}

func encodeBody(b scripts.Body) (string, error) {
	enc, err := json.Marshal(b)
	if err != nil {
		return "", fmt.Errorf("encode template body: %w", err)
	}
	return string(enc), nil
}

func validName(name string) error {
	if !scripts.ValidName(name) {
		return invalid("name %q: letters, digits, \".\", \"_\" and \"-\", starting with a letter or digit", name)
	}
	return nil
}

// PublishVersion stores body as the next version of template id; only the
// owner team's editors may.
func (s *Service) PublishVersion(ctx context.Context, who Caller, id int64, body scripts.Body, note string) (store.TemplateVersion, error) {
	t, _, err := s.VisibleTemplate(ctx, who, id)
	if err != nil {
		return store.TemplateVersion{}, err
	}
	if err := who.Require(t.TeamID, store.RoleEditor, fmt.Sprintf("publishing a version of template %d (fork it to change it in your team)", id)); err != nil {
		return store.TemplateVersion{}, err
	}
	if err := body.Validate(); err != nil {
		return store.TemplateVersion{}, err
	}
	if body.Title == "" {
		body.Title = t.Name
	}
	enc, err := encodeBody(body)
	if err != nil {
		return store.TemplateVersion{}, err
	}
	var v store.TemplateVersion
	err = s.record(ctx, who.Actor, "template.publish", t.TeamID, nil, func(tx *store.Store) (string, error) {
		var err error
		v, err = tx.Templates().PublishTemplateVersion(ctx, id, body.Title, body.Description, enc, who.Actor, note)
		return fmt.Sprintf("template %d %q version %d", id, t.Name, v.Version), err
	})
	return v, err
}

// PublishNamed stores body as the next version of team's template name,
// creating the template (private) when the team has none of that name:
// `duplex apply`'s publish, whose folder holds every version of a
// template. Only the team's editors may; audited as PublishVersion is.
// The body is stored as given (no default title), so the store's version
// reads back equal to the folder's.
func (s *Service) PublishNamed(ctx context.Context, who Caller, team int64, name string, body scripts.Body, note string) (store.TeamTemplate, store.TemplateVersion, error) {
	if err := validName(name); err != nil {
		return store.TeamTemplate{}, store.TemplateVersion{}, err
	}
	if err := who.Require(team, store.RoleEditor, "publishing a template in a team"); err != nil {
		return store.TeamTemplate{}, store.TemplateVersion{}, err
	}
	if err := body.Validate(); err != nil {
		return store.TeamTemplate{}, store.TemplateVersion{}, fmt.Errorf("%w: template %q: %v", ErrInvalid, name, err)
	}
	enc, err := encodeBody(body)
	if err != nil {
		return store.TeamTemplate{}, store.TemplateVersion{}, err
	}
	t, err := s.st.Templates().TemplateByName(ctx, team, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		t = store.TeamTemplate{TeamID: team, Name: name, Title: body.Title, Description: body.Description, Visibility: store.VisibilityPrivate}
	case err != nil:
		return t, store.TemplateVersion{}, err
	}
	var v store.TemplateVersion
	err = s.record(ctx, who.Actor, "template.publish", team, nil, func(tx *store.Store) (string, error) {
		var err error
		if t.ID == 0 {
			v, err = tx.Templates().CreateTemplate(ctx, &t, enc, who.Actor, note)
		} else {
			v, err = tx.Templates().PublishTemplateVersion(ctx, t.ID, body.Title, body.Description, enc, who.Actor, note)
		}
		return fmt.Sprintf("template %d %q version %d", t.ID, t.Name, v.Version), err
	})
	return t, v, err
}

// SaveFromConnection stores body (made from conn's scripts) as a new
// template of conn's team named name, or as the next version of the team's
// template of that name. visibility only applies when the template is made:
// the next version keeps the template's, and sharing changes only through
// SetSharing. created says which it was.
func (s *Service) SaveFromConnection(ctx context.Context, who Caller, conn store.Connection, name string, visibility store.Visibility,
	body scripts.Body, note string) (t store.TeamTemplate, v store.TemplateVersion, created bool, err error) {
	if err := validName(name); err != nil {
		return t, v, false, err
	}
	if err := who.Require(conn.TeamID, store.RoleEditor, "saving a connection as a template"); err != nil {
		return t, v, false, err
	}
	if body.Title == "" {
		body.Title = name
	}
	existing, err := s.st.Templates().TemplateByName(ctx, conn.TeamID, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		switch visibility {
		case "", store.VisibilityPrivate:
			visibility = store.VisibilityPrivate
		case store.VisibilityOrg:
			if err := who.Require(conn.TeamID, store.RoleAdmin, "publishing a template org-wide"); err != nil {
				return t, v, false, err
			}
		case store.VisibilityShared:
			return t, v, false, invalid("a new template starts private or org; share it with teams through PUT /api/team-templates/:id/sharing")
		default:
			return t, v, false, invalid("visibility must be private, shared or org, got %q", visibility)
		}
		if err := body.Validate(); err != nil {
			return t, v, false, err
		}
		enc, err := encodeBody(body)
		if err != nil {
			return t, v, false, err
		}
		t = store.TeamTemplate{TeamID: conn.TeamID, Name: name, Title: body.Title, Description: body.Description, Visibility: visibility}
		err = s.record(ctx, who.Actor, "template.publish", t.TeamID, &conn.ID, func(tx *store.Store) (string, error) {
			var err error
			v, err = tx.Templates().CreateTemplate(ctx, &t, enc, who.Actor, note)
			return fmt.Sprintf("template %d %q version %d from connection %d (%s)", t.ID, t.Name, v.Version, conn.ID, t.Visibility), err
		})
		return t, v, true, err
	case err != nil:
		return t, v, false, err
	}
	if visibility != "" && !visibility.Valid() {
		return t, v, false, invalid("visibility must be private, shared or org, got %q", visibility)
	}
	if body.Fixtures == nil {
		// Fixtures travel with the template: a new version keeps the last
		// one's unless the request brings its own.
		last, err := s.st.Templates().GetTemplateVersion(ctx, existing.ID, 0)
		if err != nil {
			return t, v, false, err
		}
		prev, err := DecodeBody(last)
		if err != nil {
			return t, v, false, err
		}
		body.Fixtures = prev.Fixtures
	}
	if err := body.Validate(); err != nil {
		return t, v, false, err
	}
	enc, err := encodeBody(body)
	if err != nil {
		return t, v, false, err
	}
	err = s.record(ctx, who.Actor, "template.publish", existing.TeamID, &conn.ID, func(tx *store.Store) (string, error) {
		var err error
		v, err = tx.Templates().PublishTemplateVersion(ctx, existing.ID, body.Title, body.Description, enc, who.Actor, note)
		return fmt.Sprintf("template %d %q version %d from connection %d", existing.ID, existing.Name, v.Version, conn.ID), err
	})
	return existing, v, false, err
}

// SetSharing sets who sees a template; an admin of the owner team only.
func (s *Service) SetSharing(ctx context.Context, who Caller, id int64, visibility store.Visibility, teams []int64) error {
	t, _, err := s.VisibleTemplate(ctx, who, id)
	if err != nil {
		return err
	}
	if err := who.Require(t.TeamID, store.RoleAdmin, "changing who sees a template"); err != nil {
		return err
	}
	switch visibility {
	case store.VisibilityShared:
		if len(teams) == 0 {
			return invalid("visibility shared needs teams")
		}
	case store.VisibilityPrivate, store.VisibilityOrg:
		if len(teams) != 0 {
			return invalid("teams are only for visibility shared")
		}
	default:
		return invalid("visibility must be private, shared or org, got %q", visibility)
	}
	if slices.Contains(teams, t.TeamID) {
		return invalid("team %d owns the template; share it with other teams", t.TeamID)
	}
	err = s.record(ctx, who.Actor, "template.share", t.TeamID, nil, func(tx *store.Store) (string, error) {
		return fmt.Sprintf("template %d %q: %s %v", id, t.Name, visibility, teams), tx.Templates().SetTemplateSharing(ctx, id, visibility, teams)
	})
	if errors.Is(err, store.ErrNotFound) {
		return invalid("%v", err) // an unknown team in the body, not an unknown template
	}
	return err
}

// Fork copies a version (0: the latest) of a template the target team
// sees into that team, named name ("" keeps the original's).
func (s *Service) Fork(ctx context.Context, who Caller, id int64, version int, team int64, name string) (store.TeamTemplate, store.TemplateVersion, error) {
	t, shares, err := s.VisibleTemplate(ctx, who, id)
	if err != nil {
		return t, store.TemplateVersion{}, err
	}
	if name == "" {
		name = t.Name
	}
	if err := validName(name); err != nil {
		return t, store.TemplateVersion{}, err
	}
	if err := who.Require(team, store.RoleEditor, "forking a template into a team"); err != nil {
		return t, store.TemplateVersion{}, err
	}
	if !VisibleToTeam(t, shares, team) {
		return t, store.TemplateVersion{}, fmt.Errorf("%w: template %d is not shared with team %d", ErrForbidden, id, team)
	}
	var fork store.TeamTemplate
	var v store.TemplateVersion
	err = s.record(ctx, who.Actor, "template.fork", team, nil, func(tx *store.Store) (string, error) {
		var err error
		if fork, v, err = tx.Templates().ForkTemplate(ctx, id, version, team, name, who.Actor); err != nil {
			return "", err
		}
		return fmt.Sprintf("template %d %q from template %d version %d", fork.ID, fork.Name, id, *fork.ForkedFromVersion), nil
	})
	return fork, v, err
}

// Import stores an archive's body into team: a new template named name, or
// the next version of the team's template of that name.
func (s *Service) Import(ctx context.Context, who Caller, team int64, name string, body scripts.Body, note string) (store.TeamTemplate, store.TemplateVersion, bool, error) {
	if err := who.Require(team, store.RoleEditor, "importing a template into a team"); err != nil {
		return store.TeamTemplate{}, store.TemplateVersion{}, false, err
	}
	if !scripts.ValidName(name) {
		return store.TeamTemplate{}, store.TemplateVersion{}, false, invalid("the archive has no top folder naming the template: give ?name=")
	}
	if body.Title == "" {
		body.Title = name
	}
	enc, err := encodeBody(body)
	if err != nil {
		return store.TeamTemplate{}, store.TemplateVersion{}, false, err
	}
	if note == "" {
		note = "imported"
	}
	var v store.TemplateVersion
	existing, err := s.st.Templates().TemplateByName(ctx, team, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		t := store.TeamTemplate{TeamID: team, Name: name, Title: body.Title, Description: body.Description}
		err = s.record(ctx, who.Actor, "template.import", team, nil, func(tx *store.Store) (string, error) {
			var err error
			v, err = tx.Templates().CreateTemplate(ctx, &t, enc, who.Actor, note)
			return fmt.Sprintf("template %d %q version %d", t.ID, name, v.Version), err
		})
		return t, v, true, err
	case err != nil:
		return existing, v, false, err
	}
	err = s.record(ctx, who.Actor, "template.import", team, nil, func(tx *store.Store) (string, error) {
		var err error
		v, err = tx.Templates().PublishTemplateVersion(ctx, existing.ID, body.Title, body.Description, enc, who.Actor, note)
		return fmt.Sprintf("template %d %q version %d", existing.ID, name, v.Version), err
	})
	return existing, v, false, err
}
