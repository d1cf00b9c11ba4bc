package confdir

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
)

// Validate checks a folder without a store: JSON files, references between
// them, conflict policies and options, every script and trigger (triggers
// without a schema: see scripting.CheckTrigger), every side's validation
// rules (compiled; whether a unique rule's target connector can look
// entities up needs the live system and is not checked), and the fixtures
// of every templates/<name>/ folder, and every system's kind, settings and
// secret names against kinds (nil: not checked). err is for I/O failures
// only.
func Validate(ctx context.Context, dir string, kinds KindChecker) ([]Problem, error) {
	f, probs, err := Read(dir)
	if err != nil {
		return nil, err
	}
	probs = append(probs, CheckSystems(f, kinds)...)
	known := map[string]bool{} // by team/name: a connection joins its own team's systems
	for tn, t := range f.Teams {
		for n := range t.Systems {
			known[inTeam(tn, n)] = true
		}
	}
	for _, tn := range sortedKeys(f.Teams) {
		t := f.Teams[tn]
		for _, cn := range sortedKeys(t.Connections) {
			c := t.Connections[cn]
			rel := connectionDir(tn, cn)
			for _, sn := range []string{c.SystemA, c.SystemB} {
				if sn != "" && !known[inTeam(tn, sn)] {
					probs = append(probs, Problem{File: rel + "/connection.json", Msg: fmt.Sprintf("system %q is not in teams/%s/systems/", sn, tn)})
				}
			}
			if pol, err := compactJSON(c.ConflictPolicy); err != nil {
				probs = append(probs, Problem{File: rel + "/connection.json", Msg: fmt.Sprintf("conflict_policy: %v", err)})
			} else if _, err := engine.ParsePolicy(pol); err != nil {
				probs = append(probs, Problem{File: rel + "/connection.json", Msg: err.Error()})
			}
			if opt, err := compactJSON(c.Options); err != nil {
				probs = append(probs, Problem{File: rel + "/connection.json", Msg: fmt.Sprintf("options: %v", err)})
			} else if o, err := engine.ParseLifecycle(opt); err != nil {
				probs = append(probs, Problem{File: rel + "/connection.json", Msg: err.Error()})
			} else if err := engine.CheckLifecycle(o); err != nil {
				probs = append(probs, Problem{File: rel + "/connection.json", Msg: err.Error()})
			}
			probs = append(probs, checkScripts(rel, c.Scripts)...)
			probs = append(probs, checkRules(rel, c)...)
			// A link to a template of the folder must name a version it has;
			// one to a template elsewhere can only be checked by apply.
			if l := c.TeamTemplate; l != nil {
				if ot := f.Teams[l.Team]; ot != nil {
					if ft, ok := ot.Templates[l.Name]; ok && (l.Version < 1 || l.Version > len(ft.Versions)) {
						probs = append(probs, Problem{File: rel + "/connection.json",
							Msg: fmt.Sprintf("team_template %s: %s has %s", l, templateDir(l.Team, l.Name), countVersions(len(ft.Versions)))})
					}
				}
			}
		}
	}
	runner := scripting.NewRunner(scripting.Options{})
	for _, name := range f.Templates {
		rel := filepath.ToSlash(filepath.Join("templates", name))
		tplProbs, err := checkTemplate(ctx, runner, filepath.Join(dir, "templates", name), rel)
		if err != nil {
			return nil, err
		}
		probs = append(probs, tplProbs...)
	}
	return probs, nil
}

func checkTemplate(ctx context.Context, runner *scripting.Runner, dir, rel string) ([]Problem, error) {
	tpl, err := scripts.LoadDir(dir)
	if err != nil {
		return []Problem{{File: rel, Msg: err.Error()}}, nil
	}
	src, err := tpl.Render(nil)
	if err != nil {
		return []Problem{{File: rel, Msg: err.Error()}}, nil
	}
	bySide := map[store.Side]map[store.ScriptKind]string{}
	for _, side := range Sides {
		bySide[side] = map[store.ScriptKind]string{}
		for _, kind := range store.ScriptKinds {
			bySide[side][kind] = src[string(side)][string(kind)]
		}
	}
	// Positions are in the rendered source; parameters rarely span lines.
	if probs := checkScripts(rel, bySide); len(probs) > 0 {
		return probs, nil
	}
	results, err := RunFixtures(ctx, runner, dir)
	if err != nil {
		return []Problem{{File: rel, Msg: err.Error()}}, nil
	}
	var probs []Problem
	for _, r := range results {
		for _, d := range r.Diffs {
			probs = append(probs, Problem{File: rel + "/testdata/" + r.Name, Msg: d})
		}
	}
	return probs, nil
}

// FixtureResult is the outcome of one testdata/*.json case; no Diffs means
// it passed.
type FixtureResult struct {
	Template string
	Name     string
	Diffs    []string
}

// RunFixtures runs a template folder's testdata/*.json cases, sorted by
// name (`duplex script test` and `duplex validate`). A folder with no
// fixtures gives no results.
func RunFixtures(ctx context.Context, runner *scripting.Runner, dir string) ([]FixtureResult, error) {
	tpl, err := scripts.LoadDir(dir)
	if err != nil {
		return nil, err
	}
	src, err := tpl.Render(nil)
	if err != nil {
		return nil, err
	}
	fixtures, err := scripts.Fixtures(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(fixtures))
	for n := range fixtures {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]FixtureResult, 0, len(names))
	for _, name := range names {
		var fx engine.Fixture
		dec := json.NewDecoder(bytes.NewReader(fixtures[name]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fx); err != nil {
			return nil, fmt.Errorf("%s/testdata/%s: %w", dir, name, err)
		}
		diffs, err := engine.CheckFixture(ctx, runner, tpl.Name, src, fx)
		if err != nil {
			diffs = []string{err.Error()}
		}
		out = append(out, FixtureResult{Template: tpl.Name, Name: name, Diffs: diffs})
	}
	return out, nil
}
