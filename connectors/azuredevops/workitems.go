package azuredevops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/internal/htmltext"
)

type identity struct {
	DisplayName string `json:"displayName"`
	UniqueName  string `json:"uniqueName"`
}

type workItem struct {
	ID        int64                      `json:"id"`
	Rev       int64                      `json:"rev"`
	Fields    map[string]json.RawMessage `json:"fields"`
	Relations []relation                 `json:"relations"`
}

// relation is a link of a work item; attached files have rel AttachedFile.
type relation struct {
	Rel        string `json:"rel"`
	URL        string `json:"url"`
	Attributes struct {
		Name                string    `json:"name"`
		ResourceSize        int64     `json:"resourceSize"`
		ResourceCreatedDate time.Time `json:"resourceCreatedDate"`
	} `json:"attributes"`
}

func (w workItem) str(ref string) string {
	var s string
	if raw, ok := w.Fields[ref]; ok {
		if json.Unmarshal(raw, &s) != nil {
			var id identity
			if json.Unmarshal(raw, &id) == nil {
				s = id.UniqueName
			}
		}
	}
	return s
}

func (w workItem) time(ref string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, w.str(ref))
	return t.UTC()
}

type comment struct {
	CommentID   int64     `json:"commentId"`
	Text        string    `json:"text"`
	CreatedBy   identity  `json:"createdBy"`
	CreatedDate time.Time `json:"createdDate"`
	IsDeleted   bool      `json:"isDeleted"`
}

// field maps a Duplex field name to a reference name.
type field struct {
	name, ref string
	typ       connectors.FieldType
	readOnly  bool
	desc      string
}

var builtin = []field{
	{"title", "System.Title", connectors.TypeString, false, ""},
	{"description", "System.Description", connectors.TypeString, false, "plain text (Azure DevOps keeps HTML)"},
	{"state", "System.State", connectors.TypeString, false, "a state of the work item type (refused with the type's states named otherwise)"},
	{"reason", "System.Reason", connectors.TypeString, false, ""},
	{"work_item_type", "System.WorkItemType", connectors.TypeString, false, "work item type; set on create only"},
	{"assigned_to", "System.AssignedTo", connectors.TypeString, false, "unique name (email) of the assignee; \"\" for none"},
	{"tags", "System.Tags", connectors.TypeList, false, "writing replaces the set"},
	{"area_path", "System.AreaPath", connectors.TypeString, false, ""},
	{"iteration_path", "System.IterationPath", connectors.TypeString, false, ""},
	{"priority", "Microsoft.VSTS.Common.Priority", connectors.TypeNumber, false, "1 to 4"},
	{"created_by", "System.CreatedBy", connectors.TypeString, true, ""},
	{"created_at", "System.CreatedDate", connectors.TypeTime, true, ""},
}

func (c *conn) fields() []field {
	out := append([]field(nil), builtin...)
	for _, ref := range c.s.Fields {
		out = append(out, field{name: ref, ref: ref, typ: connectors.TypeString})
	}
	return out
}

func (c *conn) byName(name string) (field, bool) {
	for _, f := range c.fields() {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

const tagPrefix = "duplex:"

// splitTags splits System.Tags ("a; b") into the visible tags and the
// correlation tag.
func splitTags(s string) (tags []string, corr string) {
	for _, t := range strings.Split(s, ";") {
		t = strings.TrimSpace(t)
		switch {
		case t == "":
		case strings.HasPrefix(t, tagPrefix):
			corr = t
		default:
			tags = append(tags, t)
		}
	}
	sort.Strings(tags)
	return tags, corr
}

func parseID(id string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(id), "#"), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: azuredevops work item id must be a positive number, got %q", connectors.ErrNotFound, id)
	}
	return n, nil
}

// plainToHTML is what Duplex writes into an HTML field: the text escaped,
// line breaks kept.
func plainToHTML(s string) string {
	return strings.ReplaceAll(html.EscapeString(s), "\n", "<br>")
}

