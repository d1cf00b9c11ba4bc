-- +goose Up
-- Validation rules are a fourth kind of script version per connection side
-- ("rules": a JSON list of rules), versioned, audited and loaded like the others.
ALTER TABLE script_versions DROP CONSTRAINT script_versions_kind_check;
ALTER TABLE script_versions ADD CONSTRAINT script_versions_kind_check
    CHECK (kind IN ('trigger', 'outgoing', 'incoming', 'rules'));

-- +goose Down
DELETE FROM script_versions WHERE kind = 'rules';
ALTER TABLE script_versions DROP CONSTRAINT script_versions_kind_check;
ALTER TABLE script_versions ADD CONSTRAINT script_versions_kind_check
    CHECK (kind IN ('trigger', 'outgoing', 'incoming'));
