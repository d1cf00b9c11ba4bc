package confdir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/duplexsync/duplex/connectors/peerlink"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/service"
	"github.com/duplexsync/duplex/scripting"
)

// Actor is the audit actor of every change apply makes.
const Actor = "apply"

// Options steer MakePlan.
type Options struct {
	// Team limits the plan to teams/<Team>/ of the folder ("" = every team in it).
	Team string
	// Prune deletes connections, systems and secret names of the planned
	// teams that the folder does not have. Without it nothing is deleted.
	Prune bool
	// Secrets are values by system and secret name (the --secrets file);
	// they win over the environment.
	Secrets map[string]map[string]string
	// Getenv reads DUPLEX_SECRET_<SYSTEM>_<NAME>; nil means os.Getenv.
	Getenv func(string) string
}

// Change is one step of a plan. Every step is an operation of
// internal/service, which writes its audit entry (worded as the API's) in
// apply's transaction.
type Change struct {
	Sign   string // "+" create, "~" update, "-" delete
	Team   string
	What   string // "system desk: settings, poll_interval_ms"
	action string // the audit action the service records for it
	apply  func(ctx context.Context, tx *store.Store, ids *ids) error
}

// applier is who apply acts as in internal/service: the operator who runs
// it, with every team's rights (the folder decides, not a user's roles).
var applier = service.Caller{Actor: Actor, OrgAdmin: true}

// Plan is what apply would do: Problems must be empty for Apply to run.
type Plan struct {
	Changes  []Change
	Problems []Problem
	// Drafts are the changed scripts and rules of connections that exist,
	// per direction, for a dry run's impact preview (apply --dry-run).
	Drafts []Draft
	box    *secret.Box
	ids    ids
	dir    string // the folder, to print problems as paths a person can open
}

// ids resolves names to store ids, including rows created earlier in the
// same apply.
type ids struct {
	teams     map[string]int64
	systems   map[string]int64 // by team/name
	templates map[string]int64 // by team/name
}

// inTeam keys a system or connection by its team's name: names are unique
// per team (migration 00019), and a folder's connection names only its own
// team's systems, so another team's objects never match (issue 24).
func inTeam(team, name string) string { return team + "/" + name }

// SecretEnv is the environment variable holding a secret's value:
// DUPLEX_SECRET_<SYSTEM>_<NAME>, upper-case, anything not a letter or digit
// replaced by "_".
func SecretEnv(system, name string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
				return unicode.ToUpper(r)
			}
			return '_'
		}, s)
	}
	return "DUPLEX_SECRET_" + clean(system) + "_" + clean(name)
}

