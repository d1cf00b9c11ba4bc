package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/service"
	"github.com/duplexsync/duplex/scripts"
)

// Team templates. Who may do what is decided here rather than by the route
// table, because it depends on the template's visibility and shares:
//
//   - see (read, use, fork, export): a member of the owner team, of a team it
//     is shared with, anyone when it is org-wide; org admins see all. A
//     template the caller may not see answers 404, as if it did not exist.
//   - publish a version: an editor of the owner team only; forks never write
//     to the original.
//   - change visibility and shares: an admin of the owner team.
//   - fork or import into a team: an editor of that team.

// templateRoutes declares the templates' routes, each once: method, path,
// access rule, handler, OpenAPI operation. Team templates' visibility
// depends on shares, so those routes only need a sign-in and the service
// checks the roles; connection routes use the connection's team.
func (s *srv) templateRoutes(api gin.IRoutes) {
	editor, viewer := store.RoleEditor, store.RoleViewer
	s.handle(api, "GET", "/templates", signedIn(), s.listTemplates,
		op{summary: "Built-in and visible team templates", tag: "templates", out: []templateItem{}})
	s.handle(api, "GET", "/templates/:name", signedIn(), s.getTemplate,
		op{summary: "A built-in template", tag: "templates", out: scripts.Template{}})
	s.handle(api, "GET", "/team-templates/:id", signedIn(), s.getTeamTemplate,
		op{summary: "A team template and its latest version", tag: "templates", out: teamTemplateOut{}})
	s.handle(api, "GET", "/team-templates/:id/versions", signedIn(), s.teamTemplateVersions,
		op{summary: "A team template's versions", tag: "templates", out: []store.TemplateVersion{}})
	s.handle(api, "POST", "/team-templates/:id/versions", signedIn(), s.publishTeamTemplate, // owner team editor
		op{summary: "Publish a new version (owner team editor)", tag: "templates", in: publishIn{}, out: teamTemplateOut{}, status: 201})
	s.handle(api, "GET", "/team-templates/:id/versions/:version", signedIn(), s.teamTemplateVersion,
		op{summary: "One version with its body", tag: "templates", out: teamTemplateOut{}})
	s.handle(api, "PUT", "/team-templates/:id/sharing", signedIn(), s.setSharing, // owner team admin
		op{summary: "Visibility and the teams it is shared with (owner team admin)", tag: "templates", in: setSharingIn{}, out: teamTemplateOut{}})
	s.handle(api, "POST", "/team-templates/:id/fork", signedIn(), s.forkTemplate, // editor of the target team
		op{summary: "Copy a visible template into one of one's teams", tag: "templates", in: forkTemplateIn{}, out: teamTemplateOut{}, status: 201})
	s.handle(api, "GET", "/team-templates/:id/archive", signedIn(), s.exportTemplate,
		op{summary: "A version as a .tar.gz folder", tag: "templates", rawOut: "application/gzip", query: []string{"version"}})
	s.handle(api, "POST", "/team-templates/import", signedIn(), s.importTemplate, // editor of ?team_id
		op{summary: "Import a .tar.gz template folder into a team", tag: "templates", rawIn: "application/gzip", out: teamTemplateOut{}, status: 201, query: []string{"team_id", "name"}})
	s.handle(api, "POST", "/connections/:id/save-as-template", teamRole("connection", "id", editor), s.saveAsTemplate,
		op{summary: "Save a connection's scripts as a team template (or its next version)", tag: "templates", in: saveAsIn{}, out: teamTemplateOut{}, status: 201})
	s.handle(api, "GET", "/connections/:id/template-status", teamRole("connection", "id", viewer), s.templateStatus,
		op{summary: "Whether the connection's template has a newer version, with the diff", tag: "templates", out: templateStatus{}})
	s.handle(api, "POST", "/connections/:id/upgrade-template", teamRole("connection", "id", editor), s.upgradeTemplate,
		op{summary: "Apply a newer template version's scripts", tag: "templates", in: upgradeTemplateIn{}, out: connectionOut{}})
}

