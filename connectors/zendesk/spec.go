package zendesk

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

//go:generate go run ../internal/specgen

// Kind is this connector's kind name.
const Kind = "zendesk"

// Spec describes the zendesk kind.
func Spec() connectors.Spec {
	return connectors.Spec{
		Kind:     Kind,
		Summary:  "Zendesk Support tickets over the Ticketing REST API: public replies and internal notes, custom fields by title, cursor-based incremental export, signed webhooks, uploads (tested against documented payloads only).",
		Settings: settingSpecs,
		Secrets: []connectors.Secret{
			{Name: "api_token", Required: false, Description: "An agent's API token, sent with the email setting as Basic EMAIL/token:TOKEN; or give oauth_token."},
			{Name: "oauth_token", Required: false, Description: "An OAuth access token (Bearer), instead of email and api_token."},
			{Name: "webhook_secret", Required: false, Description: "The signing secret of the Zendesk webhook; without it every webhook is refused."},
		},
		Capabilities: connectors.Capabilities{Webhooks: true, Correlation: true, Attachments: true, PrivateComments: true},
	}
}

// Definition registers the kind: its spec, factory and settings parse.
func Definition() connectors.Kind {
	return connectors.Kind{Spec: Spec(), Open: New, Parse: func(raw json.RawMessage) error {
		_, err := ParseSettings(raw)
		return err
	}}
}

// ParseSettings is the strict, pure parse of a zendesk system's settings
// (*connectors.SettingError); nothing is contacted. New starts from it and
// adds only what needs the secrets or the server.
func ParseSettings(raw json.RawMessage) (Settings, error) {
	s, err := decodeSettings(raw)
	if err != nil {
		return s, err
	}
	if s.URL, err = connectors.HTTPURL(Kind, "url", s.URL); err != nil {
		return s, err
	}
	if u, _ := url.Parse(s.URL); u.Path != "" && u.Path != "/" {
		return s, &connectors.SettingError{Kind: Kind, Field: "url",
			Msg: fmt.Sprintf("must be the account's address with no path, such as https://example.zendesk.com, got %q", s.URL)}
	}
	if s.StartTime != "" {
		if _, err := time.Parse(time.RFC3339, s.StartTime); err != nil {
			return s, &connectors.SettingError{Kind: Kind, Field: "start_time", Msg: fmt.Sprintf("must be RFC 3339, such as 2026-01-31T00:00:00Z, got %q", s.StartTime)}
		}
	}
	return s, nil
}
