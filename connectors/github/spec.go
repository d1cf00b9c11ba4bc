package github

import (
	"encoding/json"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

//go:generate go run ../internal/specgen

// Spec describes the github kind.
func Spec() connectors.Spec {
	return connectors.Spec{
		Kind:     "github",
		Summary:  "Issues (not pull requests) of one GitHub repository, through the REST API (polled, and repository webhooks when a secret is set).",
		Settings: settingSpecs,
		Secrets: []connectors.Secret{
			{Name: "token", Required: true, Description: "A fine-grained or classic personal access token, or an app token, with issues read and write."},
			{Name: "webhook_secret", Description: "The secret set on the repository's webhook; without it every webhook is refused."},
		},
		Capabilities: connectors.Capabilities{Webhooks: true, Correlation: true},
	}
}

// Definition registers the kind: its spec, factory and settings parse.
func Definition() connectors.Kind {
	return connectors.Kind{Spec: Spec(), Open: New, Parse: func(raw json.RawMessage) error {
		_, err := ParseSettings(raw)
		return err
	}}
}

// ParseSettings is the strict, pure parse of a github system's settings
// (*connectors.SettingError); nothing is contacted.
func ParseSettings(raw json.RawMessage) (Settings, error) {
	var s Settings
	if err := Spec().DecodeSettings(raw, &s); err != nil {
		return s, err
	}
	if strings.TrimSpace(s.URL) == "" {
		s.URL = DefaultURL
	}
	var err error
	if s.URL, err = connectors.HTTPURL("github", "url", s.URL); err != nil {
		return s, err
	}
	s.Owner, s.Repo = strings.TrimSpace(s.Owner), strings.TrimSpace(s.Repo)
	for _, f := range []struct{ name, v string }{{"owner", s.Owner}, {"repo", s.Repo}} {
		if f.v == "" || strings.Contains(f.v, "/") {
			return s, &connectors.SettingError{Kind: "github", Field: f.name,
				Msg: "owner and repo are required, without a slash (for github.com/octocat/Hello-World: owner \"octocat\", repo \"Hello-World\")"}
		}
	}
	return s, nil
}
