package engine

import (
	"context"
	"fmt"
	"strconv"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// plan is a connection with its current trigger and scripts compiled once;
// every event of the connection reuses it until the connection changes.
type plan struct {
	conn    store.Connection
	options Lifecycle
	sides   map[store.Side]*sidePlan
	key     string // connFairKey(conn.ID), made once: runs ask for it several times a change
}

type sidePlan struct {
	trigger  *scripting.Trigger
	outgoing *scripting.Script
	incoming *scripting.Script
	rules    *scripting.Rules // checked on the replica before anything is applied to this side; nil: none
	// outID and inID name the scripts' sources, so a record of what they
	// produced (records.go) is not used once a person changed them.
	outID, inID string
}

// planFor returns the compiled plan of a connection row. A cached plan is
// reused while the row's updated_at is unchanged: saving a script or pausing
// bumps it, so even a change made by another process is picked up at the next
// poll without recompiling per event.
func (e *Engine) planFor(ctx context.Context, c store.Connection) (*plan, error) {
	e.mu.Lock()
	p, ok := e.plans[c.ID]
	e.mu.Unlock()
	if ok && p.conn.UpdatedAt.Equal(c.UpdatedAt) && p.conn.Active == c.Active {
		return p, nil
	}
	scripts, err := e.st.CurrentScripts(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	rules, err := e.st.CurrentRules(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	p = &plan{conn: c, key: connFairKey(c.ID), sides: map[store.Side]*sidePlan{}}
	if p.options, err = ParseLifecycle(c.Options); err != nil {
		return nil, fmt.Errorf("connection %q: %w", c.Name, err)
	}
	for _, side := range []store.Side{store.SideA, store.SideB} {
		sp := &sidePlan{}
		src := scripts[side]
		if sp.trigger, err = e.compileTrigger(ctx, c.SystemID(side), src[store.KindTrigger].Source); err != nil {
			return nil, fmt.Errorf("connection %q side %s trigger: %w", c.Name, side, err)
		}
		name := fmt.Sprintf("%s/%s.outgoing.js", c.Name, side)
		if sp.outgoing, err = e.opts.Runner.Compile(ctx, name, scripting.KindOutgoing, src[store.KindOutgoing].Source, scripting.Meta{Connection: c.Name, Key: connFairKey(c.ID)}); err != nil {
			return nil, err
		}
		name = fmt.Sprintf("%s/%s.incoming.js", c.Name, side)
		if sp.incoming, err = e.opts.Runner.Compile(ctx, name, scripting.KindIncoming, src[store.KindIncoming].Source, scripting.Meta{Connection: c.Name, Key: connFairKey(c.ID)}); err != nil {
			return nil, err
		}
		sp.outID, sp.inID = sourceID(src[store.KindOutgoing].Source), sourceID(src[store.KindIncoming].Source)
		if r, ok := rules[side]; ok {
			if sp.rules, err = scripting.CompileRulesDoc(r.Source); err != nil {
				return nil, fmt.Errorf("connection %q side %s rules: %w", c.Name, side, err)
			}
			if sp.rules.HasUnique() {
				ok, err := e.CanFind(ctx, c.SystemID(side))
				if err != nil {
					return nil, err
				}
				if !ok {
					return nil, fmt.Errorf("connection %q side %s rules: %w", c.Name, side, errNoFinder(fmt.Sprint(c.SystemID(side))))
				}
			}
		}
		p.sides[side] = sp
	}
	e.mu.Lock()
	e.plans[c.ID] = p
	e.mu.Unlock()
	return p, nil
}

// fairKey is the connection's key in the sandbox pool's lanes (Meta.Key):
// its ID, as names are unique only within a team.
func (p *plan) fairKey() string {
	if p.key != "" {
		return p.key
	}
	return connFairKey(p.conn.ID)
}

func connFairKey(id int64) string { return "connection " + strconv.FormatInt(id, 10) }

// runMeta is the Meta of the connection's runs but their side and first
// sync.
func (p *plan) runMeta() scripting.Meta {
	return scripting.Meta{Connection: p.conn.Name, Key: p.fairKey(), Timeout: p.options.scriptTimeout()}
}

// planByID loads a connection and its plan.
func (e *Engine) planByID(ctx context.Context, id int64) (*plan, error) {
	c, err := e.st.GetConnection(ctx, id)
	if err != nil {
		return nil, err
	}
	return e.planFor(ctx, c)
}
