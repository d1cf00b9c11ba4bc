package store

import "context"

// Forwarders to the Templates aggregate, kept so that branches written
// before the split still compile. Deprecated: call st.Templates().Method.

// CreateTemplate forwards to Templates.CreateTemplate.
//
// Deprecated: use s.Templates().CreateTemplate.
func (s *Store) CreateTemplate(ctx context.Context, t *TeamTemplate, body, author, note string) (TemplateVersion, error) {
	return s.Templates().CreateTemplate(ctx, t, body, author, note)
}

// PublishTemplateVersion forwards to Templates.PublishTemplateVersion.
//
// Deprecated: use s.Templates().PublishTemplateVersion.
func (s *Store) PublishTemplateVersion(ctx context.Context, templateID int64, title, description, body, author, note string) (TemplateVersion, error) {
	return s.Templates().PublishTemplateVersion(ctx, templateID, title, description, body, author, note)
}

// GetTemplate forwards to Templates.GetTemplate.
//
// Deprecated: use s.Templates().GetTemplate.
func (s *Store) GetTemplate(ctx context.Context, id int64) (TeamTemplate, error) {
	return s.Templates().GetTemplate(ctx, id)
}

// TemplateByName forwards to Templates.TemplateByName.
//
// Deprecated: use s.Templates().TemplateByName.
func (s *Store) TemplateByName(ctx context.Context, teamID int64, name string) (TeamTemplate, error) {
	return s.Templates().TemplateByName(ctx, teamID, name)
}

// VisibleTemplates forwards to Templates.VisibleTemplates.
//
// Deprecated: use s.Templates().VisibleTemplates.
func (s *Store) VisibleTemplates(ctx context.Context, teamIDs []int64, all bool) ([]TeamTemplate, error) {
	return s.Templates().VisibleTemplates(ctx, teamIDs, all)
}

// TemplateShares forwards to Templates.TemplateShares.
//
// Deprecated: use s.Templates().TemplateShares.
func (s *Store) TemplateShares(ctx context.Context, templateID int64) ([]int64, error) {
	return s.Templates().TemplateShares(ctx, templateID)
}

// SetTemplateSharing forwards to Templates.SetTemplateSharing.
//
// Deprecated: use s.Templates().SetTemplateSharing.
func (s *Store) SetTemplateSharing(ctx context.Context, templateID int64, v Visibility, teamIDs []int64) error {
	return s.Templates().SetTemplateSharing(ctx, templateID, v, teamIDs)
}

// GetTemplateVersion forwards to Templates.GetTemplateVersion.
//
// Deprecated: use s.Templates().GetTemplateVersion.
func (s *Store) GetTemplateVersion(ctx context.Context, templateID int64, version int) (TemplateVersion, error) {
	return s.Templates().GetTemplateVersion(ctx, templateID, version)
}

// TemplateVersions forwards to Templates.TemplateVersions.
//
// Deprecated: use s.Templates().TemplateVersions.
func (s *Store) TemplateVersions(ctx context.Context, templateID int64) ([]TemplateVersion, error) {
	return s.Templates().TemplateVersions(ctx, templateID)
}

// ForkTemplate forwards to Templates.ForkTemplate.
//
// Deprecated: use s.Templates().ForkTemplate.
func (s *Store) ForkTemplate(ctx context.Context, srcID int64, version int, teamID int64, name, author string) (TeamTemplate, TemplateVersion, error) {
	return s.Templates().ForkTemplate(ctx, srcID, version, teamID, name, author)
}
