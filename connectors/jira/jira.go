// Package jira is the connector for the issues of one Jira Cloud project,
// over the REST API v3 with basic auth (an Atlassian account's email and an
// API token). Rich text (descriptions, comments) is Atlassian Document
// Format, converted to and from plain text with a little Markdown (adf.go).
// Status changes go through the workflow transition that reaches the wanted
// status. Changes are found with JQL on `updated`, which JQL compares to the
// minute only: changes.go explains the cursor. Admin webhooks signed with a
// secret (X-Hub-Signature) are verified in webhook.go.
package jira

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // JQL dates are read in the API user's time zone

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
)

// Settings is a Jira Cloud system's non-secret configuration. Secrets:
// "email" and "api_token" (basic auth), "webhook_secret" (optional, the
// secret of an admin webhook).
type Settings struct {
	// URL is the site, for example https://example.atlassian.net.
	URL string `json:"url" spec:"required"`
	// Project is the project key whose issues sync.
	Project string `json:"project" spec:"required"`
	// IssueType names the issue type new issues get when a script sets none
	// (default "Task").
	IssueType string `json:"issue_type,omitempty" spec:"default=Task"`
	// CorrelationField names a single-line text custom field where Duplex
	// stores its key on issues it creates, so a create interrupted by a
	// crash is found again instead of repeated. Optional.
	CorrelationField string `json:"correlation_field,omitempty"`
	// JQL is an extra filter ANDed to the project clause when polling, for
	// example `labels = todev`. Optional.
	JQL string `json:"jql,omitempty"`
	// PrivateCommentRole is the project role a comment written with
	// private: true is restricted to (visibility). Empty: the comment is
	// made internal the Jira Service Management way (the sd.public.comment
	// property); in a project that is not a service project that has no
	// effect, so the comment is removed again and the write refused.
	PrivateCommentRole string `json:"private_comment_role,omitempty"`
	// TimeoutMS bounds one request; default 30000.
	TimeoutMS int `json:"timeout_ms,omitempty" spec:"default=30000"`
}

const api = "/rest/api/3"

// New opens a Jira connector: it checks the credentials against
// /rest/api/3/myself (and learns the user's time zone, in which JQL reads
// dates) and finds the project.
func New(ctx context.Context, cfg connectors.Config) (connectors.Connector, error) {
	s, err := ParseSettings(cfg.Settings)
	if err != nil {
		return nil, err
	}
	if s.IssueType == "" {
		s.IssueType = "Task"
	}
	email, token := cfg.Secrets["email"], cfg.Secrets["api_token"]
	if email == "" || token == "" {
		return nil, fmt.Errorf("%w: jira: the secrets email and api_token are required", connectors.ErrBadConfig)
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(email+":"+token))
	c := &conn{
		s:          s,
		name:       cfg.Name,
		hookSecret: cfg.Secrets["webhook_secret"],
		http:       &httpx.Client{HTTP: cfg.HTTPClient(), Base: s.URL, Header: http.Header{"Authorization": {auth}}, Timeout: time.Duration(s.TimeoutMS) * time.Millisecond},
		loc:        time.UTC,
	}
	var me user
	if err := c.http.Do(ctx, "GET", api+"/myself", nil, &me); err != nil {
		return nil, fmt.Errorf("jira %s: check email and api_token: %w", cfg.Name, err)
	}
	c.me = me
	if me.TimeZone != "" {
		if loc, err := time.LoadLocation(me.TimeZone); err == nil {
			c.loc = loc
		}
	}
	var p struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if err := c.http.Do(ctx, "GET", api+"/project/"+url.PathEscape(s.Project), nil, &p); err != nil {
		if errors.Is(err, connectors.ErrNotFound) {
			return nil, fmt.Errorf("%w: jira %s: project %q not found (or not visible to %s)", connectors.ErrBadConfig, cfg.Name, s.Project, email)
		}
		return nil, fmt.Errorf("jira %s: find project: %w", cfg.Name, err)
	}
	if p.Key != "" {
		c.s.Project = p.Key
	}
	return c, nil
}