// importMaxBytes bounds an uploaded archive (gzipped); scripts bounds what
// it unpacks to.
const importMaxBytes = 1 << 20

// templateItem is one entry of GET /api/templates: a built-in (by name) or
// a team template (by id, with its latest version's content).
type templateItem struct {
	scripts.Template
	Builtin       bool             `json:"builtin"`
	ID            int64            `json:"id,omitempty"`
	TeamID        int64            `json:"team_id,omitempty"`
	LatestVersion int              `json:"latest_version,omitempty"`
	Visibility    store.Visibility `json:"visibility,omitempty"`
	ForkedFromID  *int64           `json:"forked_from_id,omitempty"`
}

// memberTeams lists the teams the caller belongs to (any role).
func memberTeams(p *principal) []int64 {
	ids := make([]int64, 0, len(p.Roles))
	for id, r := range p.Roles {
		if r.Valid() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// visibleTemplate reads a template the caller may see, with its shares
// (the rule is the service's).
func (s *srv) visibleTemplate(c *gin.Context, id int64) (store.TeamTemplate, []int64, error) {
	return s.svc.VisibleTemplate(c.Request.Context(), principalOf(c).caller(), id)
}

func decodeBody(v store.TemplateVersion) (scripts.Body, error) { return service.DecodeBody(v) }

func (s *srv) listTemplates(c *gin.Context) error {
	ctx := c.Request.Context()
	var out []templateItem
	for _, t := range s.lib.List() {
		out = append(out, templateItem{Template: t, Builtin: true})
	}
	p := principalOf(c)
	own, err := s.st.Templates().VisibleTemplates(ctx, memberTeams(p), p.User.OrgAdmin)
	if err != nil {
		return err
	}
	for _, t := range own {
		v, err := s.st.Templates().GetTemplateVersion(ctx, t.ID, t.Latest)
		if err != nil {
			return err
		}
		b, err := decodeBody(v)
		if err != nil {
			return err
		}
		out = append(out, templateItem{Template: b.Template(t.Name), ID: t.ID, TeamID: t.TeamID,
			LatestVersion: t.Latest, Visibility: t.Visibility, ForkedFromID: t.ForkedFromID})
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// teamTemplateOut is a team template with one version's content.
type teamTemplateOut struct {
	store.TeamTemplate
	// SharedWith is only shown to members of the owner team.
	SharedWith []int64                `json:"shared_with,omitempty"`
	Version    *store.TemplateVersion `json:"version,omitempty"`
	Body       *scripts.Body          `json:"body,omitempty"`
}

func (s *srv) templateOut(c *gin.Context, t store.TeamTemplate, shares []int64, version int) (teamTemplateOut, error) {
	out := teamTemplateOut{TeamTemplate: t}
	if principalOf(c).Role(t.TeamID).Valid() {
		out.SharedWith = shares
	}
	v, err := s.st.Templates().GetTemplateVersion(c.Request.Context(), t.ID, version)
	if err != nil {
		return out, err
	}
	b, err := decodeBody(v)
	if err != nil {
		return out, err
	}
	out.Version, out.Body = &v, &b
	return out, nil
}

func (s *srv) getTeamTemplate(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	t, shares, err := s.visibleTemplate(c, id)
	if err != nil {
		return err
	}
	out, err := s.templateOut(c, t, shares, 0)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, out)
	return nil
}

func (s *srv) teamTemplateVersions(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	if _, _, err := s.visibleTemplate(c, id); err != nil {
		return err
	}
	vs, err := s.st.Templates().TemplateVersions(c.Request.Context(), id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, vs)
	return nil
}

func (s *srv) teamTemplateVersion(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	version, err := idParam(c, "version")
	if err != nil {
		return err
	}
	t, shares, err := s.visibleTemplate(c, id)
	if err != nil {
		return err
	}
	out, err := s.templateOut(c, t, shares, int(version))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, out)
	return nil
}

// publishIn is a version published directly (the template editor).
type publishIn struct {
	scripts.Body
	Note string `json:"note"`
}

// publishTeamTemplate stores a new version of a template; only the owner
// team's editors may.
func (s *srv) publishTeamTemplate(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in publishIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	v, err := s.svc.PublishVersion(c.Request.Context(), principalOf(c).caller(), id, in.Body, in.Note)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, v)
	return nil
}

type saveAsIn struct {
	Name        string `json:"name"`
	Title       string `json:"title"`
	Description string `json:"description"`
	SideA       string `json:"side_a"`
	SideB       string `json:"side_b"`
	// kinds_a, kinds_b: the kinds each side fits; a side left out fits
	// the kind of the connection's system on that side.
	scripts.SideKinds
	Visibility store.Visibility           `json:"visibility"`
	Params     []scripts.ParamSpec        `json:"params"`
	Fixtures   map[string]json.RawMessage `json:"fixtures"`
	Note       string                     `json:"note"`
}

// saveAsTemplate turns a connection's current scripts into a template of
// its team, or into the next version of the team's template of that name.
// The connection itself stays as it is (it is the template's origin, not an
// instance of it).
func (s *srv) saveAsTemplate(c *gin.Context) error {
	ctx := c.Request.Context()
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in saveAsIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	conn := rowOf[store.Connection](c) // loaded by the access rule
	who := principalOf(c).caller()
	if err := who.Require(conn.TeamID, store.RoleEditor, "saving a connection as a template"); err != nil {
		return err // before reading its scripts
	}
	cur, err := s.st.CurrentScripts(ctx, id)
	if err != nil {
		return err
	}
	src := scripts.Sources{}
	for side, kinds := range cur {
		src[string(side)] = map[string]string{}
		for kind, v := range kinds {
			src[string(side)][string(kind)] = v.Source
		}
	}
	sources, params, err := scripts.Extract(src, in.Params)
	if err != nil {
		return err
	}
	body := scripts.Body{Title: in.Title, Description: in.Description, SideA: in.SideA, SideB: in.SideB,
		SideKinds: in.SideKinds, Params: params, Sources: sources, Fixtures: in.Fixtures}
	if body.Title == "" {
		body.Title = in.Name
	}
	if conn.Options != "" {
		body.Options = json.RawMessage(conn.Options)
	}
	for _, side := range []store.Side{store.SideA, store.SideB} {
		desc, kinds := &body.SideA, &body.SideKinds.A
		if side == store.SideB {
			desc, kinds = &body.SideB, &body.SideKinds.B
		}
		sys, err := s.st.GetSystem(ctx, conn.SystemID(side))
		if err != nil {
			return err
		}
		if *desc == "" {
			*desc = sys.Kind + " system like " + strconv.Quote(sys.Name)
		}
		if len(*kinds) == 0 {
			*kinds = []string{sys.Kind}
		}
	}

	t, v, created, err := s.svc.SaveFromConnection(ctx, who, conn, in.Name, in.Visibility, body, in.Note)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return s.respondTemplate(c, status, t.ID, v.Version)
}

func (s *srv) respondTemplate(c *gin.Context, status int, id int64, version int) error {
	t, shares, err := s.visibleTemplate(c, id)
	if err != nil {
		return err
	}
	out, err := s.templateOut(c, t, shares, version)
	if err != nil {
		return err
	}
	c.JSON(status, out)
	return nil
}

// setSharingIn is the body of setSharing.
type setSharingIn struct {
	Visibility store.Visibility `json:"visibility"`
	Teams      []int64          `json:"teams"`
}

// setSharing sets who sees a template; an admin of the owner team only.
func (s *srv) setSharing(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in setSharingIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	if err := s.svc.SetSharing(c.Request.Context(), principalOf(c).caller(), id, in.Visibility, in.Teams); err != nil {
		return err
	}
	return s.respondTemplate(c, http.StatusOK, id, 0)
}

// forkTemplateIn is the body of forkTemplate.
type forkTemplateIn struct {
	TeamID  int64  `json:"team_id"`
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// forkTemplate copies a template the target team sees into that team.
func (s *srv) forkTemplate(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in forkTemplateIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	if in.TeamID == 0 {
		if in.TeamID, err = defaultTeam(principalOf(c), store.RoleEditor); err != nil {
			return err
		}
	}
	fork, v, err := s.svc.Fork(c.Request.Context(), principalOf(c).caller(), id, in.Version, in.TeamID, in.Name)
	if err != nil {
		return err
	}
	return s.respondTemplate(c, http.StatusCreated, fork.ID, v.Version)
}

// exportTemplate sends one version (default the latest) as a .tar.gz in
// the layout of scripts/<name>/.
func (s *srv) exportTemplate(c *gin.Context) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	version, err := intQuery(c, "version", 0)
	if err != nil {
		return err
	}
	t, _, err := s.visibleTemplate(c, id)
	if err != nil {
		return err
	}
	v, err := s.st.Templates().GetTemplateVersion(c.Request.Context(), id, version)
	if err != nil {
		return err
	}
	b, err := decodeBody(v)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := scripts.ExportArchive(&buf, t.Name, b); err != nil {
		return err
	}
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-v%d.tar.gz"`, t.Name, v.Version))
	c.Data(http.StatusOK, "application/gzip", buf.Bytes())
	return nil
}

// importTemplate reads a .tar.gz into a team: a new template, or the next
// version of the team's template of that name.
func (s *srv) importTemplate(c *gin.Context) error {
	ctx := c.Request.Context()
	team, err := teamQuery(c)
	if err != nil {
		return err
	}
	p := principalOf(c)
	if team == 0 {
		if team, err = defaultTeam(p, store.RoleEditor); err != nil {
			return err
		}
	}
	if err := s.requireTeam(c, team, store.RoleEditor); err != nil {
		return fmt.Errorf("importing a template into a team: %w", err)
	}
	// Read it whole first, so an upload over the bound is told as such
	// rather than as whatever the cut-off stream fails to parse as.
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, importMaxBytes))
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	folder, body, err := scripts.ImportArchive(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	name := c.Query("name")
	if name == "" {
		name = folder
	}
	t, v, created, err := s.svc.Import(ctx, p.caller(), team, name, body, c.Query("note"))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return s.respondTemplate(c, status, t.ID, v.Version)
}

