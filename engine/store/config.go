package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/duplexsync/duplex/internal/plural"
)

// CreateSystem inserts a system; its ID is set on return.
func (s *Store) CreateSystem(ctx context.Context, sys *System) error {
	if sys.Settings == "" {
		sys.Settings = "{}"
	}
	if sys.TeamID == 0 {
		sys.TeamID = DefaultTeamID
	}
	return wrap("create system", s.q(ctx).Create(sys).Error)
}

// UpdateSystem saves name, settings, secrets and poll interval (not the cursor,
// which only the poller moves).
func (s *Store) UpdateSystem(ctx context.Context, sys *System) error {
	res := s.q(ctx).Model(&System{}).Where("id = ?", sys.ID).Updates(map[string]any{
		"name": sys.Name, "settings": sys.Settings, "secrets": sys.Secrets,
		"poll_interval_ms": sys.PollIntervalMS, "rate_per_second": sys.RatePerSecond, "rate_burst": sys.RateBurst,
		"updated_at": s.now(),
	})
	if res.Error == nil && res.RowsAffected == 0 {
		return fmt.Errorf("update system %d: %w", sys.ID, ErrNotFound)
	}
	return wrap("update system", res.Error)
}

// GetSystem reads one system.
func (s *Store) GetSystem(ctx context.Context, id int64) (System, error) {
	var sys System
	err := s.q(ctx).First(&sys, id).Error
	return sys, wrap(fmt.Sprintf("system %d", id), err)
}

// ListSystems returns all systems by id.
func (s *Store) ListSystems(ctx context.Context) ([]System, error) {
	var out []System
	return out, wrap("list systems", s.q(ctx).Order("id").Find(&out).Error)
}

// DeleteSystem removes a system that no connection uses.
func (s *Store) DeleteSystem(ctx context.Context, id int64) error {
	var n int64
	if err := s.q(ctx).Model(&Connection{}).Where("system_a_id = ? OR system_b_id = ?", id, id).Count(&n).Error; err != nil {
		return wrap("delete system", err)
	}
	if n > 0 {
		return fmt.Errorf("delete system %d: used by %s: %w", id, plural.Of(n, "connection"), ErrConflict)
	}
	res := s.q(ctx).Delete(&System{}, id)
	if res.Error == nil && res.RowsAffected == 0 {
		return fmt.Errorf("delete system %d: %w", id, ErrNotFound)
	}
	return wrap("delete system", res.Error)
}

// SetCursor stores a system's poll position.
func (s *Store) SetCursor(ctx context.Context, systemID int64, cursor string) error {
	return wrap("set cursor", s.q(ctx).Model(&System{}).Where("id = ?", systemID).
		Updates(map[string]any{"cursor": cursor, "updated_at": s.now()}).Error)
}