type conn struct {
	s          Settings
	name       string
	hookSecret string
	http       *httpx.Client
	me         user
	loc        *time.Location // the API user's time zone: JQL dates are read in it

	mu     sync.Mutex
	fields *fieldMap // loaded on first need, reloaded on a miss
}

type user struct {
	AccountID    string `json:"accountId"`
	DisplayName  string `json:"displayName"`
	EmailAddress string `json:"emailAddress"`
	TimeZone     string `json:"timeZone"`
	Active       bool   `json:"active"`
}

type named struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// issue is the part of Jira's issue JSON read here; fields stay raw
// because custom fields are keyed by id and typed by the field list.
type issue struct {
	ID     string                     `json:"id"`
	Key    string                     `json:"key"`
	Fields map[string]json.RawMessage `json:"fields"`
}

type comment struct {
	ID         string          `json:"id"`
	Author     *user           `json:"author"`
	Body       json.RawMessage `json:"body"`
	Created    jiraTime        `json:"created"`
	Visibility *struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"visibility"`
	JSDPublic *bool `json:"jsdPublic"`
}

func (cm comment) private() bool {
	return cm.Visibility != nil || (cm.JSDPublic != nil && !*cm.JSDPublic)
}

func (cm comment) toComment() connectors.Comment {
	out := connectors.Comment{ID: cm.ID, Body: adfText(cm.Body), CreatedAt: cm.Created.Time, Private: cm.private()}
	if cm.Author != nil {
		out.Author = cm.Author.DisplayName
	}
	return out
}

// jiraTime reads Jira's "2021-01-17T12:34:00.000+0000" stamps.
type jiraTime struct{ time.Time }

func (t *jiraTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil || s == "" {
		return nil // null or not a string: zero
	}
	v, err := parseJiraTime(s)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

func parseJiraTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700", time.RFC3339Nano} {
		if v, err := time.Parse(layout, s); err == nil {
			return v.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("jira: unreadable time %q", s)
}

// standard fields, in the order Describe lists them.
var standard = []connectors.FieldSpec{
	{Name: "summary", Type: connectors.TypeString},
	{Name: "description", Type: connectors.TypeString, Description: "plain text with a little Markdown (lists, code blocks, headings), stored as Atlassian Document Format"},
	{Name: "status", Type: connectors.TypeString, Description: "status name; a write runs the workflow transition that reaches it"},
	{Name: "priority", Type: connectors.TypeString, Description: "priority name"},
	{Name: "issuetype", Type: connectors.TypeString, Description: "issue type name"},
	{Name: "labels", Type: connectors.TypeList},
	{Name: "assignee", Type: connectors.TypeString, Description: "display name; write an accountId, a display name or an email, \"\" to unassign"},
	{Name: "reporter", Type: connectors.TypeString, Description: "display name; written like assignee"},
	{Name: "resolution", Type: connectors.TypeString, ReadOnly: true},
	{Name: "project", Type: connectors.TypeString, Description: "project key", ReadOnly: true},
	{Name: "created", Type: connectors.TypeTime, ReadOnly: true},
	{Name: "updated", Type: connectors.TypeTime, ReadOnly: true},
}

var readOnly = map[string]bool{"resolution": true, "project": true, "created": true, "updated": true, "key": true}

func isStandard(name string) bool {
	for _, s := range standard {
		if s.Name == name {
			return true
		}
	}
	return false
}

// cfKey is the entity field name of a custom field: its name, or "cf_"
// and its name when that collides with a standard field.
func cfKey(name string) string {
	if isStandard(name) {
		return "cf_" + name
	}
	return name
}

func (c *conn) browseURL(key string) string { return c.s.URL + "/browse/" + key }

// entity turns an issue into the engine's flat view.
func (c *conn) entity(is issue, fm *fieldMap) connectors.Entity {
	f := map[string]any{
		"summary":     rawString(is.Fields["summary"]),
		"description": adfText(is.Fields["description"]),
		"status":      rawName(is.Fields["status"]),
		"priority":    rawName(is.Fields["priority"]),
		"issuetype":   rawName(is.Fields["issuetype"]),
		"resolution":  rawName(is.Fields["resolution"]),
		"assignee":    rawUser(is.Fields["assignee"]),
		"reporter":    rawUser(is.Fields["reporter"]),
		"labels":      rawList(is.Fields["labels"]),
		"project":     "",
	}
	var proj struct {
		Key string `json:"key"`
	}
	if json.Unmarshal(is.Fields["project"], &proj) == nil {
		f["project"] = proj.Key
	}
	var created, updated jiraTime
	_ = json.Unmarshal(is.Fields["created"], &created)
	_ = json.Unmarshal(is.Fields["updated"], &updated)
	f["created"] = timeField(created.Time)
	f["updated"] = timeField(updated.Time)
	if fm != nil {
		for id, raw := range is.Fields {
			if !strings.HasPrefix(id, "customfield_") {
				continue
			}
			fd, ok := fm.byID[id]
			if !ok {
				continue
			}
			f[cfKey(fd.Name)] = customValue(fd, raw)
		}
	}
	return connectors.Entity{
		ID:        is.Key,
		Key:       is.Key,
		URL:       c.browseURL(is.Key),
		Type:      "issue",
		Fields:    f,
		UpdatedAt: updated.Time,
	}
}

func timeField(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func rawString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func rawName(raw json.RawMessage) string {
	var n named
	if json.Unmarshal(raw, &n) != nil {
		return ""
	}
	return n.Name
}

func rawUser(raw json.RawMessage) string {
	var u user
	if json.Unmarshal(raw, &u) != nil {
		return ""
	}
	return u.DisplayName
}

func rawList(raw json.RawMessage) []any {
	var l []string
	_ = json.Unmarshal(raw, &l)
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

// customValue flattens a custom field's value: options to their value,
// users to their display name, rich text to text, lists to lists of those.
func customValue(fd fieldDef, raw json.RawMessage) any {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		if fd.Schema.Type == "array" {
			return []any{}
		}
		return nil
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	return flatValue(v)
}

func flatValue(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			out = append(out, flatValue(e))
		}
		return out
	case map[string]any:
		if x["type"] == "doc" {
			b, _ := json.Marshal(x)
			return adfText(b)
		}
		for _, k := range []string{"value", "displayName", "name", "key"} {
			if s, ok := x[k].(string); ok {
				if child, ok := x["child"].(map[string]any); ok { // cascading select
					if cv, ok := child["value"].(string); ok {
						return s + " / " + cv
					}
				}
				return s
			}
		}
		b, _ := json.Marshal(x)
		return string(b)
	default:
		return x
	}
}

// issueKey checks an entity id: a key like ABC-123 or a numeric issue id.
var reKey = regexp.MustCompile(`^([A-Z][A-Z0-9_]*-[1-9][0-9]*|[1-9][0-9]*)$`)

func checkKey(id string) (string, error) {
	id = strings.TrimSpace(id)
	if !reKey.MatchString(id) {
		return "", fmt.Errorf("%w: jira issue id must be a key like ABC-12 or a numeric id, got %q", connectors.ErrNotFound, id)
	}
	return id, nil
}

// Get reads one issue with its comments.
func (c *conn) Get(ctx context.Context, id string) (connectors.Entity, error) {
	key, err := checkKey(id)
	if err != nil {
		return connectors.Entity{}, err
	}
	is, err := c.getIssue(ctx, key)
	if err != nil {
		return connectors.Entity{}, err
	}
	return c.full(ctx, is)
}

// full makes the entity of an issue read by id or listed by a search, with
// its comments (read separately: the issue carries only a first page).
func (c *conn) full(ctx context.Context, is issue) (connectors.Entity, error) {
	fm, err := c.fieldMap(ctx, false)
	if err != nil {
		return connectors.Entity{}, err
	}
	e := c.entity(is, fm)
	cms, err := c.comments(ctx, is.Key)
	if err != nil {
		return connectors.Entity{}, err
	}
	e.Comments = cms
	return e, nil
}

func (c *conn) getIssue(ctx context.Context, key string) (issue, error) {
	var is issue
	if err := c.http.Do(ctx, "GET", api+"/issue/"+url.PathEscape(key)+"?fields=*all", nil, &is); err != nil {
		return issue{}, fmt.Errorf("jira get issue %s: %w", key, jiraErrors(err, nil))
	}
	return is, nil
}

// comments reads all comments of an issue, oldest first, page by page.
func (c *conn) comments(ctx context.Context, key string) ([]connectors.Comment, error) {
	var out []connectors.Comment
	for start := 0; start < 100000; {
		q := url.Values{"startAt": {strconv.Itoa(start)}, "maxResults": {"100"}, "orderBy": {"created"}}
		var page struct {
			Comments []comment `json:"comments"`
			StartAt  int       `json:"startAt"`
			Total    int       `json:"total"`
		}
		if err := c.http.Do(ctx, "GET", api+"/issue/"+url.PathEscape(key)+"/comment?"+q.Encode(), nil, &page); err != nil {
			return nil, fmt.Errorf("jira comments of %s: %w", key, jiraErrors(err, nil))
		}
		for _, cm := range page.Comments {
			out = append(out, cm.toComment())
		}
		start += len(page.Comments)
		if len(page.Comments) == 0 || start >= page.Total {
			break
		}
	}
	return out, nil
}

// Create makes an issue in the project, then runs the transition to the
// wanted status (Jira creates issues in the workflow's initial status).
func (c *conn) Create(ctx context.Context, fields map[string]any) (connectors.Entity, error) {
	return c.create(ctx, "", fields)
}

// CreateCorrelated stores key in the correlation custom field.
func (c *conn) CreateCorrelated(ctx context.Context, key string, fields map[string]any) (connectors.Entity, error) {
	if c.s.CorrelationField == "" {
		return c.create(ctx, "", fields)
	}
	return c.create(ctx, key, fields)
}

// FindCorrelated searches the correlation field for key. Jira's text
// search is tokenised and fuzzy, so every hit is compared exactly.
func (c *conn) FindCorrelated(ctx context.Context, key string) (connectors.Entity, bool, error) {
	if c.s.CorrelationField == "" {
		return connectors.Entity{}, false, nil
	}
	fd, err := c.correlationField(ctx)
	if err != nil {
		return connectors.Entity{}, false, err
	}
	jql := fmt.Sprintf(`project = %s AND cf[%s] ~ %s`, jqlQuote(c.s.Project), strings.TrimPrefix(fd.ID, "customfield_"), jqlQuote(`"`+key+`"`))
	body := map[string]any{"jql": jql, "maxResults": 50, "fields": []string{fd.ID}}
	var out struct {
		Issues []issue `json:"issues"`
	}
	if err := c.http.Do(ctx, "POST", api+"/search/jql", body, &out); err != nil {
		return connectors.Entity{}, false, fmt.Errorf("jira find correlated: %w", jiraErrors(err, nil))
	}
	for _, is := range out.Issues {
		if rawString(is.Fields[fd.ID]) == key {
			e, err := c.Get(ctx, is.Key)
			return e, err == nil, err
		}
	}
	return connectors.Entity{}, false, nil
}

func (c *conn) correlationField(ctx context.Context) (fieldDef, error) {
	fd, ok, err := c.customField(ctx, c.s.CorrelationField)
	if err != nil {
		return fieldDef{}, err
	}
	if !ok {
		return fieldDef{}, fmt.Errorf("%w: jira: correlation_field %q is not a custom field of this site", connectors.ErrBadConfig, c.s.CorrelationField)
	}
	return fd, nil
}

func (c *conn) create(ctx context.Context, corrKey string, fields map[string]any) (connectors.Entity, error) {
	body, status, err := c.issueFields(ctx, fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	body["project"] = map[string]any{"key": c.s.Project}
	if _, ok := body["issuetype"]; !ok {
		body["issuetype"] = map[string]any{"name": c.s.IssueType}
	}
	if s, _ := body["summary"].(string); strings.TrimSpace(s) == "" {
		return connectors.Entity{}, fmt.Errorf("%w: jira: summary is required to create an issue", connectors.ErrInvalid)
	}
	if corrKey != "" {
		fd, err := c.correlationField(ctx)
		if err != nil {
			return connectors.Entity{}, err
		}
		body[fd.ID] = corrKey
	}
	var created struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	fm, _ := c.fieldMap(ctx, false)
	if err := c.http.Do(ctx, "POST", api+"/issue", map[string]any{"fields": body}, &created); err != nil {
		return connectors.Entity{}, fmt.Errorf("jira create issue: %w", jiraErrors(err, fm))
	}
	if status != "" {
		if err := c.transition(ctx, created.Key, status); err != nil {
			// The issue exists: return it with the error, as stored.
			e, gerr := c.Get(ctx, created.Key)
			if gerr != nil {
				e = connectors.Entity{ID: created.Key, Key: created.Key}
			}
			return e, fmt.Errorf("jira created %s but could not set its status: %w", created.Key, err)
		}
	}
	return c.Get(ctx, created.Key)
}

// Update changes the given fields with one PUT (Jira answers 204), runs the
// transition when the status changes, then reads the issue back.
func (c *conn) Update(ctx context.Context, id string, fields map[string]any) (connectors.Entity, error) {
	key, err := checkKey(id)
	if err != nil {
		return connectors.Entity{}, err
	}
	body, status, err := c.issueFields(ctx, fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	if len(body) > 0 {
		fm, _ := c.fieldMap(ctx, false)
		if err := c.http.Do(ctx, "PUT", api+"/issue/"+url.PathEscape(key), map[string]any{"fields": body}, nil); err != nil {
			return connectors.Entity{}, fmt.Errorf("jira update issue %s: %w", key, jiraErrors(err, fm))
		}
	}
	if status != "" {
		if err := c.transition(ctx, key, status); err != nil {
			return connectors.Entity{}, err
		}
	}
	return c.Get(ctx, key)
}

// issueFields maps engine fields to Jira's "fields" object. The status is
// returned apart: it is not a field Jira lets one set, but a transition.
func (c *conn) issueFields(ctx context.Context, fields map[string]any) (map[string]any, string, error) {
	body := map[string]any{}
	status := ""
	var unknown []string
	for k, v := range fields {
		switch k {
		case "summary":
			s := connectors.Text(v)
			if strings.TrimSpace(s) == "" {
				return nil, "", fmt.Errorf("%w: jira: summary cannot be empty", connectors.ErrInvalid)
			}
			body["summary"] = s
		case "description":
			if doc := textADF(connectors.Text(v)); doc != nil {
				body["description"] = doc
			} else {
				body["description"] = nil
			}
		case "status":
			status = strings.TrimSpace(connectors.Text(v))
			if status == "" {
				return nil, "", fmt.Errorf("%w: jira: status cannot be empty", connectors.ErrInvalid)
			}
		case "priority", "issuetype":
			name := strings.TrimSpace(connectors.Text(v))
			if name == "" {
				return nil, "", fmt.Errorf("%w: jira: %s cannot be empty", connectors.ErrInvalid, k)
			}
			body[k] = map[string]any{"name": name}
		case "labels":
			labels, err := labelList(v)
			if err != nil {
				return nil, "", err
			}
			body["labels"] = labels
		case "assignee", "reporter":
			who := strings.TrimSpace(connectors.Text(v))
			if who == "" {
				body[k] = nil
				continue
			}
			id, err := c.resolveUser(ctx, who)
			if err != nil {
				return nil, "", err
			}
			body[k] = map[string]any{"accountId": id}
		default:
			if readOnly[k] {
				continue // read-only fields a script copied back are ignored, not an error
			}
			fd, ok, err := c.customField(ctx, strings.TrimPrefix(k, "cf_"))
			if err == nil && !ok && strings.HasPrefix(k, "cf_") {
				fd, ok, err = c.customField(ctx, k) // a field really named "cf_…"
			}
			if err != nil {
				return nil, "", err
			}
			if !ok {
				unknown = append(unknown, k)
				continue
			}
			val, err := c.customWrite(ctx, fd, v)
			if err != nil {
				return nil, "", err
			}
			body[fd.ID] = val
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, "", fmt.Errorf("%w: jira: unknown issue field(s) %s (not a standard field nor a custom field of this site)", connectors.ErrInvalid, strings.Join(unknown, ", "))
	}
	return body, status, nil
}

func labelList(v any) ([]string, error) {
	var in []string
	switch x := v.(type) {
	case nil:
	case []any:
		for _, e := range x {
			in = append(in, connectors.Text(e))
		}
	case []string:
		in = x
	case string:
		in = strings.FieldsFunc(x, func(r rune) bool { return r == ',' })
	default:
		return nil, fmt.Errorf("%w: jira: labels must be a list, got %T", connectors.ErrInvalid, v)
	}
	out := []string{}
	for _, l := range in {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if strings.ContainsAny(l, " \t\n") {
			return nil, fmt.Errorf("%w: jira: label %q contains a space (Jira labels cannot)", connectors.ErrInvalid, l)
		}
		out = append(out, l)
	}
	return out, nil
}

// customWrite shapes a value for a custom field by its schema type.
func (c *conn) customWrite(ctx context.Context, fd fieldDef, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch fd.Schema.Type {
	case "number":
		n, err := connectors.Number(v)
		if err != nil {
			return nil, fmt.Errorf("%w: jira: field %q takes a number, got %v", connectors.ErrInvalid, fd.Name, v)
		}
		return n, nil
	case "option":
		if connectors.Text(v) == "" {
			return nil, nil
		}
		return map[string]any{"value": connectors.Text(v)}, nil
	case "user":
		if connectors.Text(v) == "" {
			return nil, nil
		}
		id, err := c.resolveUser(ctx, connectors.Text(v))
		if err != nil {
			return nil, err
		}
		return map[string]any{"accountId": id}, nil
	case "array":
		var items []any
		switch x := v.(type) {
		case []any:
			items = x
		default:
			for _, s := range strings.Split(connectors.Text(v), ",") {
				if s = strings.TrimSpace(s); s != "" {
					items = append(items, s)
				}
			}
		}
		out := make([]any, 0, len(items))
		for _, it := range items {
			switch fd.Schema.Items {
			case "option":
				out = append(out, map[string]any{"value": connectors.Text(it)})
			case "user":
				id, err := c.resolveUser(ctx, connectors.Text(it))
				if err != nil {
					return nil, err
				}
				out = append(out, map[string]any{"accountId": id})
			case "version", "component":
				out = append(out, map[string]any{"name": connectors.Text(it)})
			default:
				out = append(out, connectors.Text(it))
			}
		}
		return out, nil
	case "string":
		if strings.HasSuffix(fd.Schema.Custom, ":textarea") {
			if doc := textADF(connectors.Text(v)); doc != nil {
				return doc, nil
			}
			return nil, nil
		}
		return connectors.Text(v), nil
	default:
		return v, nil
	}
}

// jiraErrors turns Jira's {"errorMessages": [...], "errors": {field: msg}}
// answer (kept in the httpx error text) into a readable error, naming
// custom fields by their names.
func jiraErrors(err error, fm *fieldMap) error {
	if err == nil || !errors.Is(err, connectors.ErrInvalid) {
		return err
	}
	msg := err.Error()
	i := strings.Index(msg, `{"errorMessages"`)
	if j := strings.Index(msg, `{"errors"`); i < 0 || (j >= 0 && j < i) {
		i = j
	}
	if i < 0 {
		return err
	}
	var e struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
	}
	if json.Unmarshal([]byte(strings.TrimSuffix(msg[i:], "…")), &e) != nil {
		return err
	}
	parts := append([]string(nil), e.ErrorMessages...)
	keys := make([]string, 0, len(e.Errors))
	for k := range e.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := k
		if fm != nil {
			if fd, ok := fm.byID[k]; ok && fd.Custom {
				name = fd.Name
			}
		}
		parts = append(parts, name+": "+e.Errors[k])
	}
	if len(parts) == 0 {
		return err
	}
	return fmt.Errorf("%w: jira refused: %s", connectors.ErrInvalid, strings.Join(parts, "; "))
}

// AddComment adds a comment with an ADF body. A private comment is
// restricted to PrivateCommentRole when set, otherwise made internal the
// Jira Service Management way; if Jira's answer shows it public anyway
// (a project that is not a service project), it is deleted and the write
// refused rather than leaving an internal note public.
func (c *conn) AddComment(ctx context.Context, id string, cm connectors.Comment) (connectors.Comment, error) {
	key, err := checkKey(id)
	if err != nil {
		return connectors.Comment{}, err
	}
	doc := textADF(cm.Body)
	if doc == nil {
		return connectors.Comment{}, fmt.Errorf("%w: jira: empty comment", connectors.ErrInvalid)
	}
	body := map[string]any{"body": doc}
	if cm.Private {
		if c.s.PrivateCommentRole != "" {
			body["visibility"] = map[string]any{"type": "role", "value": c.s.PrivateCommentRole}
		} else {
			body["properties"] = []any{map[string]any{"key": "sd.public.comment", "value": map[string]any{"internal": true}}}
		}
	}
	var out comment
	path := api + "/issue/" + url.PathEscape(key) + "/comment"
	if err := c.http.Do(ctx, "POST", path, body, &out); err != nil {
		return connectors.Comment{}, fmt.Errorf("jira add comment to %s: %w", key, jiraErrors(err, nil))
	}
	if cm.Private && !out.private() {
		if err := c.http.Do(ctx, "DELETE", path+"/"+url.PathEscape(out.ID), nil, nil); err != nil && !errors.Is(err, connectors.ErrNotFound) {
			return connectors.Comment{}, fmt.Errorf("%w: jira: private comment %s on %s came out public and could not be removed: %w", connectors.ErrInvalid, out.ID, key, err)
		}
		return connectors.Comment{}, fmt.Errorf("%w: jira: %s is not a service project, so a private comment needs the setting private_comment_role (the comment was removed)", connectors.ErrInvalid, key)
	}
	return out.toComment(), nil
}

// Delete removes an issue (for connections that propagate deletes).
func (c *conn) Delete(ctx context.Context, id string) error {
	key, err := checkKey(id)
	if err != nil {
		return err
	}
	err = c.http.Do(ctx, "DELETE", api+"/issue/"+url.PathEscape(key), nil, nil)
	if errors.Is(err, connectors.ErrNotFound) {
		return nil // already gone is what was asked
	}
	if err != nil {
		return fmt.Errorf("jira delete issue %s: %w", key, jiraErrors(err, nil))
	}
	return nil
}

// Describe lists the standard fields and the site's custom fields.
func (c *conn) Describe(ctx context.Context) (connectors.Schema, error) {
	fm, err := c.fieldMap(ctx, true)
	if err != nil {
		return connectors.Schema{}, err
	}
	fields := append([]connectors.FieldSpec(nil), standard...)
	var custom []connectors.FieldSpec
	for _, fd := range fm.byID {
		if !fd.Custom {
			continue
		}
		custom = append(custom, connectors.FieldSpec{Name: cfKey(fd.Name), Type: fd.fieldType(), Description: "custom field " + fd.ID})
	}
	sort.Slice(custom, func(i, j int) bool { return custom[i].Name < custom[j].Name })
	return connectors.Schema{EntityType: "issue", Fields: append(fields, custom...), Comments: true}, nil
}

// Close has nothing to release: the HTTP client is shared.
func (c *conn) Close() error { return nil }

// jqlQuote quotes a JQL string value.
func jqlQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
