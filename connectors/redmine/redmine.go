// Package redmine is the connector for Redmine issues in one project, over
// Redmine's REST API (JSON, API key). Journals with notes are the comments;
// private notes are marked Private. Changes are found by polling updated_on,
// which Redmine keeps to whole seconds: see changes.go for how same-second
// updates are neither skipped nor taken twice.
package redmine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
)

// Settings is a Redmine system's non-secret configuration. The API key is
// the secret "api_key".
type Settings struct {
	// URL is Redmine's base address, for example https://redmine.example.com.
	URL string `json:"url" spec:"required"`
	// Project is the project identifier (or numeric id) whose issues sync.
	Project string `json:"project" spec:"required"`
	// Tracker names the tracker new issues get when a script sets none.
	Tracker string `json:"tracker,omitempty"`
	// CorrelationField names a string issue custom field (a filter) where
	// Duplex stores its key on issues it creates, so a create interrupted by
	// a crash is found again instead of repeated. Optional.
	CorrelationField string `json:"correlation_field,omitempty"`
	// TimeoutMS bounds one request; default 30000.
	TimeoutMS int `json:"timeout_ms,omitempty" spec:"default=30000"`
}

// New opens a Redmine connector: it checks the key against /users/current
// (so a wrong key fails here, not as anonymous reads later) and finds the
// project.
func New(ctx context.Context, cfg connectors.Config) (connectors.Connector, error) {
	s, err := ParseSettings(cfg.Settings)
	if err != nil {
		return nil, err
	}
	key := cfg.Secrets["api_key"]
	if key == "" {
		return nil, fmt.Errorf("%w: redmine: the secret api_key is required", connectors.ErrBadConfig)
	}
	c := &conn{
		s:    s,
		http: &httpx.Client{HTTP: cfg.HTTPClient(), Base: s.URL, Header: http.Header{"X-Redmine-Api-Key": {key}}, Timeout: time.Duration(s.TimeoutMS) * time.Millisecond},
	}
	var me struct {
		User struct {
			ID    int64  `json:"id"`
			Login string `json:"login"`
		} `json:"user"`
	}
	if err := c.http.Do(ctx, "GET", "/users/current.json", nil, &me); err != nil {
		return nil, fmt.Errorf("redmine %s: check api key: %w", cfg.Name, err)
	}
	c.userID = me.User.ID
	var p struct {
		Project struct {
			ID int64 `json:"id"`
		} `json:"project"`
	}
	if err := c.http.Do(ctx, "GET", "/projects/"+url.PathEscape(s.Project)+".json", nil, &p); err != nil {
		if errors.Is(err, connectors.ErrNotFound) {
			return nil, fmt.Errorf("%w: redmine %s: project %q not found", connectors.ErrBadConfig, cfg.Name, s.Project)
		}
		return nil, fmt.Errorf("redmine %s: find project: %w", cfg.Name, err)
	}
	c.projectID = p.Project.ID
	return c, nil
}

type conn struct {
	s         Settings
	http      *httpx.Client
	userID    int64
	projectID int64

	mu  sync.Mutex
	ids *lookups // name → id maps, loaded on first need and reloaded on a miss
}

// named is Redmine's {id, name} reference.
type named struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type customValue struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Multiple bool   `json:"multiple"`
	Value    any    `json:"value"`
}

type journal struct {
	ID           int64     `json:"id"`
	User         named     `json:"user"`
	Notes        *string   `json:"notes"`
	CreatedOn    time.Time `json:"created_on"`
	PrivateNotes bool      `json:"private_notes"`
}

type issue struct {
	ID           int64         `json:"id"`
	Project      named         `json:"project"`
	Tracker      named         `json:"tracker"`
	Status       named         `json:"status"`
	Priority     named         `json:"priority"`
	Author       named         `json:"author"`
	AssignedTo   *named        `json:"assigned_to"`
	Subject      string        `json:"subject"`
	Description  *string       `json:"description"`
	StartDate    *string       `json:"start_date"`
	DueDate      *string       `json:"due_date"`
	DoneRatio    float64       `json:"done_ratio"`
	CustomFields []customValue `json:"custom_fields"`
	CreatedOn    time.Time     `json:"created_on"`
	UpdatedOn    time.Time     `json:"updated_on"`
	ClosedOn     *time.Time    `json:"closed_on"`
	Journals     []journal     `json:"journals"`
	Attachments  []attachment  `json:"attachments"`
}

