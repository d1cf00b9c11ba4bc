package jira

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

// fieldDef is one entry of GET /rest/api/3/field.
type fieldDef struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Custom bool   `json:"custom"`
	Schema struct {
		Type   string `json:"type"`
		Items  string `json:"items"`
		Custom string `json:"custom"`
	} `json:"schema"`
}

func (fd fieldDef) fieldType() connectors.FieldType {
	switch fd.Schema.Type {
	case "number":
		return connectors.TypeNumber
	case "array":
		return connectors.TypeList
	case "date", "datetime":
		return connectors.TypeTime
	}
	return connectors.TypeString
}

// fieldMap is the site's field list: custom fields by id and by name.
type fieldMap struct {
	byID   map[string]fieldDef
	byName map[string]fieldDef // custom fields only; exact name
}

// fieldMap returns the field list, loading it on first use or when reload
// is set (after a name was not found: an admin may have added it since).
func (c *conn) fieldMap(ctx context.Context, reload bool) (*fieldMap, error) {
	c.mu.Lock()
	fm := c.fields
	c.mu.Unlock()
	if fm != nil && !reload {
		return fm, nil
	}
	var list []fieldDef
	if err := c.http.Do(ctx, "GET", api+"/field", nil, &list); err != nil {
		return nil, fmt.Errorf("jira field list: %w", err)
	}
	fm = &fieldMap{byID: map[string]fieldDef{}, byName: map[string]fieldDef{}}
	for _, fd := range list {
		fm.byID[fd.ID] = fd
		if fd.Custom {
			fm.byName[fd.Name] = fd
		}
	}
	c.mu.Lock()
	c.fields = fm
	c.mu.Unlock()
	return fm, nil
}

// customField finds a custom field by name (or by its id, customfield_N),
// reloading the list once on a miss.
func (c *conn) customField(ctx context.Context, name string) (fieldDef, bool, error) {
	for _, reload := range []bool{false, true} {
		fm, err := c.fieldMap(ctx, reload)
		if err != nil {
			return fieldDef{}, false, err
		}
		if fd, ok := fm.byName[name]; ok {
			return fd, true, nil
		}
		if fd, ok := fm.byID[name]; ok && fd.Custom {
			return fd, true, nil
		}
	}
	return fieldDef{}, false, nil
}

// reAccountID matches Atlassian account ids: 24 hex digits, or the older
// "557058:uuid" form.
var reAccountID = regexp.MustCompile(`^([0-9a-f]{24}|[0-9]+:[0-9a-f-]{36})$`)

// resolveUser turns an accountId, a display name or an email address into
// an accountId, with /rest/api/3/user/search. Several users with the same
// display name are refused rather than guessed.
func (c *conn) resolveUser(ctx context.Context, who string) (string, error) {
	if reAccountID.MatchString(who) {
		return who, nil
	}
	var users []user
	if err := c.http.Do(ctx, "GET", api+"/user/search?"+url.Values{"query": {who}, "maxResults": {"50"}}.Encode(), nil, &users); err != nil {
		return "", fmt.Errorf("jira find user %q: %w", who, err)
	}
	var hits []user
	for _, u := range users {
		if u.AccountID == who || strings.EqualFold(u.EmailAddress, who) {
			return u.AccountID, nil
		}
		if strings.EqualFold(u.DisplayName, who) {
			hits = append(hits, u)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0].AccountID, nil
	case 0:
		return "", fmt.Errorf("%w: jira: no user %q (by accountId, display name or email) visible to the API user", connectors.ErrInvalid, who)
	default:
		ids := make([]string, len(hits))
		for i, u := range hits {
			ids[i] = u.AccountID
		}
		return "", fmt.Errorf("%w: jira: %d users are called %q (%s): write the accountId", connectors.ErrInvalid, len(hits), who, strings.Join(ids, ", "))
	}
}

type transitionDef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	To   named  `json:"to"`
}

// transition moves an issue to the status named want (case-insensitive)
// by the transition whose target it is. Already there: nothing to do.
// No transition reaches it from the current status: ErrInvalid listing
// the statuses that can be reached.
func (c *conn) transition(ctx context.Context, key, want string) error {
	is, err := c.getStatus(ctx, key)
	if err != nil {
		return err
	}
	if strings.EqualFold(is, want) {
		return nil
	}
	path := api + "/issue/" + url.PathEscape(key) + "/transitions"
	var out struct {
		Transitions []transitionDef `json:"transitions"`
	}
	if err := c.http.Do(ctx, "GET", path, nil, &out); err != nil {
		return fmt.Errorf("jira transitions of %s: %w", key, jiraErrors(err, nil))
	}
	var reach []string
	for _, t := range out.Transitions {
		if strings.EqualFold(t.To.Name, want) {
			if err := c.http.Do(ctx, "POST", path, map[string]any{"transition": map[string]any{"id": t.ID}}, nil); err != nil {
				return fmt.Errorf("jira transition %s to %q (%s): %w", key, t.To.Name, t.Name, jiraErrors(err, nil))
			}
			return nil
		}
		reach = append(reach, t.To.Name)
	}
	sort.Strings(reach)
	reach = dedupe(reach)
	if len(reach) == 0 {
		return fmt.Errorf("%w: jira: no transition moves %s from %q to %q: no status can be reached from there", connectors.ErrInvalid, key, is, want)
	}
	return fmt.Errorf("%w: jira: no transition moves %s from %q to %q; reachable: %s", connectors.ErrInvalid, key, is, want, strings.Join(reach, ", "))
}

func (c *conn) getStatus(ctx context.Context, key string) (string, error) {
	var is issue
	if err := c.http.Do(ctx, "GET", api+"/issue/"+url.PathEscape(key)+"?fields=status", nil, &is); err != nil {
		return "", fmt.Errorf("jira get issue %s: %w", key, jiraErrors(err, nil))
	}
	return rawName(is.Fields["status"]), nil
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
