-- +goose Up
-- The parameter values a connection was made (or last upgraded) from its
-- team template with, as JSON, so an upgrade renders the new version with
-- them instead of silently falling back to the defaults.
ALTER TABLE connections ADD COLUMN template_params TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE connections DROP COLUMN template_params;