// standard fields, in the order Describe lists them.
var standard = []connectors.FieldSpec{
	{Name: "subject", Type: connectors.TypeString},
	{Name: "description", Type: connectors.TypeString},
	{Name: "status", Type: connectors.TypeString, Description: "status name; writes follow the workflow of the API key's user"},
	{Name: "closed", Type: connectors.TypeBool, Description: "whether the status is a closed one", ReadOnly: true},
	{Name: "priority", Type: connectors.TypeString, Description: "priority name"},
	{Name: "tracker", Type: connectors.TypeString, Description: "tracker name"},
	{Name: "assignee", Type: connectors.TypeString, Description: "assignee's name; write a login, a name or a numeric user id, \"\" to unassign"},
	{Name: "author", Type: connectors.TypeString, ReadOnly: true},
	{Name: "project", Type: connectors.TypeString, Description: "project name; write an identifier (or id) to create or move the issue there (the project polled is the system's, with its subprojects)"},
	{Name: "start_date", Type: connectors.TypeString, Description: "YYYY-MM-DD"},
	{Name: "due_date", Type: connectors.TypeString, Description: "YYYY-MM-DD"},
	{Name: "done_ratio", Type: connectors.TypeNumber, Description: "0-100"},
	{Name: "created_on", Type: connectors.TypeTime, ReadOnly: true},
	{Name: "closed_on", Type: connectors.TypeTime, ReadOnly: true},
}

var readOnly = map[string]bool{"closed": true, "author": true, "created_on": true, "closed_on": true}

func (c *conn) issueURL(id int64) string { return fmt.Sprintf("%s/issues/%d", c.s.URL, id) }

// entity turns an issue into the engine's flat view. Custom fields appear
// under their names; one whose name is a standard field's gets "cf_" in front.
func (c *conn) entity(is issue) connectors.Entity {
	f := map[string]any{
		"subject":     is.Subject,
		"description": lf(deref(is.Description)),
		"status":      is.Status.Name,
		"priority":    is.Priority.Name,
		"tracker":     is.Tracker.Name,
		"author":      is.Author.Name,
		"project":     is.Project.Name,
		"start_date":  deref(is.StartDate),
		"due_date":    deref(is.DueDate),
		"done_ratio":  is.DoneRatio,
		"created_on":  is.CreatedOn.UTC().Format(time.RFC3339),
		"closed_on":   nil,
		"assignee":    "",
	}
	if is.AssignedTo != nil {
		f["assignee"] = is.AssignedTo.Name
	}
	if is.ClosedOn != nil {
		f["closed_on"] = is.ClosedOn.UTC().Format(time.RFC3339)
	}
	f["closed"] = is.ClosedOn != nil
	if ids := c.cachedLookups(); ids != nil {
		if closed, ok := ids.closed[is.Status.ID]; ok {
			f["closed"] = closed
		}
	}
	for _, cf := range is.CustomFields {
		f[cfKey(cf.Name)] = cfValue(cf.Value)
	}
	e := connectors.Entity{
		ID:        strconv.FormatInt(is.ID, 10),
		Key:       "#" + strconv.FormatInt(is.ID, 10),
		URL:       c.issueURL(is.ID),
		Type:      "issue",
		Fields:    f,
		UpdatedAt: is.UpdatedOn.UTC(),
	}
	for _, j := range is.Journals {
		e.UpdatedBy = j.User.Name
		if j.Notes == nil || *j.Notes == "" {
			continue // a journal of field changes only
		}
		e.Comments = append(e.Comments, connectors.Comment{
			ID: strconv.FormatInt(j.ID, 10), Author: j.User.Name, Body: lf(*j.Notes),
			CreatedAt: j.CreatedOn.UTC(), Private: j.PrivateNotes,
		})
	}
	if e.UpdatedBy == "" {
		e.UpdatedBy = is.Author.Name
	}
	for _, a := range is.Attachments {
		e.Attachments = append(e.Attachments, a.public())
	}
	return e
}

