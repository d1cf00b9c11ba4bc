package zendesk

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// ticketAnswer is what show, create and update answer.
type ticketAnswer struct {
	Ticket ticket `json:"ticket"`
	Audit  struct {
		Events []comment `json:"events"`
	} `json:"audit"`
}

// Get reads one ticket with its comments.
func (c *conn) Get(ctx context.Context, id string) (connectors.Entity, error) {
	n, err := parseID(id)
	if err != nil {
		return connectors.Entity{}, err
	}
	var a ticketAnswer
	if err := c.do(ctx, "GET", fmt.Sprintf("/tickets/%d.json", n), nil, &a); err != nil {
		return connectors.Entity{}, fmt.Errorf("zendesk get ticket %d: %w", n, err)
	}
	return c.withComments(ctx, a.Ticket)
}

// withComments reads the ticket's comments (cursor pagination, 100 a page)
// and the users they name, and builds the entity.
func (c *conn) withComments(ctx context.Context, t ticket) (connectors.Entity, error) {
	var all []comment
	q := url.Values{"page[size]": {"100"}}
	for pages := 0; ; pages++ {
		if pages == 100 {
			return connectors.Entity{}, fmt.Errorf("%w: zendesk comments of ticket %d: more than 100 pages", connectors.ErrUnavailable, t.ID)
		}
		var p struct {
			Comments []comment `json:"comments"`
			Meta     struct {
				HasMore     bool   `json:"has_more"`
				AfterCursor string `json:"after_cursor"`
			} `json:"meta"`
		}
		if err := c.do(ctx, "GET", fmt.Sprintf("/tickets/%d/comments.json?%s", t.ID, q.Encode()), nil, &p); err != nil {
			return connectors.Entity{}, fmt.Errorf("zendesk comments of ticket %d: %w", t.ID, err)
		}
		all = append(all, p.Comments...)
		if !p.Meta.HasMore || p.Meta.AfterCursor == "" {
			break
		}
		q.Set("page[after]", p.Meta.AfterCursor)
	}
	ids := []int64{}
	for _, cm := range all {
		ids = append(ids, cm.AuthorID)
	}
	return c.entity(ctx, t, all, ids)
}