// CreateConnection inserts a connection and the first version of each given
// script (keyed by side and kind) in one transaction.
func (s *Store) CreateConnection(ctx context.Context, c *Connection, scripts map[Side]map[ScriptKind]string, author string) error {
	if c.TeamID == 0 {
		c.TeamID = DefaultTeamID
	}
	return s.Tx(ctx, func(tx *Store) error {
		if err := tx.q(ctx).Create(c).Error; err != nil {
			return wrap("create connection", err)
		}
		for _, side := range []Side{SideA, SideB} {
			for _, kind := range ScriptKinds {
				if _, err := tx.SaveScript(ctx, c.ID, side, kind, scripts[side][kind], author); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// GetConnection reads one connection.
func (s *Store) GetConnection(ctx context.Context, id int64) (Connection, error) {
	var c Connection
	err := s.q(ctx).First(&c, id).Error
	return c, wrap(fmt.Sprintf("connection %d", id), err)
}

// ListConnections returns all connections by id.
func (s *Store) ListConnections(ctx context.Context) ([]Connection, error) {
	var out []Connection
	return out, wrap("list connections", s.q(ctx).Order("id").Find(&out).Error)
}

// SetActive activates or pauses a connection. Activating also lifts a
// quarantine: it clears the reason and the count of limit hits, and starts
// a backfill of each side (one not already running), since a quarantined
// connection queued nothing of what changed meanwhile.
func (s *Store) SetActive(ctx context.Context, id int64, active bool) error {
	if !active {
		return s.setActive(ctx, id, map[string]any{"active": false, "updated_at": s.now()})
	}
	return s.Tx(ctx, func(tx *Store) error {
		c, err := tx.GetConnection(ctx, id)
		if err != nil {
			return err
		}
		if err := tx.setActive(ctx, id, map[string]any{"active": true, "updated_at": tx.now(),
			"paused_reason": "", "quarantined_at": nil, "limit_hits": 0, "limit_since": nil}); err != nil {
			return err
		}
		if c.PausedReason == "" {
			return nil
		}
		running, err := tx.ListBackfills(ctx, id)
		if err != nil {
			return err
		}
		for _, side := range []Side{SideA, SideB} {
			if !slices.ContainsFunc(running, func(b Backfill) bool { return b.Side == side && b.Status == "running" }) {
				if _, err := tx.StartBackfill(ctx, id, side); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func (s *Store) setActive(ctx context.Context, id int64, set map[string]any) error {
	res := s.q(ctx).Model(&Connection{}).Where("id = ?", id).Updates(set)
	if res.Error == nil && res.RowsAffected == 0 {
		return fmt.Errorf("connection %d: %w", id, ErrNotFound)
	}
	return wrap("set active", res.Error)
}

// SaveScript stores src as the next version of one script and returns it.
// Saving the same source as the current version is a no-op that returns it.
func (s *Store) SaveScript(ctx context.Context, connID int64, side Side, kind ScriptKind, src, author string) (ScriptVersion, error) {
	var out ScriptVersion
	err := s.Tx(ctx, func(tx *Store) error {
		var cur ScriptVersion
		err := tx.q(ctx).Where("connection_id = ? AND side = ? AND kind = ?", connID, side, kind).
			Order("version DESC").Limit(1).Find(&cur).Error
		if err != nil {
			return wrap("save script", err)
		}
		if cur.ID != 0 && cur.Source == src {
			out = cur
			return nil
		}
		out = ScriptVersion{ConnectionID: connID, Side: side, Kind: kind, Version: cur.Version + 1,
			Source: src, Author: author, CreatedAt: tx.now()}
		if err := tx.q(ctx).Create(&out).Error; err != nil {
			return wrap("save script", err)
		}
		return tx.q(ctx).Model(&Connection{}).Where("id = ?", connID).Update("updated_at", tx.now()).Error
	})
	return out, err
}

// CurrentScripts returns the latest version of every script of a connection.
func (s *Store) CurrentScripts(ctx context.Context, connID int64) (map[Side]map[ScriptKind]ScriptVersion, error) {
	var rows []ScriptVersion
	err := s.q(ctx).Raw(`SELECT * FROM script_versions v WHERE connection_id = ? AND version =
		(SELECT MAX(version) FROM script_versions w
		 WHERE w.connection_id = v.connection_id AND w.side = v.side AND w.kind = v.kind)`, connID).
		Scan(&rows).Error
	if err != nil {
		return nil, wrap("current scripts", err)
	}
	out := map[Side]map[ScriptKind]ScriptVersion{SideA: {}, SideB: {}}
	for _, r := range rows {
		if r.Kind == KindRules {
			continue // CurrentRules
		}
		out[r.Side][r.Kind] = r
	}
	return out, nil
}

// CurrentRules returns the latest rules version of each side of a
// connection (a side without rules is missing from the map).
func (s *Store) CurrentRules(ctx context.Context, connID int64) (map[Side]ScriptVersion, error) {
	var rows []ScriptVersion
	err := s.q(ctx).Raw(`SELECT * FROM script_versions v WHERE connection_id = ? AND kind = ? AND version =
		(SELECT MAX(version) FROM script_versions w
		 WHERE w.connection_id = v.connection_id AND w.side = v.side AND w.kind = v.kind)`, connID, KindRules).
		Scan(&rows).Error
	if err != nil {
		return nil, wrap("current rules", err)
	}
	out := map[Side]ScriptVersion{}
	for _, r := range rows {
		out[r.Side] = r
	}
	return out, nil
}

// ScriptHistory lists every version of one script, newest first.
func (s *Store) ScriptHistory(ctx context.Context, connID int64, side Side, kind ScriptKind) ([]ScriptVersion, error) {
	var out []ScriptVersion
	err := s.q(ctx).Where("connection_id = ? AND side = ? AND kind = ?", connID, side, kind).
		Order("version DESC").Find(&out).Error
	return out, wrap("script history", err)
}

// AddAudit appends an audit entry.
func (s *Store) AddAudit(ctx context.Context, e *AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	if err := s.fillAuditTeams(ctx, []*AuditEntry{e}); err != nil {
		return err
	}
	return wrap("audit", s.q(ctx).Create(e).Error)
}

// AddAudits appends several audit entries in one statement.
func (s *Store) AddAudits(ctx context.Context, es []AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	ptrs := make([]*AuditEntry, len(es))
	for i := range es {
		if es[i].At.IsZero() {
			es[i].At = s.now()
		}
		ptrs[i] = &es[i]
	}
	if err := s.fillAuditTeams(ctx, ptrs); err != nil {
		return err
	}
	return wrap("audit", s.q(ctx).CreateInBatches(es, 200).Error)
}

// fillAuditTeams sets the team of entries that name a connection but no
// team, with one query per batch, so team admins can read their entries.
func (s *Store) fillAuditTeams(ctx context.Context, es []*AuditEntry) error {
	var ids []int64
	for _, e := range es {
		if e.TeamID == nil && e.ConnectionID != nil {
			ids = append(ids, *e.ConnectionID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var rows []struct{ ID, TeamID int64 }
	if err := s.q(ctx).Model(&Connection{}).Select("id, team_id").Where("id IN ?", ids).Scan(&rows).Error; err != nil {
		return wrap("audit team", err)
	}
	team := make(map[int64]int64, len(rows))
	for _, r := range rows {
		team[r.ID] = r.TeamID
	}
	for _, e := range es {
		if e.TeamID == nil && e.ConnectionID != nil {
			if t, ok := team[*e.ConnectionID]; ok {
				e.TeamID = &t
			}
		}
	}
	return nil
}

// ListAudit returns the newest audit entries, optionally for one connection.
func (s *Store) ListAudit(ctx context.Context, connID int64, limit int) ([]AuditEntry, error) {
	return s.ListAuditFor(ctx, AuditFilter{ConnectionID: connID, Limit: limit})
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	ConnectionID int64
	Action       string
	Limit        int
	// Teams, when not nil, keeps entries of these teams (an empty, non-nil
	// list keeps none). Entries without a team are org-level: only a nil
	// Teams (an org admin) sees them.
	Teams []int64
}

// ListAuditFor returns the newest audit entries matching f.
func (s *Store) ListAuditFor(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	out := []AuditEntry{}
	q := s.q(ctx).Order("id DESC").Limit(f.Limit)
	if f.ConnectionID != 0 {
		q = q.Where("connection_id = ?", f.ConnectionID)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.Teams != nil {
		if len(f.Teams) == 0 {
			return out, nil
		}
		q = q.Where("team_id IN ?", f.Teams)
	}
	return out, wrap("list audit", q.Find(&out).Error)
}

// SetConflictPolicy stores a connection's conflict policy (JSON, validated by
// the caller).
func (s *Store) SetConflictPolicy(ctx context.Context, id int64, policy string) error {
	res := s.q(ctx).Model(&Connection{}).Where("id = ?", id).
		Updates(map[string]any{"conflict_policy": policy, "updated_at": s.now()})
	if res.Error == nil && res.RowsAffected == 0 {
		return fmt.Errorf("connection %d: %w", id, ErrNotFound)
	}
	return wrap("set conflict policy", res.Error)
}

// SetOptions stores a connection's lifecycle options (JSON, validated by the
// caller).
func (s *Store) SetOptions(ctx context.Context, id int64, options string) error {
	res := s.q(ctx).Model(&Connection{}).Where("id = ?", id).
		Updates(map[string]any{"options": options, "updated_at": s.now()})
	if res.Error == nil && res.RowsAffected == 0 {
		return fmt.Errorf("connection %d: %w", id, ErrNotFound)
	}
	return wrap("set options", res.Error)
}

// DeleteConnection removes a connection; its script versions, twins, sync
// events and backfills go with it (ON DELETE CASCADE). Audit entries stay.
func (s *Store) DeleteConnection(ctx context.Context, id int64) error {
	res := s.q(ctx).Delete(&Connection{}, id)
	if res.Error == nil && res.RowsAffected == 0 {
		return fmt.Errorf("delete connection %d: %w", id, ErrNotFound)
	}
	return wrap("delete connection", res.Error)
}

// SetConnectionTemplate records the built-in template name a connection
// follows.
func (s *Store) SetConnectionTemplate(ctx context.Context, id int64, template string) error {
	res := s.q(ctx).Model(&Connection{}).Where("id = ?", id).
		Updates(map[string]any{"template": template, "updated_at": s.now()})
	if res.Error == nil && res.RowsAffected == 0 {
		return fmt.Errorf("connection %d: %w", id, ErrNotFound)
	}
	return wrap("set connection template", res.Error)
}