func cfKey(name string) string {
	for _, s := range standard {
		if s.Name == name {
			return "cf_" + name
		}
	}
	return name
}

// cfValue keeps strings as strings and a multiple field's values as a list.
func cfValue(v any) any {
	switch x := v.(type) {
	case nil:
		return ""
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	default:
		return fmt.Sprint(x)
	}
}

// lf undoes Redmine's CRLF line endings on stored text, so what Duplex
// wrote reads back equal (otherwise each write would look like an edit).
func lf(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func parseID(id string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(id, "#"), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: redmine issue id must be a positive number, got %q", connectors.ErrNotFound, id)
	}
	return n, nil
}

// Get reads one issue with its journals. An issue moved to a project
// outside the polled one is still read: its twin keeps receiving changes.
func (c *conn) Get(ctx context.Context, id string) (connectors.Entity, error) {
	n, err := parseID(id)
	if err != nil {
		return connectors.Entity{}, err
	}
	is, err := c.getIssue(ctx, n)
	if err != nil {
		return connectors.Entity{}, err
	}
	return c.entity(is), nil
}

func (c *conn) getIssue(ctx context.Context, n int64) (issue, error) {
	var out struct {
		Issue issue `json:"issue"`
	}
	if err := c.http.Do(ctx, "GET", fmt.Sprintf("/issues/%d.json?include=journals,attachments", n), nil, &out); err != nil {
		return issue{}, fmt.Errorf("redmine get issue %d: %w", n, err)
	}
	return out.Issue, nil
}

// Create makes an issue in the project. Redmine applies a status given at
// creation only where the workflow allows it; otherwise the status is set
// by a second request, and refused with a clear error if the workflow says no.
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

// FindCorrelated searches the correlation custom field for key.
func (c *conn) FindCorrelated(ctx context.Context, key string) (connectors.Entity, bool, error) {
	if c.s.CorrelationField == "" {
		return connectors.Entity{}, false, nil
	}
	ids, err := c.lookups(ctx, false)
	if err != nil {
		return connectors.Entity{}, false, err
	}
	cfID, ok := ids.customByName[c.s.CorrelationField]
	if !ok {
		return connectors.Entity{}, false, fmt.Errorf("%w: redmine: correlation_field %q is not a custom field", connectors.ErrBadConfig, c.s.CorrelationField)
	}
	// The filter is a substring match, and a key is a prefix of others
	// (twin 1's of twins 10-19, 100-199...): every page of hits is read
	// until the exact key. Hits are rare when a create looks its key up
	// (the twins with longer ids are newer), so this is one request.
	q := url.Values{"project_id": {strconv.FormatInt(c.projectID, 10)}, "status_id": {"*"}, "sort": {"id"},
		"limit": {strconv.Itoa(correlatedPage)}}
	q.Set(fmt.Sprintf("cf_%d", cfID), key)
	for offset := 0; ; offset += correlatedPage {
		q.Set("offset", strconv.Itoa(offset))
		var out struct {
			Issues     []issue `json:"issues"`
			TotalCount int     `json:"total_count"`
		}
		if err := c.http.Do(ctx, "GET", "/issues.json?"+q.Encode(), nil, &out); err != nil {
			return connectors.Entity{}, false, fmt.Errorf("redmine find correlated: %w", err)
		}
		for _, is := range out.Issues {
			for _, cf := range is.CustomFields {
				if cf.ID == cfID && fmt.Sprint(cf.Value) == key {
					e, err := c.Get(ctx, strconv.FormatInt(is.ID, 10))
					return e, err == nil, err
				}
			}
		}
		if len(out.Issues) == 0 || offset+len(out.Issues) >= out.TotalCount {
			return connectors.Entity{}, false, nil
		}
	}
}

