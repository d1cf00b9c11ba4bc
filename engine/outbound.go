package engine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
)

// connectorConfig is what a system's connector is built from: its settings,
// opened secrets, the outbound guard of its team and a transport that dials
// through that guard.
func (e *Engine) connectorConfig(sys store.System, secrets map[string]string) connectors.Config {
	cfg := connectors.Config{Name: sys.Name, Settings: json.RawMessage(sys.Settings), Secrets: secrets}
	var dial connectors.DialFunc
	if e.opts.Outbound != nil {
		cfg.Guard = e.opts.Outbound(sys.TeamID)
		dial = cfg.Guard.DialContext
	}
	if e.opts.Transport != nil {
		cfg.Transport = e.opts.Transport(sys, dial)
	}
	return cfg
}

// CheckSystem checks the file, database or hosts a system's settings name
// against the store fence and its team's outbound policy, without
// connecting (a refusal wraps connectors.ErrRefused). The server calls it
// before it saves a system; the connector checks again when it opens.
func (e *Engine) CheckSystem(ctx context.Context, sys store.System) error {
	if e.opts.Outbound == nil {
		return nil
	}
	secrets, err := e.opts.Secrets.OpenMap(sys.Secrets)
	if err != nil {
		return fmt.Errorf("system %q: %w", sys.Name, err)
	}
	cfg := e.connectorConfig(sys, secrets)
	if err := e.opts.Connectors.Check(ctx, sys.Kind, cfg); err != nil {
		return fmt.Errorf("system %q: %w", sys.Name, err)
	}
	return nil
}
