package engine

import (
	"context"
	"strconv"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// Scripts runs user code: scripts, triggers, validation rules and the where
// of unique rules. The server gives a sandbox.Pool (every run in a worker
// process with OS limits, so a hostile script cannot crash, stall or bloat
// the server); unit tests and the command line give the in-process
// *scripting.Runner. Compiling runs no user code but costs CPU that grows
// faster than the source, so the pool compiles in a worker too; meta names
// the connection (Key: its ID), for the pool's per-connection fairness.
type Scripts interface {
	// Compile compiles a script; an error in the source is a
	// *scripting.Error of kind compile. meta's Key (else Connection) is
	// the pool's fairness key, as for runs.
	Compile(ctx context.Context, name string, kind scripting.Kind, src string, meta scripting.Meta) (*scripting.Script, error)
	Outgoing(ctx context.Context, s *scripting.Script, entity, previous map[string]any, meta scripting.Meta) (scripting.OutgoingResult, error)
	Incoming(ctx context.Context, s *scripting.Script, replica, previous, entity map[string]any, meta scripting.Meta) (scripting.IncomingResult, error)
	Match(ctx context.Context, t *scripting.Trigger, vars map[string]any, meta scripting.Meta) (bool, error)
	Check(ctx context.Context, rs *scripting.Rules, replica map[string]any, meta scripting.Meta) ([]scripting.RuleResult, error)
	// CheckUnique makes find's lookups in the caller and evaluates each
	// rule's where over what they found where the scripts run.
	CheckUnique(ctx context.Context, rs *scripting.Rules, replica map[string]any, meta scripting.Meta, find scripting.FindFunc) ([]scripting.RuleResult, error)
}

var _ Scripts = (*scripting.Runner)(nil)

// interactive is the executor of work a person waits for (test run,
// trigger preview): its own workers, so it never waits behind the sync.
func (e *Engine) interactive() Scripts {
	if e.opts.Interactive != nil {
		return e.opts.Interactive
	}
	return e.opts.Runner
}

// CheckScript compiles a script of connection conn (ID 0: one being made
// in conn.TeamID) as the engine will, where the interactive work runs (a
// person waits for the answer); a compile error is a *scripting.Error of
// kind compile with its line and column.
func (e *Engine) CheckScript(ctx context.Context, conn store.Connection, name string, kind scripting.Kind, src string) error {
	key := connFairKey(conn.ID)
	if conn.ID == 0 {
		key = "new connection of team " + strconv.FormatInt(conn.TeamID, 10)
	}
	_, err := e.interactive().Compile(ctx, name, kind, src, scripting.Meta{Connection: conn.Name, Key: key})
	return err
}
