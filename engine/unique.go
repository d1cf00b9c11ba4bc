package engine

import (
	"context"
	"fmt"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/scripting"
)

// uniqueLookupLimit bounds the entities one unique rule's lookup reads. The
// rule's where filters them in process, so with more matches than this
// (say hundreds of closed issues with the same external id) an open one
// past the limit is not seen.
const uniqueLookupLimit = 100

// finderOf returns the connector's Finder, through the rate-limit wrapper.
func finderOf(c connectors.Connector) (connectors.Finder, bool) {
	if l, ok := c.(*limited); ok {
		f, ok := l.next.(connectors.Finder)
		if !ok {
			return nil, false
		}
		return limitedFinder{l: l, f: f}, true
	}
	f, ok := c.(connectors.Finder)
	return f, ok
}

type limitedFinder struct {
	l *limited
	f connectors.Finder
}

func (lf limitedFinder) FindBy(ctx context.Context, field, value string, limit int) ([]connectors.Entity, error) {
	if err := lf.l.wait(ctx); err != nil {
		return nil, err
	}
	return lf.f.FindBy(ctx, field, value, limit)
}

// CanFind reports whether a system's connector can look entities up by a
// field (connectors.Finder), which unique rules need.
func (e *Engine) CanFind(ctx context.Context, systemID int64) (bool, error) {
	st, err := e.system(ctx, systemID)
	if err != nil {
		return false, err
	}
	_, ok := finderOf(st.conn)
	return ok, nil
}

// errNoFinder: a side has a unique rule but its connector cannot search.
func errNoFinder(sys string) error {
	return fmt.Errorf("%w: system %q has a unique rule but its connector cannot look entities up by a field (no connectors.Finder)", errConfig, sys)
}

// uniqueResults runs the unique rules of a side on a replica against the
// target system. own is the id of the twin's counterpart there (never its
// own duplicate); for a first sync, corrKey finds an entity a crashed
// earlier attempt created for this very twin, which is not a duplicate
// either. A failed lookup is returned as an error (retried unless the
// connector calls it invalid).
func uniqueResults(ctx context.Context, x Scripts, meta scripting.Meta, rules *scripting.Rules, target *systemState, own, corrKey string, replica map[string]any) ([]scripting.RuleResult, error) {
	if !rules.HasUnique() {
		return nil, nil
	}
	f, ok := finderOf(target.conn)
	if !ok {
		return nil, errNoFinder(target.sys.Name)
	}
	skip := map[string]bool{}
	if own != "" {
		skip[own] = true
	} else if c, ok := target.conn.(connectors.Correlating); ok && corrKey != "" {
		prev, found, err := c.FindCorrelated(ctx, corrKey)
		if err != nil {
			return nil, fmt.Errorf("unique rule: find correlated: %w", err)
		}
		if found {
			skip[prev.ID] = true
		}
	}
	return x.CheckUnique(ctx, rules, replica, meta, func(field, value string) ([]scripting.Found, error) {
		ents, err := f.FindBy(ctx, field, value, uniqueLookupLimit)
		if err != nil {
			return nil, err
		}
		out := make([]scripting.Found, 0, len(ents))
		for _, en := range ents {
			if !skip[en.ID] {
				out = append(out, scripting.Found{ID: en.ID, Key: en.Key, Fields: en.Fields})
			}
		}
		return out, nil
	})
}
