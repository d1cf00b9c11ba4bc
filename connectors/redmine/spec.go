package redmine

import (
	"encoding/json"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

//go:generate go run ../internal/specgen

// Spec describes the redmine kind.
func Spec() connectors.Spec {
	return connectors.Spec{
		Kind:     "redmine",
		Summary:  "Issues of one Redmine project, through its REST API (polled).",
		Settings: settingSpecs,
		Secrets: []connectors.Secret{{Name: "api_key", Required: true,
			Description: "The API key of the Redmine user Duplex acts as (My account, API access key)."}},
		Capabilities: connectors.Capabilities{Attachments: true, Correlation: true, Find: true, Deletes: true, PrivateComments: true},
	}
}

// Definition registers the kind: its spec, factory and settings parse.
func Definition() connectors.Kind {
	return connectors.Kind{Spec: Spec(), Open: New, Parse: func(raw json.RawMessage) error {
		_, err := ParseSettings(raw)
		return err
	}}
}

// ParseSettings is the strict, pure parse of a redmine system's settings:
// unknown keys, wrong types, a missing project or a url that is not an
// http(s) address are refused (*connectors.SettingError); nothing is
// contacted.
func ParseSettings(raw json.RawMessage) (Settings, error) {
	var s Settings
	if err := Spec().DecodeSettings(raw, &s); err != nil {
		return s, err
	}
	var err error
	if s.URL, err = connectors.HTTPURL("redmine", "url", s.URL); err != nil {
		return s, err
	}
	if s.Project = strings.TrimSpace(s.Project); s.Project == "" {
		return s, &connectors.SettingError{Kind: "redmine", Field: "project", Msg: "is required"}
	}
	return s, nil
}