// teamTemplateFor reads the template (and one version's body) a connection
// of team uses; one the team no longer sees is not found.
func (s *srv) teamTemplateFor(ctx context.Context, team, id int64, version int) (store.TeamTemplate, store.TemplateVersion, scripts.Body, error) {
	return s.svc.TemplateFor(ctx, team, id, version)
}

// paramsOf decodes a connection's recorded parameter values.
func paramsOf(conn store.Connection) (map[string]any, error) {
	out := map[string]any{}
	if conn.TemplateParams == "" {
		return out, nil
	}
	if err := json.Unmarshal([]byte(conn.TemplateParams), &out); err != nil {
		return nil, fmt.Errorf("connection %d template params: %w", conn.ID, err)
	}
	return out, nil
}

// localEdits lists the scripts ("a.outgoing") that differ from what the
// recorded template version renders to: edits an upgrade would replace.
func localEdits(cur map[store.Side]map[store.ScriptKind]store.ScriptVersion, rendered scripts.Sources) []string {
	out := []string{} // a list in JSON, empty or not
	for _, side := range []store.Side{store.SideA, store.SideB} {
		for _, kind := range store.ScriptKinds {
			if cur[side][kind].Source != rendered[string(side)][string(kind)] {
				out = append(out, string(side)+"."+string(kind))
			}
		}
	}
	return out
}