// MakePlan compares the folder with the store and lists the changes that
// would make the store match, and the problems that forbid applying them.
// It writes nothing.
func MakePlan(ctx context.Context, st *store.Store, box *secret.Box, f *Folder, opts Options) (*Plan, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	p := &Plan{box: box, ids: ids{teams: map[string]int64{}, systems: map[string]int64{}, templates: map[string]int64{}}, dir: f.Dir}
	teams, err := st.Identity().ListTeams(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	teamByID := map[int64]string{}
	for _, t := range teams {
		p.ids.teams[t.Name] = t.ID
		teamByID[t.ID] = t.Name
	}
	systems, err := st.ListSystems(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	conns, err := st.ListConnections(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	systems, conns = withoutPeerLinks(systems, conns)
	sysByName := map[string]store.System{} // by team/name
	sysNameByID := map[int64]string{}
	for _, s := range systems {
		sysByName[inTeam(teamByID[s.TeamID], s.Name)] = s
		sysNameByID[s.ID] = s.Name
		p.ids.systems[inTeam(teamByID[s.TeamID], s.Name)] = s.ID
	}
	connByName := map[string]store.Connection{} // by team/name
	for _, c := range conns {
		connByName[inTeam(teamByID[c.TeamID], c.Name)] = c
	}
	inFolder := map[string]bool{} // the folder's systems, by team/name
	for tn, t := range f.Teams {
		for n := range t.Systems {
			inFolder[inTeam(tn, n)] = true
		}
	}

	teamNames := sortedKeys(f.Teams)
	if opts.Team != "" {
		if f.Teams[opts.Team] == nil {
			return nil, fmt.Errorf("plan: the folder has no teams/%s/", opts.Team)
		}
		teamNames = []string{opts.Team}
	}
	ix, err := loadTemplateIndex(ctx, st, teamByID)
	if err != nil {
		return nil, err
	}
	for key, t := range ix.stored {
		p.ids.templates[key] = t.ID
	}
	planned := map[string]bool{}
	for _, tn := range teamNames {
		planned[tn] = true
		for name, ft := range f.Teams[tn].Templates {
			ix.folder[tn+"/"+name] = ft
		}
	}
	knownTeam := func(tn string) bool { return hasKey(p.ids.teams, tn) || planned[tn] }
	var creates, tplChanges, sysChanges, connChanges, deletes []Change
	for _, tn := range teamNames {
		t := f.Teams[tn]
		for _, name := range sortedKeys(t.Templates) {
			ch, probs, err := p.planTemplate(ctx, st, ix, tn, name, t.Templates[name], knownTeam)
			if err != nil {
				return nil, err
			}
			tplChanges = append(tplChanges, ch...)
			p.Problems = append(p.Problems, probs...)
		}
	}
	for _, tn := range teamNames {
		t := f.Teams[tn]
		if _, ok := p.ids.teams[tn]; !ok {
			creates = append(creates, Change{Sign: "+", Team: tn, What: "team " + tn, action: "team.create",
				apply: func(ctx context.Context, tx *store.Store, ids *ids) error {
					team, err := service.New(tx, nil, nil).CreateTeam(ctx, Actor, tn)
					if err != nil {
						return err
					}
					ids.teams[tn] = team.ID
					return nil
				}})
		}
		for _, name := range sortedKeys(t.Systems) {
			ch, probs := p.planSystem(tn, name, t.Systems[name], sysByName, opts, getenv)
			sysChanges = append(sysChanges, ch...)
			p.Problems = append(p.Problems, probs...)
		}
		for _, name := range sortedKeys(t.Connections) {
			cur, exists := connByName[inTeam(tn, name)]
			var scripts map[store.Side]map[store.ScriptKind]store.ScriptVersion
			var rules map[store.Side]store.ScriptVersion
			if exists {
				if scripts, err = st.CurrentScripts(ctx, cur.ID); err != nil {
					return nil, fmt.Errorf("plan: %w", err)
				}
				if rules, err = st.CurrentRules(ctx, cur.ID); err != nil {
					return nil, fmt.Errorf("plan: %w", err)
				}
			}
			ch, probs := planConnection(tn, name, t.Connections[name], cur, exists, scripts, rules, sysByName, inFolder, sysNameByID, ix, opts.Prune)
			connChanges = append(connChanges, ch...)
			if exists {
				p.Drafts = append(p.Drafts, drafts(tn, cur, t.Connections[name], scripts, rules)...)
			}
			p.Problems = append(p.Problems, probs...)
		}
		if !opts.Prune {
			continue
		}
		teamID, ok := p.ids.teams[tn]
		if !ok {
			continue // a new team has nothing to prune
		}
		var connDeletes, sysDeletes []Change
		for _, c := range conns {
			if c.TeamID != teamID || hasKey(t.Connections, c.Name) {
				continue
			}
			conn := c
			connDeletes = append(connDeletes, Change{Sign: "-", Team: tn, What: "connection " + conn.Name, action: "connection.delete",
				apply: func(ctx context.Context, tx *store.Store, _ *ids) error {
					return service.New(tx, nil, nil).DeleteConnection(ctx, Actor, conn)
				}})
		}
		for _, s := range systems {
			if s.TeamID != teamID || hasKey(t.Systems, s.Name) {
				continue
			}
			sys := s
			sysDeletes = append(sysDeletes, Change{Sign: "-", Team: tn, What: "system " + sys.Name, action: "system.delete",
				apply: func(ctx context.Context, tx *store.Store, _ *ids) error {
					return service.New(tx, nil, nil).DeleteSystem(ctx, Actor, sys)
				}})
		}
		// Connections go before the systems they use.
		deletes = append(deletes, connDeletes...)
		deletes = append(deletes, sysDeletes...)
	}
	// Templates after every new team (sharing names teams), before the
	// connections that link to them.
	p.Changes = slices.Concat(creates, tplChanges, sysChanges, connChanges, deletes)
	return p, nil
}

func (p *Plan) planSystem(team, name string, fs System, existing map[string]store.System,
	opts Options, getenv func(string) string) ([]Change, []Problem) {
	rel := systemPath(team, name)
	var probs []Problem
	settings, err := compactJSON(fs.Settings)
	if err != nil {
		return nil, []Problem{{File: rel, Msg: fmt.Sprintf("settings: %v", err)}}
	}
	given := map[string]string{}
	for _, n := range fs.Secrets {
		if v, ok := opts.Secrets[inTeam(team, name)][n]; ok { // two teams' systems of one name
			given[n] = v
		} else if v, ok := opts.Secrets[name][n]; ok {
			given[n] = v
		} else if v := getenv(SecretEnv(name, n)); v != "" {
			given[n] = v
		}
	}
	cur, exists := existing[inTeam(team, name)]
	if !exists {
		for _, n := range fs.Secrets {
			if _, ok := given[n]; !ok {
				probs = append(probs, Problem{File: rel, Msg: fmt.Sprintf("secret %q needed: set %s or give it in --secrets", n, SecretEnv(name, n))})
			}
		}
		if len(probs) > 0 {
			return nil, probs
		}
		sys := store.System{Name: name, Kind: fs.Kind, Settings: settings, PollIntervalMS: fs.PollIntervalMS,
			RatePerSecond: fs.RatePerSecond, RateBurst: fs.RateBurst}
		return []Change{{Sign: "+", Team: team, What: fmt.Sprintf("system %s (%s, secrets: %s)", name, fs.Kind, listOrNone(fs.Secrets)),
			action: "system.create",
			apply: func(ctx context.Context, tx *store.Store, ids *ids) error {
				sealed, err := p.box.SealMap(given)
				if err != nil {
					return err
				}
				s := sys
				s.Secrets, s.TeamID = sealed, ids.teams[team]
				if err := service.New(tx, nil, nil).CreateSystem(ctx, Actor, &s, slices.Sorted(maps.Keys(given))); err != nil {
					return err
				}
				ids.systems[inTeam(team, name)] = s.ID
				return nil
			}}}, nil
	}
	if cur.Kind != fs.Kind {
		probs = append(probs, Problem{File: rel, Msg: fmt.Sprintf("kind is %q in the store; a system's kind cannot change (make a new system)", cur.Kind)})
	}
	stored, err := p.box.OpenMap(cur.Secrets)
	if err != nil {
		return nil, append(probs, Problem{File: rel, Msg: fmt.Sprintf("stored secrets: %v", err)})
	}
	want := maps.Clone(stored)
	var set, removed []string
	for _, n := range fs.Secrets {
		v, ok := given[n]
		switch {
		case ok && stored[n] != v:
			want[n] = v
			set = append(set, n)
		case !ok && !hasKey(stored, n):
			probs = append(probs, Problem{File: rel, Msg: fmt.Sprintf("secret %q needed: set %s or give it in --secrets", n, SecretEnv(name, n))})
		}
	}
	if opts.Prune {
		listed := map[string]bool{}
		for _, n := range fs.Secrets {
			listed[n] = true
		}
		for _, n := range sortedKeys(stored) {
			if !listed[n] {
				delete(want, n)
				removed = append(removed, n)
			}
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	curSettings, err := compactJSON([]byte(cur.Settings))
	if err != nil {
		curSettings = cur.Settings // not JSON in the store: any folder value differs
	}
	var fields, secretChanges []string
	if curSettings != settings {
		fields = append(fields, "settings")
	}
	if cur.PollIntervalMS != fs.PollIntervalMS {
		fields = append(fields, fmt.Sprintf("poll_interval_ms %d → %d", cur.PollIntervalMS, fs.PollIntervalMS))
	}
	if cur.RatePerSecond != fs.RatePerSecond {
		fields = append(fields, fmt.Sprintf("rate_per_second %g → %g", cur.RatePerSecond, fs.RatePerSecond))
	}
	if cur.RateBurst != fs.RateBurst {
		fields = append(fields, fmt.Sprintf("rate_burst %d → %d", cur.RateBurst, fs.RateBurst))
	}
	for _, n := range set {
		secretChanges = append(secretChanges, fmt.Sprintf("secret %q (new value)", n))
	}
	for _, n := range removed {
		secretChanges = append(secretChanges, fmt.Sprintf("secret %q removed", n))
	}
	fields = append(fields, secretChanges...)
	if len(fields) == 0 {
		return nil, nil
	}
	id := cur.ID
	secretsChanged := len(set)+len(removed) > 0
	return []Change{{Sign: "~", Team: team, What: "system " + name + ": " + strings.Join(fields, ", "), action: "system.update",
		apply: func(ctx context.Context, tx *store.Store, _ *ids) error {
			// Read inside the transaction: only the fields the folder holds change.
			before, err := tx.GetSystem(ctx, id)
			if err != nil {
				return err
			}
			s := before
			s.Settings, s.PollIntervalMS, s.RatePerSecond, s.RateBurst = settings, fs.PollIntervalMS, fs.RatePerSecond, fs.RateBurst
			var names []string
			if secretsChanged {
				if s.Secrets, err = p.box.SealMap(want); err != nil {
					return err
				}
				names = slices.Sorted(maps.Keys(want))
			}
			_, err = service.New(tx, nil, nil).UpdateSystem(ctx, Actor, before, s, names, secretChanges)
			return err
		}}}, nil
}

func planConnection(team, name string, fc Connection, cur store.Connection, exists bool,
	scripts map[store.Side]map[store.ScriptKind]store.ScriptVersion, rules map[store.Side]store.ScriptVersion, sysByName map[string]store.System,
	inFolder map[string]bool, sysNameByID map[int64]string, ix *templateIndex, prune bool) ([]Change, []Problem) {
	rel := connectionDir(team, name)
	var probs []Problem
	for _, sn := range []string{fc.SystemA, fc.SystemB} {
		if _, ok := sysByName[inTeam(team, sn)]; !ok && !inFolder[inTeam(team, sn)] {
			probs = append(probs, Problem{File: rel + "/connection.json", Msg: fmt.Sprintf("system %q is neither in teams/%s/systems/ nor a system of team %q in the store", sn, team, team)})
		}
	}
	policy, err := compactJSON(fc.ConflictPolicy)
	if err == nil && policy != "" {
		_, err = engine.ParsePolicy(policy)
	}
	if err != nil {
		probs = append(probs, Problem{File: rel + "/connection.json", Msg: fmt.Sprintf("conflict_policy: %v", err)})
	}
	options, err := compactJSON(fc.Options)
	if err == nil && options != "" {
		var o engine.Lifecycle
		if o, err = engine.ParseLifecycle(options); err == nil {
			err = engine.CheckLifecycle(o)
		}
	}
	if err != nil {
		probs = append(probs, Problem{File: rel + "/connection.json", Msg: fmt.Sprintf("options: %v", err)})
	}
	probs = append(probs, checkScripts(rel, fc.Scripts)...)
	probs = append(probs, checkRules(rel, fc)...)
	link := fc.TeamTemplate
	var linkParams string
	if link != nil {
		if pr := ix.checkLink(rel, team, link); pr != nil {
			probs = append(probs, *pr)
		}
		linkParams, _ = compactJSON(link.Params)
	}
	if exists {
		if sysNameByID[cur.SystemAID] != fc.SystemA || sysNameByID[cur.SystemBID] != fc.SystemB {
			probs = append(probs, Problem{File: rel + "/connection.json", Msg: fmt.Sprintf("connection joins %s ⇄ %s in the store; its systems cannot change (make a new connection)",
				sysNameByID[cur.SystemAID], sysNameByID[cur.SystemBID])})
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	if !exists {
		state := "paused"
		if fc.Active {
			state = "active"
		}
		// Rules are saved with the connection, as version 1 of each side
		// that has any (like its scripts, in the one audit entry).
		var withRules string
		for _, side := range Sides {
			if n := len(fc.Rules[side]); n > 0 {
				withRules += fmt.Sprintf(", %s %s", RulesFile(side), countRules(n))
			}
		}
		if link != nil {
			withRules += ", team template " + link.String()
		}
		return []Change{{Sign: "+", Team: team, What: fmt.Sprintf("connection %s (%s ⇄ %s, %s%s)", name, fc.SystemA, fc.SystemB, state, withRules),
			action: "connection.create",
			apply: func(ctx context.Context, tx *store.Store, ids *ids) error {
				// The API's create: the systems must be the team's, a linked
				// team template one the team sees, and the audit entry is
				// written with the rows.
				nc := service.NewConnection{Name: name,
					SystemAID: ids.systems[inTeam(team, fc.SystemA)], SystemBID: ids.systems[inTeam(team, fc.SystemB)], Active: fc.Active,
					Template: fc.Template, TeamID: ids.teams[team], ConflictPolicy: policy, Options: options,
					Scripts: fc.Scripts, Rules: fc.Rules,
					Detail: fmt.Sprintf("connection %q (%s ⇄ %s, template %q%s)", name, fc.SystemA, fc.SystemB, fc.Template, withRules)}
				if link != nil {
					nc.TemplateID, nc.TemplateVersion, nc.TemplateParamsJSON = ids.templates[link.key()], link.Version, &linkParams
				}
				_, err := service.New(tx, nil, nil).CreateConnection(ctx, Actor, nc)
				return err
			}}}, nil
	}
	id := cur.ID
	var out []Change
	// Each change goes through internal/service, which audits it as the
	// API does, in the same transaction.
	viaService := func(what, action string, fn func(ctx context.Context, svc *service.Service, ids *ids) error) {
		out = append(out, Change{Sign: "~", Team: team, What: "connection " + name + ": " + what, action: action,
			apply: func(ctx context.Context, tx *store.Store, ids *ids) error {
				return fn(ctx, service.New(tx, nil, nil), ids)
			}})
	}
	for _, side := range Sides {
		for _, kind := range store.ScriptKinds {
			src := fc.Scripts[side][kind]
			if scripts[side][kind].Source == src {
				continue
			}
			side, kind := side, kind
			viaService("new version of "+ScriptFile(side, kind), "script.save", func(ctx context.Context, svc *service.Service, _ *ids) error {
				_, err := svc.SaveScript(ctx, Actor, cur, side, kind, src)
				return err
			})
		}
	}
	for _, side := range Sides {
		stored, ok := rules[side]
		if sameRules(stored, ok, fc.Rules[side]) {
			continue
		}
		side, list := side, fc.Rules[side]
		what := fmt.Sprintf("new version of %s (%s)", RulesFile(side), countRules(len(list)))
		viaService(what, "rules.save", func(ctx context.Context, svc *service.Service, _ *ids) error {
			_, err := svc.SaveRules(ctx, Actor, cur, side, list)
			return err
		})
	}
	if curPolicy, _ := compactJSON([]byte(cur.ConflictPolicy)); curPolicy != policy {
		viaService("conflict_policy "+orNone(policy), "connection.conflict_policy", func(ctx context.Context, svc *service.Service, _ *ids) error {
			return svc.SetPolicy(ctx, Actor, id, policy)
		})
	}
	if curOptions, _ := compactJSON([]byte(cur.Options)); curOptions != options {
		viaService("options "+orNone(options), "connection.options", func(ctx context.Context, svc *service.Service, _ *ids) error {
			return svc.SetOptions(ctx, Actor, id, options)
		})
	}
	// What the connection follows: the built-in template's name and the
	// team template link. Without --prune a folder that has no link (one
	// exported before links travelled) keeps the store's: removing it would
	// lose the upgrade path.
	var linkChanges []string
	if cur.Template != fc.Template {
		linkChanges = append(linkChanges, fmt.Sprintf("template %q → %q", cur.Template, fc.Template))
	}
	stored := ix.storedLink(cur)
	relink := !sameLink(stored, link) && (link != nil || prune)
	if relink {
		linkChanges = append(linkChanges, fmt.Sprintf("team template %s → %s", linkText(stored), linkText(link)))
	}
	for _, what := range linkChanges {
		// Each change sets the whole of what the folder wants followed, so
		// their order does not matter; the service writes what differs.
		viaService(what, "connection.template", func(ctx context.Context, svc *service.Service, ids *ids) error {
			l := service.TemplateLink{Template: fc.Template, TemplateID: cur.TemplateID, Version: cur.TemplateVersion, Params: cur.TemplateParams,
				Detail: fmt.Sprintf("connection %q: %s", name, what)}
			if relink {
				l.TemplateID, l.Version, l.Params = 0, 0, linkParams
				if link != nil {
					l.TemplateID, l.Version = ids.templates[link.key()], link.Version
				}
			}
			return svc.SetTemplateLink(ctx, Actor, cur, l)
		})
	}
	if cur.Active != fc.Active {
		what, action := "pause", "connection.pause"
		if fc.Active {
			what, action = "activate", "connection.activate"
		}
		viaService(what, action, func(ctx context.Context, svc *service.Service, _ *ids) error {
			return svc.SetActive(ctx, Actor, id, fc.Active)
		})
	}
	return out, nil
}

// compileDeadline is the server's for a compile: a folder's script that
// takes longer is refused here, not stored for a server that would refuse
// it at every plan load. Tests shorten it.
var compileDeadline = scripting.DefaultCompileDeadline

// checkScripts compiles a connection's scripts and triggers offline.
func checkScripts(rel string, src map[store.Side]map[store.ScriptKind]string) []Problem {
	var probs []Problem
	for _, side := range Sides {
		for _, kind := range store.ScriptKinds {
			file := ScriptFile(side, kind)
			var err error
			if kind == store.KindTrigger {
				err = scripting.CheckTrigger(src[side][kind])
			} else {
				_, err = scripting.CompileWithin(file, scripting.Kind(kind), src[side][kind], compileDeadline)
			}
			if err != nil {
				probs = append(probs, scriptProblem(rel+"/"+file, err))
			}
		}
	}
	return probs
}

func scriptProblem(file string, err error) Problem {
	var se *scripting.Error
	if errors.As(err, &se) {
		return Problem{File: file, Line: se.Line, Column: se.Column, Msg: se.Message}
	}
	return Problem{File: file, Msg: err.Error()}
}

// Print writes the plan for a person: one line per change, then problems.
func (p *Plan) Print(w io.Writer) {
	for _, c := range p.Changes {
		fmt.Fprintf(w, "%s [%s] %s\n", c.Sign, c.Team, c.What)
	}
	for _, pr := range p.Problems {
		if pr.File != "" && p.dir != "" {
			pr.File = filepath.Join(p.dir, pr.File)
		}
		fmt.Fprintf(w, "! %s\n", pr)
	}
	switch {
	case len(p.Problems) > 0:
		fmt.Fprintf(w, "%d problem(s); nothing applied\n", len(p.Problems))
	case len(p.Changes) == 0:
		fmt.Fprintln(w, "no changes")
	default:
		fmt.Fprintf(w, "%d change(s)\n", len(p.Changes))
	}
}

// ErrProblems is returned by Apply when the plan has problems.
var ErrProblems = errors.New("the plan has problems")

// Apply makes every change of the plan in one transaction, each through
// internal/service with its audit entry; on any error nothing is kept.
func (p *Plan) Apply(ctx context.Context, st *store.Store) error {
	if len(p.Problems) > 0 {
		return fmt.Errorf("apply: %w (%d)", ErrProblems, len(p.Problems))
	}
	if len(p.Changes) == 0 {
		return nil
	}
	err := st.Tx(ctx, func(tx *store.Store) error {
		ids := ids{teams: maps.Clone(p.ids.teams), systems: maps.Clone(p.ids.systems), templates: maps.Clone(p.ids.templates)}
		for _, c := range p.Changes {
			if err := c.apply(ctx, tx, &ids); err != nil {
				return fmt.Errorf("%s %s: %w", c.Sign, c.What, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func countRules(n int) string {
	if n == 1 {
		return "1 rule"
	}
	return fmt.Sprintf("%d rules", n)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Draft is what a plan changes in one direction of a connection that
// exists: the new trigger and outgoing script of its source side, incoming
// script and rules of its target side (nil: unchanged).
type Draft struct {
	Team         string
	Connection   string
	ConnectionID int64
	Direction    store.Direction
	Draft        engine.ImpactDraft
}

// drafts are a connection's changed scripts and rules by direction.
func drafts(team string, cur store.Connection, fc Connection, scripts map[store.Side]map[store.ScriptKind]store.ScriptVersion, rules map[store.Side]store.ScriptVersion) []Draft {
	changed := func(side store.Side, kind store.ScriptKind) *string {
		src := fc.Scripts[side][kind]
		if scripts[side][kind].Source == src {
			return nil
		}
		return &src
	}
	var out []Draft
	for _, d := range []store.Direction{store.AToB, store.BToA} {
		src := d.Source()
		dst := store.SideB
		if src == store.SideB {
			dst = store.SideA
		}
		dr := engine.ImpactDraft{Trigger: changed(src, store.KindTrigger), Outgoing: changed(src, store.KindOutgoing), Incoming: changed(dst, store.KindIncoming)}
		if stored, ok := rules[dst]; !sameRules(stored, ok, fc.Rules[dst]) {
			list := append([]scripting.Rule{}, fc.Rules[dst]...)
			for i := range list {
				if list[i].Kind == "" && list[i].Expr != "" {
					list[i].Kind = "expr"
				}
			}
			if doc, err := json.Marshal(list); err == nil { // a list of plain values: never fails
				s := string(doc)
				dr.Rules = &s
			}
		}
		if dr.Trigger == nil && dr.Outgoing == nil && dr.Incoming == nil && dr.Rules == nil {
			continue
		}
		out = append(out, Draft{Team: team, Connection: cur.Name, ConnectionID: cur.ID, Direction: d, Draft: dr})
	}
	return out
}

// withoutPeerLinks leaves out peer links' stand-in systems and their
// connections (docs/peers.md): they are made by an invitation, not by a
// folder, so export does not write them and apply (even with --prune)
// neither changes nor deletes them.
func withoutPeerLinks(systems []store.System, conns []store.Connection) ([]store.System, []store.Connection) {
	peer := map[int64]bool{}
	keptSys := systems[:0:0]
	for _, s := range systems {
		if s.Kind == peerlink.Kind {
			peer[s.ID] = true
			continue
		}
		keptSys = append(keptSys, s)
	}
	keptConns := conns[:0:0]
	for _, c := range conns {
		if !peer[c.SystemAID] && !peer[c.SystemBID] {
			keptConns = append(keptConns, c)
		}
	}
	return keptSys, keptConns
}