func (c *conn) entity(w workItem, cs []comment) connectors.Entity {
	f := map[string]any{}
	for _, fd := range c.fields() {
		raw, ok := w.Fields[fd.ref]
		switch {
		case fd.name == "description":
			f[fd.name] = htmltext.Text(w.str(fd.ref))
		case fd.name == "tags":
			tags, _ := splitTags(w.str(fd.ref))
			list := make([]any, len(tags))
			for i, t := range tags {
				list[i] = t
			}
			f[fd.name] = list
		case fd.typ == connectors.TypeNumber:
			var n float64
			if ok && json.Unmarshal(raw, &n) == nil {
				f[fd.name] = n
			} else {
				f[fd.name] = nil
			}
		case fd.typ == connectors.TypeTime:
			if t := w.time(fd.ref); !t.IsZero() {
				f[fd.name] = t.Format(time.RFC3339)
			} else {
				f[fd.name] = nil
			}
		case ok && fd.ref != fd.name:
			f[fd.name] = w.str(fd.ref)
		case ok:
			var v any
			_ = json.Unmarshal(raw, &v)
			if m, isObj := v.(map[string]any); isObj {
				v = m["uniqueName"]
			}
			f[fd.name] = v
		default:
			f[fd.name] = nil
			if fd.typ == connectors.TypeString && fd.ref != fd.name {
				f[fd.name] = ""
			}
		}
	}
	id := strconv.FormatInt(w.ID, 10)
	e := connectors.Entity{ID: id, Key: "#" + id, Type: w.str("System.WorkItemType"), Fields: f,
		URL:       c.s.URL + "/" + url.PathEscape(c.s.Project) + "/_workitems/edit/" + id,
		UpdatedAt: w.time("System.ChangedDate"), UpdatedBy: w.str("System.ChangedBy")}
	for _, r := range w.Relations {
		if r.Rel == "AttachedFile" {
			id := r.URL
			if u, err := url.Parse(r.URL); err == nil {
				id = u.Path // the upload's url carries ?fileName=
			}
			e.Attachments = append(e.Attachments, connectors.Attachment{ID: path.Base(id), Name: r.Attributes.Name,
				Size: r.Attributes.ResourceSize, CreatedAt: r.Attributes.ResourceCreatedDate.UTC()})
		}
	}
	for _, cm := range cs {
		if cm.IsDeleted {
			continue
		}
		e.Comments = append(e.Comments, connectors.Comment{ID: strconv.FormatInt(cm.CommentID, 10),
			Author: cm.CreatedBy.DisplayName, Body: htmltext.Text(cm.Text), CreatedAt: cm.CreatedDate.UTC()})
	}
	return e
}

func (c *conn) getItem(ctx context.Context, n int64) (workItem, error) {
	var w workItem
	if err := c.do(ctx, "GET", fmt.Sprintf("%s/wit/workitems/%d?$expand=relations&api-version=%s", c.proj, n, apiVersion), nil, &w); err != nil {
		return w, fmt.Errorf("azuredevops get work item %d: %w", n, err)
	}
	if p := w.str("System.TeamProject"); p != "" && !strings.EqualFold(p, c.s.Project) {
		return w, fmt.Errorf("%w: azuredevops: work item %d belongs to project %q", connectors.ErrNotFound, n, p)
	}
	return w, nil
}

// Get reads one work item with its comments.
func (c *conn) Get(ctx context.Context, id string) (connectors.Entity, error) {
	n, err := parseID(id)
	if err != nil {
		return connectors.Entity{}, err
	}
	w, err := c.getItem(ctx, n)
	if err != nil {
		return connectors.Entity{}, err
	}
	return c.withComments(ctx, w)
}

