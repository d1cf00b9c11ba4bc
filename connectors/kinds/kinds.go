// Package kinds is the list of connector kinds this binary offers: main
// builds its Registry here, and the reference in docs/connectors.md is
// generated from the same list.
package kinds

import (
	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/azuredevops"
	"github.com/duplexsync/duplex/connectors/github"
	"github.com/duplexsync/duplex/connectors/httpconn"
	"github.com/duplexsync/duplex/connectors/jira"
	"github.com/duplexsync/duplex/connectors/redmine"
	"github.com/duplexsync/duplex/connectors/rt"
	"github.com/duplexsync/duplex/connectors/servicenow"
	"github.com/duplexsync/duplex/connectors/sqlconn"
	"github.com/duplexsync/duplex/connectors/tryton"
	"github.com/duplexsync/duplex/connectors/zendesk"
)

// All lists every kind, each with its spec, factory and settings parse.
func All() []connectors.Kind {
	return []connectors.Kind{
		sqlconn.Definition(),
		httpconn.Definition(),
		github.Definition(),
		jira.Definition(),
		redmine.Definition(),
		rt.Definition(),
		tryton.Definition(),
		// Tested against documented payloads only (issue 22).
		zendesk.Definition(),
		azuredevops.Definition(),
		servicenow.Definition(),
	}
}

// Registry returns a registry of every kind.
func Registry() (*connectors.Registry, error) {
	reg := connectors.NewRegistry()
	for _, k := range All() {
		if err := reg.Add(k); err != nil {
			return nil, err
		}
	}
	reg.RegisterChecker(sqlconn.Kind, sqlconn.Check) // the others name their system by "url"
	return reg, nil
}