type templateStatus struct {
	TemplateID      int64              `json:"template_id"`
	Name            string             `json:"name"`
	TeamID          int64              `json:"team_id"`
	Version         int                `json:"version"`
	Latest          int                `json:"latest"`
	UpdateAvailable bool               `json:"update_available"`
	Params          map[string]any     `json:"params"`
	Diff            []scripts.FileDiff `json:"diff"`
	// LocalEdits are scripts changed since the template rendered them; an
	// upgrade replaces them only when asked to discard them.
	LocalEdits []string `json:"local_edits"`
}

func (s *srv) connTemplateStatus(ctx context.Context, conn store.Connection) (templateStatus, scripts.Body, error) {
	if conn.TemplateID == 0 {
		return templateStatus{}, scripts.Body{}, fmt.Errorf("connection %d was not made from a team template: %w", conn.ID, store.ErrNotFound)
	}
	t, _, old, err := s.teamTemplateFor(ctx, conn.TeamID, conn.TemplateID, conn.TemplateVersion)
	if err != nil {
		return templateStatus{}, old, err
	}
	_, latestV, latest, err := s.teamTemplateFor(ctx, conn.TeamID, conn.TemplateID, 0)
	if err != nil {
		return templateStatus{}, old, err
	}
	params, err := paramsOf(conn)
	if err != nil {
		return templateStatus{}, old, err
	}
	diff, err := scripts.DiffBodies(old, latest)
	if err != nil {
		return templateStatus{}, old, err
	}
	st := templateStatus{TemplateID: t.ID, Name: t.Name, TeamID: t.TeamID, Version: conn.TemplateVersion, Latest: latestV.Version,
		// A newer version with the same content has nothing to upgrade to.
		UpdateAvailable: latestV.Version > conn.TemplateVersion && len(diff) > 0, Params: params, Diff: diff, LocalEdits: []string{}}
	if st.Diff == nil {
		st.Diff = []scripts.FileDiff{}
	}
	cur, err := s.st.CurrentScripts(ctx, conn.ID)
	if err != nil {
		return st, old, err
	}
	if rendered, err := old.Template(t.Name).Render(params); err == nil {
		st.LocalEdits = localEdits(cur, rendered)
	}
	return st, old, nil
}

