package confdir

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/service"
	"github.com/duplexsync/duplex/scripts"
)

// Team templates travel with the folder so that a connection made from one
// keeps its upgrade path in another store:
//
//	teams/<team>/templates/<name>/sharing.json      {"visibility": "shared", "teams": ["ops"]}
//	teams/<team>/templates/<name>/versions/<N>/     version N as a template folder (duplex template export)
//
// Every version is written, because version numbers are assigned in order
// by the store: a connection linked to version 2 needs versions 1 and 2 to
// exist, and template-status diffs against the latest. Authors, notes,
// times and fork origins are not carried (apply publishes as "apply").

// Sharing is sharing.json: who besides the owner team sees the template.
type Sharing struct {
	Visibility store.Visibility `json:"visibility"`
	// Teams are the team names a "shared" template is shared with.
	Teams []string `json:"teams,omitempty"`
}

// TeamTemplate is one teams/<team>/templates/<name>/ folder as read.
type TeamTemplate struct {
	Sharing Sharing
	// Versions[i] is version i+1.
	Versions []scripts.Body
}

// TemplateLink is connection.json's "team_template": the team template and
// version the connection's scripts were rendered from, and the parameter
// values used (what template-status and upgrade-template need).
type TemplateLink struct {
	Team    string          `json:"team"`
	Name    string          `json:"name"`
	Version int             `json:"version"`
	Params  json.RawMessage `json:"params,omitempty"`
}

func (l TemplateLink) key() string { return l.Team + "/" + l.Name }

func (l TemplateLink) String() string {
	return fmt.Sprintf("%s/%s version %d", l.Team, l.Name, l.Version)
}

func templateDir(team, name string) string {
	return filepath.ToSlash(filepath.Join("teams", team, "templates", name))
}

// readTeamTemplates reads teams/<team>/templates/.
func readTeamTemplates(dir, team string) (map[string]TeamTemplate, []Problem, error) {
	names, err := subdirs(filepath.Join(dir, "teams", team, "templates"))
	if err != nil {
		return nil, nil, err
	}
	out := map[string]TeamTemplate{}
	var probs []Problem
	for _, name := range names {
		rel := templateDir(team, name)
		if !scripts.ValidName(name) {
			probs = append(probs, Problem{File: rel, Msg: fmt.Sprintf("%q is not a template name (letters, digits, \".\", \"_\" and \"-\")", name)})
			continue
		}
		var t TeamTemplate
		if pr, err := decodeFile(filepath.Join(dir, rel, "sharing.json"), rel+"/sharing.json", &t.Sharing); err != nil {
			return nil, nil, err
		} else if pr != nil {
			probs = append(probs, *pr)
			continue
		}
		if pr := checkSharing(rel, t.Sharing); pr != nil {
			probs = append(probs, *pr)
			continue
		}
		vdirs, err := subdirs(filepath.Join(dir, rel, "versions"))
		if err != nil {
			return nil, nil, err
		}
		nums := make([]int, 0, len(vdirs))
		bad := false
		for _, v := range vdirs {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || strconv.Itoa(n) != v {
				probs = append(probs, Problem{File: rel + "/versions/" + v, Msg: "a version folder is named by its number (1, 2, …)"})
				bad = true
				continue
			}
			nums = append(nums, n)
		}
		sort.Ints(nums)
		for i, n := range nums {
			if n != i+1 {
				probs = append(probs, Problem{File: rel + "/versions", Msg: fmt.Sprintf("versions must be 1 to %d without gaps; %d is missing", len(nums), i+1)})
				bad = true
				break
			}
		}
		if len(nums) == 0 && !bad {
			probs = append(probs, Problem{File: rel + "/versions", Msg: "a template needs at least version 1"})
			continue
		}
		if bad {
			continue
		}
		for _, n := range nums {
			vrel := fmt.Sprintf("%s/versions/%d", rel, n)
			files, err := readTemplateFiles(filepath.Join(dir, vrel))
			if err != nil {
				return nil, nil, err
			}
			b, err := scripts.FromFiles(files)
			if err == nil {
				err = b.Validate() // what the service would refuse at apply
			}
			if err != nil {
				probs = append(probs, Problem{File: vrel, Msg: err.Error()})
				bad = true
				continue
			}
			t.Versions = append(t.Versions, b)
		}
		if !bad {
			out[name] = t
		}
	}
	return out, probs, nil
}