// withComments reads the comments (200 a page, following the
// continuation token) unless System.CommentCount says there are none.
func (c *conn) withComments(ctx context.Context, w workItem) (connectors.Entity, error) {
	var all []comment
	if count, ok := w.Fields["System.CommentCount"]; !ok || string(count) != "0" {
		q := url.Values{"$top": {"200"}, "api-version": {commentsAPIVersion}}
		for pages := 0; ; pages++ {
			if pages == 100 {
				return connectors.Entity{}, fmt.Errorf("%w: azuredevops comments of %d: more than 100 pages", connectors.ErrUnavailable, w.ID)
			}
			var p struct {
				Comments          []comment `json:"comments"`
				ContinuationToken string    `json:"continuationToken"`
			}
			if err := c.do(ctx, "GET", fmt.Sprintf("%s/wit/workItems/%d/comments?%s", c.proj, w.ID, q.Encode()), nil, &p); err != nil {
				return connectors.Entity{}, fmt.Errorf("azuredevops comments of work item %d: %w", w.ID, err)
			}
			all = append(all, p.Comments...)
			if p.ContinuationToken == "" {
				break
			}
			q.Set("continuationToken", p.ContinuationToken)
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].CreatedDate.Before(all[j].CreatedDate) })
	return c.entity(w, all), nil
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Create makes a work item of the type the fields name (or the setting
// work_item_type).
func (c *conn) Create(ctx context.Context, fields map[string]any) (connectors.Entity, error) {
	return c.create(ctx, "", fields)
}

// CreateCorrelated is Create with the tag "duplex:KEY".
func (c *conn) CreateCorrelated(ctx context.Context, key string, fields map[string]any) (connectors.Entity, error) {
	if key == "" || strings.ContainsAny(key, ";,'\r\n") {
		return connectors.Entity{}, fmt.Errorf("%w: azuredevops: correlation key %q cannot be a tag", connectors.ErrInvalid, key)
	}
	return c.create(ctx, key, fields)
}

func (c *conn) create(ctx context.Context, key string, fields map[string]any) (connectors.Entity, error) {
	typ := c.s.WorkItemType
	if t := connectors.Text(fields["work_item_type"]); t != "" {
		typ = t
	}
	rest := map[string]any{}
	for k, v := range fields {
		if k != "work_item_type" {
			rest[k] = v
		}
	}
	if strings.TrimSpace(connectors.Text(rest["title"])) == "" {
		return connectors.Entity{}, fmt.Errorf("%w: azuredevops: a new work item needs a title", connectors.ErrInvalid)
	}
	corr := ""
	if key != "" {
		corr = tagPrefix + key
	}
	ops, err := c.patch(rest, corr, true)
	if err != nil {
		return connectors.Entity{}, err
	}
	var w workItem
	p := fmt.Sprintf("%s/wit/workitems/$%s?$expand=relations&api-version=%s", c.proj, url.PathEscape(typ), apiVersion)
	if err := c.send(ctx, "POST", p, ops, &w); err != nil {
		return connectors.Entity{}, c.explain(ctx, typ, fields, fmt.Errorf("azuredevops create %s: %w", typ, err))
	}
	return c.entity(w, nil), nil
}

// FindCorrelated finds the work item tagged "duplex:KEY" with WIQL.
func (c *conn) FindCorrelated(ctx context.Context, key string) (connectors.Entity, bool, error) {
	q := fmt.Sprintf("SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project AND [System.Tags] CONTAINS %s ORDER BY [System.Id] ASC", wiqlString(tagPrefix+key))
	ids, _, err := c.wiql(ctx, q, 10)
	if err != nil {
		return connectors.Entity{}, false, fmt.Errorf("azuredevops find correlated: %w", err)
	}
	for _, n := range ids {
		w, err := c.getItem(ctx, n)
		if err != nil {
			return connectors.Entity{}, false, err
		}
		if _, corr := splitTags(w.str("System.Tags")); corr == tagPrefix+key { // CONTAINS matches whole tags, but be sure
			e, err := c.withComments(ctx, w)
			return e, err == nil, err
		}
	}
	return connectors.Entity{}, false, nil
}

// Update sends the fields as one JSON Patch document.
func (c *conn) Update(ctx context.Context, id string, fields map[string]any) (connectors.Entity, error) {
	n, err := parseID(id)
	if err != nil {
		return connectors.Entity{}, err
	}
	if _, ok := fields["work_item_type"]; ok {
		return connectors.Entity{}, fmt.Errorf("%w: azuredevops: the work item type is set on create only", connectors.ErrInvalid)
	}
	if len(fields) == 0 {
		return c.Get(ctx, id)
	}
	corr, typ := "", ""
	if _, ok := fields["tags"]; ok {
		w, err := c.getItem(ctx, n) // keep the correlation tag
		if err != nil {
			return connectors.Entity{}, err
		}
		_, corr = splitTags(w.str("System.Tags"))
		typ = w.str("System.WorkItemType")
	}
	ops, err := c.patch(fields, corr, false)
	if err != nil {
		return connectors.Entity{}, err
	}
	var w workItem
	if err := c.send(ctx, "PATCH", fmt.Sprintf("%s/wit/workitems/%d?$expand=relations&api-version=%s", c.proj, n, apiVersion), ops, &w); err != nil {
		if typ == "" {
			if cur, gerr := c.getItem(ctx, n); gerr == nil {
				typ = cur.str("System.WorkItemType")
			}
		}
		return connectors.Entity{}, c.explain(ctx, typ, fields, fmt.Errorf("azuredevops update work item %d: %w", n, err))
	}
	return c.withComments(ctx, w)
}

// patch builds the JSON Patch operations for fields; corr is the
// correlation tag to keep or add ("" for none).
func (c *conn) patch(fields map[string]any, corr string, creating bool) ([]patchOp, error) {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	var ops []patchOp
	tagsDone := false
	for _, k := range names {
		fd, ok := c.byName(k)
		if !ok {
			return nil, fmt.Errorf("%w: azuredevops: no field %q (add its reference name to the setting fields)", connectors.ErrInvalid, k)
		}
		if fd.readOnly {
			return nil, fmt.Errorf("%w: azuredevops: field %q is read-only", connectors.ErrInvalid, k)
		}
		v := fields[k]
		var val any
		switch {
		case k == "description":
			val = plainToHTML(connectors.Text(v))
		case k == "tags":
			list, err := stringList(v)
			if err != nil {
				return nil, fmt.Errorf("%w: azuredevops: tags: %w", connectors.ErrInvalid, err)
			}
			if corr != "" {
				list = append(list, corr)
			}
			val, tagsDone = strings.Join(list, "; "), true
		case fd.typ == connectors.TypeNumber:
			if v == nil || v == "" {
				if !creating {
					ops = append(ops, patchOp{Op: "remove", Path: "/fields/" + fd.ref})
				}
				continue
			}
			n, err := connectors.Number(v)
			if err != nil {
				return nil, fmt.Errorf("%w: azuredevops: %s takes a number: %w", connectors.ErrInvalid, k, err)
			}
			val = n
		case fd.ref == fd.name: // a field named in the settings: as given
			val = v
		default:
			val = connectors.Text(v)
		}
		ops = append(ops, patchOp{Op: "add", Path: "/fields/" + fd.ref, Value: val})
	}
	if corr != "" && !tagsDone && creating {
		ops = append(ops, patchOp{Op: "add", Path: "/fields/System.Tags", Value: corr})
	}
	return ops, nil
}

func stringList(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []string:
		return x, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, connectors.Text(e))
		}
		return out, nil
	case string:
		var out []string
		for _, t := range strings.Split(x, ";") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("not a list: %T", v)
}

