package azuredevops

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

//go:generate go run ../internal/specgen

// Kind is this connector's kind name.
const Kind = "azuredevops"

// Spec describes the azuredevops kind.
func Spec() connectors.Spec {
	return connectors.Spec{
		Kind:     Kind,
		Summary:  "Azure DevOps work items of one project over REST 7.1 with a personal access token: WIQL polling and batch reads, JSON Patch writes, state refusals named, comments, service hooks (tested against documented payloads only).",
		Settings: settingSpecs,
		Secrets: []connectors.Secret{
			{Name: "pat", Required: true, Description: "A personal access token with Work Items read and write."},
			{Name: "hook_password", Required: false, Description: "The basic-auth password set on the service hook subscription; without it every service hook is refused."},
		},
		Capabilities: connectors.Capabilities{Webhooks: true, Correlation: true, Attachments: true},
	}
}

// Definition registers the kind: its spec, factory and settings parse.
func Definition() connectors.Kind {
	return connectors.Kind{Spec: Spec(), Open: New, Parse: func(raw json.RawMessage) error {
		_, err := ParseSettings(raw)
		return err
	}}
}

// ParseSettings is the strict, pure parse of a azuredevops system's settings
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
	if s.Project = strings.TrimSpace(s.Project); s.Project == "" {
		return s, &connectors.SettingError{Kind: Kind, Field: "project", Msg: "is required"}
	}
	if s.WorkItemType == "" {
		s.WorkItemType = "Task"
	}
	for _, f := range s.Fields {
		if !strings.Contains(f, ".") {
			return s, &connectors.SettingError{Kind: Kind, Field: "fields", Msg: fmt.Sprintf("takes reference names such as Custom.Customer, got %q", f)}
		}
	}
	return s, nil
}
