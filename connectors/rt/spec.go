package rt

import (
	"encoding/json"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

//go:generate go run ../internal/specgen

// Spec describes the rt kind.
func Spec() connectors.Spec {
	return connectors.Spec{
		Kind:     "rt",
		Summary:  "Tickets of one Request Tracker queue, through REST2 (polled); comments are private, correspondence public.",
		Settings: settingSpecs,
		Secrets: []connectors.Secret{
			{Name: "token", Description: "An RT auth token (RT::Authen::Token). Either this or user and password."},
			{Name: "user", Description: "The RT user name, with password, when no token is given."},
			{Name: "password", Description: "The RT user's password, with user."},
		},
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

// ParseSettings is the strict, pure parse of an rt system's settings
// (*connectors.SettingError); nothing is contacted.
func ParseSettings(raw json.RawMessage) (Settings, error) {
	var s Settings
	if err := Spec().DecodeSettings(raw, &s); err != nil {
		return s, err
	}
	var err error
	if s.URL, err = connectors.HTTPURL("rt", "url", s.URL); err != nil {
		return s, err
	}
	if strings.TrimSpace(s.Queue) == "" {
		return s, &connectors.SettingError{Kind: "rt", Field: "queue", Msg: "is required"}
	}
	return s, nil
}