// send posts a JSON Patch document (Content-Type application/json-patch+json).
func (c *conn) send(ctx context.Context, method, path string, ops []patchOp, out any) error {
	b, err := json.Marshal(ops)
	if err != nil {
		return fmt.Errorf("%w: %w", connectors.ErrInvalid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	return c.redact(adoError(c.http.Send(ctx, method, path, "application/json-patch+json", strings.NewReader(string(b)), int64(len(b)), out)))
}

func (c *conn) timeout() time.Duration {
	if c.s.TimeoutMS > 0 {
		return time.Duration(c.s.TimeoutMS) * time.Millisecond
	}
	return 30 * time.Second
}

// explain turns a rule error on System.State into a refusal that names the
// states the work item type has.
func (c *conn) explain(ctx context.Context, typ string, fields map[string]any, err error) error {
	var ae *adoErr
	state, asked := fields["state"]
	if !asked || typ == "" || !errors.As(err, &ae) || ae.api.CustomProperties.FieldReferenceName != "System.State" {
		return err
	}
	var st struct {
		Value []struct {
			Name     string `json:"name"`
			Category string `json:"category"`
		} `json:"value"`
	}
	path := fmt.Sprintf("%s/wit/workitemtypes/%s/states?api-version=%s", c.proj, url.PathEscape(typ), apiVersion)
	if c.do(ctx, "GET", path, nil, &st) != nil || len(st.Value) == 0 {
		return err
	}
	names := make([]string, len(st.Value))
	known := false
	for i, s := range st.Value {
		names[i] = s.Name
		known = known || s.Name == connectors.Text(state)
	}
	if !known {
		return fmt.Errorf("%w: azuredevops: %q is not a state of work item type %s (its states: %s)", connectors.ErrInvalid, connectors.Text(state), typ, strings.Join(names, ", "))
	}
	return fmt.Errorf("%w: azuredevops: work item type %s does not allow state %q here (its states: %s): %s", connectors.ErrInvalid, typ, connectors.Text(state), strings.Join(names, ", "), ae.api.Message)
}

// AddComment adds a discussion comment (its text as HTML). Azure DevOps has
// no internal comments: a private comment is refused.
func (c *conn) AddComment(ctx context.Context, id string, cm connectors.Comment) (connectors.Comment, error) {
	n, err := parseID(id)
	if err != nil {
		return connectors.Comment{}, err
	}
	if cm.Private {
		return connectors.Comment{}, fmt.Errorf("%w: azuredevops: work item comments are all public; a private comment is not published", connectors.ErrInvalid)
	}
	if strings.TrimSpace(cm.Body) == "" {
		return connectors.Comment{}, fmt.Errorf("%w: azuredevops: empty comment", connectors.ErrInvalid)
	}
	var out comment
	path := fmt.Sprintf("%s/wit/workItems/%d/comments?api-version=%s", c.proj, n, commentsAPIVersion)
	if err := c.do(ctx, "POST", path, map[string]any{"text": plainToHTML(cm.Body)}, &out); err != nil {
		return connectors.Comment{}, fmt.Errorf("azuredevops comment on work item %d: %w", n, err)
	}
	return connectors.Comment{ID: strconv.FormatInt(out.CommentID, 10), Author: out.CreatedBy.DisplayName,
		Body: htmltext.Text(out.Text), CreatedAt: out.CreatedDate.UTC()}, nil
}

// Describe lists the mapped fields and those named in the settings.
func (c *conn) Describe(ctx context.Context) (connectors.Schema, error) {
	var out []connectors.FieldSpec
	for _, f := range c.fields() {
		d := f.desc
		if d == "" {
			d = f.ref
		} else {
			d = f.ref + ": " + d
		}
		out = append(out, connectors.FieldSpec{Name: f.name, Type: f.typ, ReadOnly: f.readOnly, Description: d})
	}
	return connectors.Schema{EntityType: "work item", Fields: out, Comments: true}, nil
}

// Close has nothing to release.
func (c *conn) Close() error { return nil }
