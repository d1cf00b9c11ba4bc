package zendesk

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

// lookupUsers returns the users with the given ids, asking Zendesk only for
// those not yet known (users/show_many, 100 ids a request).
func (c *conn) lookupUsers(ctx context.Context, ids []int64) (map[int64]user, error) {
	out := map[int64]user{}
	var missing []int64
	seen := map[int64]bool{}
	c.mu.Lock()
	for _, id := range ids {
		if id <= 0 || seen[id] {
			continue
		}
		seen[id] = true
		if u, ok := c.users[id]; ok {
			out[id] = u
		} else {
			missing = append(missing, id)
		}
	}
	c.mu.Unlock()
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	for len(missing) > 0 {
		n := min(len(missing), 100)
		parts := make([]string, n)
		for i, id := range missing[:n] {
			parts[i] = strconv.FormatInt(id, 10)
		}
		missing = missing[n:]
		var p struct {
			Users []user `json:"users"`
		}
		if err := c.do(ctx, "GET", "/users/show_many.json?ids="+strings.Join(parts, ","), nil, &p); err != nil {
			return nil, fmt.Errorf("zendesk users: %w", err)
		}
		c.mu.Lock()
		if len(c.users) > 10000 {
			clear(c.users)
		}
		for _, u := range p.Users {
			c.users[u.ID] = u
			out[u.ID] = u
		}
		c.mu.Unlock()
	}
	return out, nil
}

// ticketField is a ticket field as Zendesk lists it.
type ticketField struct {
	ID                 int64  `json:"id"`
	Type               string `json:"type"`
	Title              string `json:"title"`
	Active             bool   `json:"active"`
	CustomFieldOptions []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"custom_field_options"`
}

// scriptKeys are the names scripts read as the entity's own (id, key, …),
// so a custom field so titled cannot be a field.
var scriptKeys = map[string]bool{"id": true, "key": true, "url": true, "type": true, "comments": true,
	"updated_at": true, "updated_by": true, "attachments": true}

// systemTypes are the ticket fields every account has; the connector maps
// them as built-in fields.
var systemTypes = map[string]bool{"subject": true, "description": true, "status": true, "tickettype": true,
	"priority": true, "group": true, "assignee": true, "custom_status": true, "brand": true, "ticket_form": true}

func (f ticketField) fieldType() connectors.FieldType {
	switch f.Type {
	case "checkbox":
		return connectors.TypeBool
	case "integer", "decimal":
		return connectors.TypeNumber
	case "multiselect":
		return connectors.TypeList
	}
	return connectors.TypeString
}

// customFields returns the active custom ticket fields whose titles do not
// clash with a built-in field, loading them once (reload: again, for a name
// not found).
func (c *conn) customFields(ctx context.Context, reload bool) ([]ticketField, error) {
	c.mu.Lock()
	fs := c.fields
	c.mu.Unlock()
	if fs != nil && !reload {
		return fs, nil
	}
	var all []ticketField
	path := "/ticket_fields.json"
	for pages := 0; path != ""; pages++ {
		if pages == 20 {
			return nil, fmt.Errorf("%w: zendesk ticket fields: more than 20 pages", connectors.ErrUnavailable)
		}
		var p struct {
			TicketFields []ticketField `json:"ticket_fields"`
			NextPage     *string       `json:"next_page"`
		}
		if err := c.do(ctx, "GET", path, nil, &p); err != nil {
			return nil, fmt.Errorf("zendesk ticket fields: %w", err)
		}
		all = append(all, p.TicketFields...)
		path = ""
		if p.NextPage != nil && *p.NextPage != "" {
			rel, ok := strings.CutPrefix(*p.NextPage, c.http.Base)
			if !ok {
				return nil, fmt.Errorf("%w: zendesk: next page %q is not under %s", connectors.ErrUnavailable, *p.NextPage, c.http.Base)
			}
			path = rel
		}
	}
	fs = []ticketField{}
	for _, f := range all {
		if f.Active && !systemTypes[f.Type] && !builtinNames[f.Title] && !scriptKeys[f.Title] {
			fs = append(fs, f)
		}
	}
	c.mu.Lock()
	c.fields = fs
	c.mu.Unlock()
	return fs, nil
}

// readCustom adds the ticket's custom field values to f by field title.
func (c *conn) readCustom(ctx context.Context, vals []customValue, f map[string]any) error {
	if len(vals) == 0 {
		return nil
	}
	fs, err := c.customFields(ctx, false)
	if err != nil {
		return err
	}
	byID := map[int64]customValue{}
	for _, v := range vals {
		byID[v.ID] = v
	}
	for _, fd := range fs {
		v := byID[fd.ID].Value
		switch fd.fieldType() {
		case connectors.TypeBool:
			b, _ := v.(bool)
			f[fd.Title] = b
		case connectors.TypeNumber:
			if v == nil || v == "" {
				f[fd.Title] = nil
			} else if n, err := connectors.Number(v); err == nil {
				f[fd.Title] = n
			} else {
				f[fd.Title] = nil
			}
		case connectors.TypeList:
			xs, _ := stringList(v)
			f[fd.Title] = sortedList(xs)
		default:
			f[fd.Title] = connectors.Text(v)
		}
	}
	return nil
}

// writeCustom turns one custom field value into {"id", "value"}; a name no
// active custom field has is refused.
func (c *conn) writeCustom(ctx context.Context, name string, v any) (map[string]any, error) {
	find := func(fs []ticketField) *ticketField {
		for i := range fs {
			if fs[i].Title == name {
				return &fs[i]
			}
		}
		return nil
	}
	fs, err := c.customFields(ctx, false)
	if err != nil {
		return nil, err
	}
	fd := find(fs)
	if fd == nil {
		if fs, err = c.customFields(ctx, true); err != nil {
			return nil, err
		}
		if fd = find(fs); fd == nil {
			return nil, fmt.Errorf("%w: zendesk: no field %q (neither built-in nor an active custom ticket field)", connectors.ErrInvalid, name)
		}
	}
	out := map[string]any{"id": fd.ID}
	switch fd.fieldType() {
	case connectors.TypeBool:
		b, ok := v.(bool)
		if !ok && v != nil {
			return nil, fmt.Errorf("%w: zendesk: field %q takes true or false, got %T", connectors.ErrInvalid, name, v)
		}
		out["value"] = b
	case connectors.TypeNumber:
		if v == nil || v == "" {
			out["value"] = nil
		} else if n, err := connectors.Number(v); err != nil {
			return nil, fmt.Errorf("%w: zendesk: field %q takes a number: %w", connectors.ErrInvalid, name, err)
		} else {
			out["value"] = n
		}
	case connectors.TypeList:
		xs, err := stringList(v)
		if err != nil {
			return nil, fmt.Errorf("%w: zendesk: field %q: %w", connectors.ErrInvalid, name, err)
		}
		out["value"] = xs
	default:
		if s := connectors.Text(v); s == "" {
			out["value"] = nil
		} else {
			out["value"] = s
		}
	}
	return out, nil
}
