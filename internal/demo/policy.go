package demo

import (
	"context"
	"path/filepath"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/outbound"
)

// AllowFolder adds an all-team outbound rule for the SQLite directory dir
// unless one is there (audited as the demo's): the demo's systems are
// allowed explicitly, as any SQLite directory must be, and the store's own
// files there stay refused by the store fence.
func AllowFolder(ctx context.Context, st *store.Store, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	row, err := st.OutboundPolicy(ctx)
	if err != nil {
		return err
	}
	p, err := outbound.Parse([]byte(row.Policy))
	if err != nil {
		return err
	}
	for _, r := range p.Allow {
		if r.TeamID == 0 && r.SQLiteDir == abs {
			return nil
		}
	}
	p.Allow = append(p.Allow, outbound.Rule{SQLiteDir: abs, Note: "duplex demo: its own databases"})
	js := p.JSON()
	return st.SetOutboundPolicy(ctx, js, "demo", "outbound policy set: "+js)
}