func checkSharing(rel string, s Sharing) *Problem {
	switch s.Visibility {
	case store.VisibilityShared:
		if len(s.Teams) == 0 {
			return &Problem{File: rel + "/sharing.json", Msg: "visibility shared needs teams"}
		}
	case store.VisibilityPrivate, store.VisibilityOrg:
		if len(s.Teams) != 0 {
			return &Problem{File: rel + "/sharing.json", Msg: "teams are only for visibility shared"}
		}
	default:
		return &Problem{File: rel + "/sharing.json", Msg: fmt.Sprintf("visibility must be private, shared or org, got %q", s.Visibility)}
	}
	return nil
}

// readTemplateFiles reads a template version folder by relative path;
// scripts.FromFiles refuses any file it does not know.
func readTemplateFiles(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	return files, nil
}

// exportTemplates writes the templates team owns and returns their names.
func exportTemplates(ctx context.Context, st *store.Store, dir string, team store.Team, all []store.TeamTemplate, teamName map[int64]string) ([]string, error) {
	var names []string
	for _, t := range all {
		if t.TeamID != team.ID {
			continue
		}
		if !scripts.ValidName(t.Name) {
			return nil, fmt.Errorf("export: template name %q cannot be a folder name", t.Name)
		}
		rel := templateDir(team.Name, t.Name)
		sh := Sharing{Visibility: t.Visibility}
		if t.Visibility == store.VisibilityShared {
			ids, err := st.Templates().TemplateShares(ctx, t.ID)
			if err != nil {
				return nil, fmt.Errorf("export template %q: %w", t.Name, err)
			}
			for _, id := range ids {
				sh.Teams = append(sh.Teams, teamName[id])
			}
			sort.Strings(sh.Teams)
		}
		if err := writeJSON(filepath.Join(dir, rel, "sharing.json"), sh); err != nil {
			return nil, err
		}
		for n := 1; n <= t.Latest; n++ {
			v, err := st.Templates().GetTemplateVersion(ctx, t.ID, n)
			if err != nil {
				return nil, fmt.Errorf("export template %q: %w", t.Name, err)
			}
			var b scripts.Body
			if err := json.Unmarshal([]byte(v.Body), &b); err != nil {
				return nil, fmt.Errorf("export template %q version %d: %w", t.Name, n, err)
			}
			files, err := b.Files()
			if err != nil {
				return nil, fmt.Errorf("export template %q version %d: %w", t.Name, n, err)
			}
			vdir := filepath.Join(dir, rel, "versions", strconv.Itoa(n))
			for p, content := range files {
				if err := writeFile(filepath.Join(vdir, filepath.FromSlash(p)), content); err != nil {
					return nil, err
				}
			}
		}
		names = append(names, t.Name)
	}
	return names, nil
}

// linkOf is a connection's team template link as the folder spells it; nil
// when it has none.
func linkOf(c store.Connection, byID map[int64]store.TeamTemplate, teamName map[int64]string) (*TemplateLink, error) {
	if c.TemplateID == 0 {
		return nil, nil
	}
	t, ok := byID[c.TemplateID]
	if !ok {
		return nil, fmt.Errorf("connection %q: its template %d: %w", c.Name, c.TemplateID, store.ErrNotFound)
	}
	l := &TemplateLink{Team: teamName[t.TeamID], Name: t.Name, Version: c.TemplateVersion}
	if c.TemplateParams != "" {
		l.Params = json.RawMessage(c.TemplateParams)
	}
	return l, nil
}

// sameBody reports whether two versions hold the same template (as files:
// formatting of the stored JSON does not count).
func sameBody(a, b scripts.Body) (bool, error) {
	d, err := scripts.DiffBodies(a, b)
	return len(d) == 0, err
}

// storedTemplate is a team template of the store as a plan sees it.
type storedTemplate struct {
	store.TeamTemplate
	team   string
	shares []string // team names, sorted
}

// templateIndex is what a plan knows about team templates: the store's,
// and those the folder adds for the planned teams.
type templateIndex struct {
	stored map[string]storedTemplate // by team/name
	byID   map[int64]string          // store id → team/name
	// folder are the planned teams' folder templates, by team/name.
	folder map[string]TeamTemplate
}

