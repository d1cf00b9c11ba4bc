package sqlconn

import (
	"encoding/json"

	"github.com/duplexsync/duplex/connectors"
)

//go:generate go run ../internal/specgen

// Spec describes the sql kind.
func Spec() connectors.Spec {
	return connectors.Spec{
		Kind:     Kind,
		Summary:  "Rows of one table in SQLite, PostgreSQL or MariaDB/MySQL, with an optional comments table (polled by an update-time column).",
		Settings: settingSpecs,
		Secrets: []connectors.Secret{
			{Name: "dsn", Description: "The data source name, when it holds a password; takes precedence over the dsn setting."},
		},
		Capabilities: connectors.Capabilities{Correlation: true, Find: true, Deletes: true},
	}
}

// Definition registers the kind: its spec, factory, settings parse and
// outbound check.
func Definition() connectors.Kind {
	return connectors.Kind{Spec: Spec(), Open: New, Parse: ParseSettings}
}

// ParseSettings is the strict, pure parse of an sql system's settings: the
// keys and their types, the driver, the identifiers and the fields are
// checked and every statement built, but nothing is opened.
func ParseSettings(raw json.RawMessage) error {
	s, err := parseSettings(raw)
	if err != nil {
		return err
	}
	if _, err := newConn("", s); err != nil {
		return &connectors.SettingError{Kind: Kind, Msg: err.Error()}
	}
	return nil
}