func (s *srv) templateStatus(c *gin.Context) error {
	conn := rowOf[store.Connection](c) // loaded by the access rule
	st, _, err := s.connTemplateStatus(c.Request.Context(), conn)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, st)
	return nil
}

// upgradeTemplateIn is the body of upgradeTemplate.
type upgradeTemplateIn struct {
	Version           int            `json:"version"` // 0: the latest
	Params            map[string]any `json:"params"`  // merged over the recorded ones
	DiscardLocalEdits bool           `json:"discard_local_edits"`
}

// upgradeTemplate renders another version of the connection's template and
// saves the result as new script versions.
func (s *srv) upgradeTemplate(c *gin.Context) error {
	ctx := c.Request.Context()
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in upgradeTemplateIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	conn := rowOf[store.Connection](c) // loaded by the access rule
	p := principalOf(c)
	if err := p.caller().Require(conn.TeamID, store.RoleEditor, "upgrading a connection's template"); err != nil {
		return err
	}
	st, _, err := s.connTemplateStatus(ctx, conn)
	if err != nil {
		return err
	}
	if len(st.LocalEdits) > 0 && !in.DiscardLocalEdits {
		return fmt.Errorf("connection %d: scripts %s were edited since the template rendered them; send discard_local_edits to replace them: %w",
			id, strings.Join(st.LocalEdits, ", "), store.ErrConflict)
	}
	t, v, body, err := s.teamTemplateFor(ctx, conn.TeamID, conn.TemplateID, in.Version)
	if err != nil {
		return err
	}
	params := st.Params
	maps.Copy(params, in.Params)
	rendered, err := body.Template(t.Name).Render(params)
	if err != nil {
		return badRequest("%v", err)
	}
	byKind, err := scriptsByKind(rendered)
	if err != nil {
		return err
	}
	if err := s.svc.UpgradeTemplate(ctx, p.Actor(), conn, service.Upgrade{Scripts: byKind, TemplateID: t.ID, Version: v.Version,
		Params: params, Kinds: body.SideKinds, Detail: fmt.Sprintf("template %d %q version %d → %d", t.ID, t.Name, conn.TemplateVersion, v.Version)}); err != nil {
		return err
	}
	return s.respondConnection(c, http.StatusOK, id)
}
