package confdir

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// ExportStats says what Export wrote.
type ExportStats struct {
	Teams, Systems, Connections int
}

// Export writes the store's teams (only team when not "") into dir. The
// box opens each system's secrets to learn their names; values are never
// written. The systems/ and connections/ folders of each exported team are
// replaced, so something deleted from the store disappears from the folder;
// everything else in dir is left alone. Exporting an unchanged store twice
// writes identical bytes.
func Export(ctx context.Context, st *store.Store, box *secret.Box, dir, team string) (ExportStats, error) {
	var stats ExportStats
	teams, err := st.ListTeams(ctx)
	if err != nil {
		return stats, fmt.Errorf("export: %w", err)
	}
	systems, err := st.ListSystems(ctx)
	if err != nil {
		return stats, fmt.Errorf("export: %w", err)
	}
	conns, err := st.ListConnections(ctx)
	if err != nil {
		return stats, fmt.Errorf("export: %w", err)
	}
	sysName := make(map[int64]string, len(systems))
	for _, s := range systems {
		sysName[s.ID] = s.Name
	}
	found := false
	for _, t := range teams {
		if team != "" && t.Name != team {
			continue
		}
		found = true
		if err := checkName("team", t.Name); err != nil {
			return stats, fmt.Errorf("export: %w", err)
		}
		base := filepath.Join(dir, "teams", t.Name)
		for _, sub := range []string{"systems", "connections"} {
			if err := os.RemoveAll(filepath.Join(base, sub)); err != nil {
				return stats, fmt.Errorf("export: %w", err)
			}
		}
		if err := os.MkdirAll(base, 0o755); err != nil {
			return stats, fmt.Errorf("export: %w", err)
		}
		stats.Teams++
		for _, s := range systems {
			if s.TeamID != t.ID {
				continue
			}
			if err := exportSystem(box, dir, t.Name, s); err != nil {
				return stats, err
			}
			stats.Systems++
		}
		for _, c := range conns {
			if c.TeamID != t.ID {
				continue
			}
			if err := exportConnection(ctx, st, dir, t.Name, c, sysName); err != nil {
				return stats, err
			}
			stats.Connections++
		}
	}
	if team != "" && !found {
		return stats, fmt.Errorf("export: team %q: %w", team, store.ErrNotFound)
	}
	return stats, nil
}

func exportSystem(box *secret.Box, dir, team string, s store.System) error {
	if err := checkName("system", s.Name); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	names := []string{}
	if len(s.Secrets) > 0 {
		m, err := box.OpenMap(s.Secrets)
		if err != nil {
			return fmt.Errorf("export system %q: secrets: %w", s.Name, err)
		}
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	settings := json.RawMessage(s.Settings)
	if s.Settings == "" {
		settings = json.RawMessage("{}")
	}
	out := System{Kind: s.Kind, Settings: settings, PollIntervalMS: s.PollIntervalMS,
		RatePerSecond: s.RatePerSecond, RateBurst: s.RateBurst, Secrets: names}
	return writeJSON(filepath.Join(dir, systemPath(team, s.Name)), out)
}

func exportConnection(ctx context.Context, st *store.Store, dir, team string, c store.Connection, sysName map[int64]string) error {
	if err := checkName("connection", c.Name); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	out := Connection{SystemA: sysName[c.SystemAID], SystemB: sysName[c.SystemBID], Active: c.Active, Template: c.Template}
	if c.ConflictPolicy != "" {
		out.ConflictPolicy = json.RawMessage(c.ConflictPolicy)
	}
	if c.Options != "" {
		out.Options = json.RawMessage(c.Options)
	}
	cdir := filepath.Join(dir, connectionDir(team, c.Name))
	if err := writeJSON(filepath.Join(cdir, "connection.json"), out); err != nil {
		return err
	}
	cur, err := st.CurrentScripts(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("export connection %q: %w", c.Name, err)
	}
	for _, side := range Sides {
		for _, kind := range store.ScriptKinds {
			// Every file is written, empty ones too, so the layout is the same for every connection.
			if err := writeFile(filepath.Join(cdir, ScriptFile(side, kind)), []byte(cur[side][kind].Source)); err != nil {
				return err
			}
		}
	}
	rules, err := st.CurrentRules(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("export connection %q: %w", c.Name, err)
	}
	for _, side := range Sides {
		v, ok := rules[side]
		if !ok {
			continue
		}
		list, err := scripting.ParseRules(v.Source)
		if err != nil {
			return fmt.Errorf("export connection %q: side %s rules version %d: %w", c.Name, side, v.Version, err)
		}
		if len(list) == 0 {
			continue // a side whose rules were all removed has no file, like one that never had any
		}
		normalizeRules(list)
		if err := writeJSON(filepath.Join(cdir, RulesFile(side)), list); err != nil {
			return err
		}
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := canonical(v)
	if err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	return writeFile(path, b)
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
