package confdir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// ExportStats says what Export wrote, and which files of objects the store
// does not have it found in the folder: Removed with Prune, Stale without.
// Paths are relative to the folder.
type ExportStats struct {
	Teams, Systems, Connections, Templates int
	Removed, Stale                         []string
}

// ExportOptions steer Export.
type ExportOptions struct {
	// Team limits the export to one team ("" = every team).
	Team string
	// Prune removes the files of systems, connections and team templates
	// of the exported teams that the store does not have. Without it they
	// are kept and listed in ExportStats.Stale: an export from the wrong
	// store must not empty a config folder.
	Prune bool
}

// Export writes the store's teams (only opts.Team when not "") into dir:
// systems, connections (with their team template links) and the team
// templates each team owns, with every version. The box opens each system's
// secrets to learn their names; values are never written. Files of objects
// the store does not have are only removed with opts.Prune; everything else
// in dir is left alone. Exporting an unchanged store twice writes identical
// bytes.
func Export(ctx context.Context, st *store.Store, box *secret.Box, dir string, opts ExportOptions) (ExportStats, error) {
	var stats ExportStats
	team := opts.Team
	teams, err := st.Identity().ListTeams(ctx)
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
	tpls, err := st.Templates().VisibleTemplates(ctx, nil, true)
	if err != nil {
		return stats, fmt.Errorf("export: %w", err)
	}
	systems, conns = withoutPeerLinks(systems, conns)
	sysName := make(map[int64]string, len(systems))
	for _, s := range systems {
		sysName[s.ID] = s.Name
	}
	teamName := map[int64]string{}
	for _, t := range teams {
		teamName[t.ID] = t.Name
	}
	tplByID := map[int64]store.TeamTemplate{}
	for _, t := range tpls {
		tplByID[t.ID] = t
	}
	var exported []store.Team
	for _, t := range teams {
		if team == "" || t.Name == team {
			exported = append(exported, t)
		}
	}
	if team != "" && len(exported) == 0 {
		return stats, fmt.Errorf("export: team %q: %w", team, store.ErrNotFound)
	}
	written := map[string]bool{} // object paths written, relative to dir
	for _, t := range exported {
		if err := checkName("team", t.Name); err != nil {
			return stats, fmt.Errorf("export: %w", err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "teams", t.Name), 0o755); err != nil {
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
			written[systemPath(t.Name, s.Name)] = true
			stats.Systems++
		}
		for _, c := range conns {
			if c.TeamID != t.ID {
				continue
			}
			link, err := linkOf(c, tplByID, teamName)
			if err != nil {
				return stats, fmt.Errorf("export: %w", err)
			}
			if err := exportConnection(ctx, st, dir, t.Name, c, sysName, link); err != nil {
				return stats, err
			}
			written[connectionDir(t.Name, c.Name)] = true
			stats.Connections++
		}
		names, err := exportTemplates(ctx, st, dir, t, tpls, teamName)
		if err != nil {
			return stats, err
		}
		for _, n := range names {
			written[templateDir(t.Name, n)] = true
		}
		stats.Templates += len(names)
	}
	// Folder teams the store lacks are only looked at for a whole export.
	check := []string{team}
	if team == "" {
		folderTeams, err := subdirs(filepath.Join(dir, "teams"))
		if err != nil {
			return stats, err
		}
		check = folderTeams
	}
	latest := map[string]int{}
	for _, t := range tpls {
		latest[templateDir(teamName[t.TeamID], t.Name)] = t.Latest
	}
	stale, err := staleFiles(dir, check, written, latest)
	if err != nil {
		return stats, err
	}
	if !opts.Prune {
		stats.Stale = stale
		return stats, nil
	}
	for _, rel := range stale {
		if err := os.RemoveAll(filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
			return stats, fmt.Errorf("export: %w", err)
		}
		stats.Removed = append(stats.Removed, rel)
	}
	return stats, nil
}

// staleFiles lists, for the given folder teams, the system files,
// connection and template folders, and template version folders that are
// not among the objects just written (written; latest is each written
// template's newest version by folder).
func staleFiles(dir string, teams []string, written map[string]bool, latest map[string]int) ([]string, error) {
	var out []string
	for _, tn := range teams {
		sysFiles, err := filepath.Glob(filepath.Join(dir, "teams", tn, "systems", "*.json"))
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		sort.Strings(sysFiles)
		for _, p := range sysFiles {
			if rel := systemPath(tn, strings.TrimSuffix(filepath.Base(p), ".json")); !written[rel] {
				out = append(out, rel)
			}
		}
		conns, err := subdirs(filepath.Join(dir, "teams", tn, "connections"))
		if err != nil {
			return nil, err
		}
		for _, cn := range conns {
			if rel := connectionDir(tn, cn); !written[rel] {
				out = append(out, rel)
			}
		}
		tpls, err := subdirs(filepath.Join(dir, "teams", tn, "templates"))
		if err != nil {
			return nil, err
		}
		for _, name := range tpls {
			rel := templateDir(tn, name)
			if !written[rel] {
				out = append(out, rel)
				continue
			}
			versions, err := subdirs(filepath.Join(dir, rel, "versions"))
			if err != nil {
				return nil, err
			}
			for _, v := range versions {
				if n, err := strconv.Atoi(v); err == nil && n > latest[rel] {
					out = append(out, rel+"/versions/"+v)
				}
			}
		}
	}
	return out, nil
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

func exportConnection(ctx context.Context, st *store.Store, dir, team string, c store.Connection, sysName map[int64]string, link *TemplateLink) error {
	if err := checkName("connection", c.Name); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	out := Connection{SystemA: sysName[c.SystemAID], SystemB: sysName[c.SystemBID], Active: c.Active, Template: c.Template, TeamTemplate: link}
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
			// This connection's own file from an earlier export: it has no rules now.
			if err := removeIfExists(filepath.Join(cdir, RulesFile(side))); err != nil {
				return err
			}
			continue
		}
		list, err := scripting.ParseRules(v.Source)
		if err != nil {
			return fmt.Errorf("export connection %q: side %s rules version %d: %w", c.Name, side, v.Version, err)
		}
		if len(list) == 0 {
			// A side whose rules were all removed has no file, like one that never had any.
			if err := removeIfExists(filepath.Join(cdir, RulesFile(side))); err != nil {
				return err
			}
			continue
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

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
