package service

import (
	"context"
	"fmt"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/plural"
	"github.com/duplexsync/duplex/scripts/mapping"
)

// MappingSaved is what SaveMapping saved: the three scripts' versions.
type MappingSaved struct {
	Trigger  store.ScriptVersion `json:"trigger"`
	Outgoing store.ScriptVersion `json:"outgoing"`
	Incoming store.ScriptVersion `json:"incoming"`
}

// Mapping reads a direction's current trigger, outgoing and incoming
// scripts as a mapping; a direction written as code is a
// *mapping.NotMapping with the reason.
func (s *Service) Mapping(ctx context.Context, conn store.Connection, d store.Direction) (mapping.Mapping, error) {
	cur, err := s.st.CurrentScripts(ctx, conn.ID)
	if err != nil {
		return mapping.Mapping{}, err
	}
	src, dst := d.Source(), other(d.Source())
	return mapping.Parse(cur[src][store.KindOutgoing].Source, cur[dst][store.KindIncoming].Source, cur[src][store.KindTrigger].Source)
}

// SaveMapping renders m and saves the direction's trigger (its source
// side's), outgoing and incoming scripts as their next versions, with one
// audit entry, in one transaction: a mapping is saved whole or not at all.
// A script the mapping leaves as it was gets no new version.
func (s *Service) SaveMapping(ctx context.Context, actor string, conn store.Connection, d store.Direction, m mapping.Mapping) (MappingSaved, error) {
	out, err := mapping.Render(m)
	if err != nil {
		return MappingSaved{}, err
	}
	src, dst := d.Source(), other(d.Source())
	// Compiled as the engine will, before anything is written; a trigger is
	// checked against the source system's fields.
	for _, c := range []struct {
		side store.Side
		kind store.ScriptKind
		code string
	}{{src, store.KindTrigger, out.Trigger}, {src, store.KindOutgoing, out.Outgoing}, {dst, store.KindIncoming, out.Incoming}} {
		if err := s.CheckScript(ctx, conn, c.side, c.kind, c.code); err != nil {
			return MappingSaved{}, err
		}
	}
	var saved MappingSaved
	_, err = s.change(ctx, actor, "mapping.save", func(tx *store.Store) (int64, string, error) {
		var err error
		if saved.Trigger, err = tx.SaveScript(ctx, conn.ID, src, store.KindTrigger, out.Trigger, actor); err != nil {
			return 0, "", err
		}
		if saved.Outgoing, err = tx.SaveScript(ctx, conn.ID, src, store.KindOutgoing, out.Outgoing, actor); err != nil {
			return 0, "", err
		}
		if saved.Incoming, err = tx.SaveScript(ctx, conn.ID, dst, store.KindIncoming, out.Incoming, actor); err != nil {
			return 0, "", err
		}
		return conn.ID, fmt.Sprintf("%s mapping (%s): %s.trigger version %d, %s.outgoing version %d, %s.incoming version %d",
			d, plural.Of(int64(len(m.Rows)), "row"), src, saved.Trigger.Version, src, saved.Outgoing.Version, dst, saved.Incoming.Version), nil
	})
	return saved, err
}

func other(s store.Side) store.Side {
	if s == store.SideA {
		return store.SideB
	}
	return store.SideA
}
