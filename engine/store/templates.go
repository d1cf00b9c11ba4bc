package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Visibility says which teams see a team template besides its owner.
type Visibility string

// Visibilities.
const (
	VisibilityPrivate Visibility = "private" // the owner team only
	VisibilityShared  Visibility = "shared"  // the owner and the teams in template_shares
	VisibilityOrg     Visibility = "org"     // every team
)

// Valid reports whether v is one of the three visibilities.
func (v Visibility) Valid() bool {
	return v == VisibilityPrivate || v == VisibilityShared || v == VisibilityOrg
}

// TeamTemplate is a template a team published; its content is in its
// versions. Only the owner team changes it; others use or fork it.
type TeamTemplate struct {
	ID                int64      `gorm:"primaryKey" json:"id"`
	TeamID            int64      `json:"team_id"`
	Name              string     `json:"name"`
	Title             string     `json:"title"`
	Description       string     `json:"description"`
	Visibility        Visibility `json:"visibility"`
	ForkedFromID      *int64     `json:"forked_from_id,omitempty"`
	ForkedFromVersion *int       `json:"forked_from_version,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
	// Latest is the newest version's number (read only, from a subquery).
	Latest int `gorm:"->;-:migration" json:"latest_version"`
}

// TableName maps TeamTemplate to its table.
func (TeamTemplate) TableName() string { return "templates" }

// TemplateVersion is one published version; Body is scripts.Body as JSON.
type TemplateVersion struct {
	ID         int64     `gorm:"primaryKey" json:"id"`
	TemplateID int64     `json:"template_id"`
	Version    int       `json:"version"`
	Body       string    `json:"-"`
	Author     string    `json:"author"`
	Note       string    `json:"note"`
	CreatedAt  time.Time `json:"created_at"`
}

// TemplateShare lets one more team see a shared template.
type TemplateShare struct {
	TemplateID int64 `gorm:"primaryKey;autoIncrement:false"`
	TeamID     int64 `gorm:"primaryKey;autoIncrement:false"`
}

// Templates is the team templates' aggregate: their versions and shares,
// over the store's handle (inside Tx, the same transaction).
type Templates struct{ s *Store }

// Templates is the team templates' aggregate over s's handle.
func (s *Store) Templates() *Templates { return &Templates{s: s} }

// latestSQL is the newest version number of the row "templates".
const latestSQL = "(SELECT COALESCE(MAX(version), 0) FROM template_versions v WHERE v.template_id = templates.id) AS latest"

func (s *Store) templates(ctx context.Context) *gorm.DB {
	return s.q(ctx).Model(&TeamTemplate{}).Select("templates.*, " + latestSQL)
}

// CreateTemplate inserts a template and its version 1 in one transaction;
// t.ID and t.Latest are set on return. A second template of the same name in
// one team is ErrConflict.
func (a *Templates) CreateTemplate(ctx context.Context, t *TeamTemplate, body, author, note string) (TemplateVersion, error) {
	s := a.s
	if t.Visibility == "" {
		t.Visibility = VisibilityPrivate
	}
	var v TemplateVersion
	err := s.Tx(ctx, func(tx *Store) error {
		t.CreatedAt, t.UpdatedAt = tx.now(), tx.now()
		if err := tx.q(ctx).Omit("Latest").Create(t).Error; err != nil {
			return wrap(fmt.Sprintf("create template %q", t.Name), err)
		}
		v = TemplateVersion{TemplateID: t.ID, Version: 1, Body: body, Author: author, Note: note, CreatedAt: tx.now()}
		if err := tx.q(ctx).Create(&v).Error; err != nil {
			return wrap("create template version", err)
		}
		t.Latest = 1
		return nil
	})
	return v, err
}

// PublishTemplateVersion stores body as the template's next version and
// updates its title and description. The version number is taken inside the
// transaction, after the template row is written (which locks it on
// PostgreSQL), so two publishes never pick the same number.
func (a *Templates) PublishTemplateVersion(ctx context.Context, templateID int64, title, description, body, author, note string) (TemplateVersion, error) {
	s := a.s
	var v TemplateVersion
	err := s.Tx(ctx, func(tx *Store) error {
		res := tx.q(ctx).Model(&TeamTemplate{}).Where("id = ?", templateID).
			Updates(map[string]any{"title": title, "description": description, "updated_at": tx.now()})
		if res.Error != nil {
			return wrap("publish template", res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("template %d: %w", templateID, ErrNotFound)
		}
		var last int
		if err := tx.q(ctx).Model(&TemplateVersion{}).Where("template_id = ?", templateID).
			Select("COALESCE(MAX(version), 0)").Scan(&last).Error; err != nil {
			return wrap("publish template", err)
		}
		v = TemplateVersion{TemplateID: templateID, Version: last + 1, Body: body, Author: author, Note: note, CreatedAt: tx.now()}
		return wrap("publish template", tx.q(ctx).Create(&v).Error)
	})
	return v, err
}

// GetTemplate reads one template with its latest version number.
func (a *Templates) GetTemplate(ctx context.Context, id int64) (TeamTemplate, error) {
	s := a.s
	var t TeamTemplate
	err := s.templates(ctx).Where("templates.id = ?", id).Take(&t).Error
	return t, wrap(fmt.Sprintf("template %d", id), err)
}

// TemplateByName reads a team's template by name.
func (a *Templates) TemplateByName(ctx context.Context, teamID int64, name string) (TeamTemplate, error) {
	s := a.s
	var t TeamTemplate
	err := s.templates(ctx).Where("templates.team_id = ? AND templates.name = ?", teamID, name).Take(&t).Error
	return t, wrap(fmt.Sprintf("template %q of team %d", name, teamID), err)
}

// VisibleTemplates lists the templates the given teams see: their own, those
// shared with one of them, and org-wide ones; all of them when all is set
// (an org admin). Ordered by team, then name.
func (a *Templates) VisibleTemplates(ctx context.Context, teamIDs []int64, all bool) ([]TeamTemplate, error) {
	s := a.s
	q := s.templates(ctx).Order("templates.team_id, templates.name")
	if !all {
		if len(teamIDs) == 0 {
			teamIDs = []int64{0} // IN () is not SQL; no team has id 0
		}
		q = q.Where("templates.team_id IN ? OR templates.visibility = ? OR (templates.visibility = ? AND "+
			"templates.id IN (SELECT template_id FROM template_shares WHERE team_id IN ?))",
			teamIDs, VisibilityOrg, VisibilityShared, teamIDs)
	}
	var out []TeamTemplate
	return out, wrap("list templates", q.Find(&out).Error)
}

// TemplateShares lists the teams a template is shared with, by id.
func (a *Templates) TemplateShares(ctx context.Context, templateID int64) ([]int64, error) {
	s := a.s
	var ids []int64
	err := s.q(ctx).Model(&TemplateShare{}).Where("template_id = ?", templateID).Order("team_id").Pluck("team_id", &ids).Error
	return ids, wrap("template shares", err)
}

// SetTemplateSharing sets a template's visibility and replaces its shares in
// one transaction. An unknown team is ErrNotFound.
func (a *Templates) SetTemplateSharing(ctx context.Context, templateID int64, v Visibility, teamIDs []int64) error {
	s := a.s
	if !v.Valid() {
		return fmt.Errorf("visibility %q is not private, shared or org", v)
	}
	return s.Tx(ctx, func(tx *Store) error {
		res := tx.q(ctx).Model(&TeamTemplate{}).Where("id = ?", templateID).
			Updates(map[string]any{"visibility": v, "updated_at": tx.now()})
		if res.Error != nil {
			return wrap("set sharing", res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("template %d: %w", templateID, ErrNotFound)
		}
		if err := tx.q(ctx).Where("template_id = ?", templateID).Delete(&TemplateShare{}).Error; err != nil {
			return wrap("set sharing", err)
		}
		seen := map[int64]bool{}
		for _, id := range teamIDs {
			if seen[id] {
				continue
			}
			seen[id] = true
			if _, err := tx.Identity().GetTeam(ctx, id); err != nil {
				return err
			}
			if err := tx.q(ctx).Create(&TemplateShare{TemplateID: templateID, TeamID: id}).Error; err != nil {
				return wrap("set sharing", err)
			}
		}
		return nil
	})
}

// GetTemplateVersion reads one version, with its body; version 0 is the
// latest.
func (a *Templates) GetTemplateVersion(ctx context.Context, templateID int64, version int) (TemplateVersion, error) {
	s := a.s
	var v TemplateVersion
	q := s.q(ctx).Where("template_id = ?", templateID)
	if version > 0 {
		q = q.Where("version = ?", version)
	} else {
		q = q.Order("version DESC")
	}
	err := q.Take(&v).Error
	if version > 0 {
		return v, wrap(fmt.Sprintf("template %d version %d", templateID, version), err)
	}
	return v, wrap(fmt.Sprintf("template %d", templateID), err)
}

// TemplateVersions lists a template's versions newest first, without bodies.
func (a *Templates) TemplateVersions(ctx context.Context, templateID int64) ([]TemplateVersion, error) {
	s := a.s
	var out []TemplateVersion
	err := s.q(ctx).Select("id, template_id, version, author, note, created_at").
		Where("template_id = ?", templateID).Order("version DESC").Find(&out).Error
	return out, wrap("template versions", err)
}

// ForkTemplate copies one version of a template (0: the latest) into
// another team as a new private template whose version 1 is that body. The
// original is only read.
func (a *Templates) ForkTemplate(ctx context.Context, srcID int64, version int, teamID int64, name, author string) (TeamTemplate, TemplateVersion, error) {
	s := a.s
	var (
		t TeamTemplate
		v TemplateVersion
	)
	err := s.Tx(ctx, func(tx *Store) error {
		src, err := tx.Templates().GetTemplate(ctx, srcID)
		if err != nil {
			return err
		}
		sv, err := tx.Templates().GetTemplateVersion(ctx, srcID, version)
		if err != nil {
			return err
		}
		if _, err := tx.Identity().GetTeam(ctx, teamID); err != nil {
			return err
		}
		from, fromVersion := src.ID, sv.Version
		t = TeamTemplate{TeamID: teamID, Name: name, Title: src.Title, Description: src.Description,
			Visibility: VisibilityPrivate, ForkedFromID: &from, ForkedFromVersion: &fromVersion}
		v, err = tx.Templates().CreateTemplate(ctx, &t, sv.Body, author, fmt.Sprintf("forked from template %d version %d", src.ID, sv.Version))
		return err
	})
	return t, v, err
}

// SetConnectionTeamTemplate records the team template version a connection's
// scripts now come from and the parameters they were rendered with.
func (s *Store) SetConnectionTeamTemplate(ctx context.Context, connID, templateID int64, version int, params string) error {
	res := s.q(ctx).Model(&Connection{}).Where("id = ?", connID).Updates(map[string]any{
		"template_id": templateID, "template_version": version, "template_params": params, "updated_at": s.now()})
	if res.Error == nil && res.RowsAffected == 0 {
		return fmt.Errorf("connection %d: %w", connID, ErrNotFound)
	}
	return wrap("set connection template", res.Error)
}

// UpgradeConnection saves each given script as its next version and records
// the template version, all in one transaction: a failure leaves the
// connection on its old scripts and version.
func (s *Store) UpgradeConnection(ctx context.Context, connID int64, scripts map[Side]map[ScriptKind]string, templateID int64, version int, params, author string) error {
	return s.Tx(ctx, func(tx *Store) error {
		for _, side := range []Side{SideA, SideB} {
			for _, kind := range ScriptKinds {
				if _, err := tx.SaveScript(ctx, connID, side, kind, scripts[side][kind], author); err != nil {
					return err
				}
			}
		}
		return tx.SetConnectionTeamTemplate(ctx, connID, templateID, version, params)
	})
}
