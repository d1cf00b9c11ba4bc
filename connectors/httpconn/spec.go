package httpconn

import (
	"encoding/json"

	"github.com/duplexsync/duplex/connectors"
)

//go:generate go run ../internal/specgen

// Spec describes the http kind.
func Spec() connectors.Spec {
	return connectors.Spec{
		Kind:     "http",
		Summary:  "Any JSON REST API described by paths: list changed items, get, create, update, comment (polled, and HMAC-signed webhooks).",
		Settings: settingSpecs,
		Secrets: []connectors.Secret{
			{Name: "token", Description: "Sent as is in auth_header."},
			{Name: "user", Description: "Basic auth user name (instead of token)."},
			{Name: "password", Description: "Basic auth password, with user."},
			{Name: "webhook_secret", Description: "The HMAC-SHA256 key webhooks are signed with; without it webhooks are refused."},
		},
		Capabilities: connectors.Capabilities{Webhooks: true, PrivateComments: true},
	}
}

// Definition registers the kind: its spec, factory and settings parse.
func Definition() connectors.Kind {
	return connectors.Kind{Spec: Spec(), Open: New, Parse: func(raw json.RawMessage) error {
		_, err := ParseSettings(raw)
		return err
	}}
}

// ParseSettings is the strict, pure parse of an http system's settings
// (*connectors.SettingError); nothing is contacted.
func ParseSettings(raw json.RawMessage) (Settings, error) {
	var s Settings
	if err := Spec().DecodeSettings(raw, &s); err != nil {
		return s, err
	}
	var err error
	s.URL, err = connectors.HTTPURL("http", "url", s.URL)
	return s, err
}