// entity maps a ticket (and its comments, oldest first) to an Entity.
func (c *conn) entity(ctx context.Context, t ticket, cs []comment, userIDs []int64) (connectors.Entity, error) {
	if t.RequesterID != nil {
		userIDs = append(userIDs, *t.RequesterID)
	}
	if t.AssigneeID != nil {
		userIDs = append(userIDs, *t.AssigneeID)
	}
	users, err := c.lookupUsers(ctx, userIDs)
	if err != nil {
		return connectors.Entity{}, err
	}
	f := map[string]any{
		"subject": t.Subject, "description": t.Description, "status": t.Status,
		"priority": deref(t.Priority), "ticket_type": deref(t.Type), "external_id": deref(t.ExternalID),
		"assignee": "", "requester": "", "group_id": nil,
		"tags":       sortedList(t.Tags),
		"created_at": t.CreatedAt.UTC().Format(time.RFC3339),
	}
	if t.AssigneeID != nil {
		f["assignee"] = users[*t.AssigneeID].Email
	}
	if t.RequesterID != nil {
		f["requester"] = users[*t.RequesterID].Email
	}
	if t.GroupID != nil {
		f["group_id"] = float64(*t.GroupID)
	}
	if err := c.readCustom(ctx, t.CustomFields, f); err != nil {
		return connectors.Entity{}, err
	}
	id := strconv.FormatInt(t.ID, 10)
	e := connectors.Entity{ID: id, Key: "#" + id, URL: c.s.URL + "/agent/tickets/" + id, Type: "ticket",
		Fields: f, UpdatedAt: t.UpdatedAt.UTC(), Deleted: t.Status == "deleted"}
	for i, cm := range cs {
		for _, a := range cm.Attachments {
			e.Attachments = append(e.Attachments, connectors.Attachment{ID: strconv.FormatInt(a.ID, 10), Name: a.FileName,
				Size: a.Size, ContentType: a.ContentType, CreatedAt: cm.CreatedAt.UTC()})
		}
		if i == 0 {
			continue // Zendesk's description is the first comment
		}
		author := users[cm.AuthorID].Name
		if author == "" {
			author = strconv.FormatInt(cm.AuthorID, 10)
		}
		e.Comments = append(e.Comments, connectors.Comment{ID: strconv.FormatInt(cm.ID, 10), Author: author,
			Body: cm.Body, CreatedAt: cm.CreatedAt.UTC(), Private: !cm.Public})
	}
	return e, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// sortedList is a list field: names sorted, as []any.
func sortedList(xs []string) []any {
	xs = append([]string(nil), xs...)
	sort.Strings(xs)
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// Create opens a ticket. Zendesk makes a ticket's first comment its
// description, so one is required (the subject stands in when empty).
func (c *conn) Create(ctx context.Context, fields map[string]any) (connectors.Entity, error) {
	return c.create(ctx, "", fields)
}

// CreateCorrelated is Create with key stored in external_id.
func (c *conn) CreateCorrelated(ctx context.Context, key string, fields map[string]any) (connectors.Entity, error) {
	if strings.TrimSpace(key) == "" {
		return connectors.Entity{}, fmt.Errorf("%w: zendesk: empty correlation key", connectors.ErrInvalid)
	}
	return c.create(ctx, key, fields)
}

func (c *conn) create(ctx context.Context, key string, fields map[string]any) (connectors.Entity, error) {
	body, err := c.ticketBody(ctx, fields, true)
	if err != nil {
		return connectors.Entity{}, err
	}
	subject, _ := body["subject"].(string)
	if strings.TrimSpace(subject) == "" {
		return connectors.Entity{}, fmt.Errorf("%w: zendesk: a new ticket needs a subject", connectors.ErrInvalid)
	}
	desc, _ := body["description"].(string)
	delete(body, "description")
	if strings.TrimSpace(desc) == "" {
		desc = subject
	}
	body["comment"] = map[string]any{"body": desc, "public": true}
	if key != "" {
		body["external_id"] = key
	}
	var a ticketAnswer
	if err := c.do(ctx, "POST", "/tickets.json", map[string]any{"ticket": body}, &a); err != nil {
		return connectors.Entity{}, fmt.Errorf("zendesk create ticket: %w", err)
	}
	return c.withComments(ctx, a.Ticket)
}

// FindCorrelated lists the tickets whose external_id is key.
func (c *conn) FindCorrelated(ctx context.Context, key string) (connectors.Entity, bool, error) {
	var p struct {
		Tickets []ticket `json:"tickets"`
	}
	if err := c.do(ctx, "GET", "/tickets.json?"+url.Values{"external_id": {key}}.Encode(), nil, &p); err != nil {
		return connectors.Entity{}, false, fmt.Errorf("zendesk find correlated: %w", err)
	}
	for _, t := range p.Tickets {
		if t.Status != "deleted" && deref(t.ExternalID) == key {
			e, err := c.withComments(ctx, t)
			return e, err == nil, err
		}
	}
	return connectors.Entity{}, false, nil
}

// Update changes the given fields with one PUT. The description is the
// first comment and cannot change after the ticket is created.
func (c *conn) Update(ctx context.Context, id string, fields map[string]any) (connectors.Entity, error) {
	n, err := parseID(id)
	if err != nil {
		return connectors.Entity{}, err
	}
	body, err := c.ticketBody(ctx, fields, false)
	if err != nil {
		return connectors.Entity{}, err
	}
	if len(body) == 0 {
		return c.Get(ctx, id)
	}
	var a ticketAnswer
	if err := c.do(ctx, "PUT", fmt.Sprintf("/tickets/%d.json", n), map[string]any{"ticket": body}, &a); err != nil {
		return connectors.Entity{}, fmt.Errorf("zendesk update ticket %d: %w", n, err)
	}
	return c.withComments(ctx, a.Ticket)
}

// AddComment adds a public reply, or an internal note for a private
// comment, with an update of the ticket; the comment's id is the audit
// event's.
func (c *conn) AddComment(ctx context.Context, id string, cm connectors.Comment) (connectors.Comment, error) {
	n, err := parseID(id)
	if err != nil {
		return connectors.Comment{}, err
	}
	if strings.TrimSpace(cm.Body) == "" {
		return connectors.Comment{}, fmt.Errorf("%w: zendesk: empty comment", connectors.ErrInvalid)
	}
	body := map[string]any{"comment": map[string]any{"body": cm.Body, "public": !cm.Private}}
	var a ticketAnswer
	if err := c.do(ctx, "PUT", fmt.Sprintf("/tickets/%d.json", n), map[string]any{"ticket": body}, &a); err != nil {
		return connectors.Comment{}, fmt.Errorf("zendesk comment on ticket %d: %w", n, err)
	}
	for _, ev := range a.Audit.Events {
		if ev.Type == "Comment" {
			out := cm
			out.ID = strconv.FormatInt(ev.ID, 10)
			out.Private = !ev.Public
			if !ev.CreatedAt.IsZero() {
				out.CreatedAt = ev.CreatedAt.UTC()
			} else {
				out.CreatedAt = a.Ticket.UpdatedAt.UTC()
			}
			return out, nil
		}
	}
	return connectors.Comment{}, fmt.Errorf("%w: zendesk: the update of ticket %d lists no comment event", connectors.ErrUnavailable, n)
}

// ticketBody turns entity fields into a ticket object for create or update;
// a read-only or unknown field is refused by name.
func (c *conn) ticketBody(ctx context.Context, fields map[string]any, creating bool) (map[string]any, error) {
	body := map[string]any{}
	var custom []map[string]any
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := fields[k]
		switch k {
		case "subject", "status", "priority", "ticket_type":
			s := connectors.Text(v)
			if k == "ticket_type" {
				k = "type" // Zendesk's name; "type" is the entity's own key in scripts
			}
			if s == "" && (k == "priority" || k == "type") {
				body[k] = nil
			} else {
				body[k] = s
			}
		case "description":
			if !creating {
				return nil, fmt.Errorf("%w: zendesk: description is the ticket's first comment and cannot change after create (add a comment instead)", connectors.ErrInvalid)
			}
			body[k] = connectors.Text(v)
		case "tags":
			tags, err := stringList(v)
			if err != nil {
				return nil, fmt.Errorf("%w: zendesk: tags: %w", connectors.ErrInvalid, err)
			}
			body[k] = tags
		case "assignee":
			if e := connectors.Text(v); e == "" {
				body["assignee_id"] = nil
			} else {
				body["assignee_email"] = e
			}
		case "requester":
			e := connectors.Text(v)
			if e == "" {
				return nil, fmt.Errorf("%w: zendesk: a ticket needs a requester", connectors.ErrInvalid)
			}
			name, _, _ := strings.Cut(e, "@")
			body["requester"] = map[string]any{"email": e, "name": name}
		case "group_id":
			if v == nil || v == "" {
				body[k] = nil
				continue
			}
			g, err := connectors.Number(v)
			if err != nil {
				return nil, fmt.Errorf("%w: zendesk: group_id: %w", connectors.ErrInvalid, err)
			}
			body[k] = int64(g)
		case "external_id", "created_at":
			return nil, fmt.Errorf("%w: zendesk: field %q is read-only", connectors.ErrInvalid, k)
		default:
			cv, err := c.writeCustom(ctx, k, v)
			if err != nil {
				return nil, err
			}
			custom = append(custom, cv)
		}
	}
	if len(custom) > 0 {
		body["custom_fields"] = custom
	}
	return body, nil
}

func stringList(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return []string{}, nil
	case []string:
		return x, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, connectors.Text(e))
		}
		return out, nil
	case string:
		return strings.Fields(x), nil
	}
	return nil, fmt.Errorf("not a list: %T", v)
}

// Describe lists the built-in fields and the account's active custom
// ticket fields by title.
func (c *conn) Describe(ctx context.Context) (connectors.Schema, error) {
	fs, err := c.customFields(ctx, false)
	if err != nil {
		return connectors.Schema{}, err
	}
	out := append([]connectors.FieldSpec(nil), builtin...)
	for _, f := range fs {
		out = append(out, connectors.FieldSpec{Name: f.Title, Type: f.fieldType(), Description: "custom field " + strconv.FormatInt(f.ID, 10) + " (" + f.Type + ")"})
	}
	return connectors.Schema{EntityType: "ticket", Fields: out, Comments: true}, nil
}

// Close has nothing to release.
func (c *conn) Close() error { return nil }
