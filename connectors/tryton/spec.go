package tryton

import (
	"encoding/json"

	"github.com/duplexsync/duplex/connectors"
)

//go:generate go run ../internal/specgen

// Spec describes the tryton kind.
func Spec() connectors.Spec {
	return connectors.Spec{
		Kind:     Kind,
		Summary:  "Parties or customer invoices of one Tryton database, through JSON-RPC (polled); notes are the comments.",
		Settings: settingSpecs,
		Secrets: []connectors.Secret{
			{Name: "password", Description: "The user's password: Duplex signs in with common.db.login and again when the session expires. Either this or session."},
			{Name: "session", Description: "A session made by common.db.login, as \"<user id>:<key>\" (valid for the server's [session] max_age, 30 days by default; Tryton 6.0's JSON-RPC takes no application keys). Either this or password."},
		},
		Capabilities: connectors.Capabilities{Find: true, Correlation: true, Deletes: true}, // correlation and deletes: parties only
	}
}

// Definition registers the kind: its spec, factory and settings parse.
func Definition() connectors.Kind {
	return connectors.Kind{Spec: Spec(), Open: New, Parse: func(raw json.RawMessage) error {
		_, err := ParseSettings(raw)
		return err
	}}
}
