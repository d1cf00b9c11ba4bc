package jira

import (
	"encoding/json"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

//go:generate go run ../internal/specgen

// Spec describes the jira kind.
func Spec() connectors.Spec {
	return connectors.Spec{
		Kind:     "jira",
		Summary:  "Issues of one Jira Cloud project, through REST API v3 (polled, and admin webhooks when a secret is set).",
		Settings: settingSpecs,
		Secrets: []connectors.Secret{
			{Name: "email", Required: true, Description: "The Atlassian account's email address (basic auth with api_token)."},
			{Name: "api_token", Required: true, Description: "An Atlassian API token of that account."},
			{Name: "webhook_secret", Description: "The secret of the admin webhook; without it webhooks are refused."},
		},
		Capabilities: connectors.Capabilities{Webhooks: true, Correlation: true, Deletes: true, PrivateComments: true},
	}
}

// Definition registers the kind: its spec, factory and settings parse.
func Definition() connectors.Kind {
	return connectors.Kind{Spec: Spec(), Open: New, Parse: func(raw json.RawMessage) error {
		_, err := ParseSettings(raw)
		return err
	}}
}

// ParseSettings is the strict, pure parse of a jira system's settings
// (*connectors.SettingError); nothing is contacted.
func ParseSettings(raw json.RawMessage) (Settings, error) {
	var s Settings
	if err := Spec().DecodeSettings(raw, &s); err != nil {
		return s, err
	}
	var err error
	if s.URL, err = connectors.HTTPURL("jira", "url", s.URL); err != nil {
		err.(*connectors.SettingError).Msg += " such as https://example.atlassian.net"
		return s, err
	}
	if s.Project = strings.TrimSpace(s.Project); s.Project == "" {
		return s, &connectors.SettingError{Kind: "jira", Field: "project", Msg: "is required (a project key)"}
	}
	return s, nil
}
