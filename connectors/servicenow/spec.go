package servicenow

import (
	"encoding/json"

	"github.com/duplexsync/duplex/connectors"
)

//go:generate go run ../internal/specgen

// Kind is this connector's kind name.
const Kind = "servicenow"

// Spec describes the servicenow kind.
func Spec() connectors.Spec {
	return connectors.Spec{
		Kind:     Kind,
		Summary:  "ServiceNow records of one table (incident by default) over the Table API with basic auth or OAuth client credentials: display values, sys_choice checks, work notes and comments (tested against documented payloads only).",
		Settings: settingSpecs,
		Secrets: []connectors.Secret{
			{Name: "password", Required: false, Description: "The password of the username setting (basic auth); or give client_secret with client_id."},
			{Name: "client_secret", Required: false, Description: "The OAuth client secret of client_id (client credentials), instead of basic auth."},
		},
		Capabilities: connectors.Capabilities{Correlation: true, Attachments: true, PrivateComments: true},
	}
}

// Definition registers the kind: its spec, factory and settings parse.
func Definition() connectors.Kind {
	return connectors.Kind{Spec: Spec(), Open: New, Parse: func(raw json.RawMessage) error {
		_, err := ParseSettings(raw)
		return err
	}}
}

// ParseSettings is the strict, pure parse of a servicenow system's settings
// (*connectors.SettingError); nothing is contacted. New checks the same and
// more (the credentials, against the server).
func ParseSettings(raw json.RawMessage) (Settings, error) {
	s, err := decodeSettings(raw)
	if err != nil {
		return s, err
	}
	if s.URL, err = connectors.HTTPURL(Kind, "url", s.URL); err != nil {
		return s, err
	}
	return s, nil
}