func loadTemplateIndex(ctx context.Context, st *store.Store, teamByID map[int64]string) (*templateIndex, error) {
	all, err := st.Templates().VisibleTemplates(ctx, nil, true)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	ix := &templateIndex{stored: map[string]storedTemplate{}, byID: map[int64]string{}, folder: map[string]TeamTemplate{}}
	for _, t := range all {
		s := storedTemplate{TeamTemplate: t, team: teamByID[t.TeamID]}
		if t.Visibility == store.VisibilityShared {
			ids, err := st.Templates().TemplateShares(ctx, t.ID)
			if err != nil {
				return nil, fmt.Errorf("plan: %w", err)
			}
			for _, id := range ids {
				s.shares = append(s.shares, teamByID[id])
			}
			sort.Strings(s.shares)
		}
		key := s.team + "/" + t.Name
		ix.stored[key] = s
		ix.byID[t.ID] = key
	}
	return ix, nil
}

// versions is how many versions team/name will have after the plan (0: none).
func (ix *templateIndex) versions(key string) int {
	n := ix.stored[key].Latest
	if f, ok := ix.folder[key]; ok && len(f.Versions) > n {
		n = len(f.Versions)
	}
	return n
}

// seenBy reports whether team will see the template after the plan.
func (ix *templateIndex) seenBy(key, owner, team string) bool {
	if owner == team {
		return true
	}
	sh := Sharing{}
	if f, ok := ix.folder[key]; ok {
		sh = f.Sharing
	} else if s, ok := ix.stored[key]; ok {
		sh = Sharing{Visibility: s.Visibility, Teams: s.shares}
	}
	return sh.Visibility == store.VisibilityOrg || (sh.Visibility == store.VisibilityShared && slices.Contains(sh.Teams, team))
}

// planTemplate lists the changes that make the store's template team/name
// match the folder: create it with every version, publish the versions the
// store lacks, change its sharing. A version the store has with another
// content is a problem: published versions never change.
func (p *Plan) planTemplate(ctx context.Context, st *store.Store, ix *templateIndex, team, name string, ft TeamTemplate, knownTeam func(string) bool) ([]Change, []Problem, error) {
	rel := templateDir(team, name)
	key := team + "/" + name
	for _, tn := range ft.Sharing.Teams {
		if !knownTeam(tn) {
			return nil, []Problem{{File: rel + "/sharing.json", Msg: fmt.Sprintf("team %q is neither in the store nor in the folder", tn)}}, nil
		}
	}
	share := func(ctx context.Context, tx *store.Store, ids *ids, id int64) error {
		teamIDs := make([]int64, 0, len(ft.Sharing.Teams))
		for _, tn := range ft.Sharing.Teams {
			teamIDs = append(teamIDs, ids.teams[tn])
		}
		return service.New(tx, nil, nil).SetSharing(ctx, applier, id, ft.Sharing.Visibility, teamIDs)
	}
	cur, exists := ix.stored[key]
	if !exists {
		vis := string(ft.Sharing.Visibility)
		if len(ft.Sharing.Teams) > 0 {
			vis += " with " + strings.Join(ft.Sharing.Teams, ", ")
		}
		return []Change{{Sign: "+", Team: team, What: fmt.Sprintf("template %s (%s, %s)", name, countVersions(len(ft.Versions)), vis), action: "template.publish",
			apply: func(ctx context.Context, tx *store.Store, ids *ids) error {
				id, err := publishVersions(ctx, tx, ids.teams[team], name, ft.Versions)
				if err != nil {
					return err
				}
				ids.templates[key] = id
				if ft.Sharing.Visibility != store.VisibilityPrivate {
					return share(ctx, tx, ids, id)
				}
				return nil
			}}}, nil, nil
	}
	var probs []Problem
	for i := 0; i < len(ft.Versions) && i < cur.Latest; i++ {
		v, err := st.Templates().GetTemplateVersion(ctx, cur.ID, i+1)
		if err != nil {
			return nil, nil, fmt.Errorf("plan: %w", err)
		}
		var sb scripts.Body
		if err := json.Unmarshal([]byte(v.Body), &sb); err != nil {
			return nil, nil, fmt.Errorf("plan: template %q version %d: %w", name, i+1, err)
		}
		same, err := sameBody(sb, ft.Versions[i])
		if err != nil {
			return nil, nil, fmt.Errorf("plan: template %q version %d: %w", name, i+1, err)
		}
		if !same {
			probs = append(probs, Problem{File: fmt.Sprintf("%s/versions/%d", rel, i+1),
				Msg: fmt.Sprintf("differs from version %d of the store's template %q; a published version never changes (add the change as version %d)", i+1, name, max(len(ft.Versions), cur.Latest)+1)})
		}
	}
	if len(probs) > 0 {
		return nil, probs, nil
	}
	var out []Change
	id := cur.ID
	if n := len(ft.Versions); n > cur.Latest {
		from, newer := cur.Latest+1, ft.Versions[cur.Latest:]
		out = append(out, Change{Sign: "~", Team: team, What: fmt.Sprintf("template %s: publish versions %d to %d", name, from, n), action: "template.publish",
			apply: func(ctx context.Context, tx *store.Store, ids *ids) error {
				_, err := publishVersions(ctx, tx, ids.teams[team], name, newer)
				return err
			}})
	}
	want := slices.Clone(ft.Sharing.Teams)
	sort.Strings(want)
	if cur.Visibility != ft.Sharing.Visibility || !slices.Equal(cur.shares, want) {
		what := fmt.Sprintf("template %s: visibility %s → %s", name, sharingText(cur.Visibility, cur.shares), sharingText(ft.Sharing.Visibility, want))
		out = append(out, Change{Sign: "~", Team: team, What: what, action: "template.share",
			apply: func(ctx context.Context, tx *store.Store, ids *ids) error {
				return share(ctx, tx, ids, id)
			}})
	}
	return out, nil, nil
}