// correlatedPage is how many hits of a correlation look-up one request
// reads (Redmine's largest page).
const correlatedPage = 100

func (c *conn) create(ctx context.Context, corrKey string, fields map[string]any) (connectors.Entity, error) {
	body, err := c.issueBody(ctx, fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	if _, ok := body["project_id"]; !ok {
		body["project_id"] = c.projectID
	}
	if _, ok := body["tracker_id"]; !ok && c.s.Tracker != "" {
		ids, err := c.lookups(ctx, false)
		if err != nil {
			return connectors.Entity{}, err
		}
		tid, ok := ids.trackers[strings.ToLower(c.s.Tracker)]
		if !ok {
			return connectors.Entity{}, fmt.Errorf("%w: redmine: tracker %q (settings) does not exist", connectors.ErrBadConfig, c.s.Tracker)
		}
		body["tracker_id"] = tid
	}
	if corrKey != "" {
		ids, err := c.lookups(ctx, false)
		if err != nil {
			return connectors.Entity{}, err
		}
		cfID, ok := ids.customByName[c.s.CorrelationField]
		if !ok {
			return connectors.Entity{}, fmt.Errorf("%w: redmine: correlation_field %q is not a custom field", connectors.ErrBadConfig, c.s.CorrelationField)
		}
		cfs, _ := body["custom_fields"].([]map[string]any)
		body["custom_fields"] = append(cfs, map[string]any{"id": cfID, "value": corrKey})
	}
	var out struct {
		Issue issue `json:"issue"`
	}
	if err := c.http.Do(ctx, "POST", "/issues.json", map[string]any{"issue": body}, &out); err != nil {
		return connectors.Entity{}, fmt.Errorf("redmine create issue: %w", redmineErrors(err))
	}
	is := out.Issue
	if want, ok := body["status_id"].(int64); ok && is.Status.ID != want {
		if err := c.http.Do(ctx, "PUT", fmt.Sprintf("/issues/%d.json", is.ID), map[string]any{"issue": map[string]any{"status_id": want}}, nil); err != nil {
			return connectors.Entity{}, fmt.Errorf("redmine set status of new issue %d: %w", is.ID, redmineErrors(err))
		}
	}
	got, err := c.getIssue(ctx, is.ID)
	if err != nil {
		return connectors.Entity{}, err
	}
	if err := c.checkStatus(ctx, body, fields, got); err != nil {
		return c.entity(got), err
	}
	return c.entity(got), nil
}

// Update changes the given fields with one PUT, then reads the issue back.
// Redmine answers 204 even when the workflow did not allow a status change
// (it keeps the old status silently), so the status is checked.
func (c *conn) Update(ctx context.Context, id string, fields map[string]any) (connectors.Entity, error) {
	n, err := parseID(id)
	if err != nil {
		return connectors.Entity{}, err
	}
	body, err := c.issueBody(ctx, fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	if len(body) > 0 {
		if err := c.http.Do(ctx, "PUT", fmt.Sprintf("/issues/%d.json", n), map[string]any{"issue": body}, nil); err != nil {
			return connectors.Entity{}, fmt.Errorf("redmine update issue %d: %w", n, redmineErrors(err))
		}
	}
	got, err := c.getIssue(ctx, n)
	if err != nil {
		return connectors.Entity{}, err
	}
	if err := c.checkStatus(ctx, body, fields, got); err != nil {
		return c.entity(got), err
	}
	return c.entity(got), nil
}

// checkStatus reports a status the workflow refused, naming what the same
// write saved: Redmine saves the other fields of a write whose status it
// refuses. The engine's retry sends only what still differs, so the status.
func (c *conn) checkStatus(ctx context.Context, body, fields map[string]any, got issue) error {
	want, ok := body["status_id"].(int64)
	if !ok || got.Status.ID == want {
		return nil
	}
	name := strconv.FormatInt(want, 10)
	if ids, err := c.lookups(ctx, false); err == nil && ids.statusNames[want] != "" {
		name = ids.statusNames[want]
	}
	var saved []string
	for k := range fields {
		if k != "status" {
			saved = append(saved, k)
		}
	}
	sort.Strings(saved)
	applied := "nothing else was in the write"
	if len(saved) > 0 {
		applied = "saved: " + strings.Join(saved, ", ")
	}
	return &connectors.PartialError{Applied: saved, Refused: []string{"status"}, Err: fmt.Errorf(
		"%w: redmine kept issue %d at status %q: the workflow does not allow the API user to move it to %q from there (refused: status; %s)",
		connectors.ErrInvalid, got.ID, got.Status.Name, name, applied)}
}

// issueBody maps engine fields to Redmine's issue JSON, names to ids.
func (c *conn) issueBody(ctx context.Context, fields map[string]any) (map[string]any, error) {
	body := map[string]any{}
	var cfs []map[string]any
	var unknown []string
	for k, v := range fields {
		switch k {
		case "subject", "description", "start_date", "due_date":
			s := connectors.Text(v)
			if k == "subject" && strings.TrimSpace(s) == "" {
				return nil, fmt.Errorf("%w: redmine: subject cannot be empty", connectors.ErrInvalid)
			}
			if (k == "start_date" || k == "due_date") && s != "" {
				if _, err := time.Parse("2006-01-02", s); err != nil {
					return nil, fmt.Errorf("%w: redmine: %s must be YYYY-MM-DD, got %q", connectors.ErrInvalid, k, s)
				}
			}
			body[k] = s
		case "done_ratio":
			n, err := connectors.Number(v)
			if err != nil || n < 0 || n > 100 {
				return nil, fmt.Errorf("%w: redmine: done_ratio must be 0-100, got %v", connectors.ErrInvalid, v)
			}
			body[k] = n
		case "project":
			p := strings.TrimSpace(connectors.Text(v))
			if p == "" {
				continue // keep the project
			}
			body["project_id"] = p
		case "status", "priority", "tracker":
			id, err := c.resolve(ctx, k, connectors.Text(v))
			if err != nil {
				return nil, err
			}
			body[k+"_id"] = id
		case "assignee":
			id, err := c.resolveUser(ctx, connectors.Text(v))
			if err != nil {
				return nil, err
			}
			if id == 0 {
				body["assigned_to_id"] = ""
			} else {
				body["assigned_to_id"] = id
			}
		default:
			if readOnly[k] {
				continue // read-only fields a script copied back are ignored, not an error
			}
			ids, err := c.lookups(ctx, false)
			if err != nil {
				return nil, err
			}
			cfID, ok := ids.customByName[strings.TrimPrefix(k, "cf_")]
			if !ok {
				if ids, err = c.lookups(ctx, true); err == nil {
					cfID, ok = ids.customByName[strings.TrimPrefix(k, "cf_")]
				}
			}
			if !ok {
				unknown = append(unknown, k)
				continue
			}
			cfs = append(cfs, map[string]any{"id": cfID, "value": cfWrite(v)})
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%w: redmine: unknown issue field(s) %s (not a standard field nor a custom field of this Redmine)", connectors.ErrInvalid, strings.Join(unknown, ", "))
	}
	if len(cfs) > 0 {
		sort.Slice(cfs, func(i, j int) bool { return cfs[i]["id"].(int64) < cfs[j]["id"].(int64) })
		body["custom_fields"] = cfs
	}
	return body, nil
}

func cfWrite(v any) any {
	if list, ok := v.([]any); ok {
		out := make([]string, len(list))
		for i, e := range list {
			out[i] = connectors.Text(e)
		}
		return out
	}
	return connectors.Text(v)
}

// redmineErrors turns Redmine's 422 {"errors": [...]} into a readable error.
//
// A 422 with an empty list is no refusal: it is what Redmine answers the
// loser of two saves of one issue at the same instant (its optimistic lock,
// ActiveRecord::StaleObjectError). That is a conflict to retry, not invalid
// data: ErrUnavailable, so the engine tries again, reading the issue anew
// and merging again, instead of failing the event for good.
func redmineErrors(err error) error {
	if !errors.Is(err, connectors.ErrInvalid) {
		return err
	}
	msg := err.Error()
	if i := strings.Index(msg, `{"errors":`); i >= 0 {
		var e struct {
			Errors []string `json:"errors"`
		}
		if json.Unmarshal([]byte(strings.TrimSuffix(msg[i:], "…")), &e) == nil {
			var se *httpx.StatusError
			if len(e.Errors) == 0 && errors.As(err, &se) && se.Code == http.StatusUnprocessableEntity {
				return fmt.Errorf("%w: redmine: another save of the issue won at the same instant (422 with no error); to be tried again: %v",
					connectors.ErrUnavailable, se)
			}
			if len(e.Errors) > 0 {
				return fmt.Errorf("%w: redmine refused: %s", connectors.ErrInvalid, strings.Join(e.Errors, "; "))
			}
		}
	}
	return err
}

// AddComment adds a note (private when c.Private). Redmine's PUT answers
// 204 without the journal, so the new journal is found by reading the issue:
// the last one by this API user with exactly this text.
func (c *conn) AddComment(ctx context.Context, id string, cm connectors.Comment) (connectors.Comment, error) {
	n, err := parseID(id)
	if err != nil {
		return connectors.Comment{}, err
	}
	if strings.TrimSpace(cm.Body) == "" {
		return connectors.Comment{}, fmt.Errorf("%w: redmine: empty note", connectors.ErrInvalid)
	}
	body := map[string]any{"issue": map[string]any{"notes": cm.Body, "private_notes": cm.Private}}
	if err := c.http.Do(ctx, "PUT", fmt.Sprintf("/issues/%d.json", n), body, nil); err != nil {
		return connectors.Comment{}, fmt.Errorf("redmine add note to issue %d: %w", n, redmineErrors(err))
	}
	is, err := c.getIssue(ctx, n)
	if err != nil {
		return connectors.Comment{}, err
	}
	for i := len(is.Journals) - 1; i >= 0; i-- {
		j := is.Journals[i]
		if j.User.ID == c.userID && j.Notes != nil && lf(*j.Notes) == lf(cm.Body) {
			return connectors.Comment{ID: strconv.FormatInt(j.ID, 10), Author: j.User.Name, Body: lf(*j.Notes), CreatedAt: j.CreatedOn.UTC(), Private: j.PrivateNotes}, nil
		}
	}
	return connectors.Comment{}, fmt.Errorf("%w: redmine: the note added to issue %d is not in its journals", connectors.ErrUnavailable, n)
}

// Delete removes an issue (for connections that propagate deletes).
func (c *conn) Delete(ctx context.Context, id string) error {
	n, err := parseID(id)
	if err != nil {
		return err
	}
	err = c.http.Do(ctx, "DELETE", fmt.Sprintf("/issues/%d.json", n), nil, nil)
	if errors.Is(err, connectors.ErrNotFound) {
		return nil // already gone is what was asked
	}
	if err != nil {
		return fmt.Errorf("redmine delete issue %d: %w", n, err)
	}
	return nil
}

// Describe lists the standard fields and the issue custom fields.
func (c *conn) Describe(ctx context.Context) (connectors.Schema, error) {
	ids, err := c.lookups(ctx, true)
	if err != nil {
		return connectors.Schema{}, err
	}
	fields := append([]connectors.FieldSpec(nil), standard...)
	names := make([]string, 0, len(ids.customByName))
	for n := range ids.customByName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		typ := connectors.TypeString
		if ids.customMultiple[n] {
			typ = connectors.TypeList
		}
		fields = append(fields, connectors.FieldSpec{Name: cfKey(n), Type: typ, Description: "custom field"})
	}
	return connectors.Schema{EntityType: "issue", Fields: fields, Comments: true}, nil
}

// Close has nothing to release: the HTTP client is shared.
func (c *conn) Close() error { return nil }
