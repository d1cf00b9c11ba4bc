package servicenow

import (
	"encoding/json"
	"fmt"

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
	if s.Table == "" {
		s.Table = "incident"
	}
	if !validName(s.Table) {
		return s, &connectors.SettingError{Kind: Kind, Field: "table", Msg: fmt.Sprintf("%q is not a table name", s.Table)}
	}
	for _, f := range s.Fields {
		if !validName(f) {
			return s, &connectors.SettingError{Kind: Kind, Field: "fields", Msg: fmt.Sprintf("%q is not a column name", f)}
		}
		switch f {
		case "comments", "work_notes", "id", "key", "url", "type", "updated_at", "updated_by", "attachments":
			// The journal is read as comments; the others are the entity's own keys in scripts.
			return s, &connectors.SettingError{Kind: Kind, Field: "fields", Msg: fmt.Sprintf("%q cannot be synced as a field", f)}
		}
	}
	if s.Username == "" && s.ClientID == "" {
		return s, &connectors.SettingError{Kind: Kind, Field: "username",
			Msg: "set username (with the secret password) or client_id (with the secret client_secret)"}
	}
	return s, nil
}