// publishVersions publishes versions, in order, as the next versions of
// team's template name, creating it with the first when the team has none
// (each a template.publish entry, worded as the API's). It returns the
// template's id.
func publishVersions(ctx context.Context, tx *store.Store, team int64, name string, versions []scripts.Body) (int64, error) {
	svc := service.New(tx, nil, nil)
	var id int64
	for _, b := range versions {
		t, _, err := svc.PublishNamed(ctx, applier, team, name, b, "apply")
		if err != nil {
			return 0, err
		}
		id = t.ID
	}
	return id, nil
}

// checkLink is the problem with a connection's template link, if any: the
// template and version must exist after the plan (in the store or the
// folder) and the connection's team must see it, or template-status would
// not find it.
func (ix *templateIndex) checkLink(rel, team string, l *TemplateLink) *Problem {
	file := rel + "/connection.json"
	if l.Team == "" || l.Name == "" || l.Version < 1 {
		return &Problem{File: file, Msg: "team_template needs team, name and version (1 or more)"}
	}
	if _, err := compactJSON(l.Params); err != nil || (len(l.Params) > 0 && !strings.HasPrefix(strings.TrimSpace(string(l.Params)), "{") && string(l.Params) != "null") {
		return &Problem{File: file, Msg: "team_template params must be a JSON object"}
	}
	n := ix.versions(l.key())
	switch {
	case n == 0:
		return &Problem{File: file, Msg: fmt.Sprintf("team_template %s: the template is neither in the store nor in the folder (teams/%s/templates/%s/); export it with its team, or remove the link", l, l.Team, l.Name)}
	case l.Version > n:
		return &Problem{File: file, Msg: fmt.Sprintf("team_template %s: the template has only %s", l, countVersions(n))}
	case !ix.seenBy(l.key(), l.Team, team):
		return &Problem{File: file, Msg: fmt.Sprintf("team_template %s: the template is not shared with team %q, so the link could not be used", l, team)}
	}
	return nil
}

// sameLink compares a stored link with the folder's (params as values).
func sameLink(a, b *TemplateLink) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	pa, _ := compactJSON(a.Params)
	pb, _ := compactJSON(b.Params)
	return a.Team == b.Team && a.Name == b.Name && a.Version == b.Version && pa == pb
}

func linkText(l *TemplateLink) string {
	if l == nil {
		return "(none)"
	}
	return l.String()
}

func sharingText(v store.Visibility, teams []string) string {
	if len(teams) == 0 {
		return string(v)
	}
	return string(v) + " with " + strings.Join(teams, ", ")
}

func countVersions(n int) string {
	if n == 1 {
		return "1 version"
	}
	return fmt.Sprintf("%d versions", n)
}

// storedLink is connection c's link as the folder would spell it.
func (ix *templateIndex) storedLink(c store.Connection) *TemplateLink {
	if c.TemplateID == 0 {
		return nil
	}
	key, ok := ix.byID[c.TemplateID]
	if !ok {
		return nil
	}
	t := ix.stored[key]
	l := &TemplateLink{Team: t.team, Name: t.Name, Version: c.TemplateVersion}
	if c.TemplateParams != "" {
		l.Params = json.RawMessage(c.TemplateParams)
	}
	return l
}
