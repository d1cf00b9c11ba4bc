package redmine

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

// lookups holds Redmine's name → id maps. Scripts write names ("In
// Progress", "High"); the API wants ids. Names compare case-insensitively.
type lookups struct {
	statuses       map[string]int64
	statusNames    map[int64]string
	closed         map[int64]bool
	priorities     map[string]int64
	trackers       map[string]int64
	customByName   map[string]int64 // exact custom field name → id
	customMultiple map[string]bool
	customNoFilter map[string]bool // custom fields an administrator's key saw not marked "Used as a filter"
}

func (c *conn) cachedLookups() *lookups {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids
}

// lookups returns the maps, loading them on first use or when reload is
// set (after a name was not found: an admin may have added it since).
func (c *conn) lookups(ctx context.Context, reload bool) (*lookups, error) {
	c.mu.Lock()
	ids := c.ids
	c.mu.Unlock()
	if ids != nil && !reload {
		return ids, nil
	}
	ids = &lookups{statuses: map[string]int64{}, statusNames: map[int64]string{}, closed: map[int64]bool{}, priorities: map[string]int64{},
		trackers: map[string]int64{}, customByName: map[string]int64{}, customMultiple: map[string]bool{}, customNoFilter: map[string]bool{}}
	var st struct {
		IssueStatuses []struct {
			named
			IsClosed bool `json:"is_closed"`
		} `json:"issue_statuses"`
	}
	if err := c.http.Do(ctx, "GET", "/issue_statuses.json", nil, &st); err != nil {
		return nil, fmt.Errorf("redmine statuses: %w", err)
	}
	for _, s := range st.IssueStatuses {
		ids.statuses[strings.ToLower(s.Name)] = s.ID
		ids.statusNames[s.ID] = s.Name
		ids.closed[s.ID] = s.IsClosed
	}
	var pr struct {
		IssuePriorities []named `json:"issue_priorities"`
	}
	if err := c.http.Do(ctx, "GET", "/enumerations/issue_priorities.json", nil, &pr); err != nil {
		return nil, fmt.Errorf("redmine priorities: %w", err)
	}
	for _, p := range pr.IssuePriorities {
		ids.priorities[strings.ToLower(p.Name)] = p.ID
	}
	var tr struct {
		Trackers []named `json:"trackers"`
	}
	if err := c.http.Do(ctx, "GET", "/trackers.json", nil, &tr); err != nil {
		return nil, fmt.Errorf("redmine trackers: %w", err)
	}
	for _, t := range tr.Trackers {
		ids.trackers[strings.ToLower(t.Name)] = t.ID
	}
	if err := c.loadCustomFields(ctx, ids); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.ids = ids
	c.mu.Unlock()
	return ids, nil
}

// loadCustomFields reads /custom_fields.json, which needs an administrator's
// key; with another key it learns the fields from the project's issues.
func (c *conn) loadCustomFields(ctx context.Context, ids *lookups) error {
	var cf struct {
		CustomFields []struct {
			named
			CustomizedType string `json:"customized_type"`
			Multiple       bool   `json:"multiple"`
			IsFilter       *bool  `json:"is_filter"`
		} `json:"custom_fields"`
	}
	err := c.http.Do(ctx, "GET", "/custom_fields.json", nil, &cf)
	if err == nil {
		for _, f := range cf.CustomFields {
			if f.CustomizedType == "issue" {
				ids.customByName[f.Name] = f.ID
				ids.customMultiple[f.Name] = f.Multiple
				if f.IsFilter != nil && !*f.IsFilter {
					ids.customNoFilter[f.Name] = true
				}
			}
		}
		return nil
	}
	if !errors.Is(err, connectors.ErrBadConfig) {
		return fmt.Errorf("redmine custom fields: %w", err)
	}
	var list struct {
		Issues []issue `json:"issues"`
	}
	q := url.Values{"project_id": {strconv.FormatInt(c.projectID, 10)}, "status_id": {"*"}, "limit": {"25"}}
	if err := c.http.Do(ctx, "GET", "/issues.json?"+q.Encode(), nil, &list); err != nil {
		return fmt.Errorf("redmine custom fields from issues: %w", err)
	}
	for _, is := range list.Issues {
		for _, f := range is.CustomFields {
			ids.customByName[f.Name] = f.ID
			if _, multi := f.Value.([]any); multi {
				ids.customMultiple[f.Name] = true
			}
		}
	}
	return nil
}

// resolve turns a status, priority or tracker name (or numeric id) into its id.
func (c *conn) resolve(ctx context.Context, kind, name string) (int64, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return 0, fmt.Errorf("%w: redmine: %s cannot be empty", connectors.ErrInvalid, kind)
	}
	pick := func(l *lookups) map[string]int64 {
		switch kind {
		case "status":
			return l.statuses
		case "priority":
			return l.priorities
		}
		return l.trackers
	}
	for _, reload := range []bool{false, true} {
		ids, err := c.lookups(ctx, reload)
		if err != nil {
			return 0, err
		}
		m := pick(ids)
		if id, ok := m[strings.ToLower(name)]; ok {
			return id, nil
		}
		if n, err := strconv.ParseInt(name, 10, 64); err == nil {
			for _, id := range m {
				if id == n {
					return id, nil
				}
			}
		}
		if reload {
			names := make([]string, 0, len(m))
			for k := range m {
				names = append(names, k)
			}
			sort.Strings(names)
			return 0, fmt.Errorf("%w: redmine has no %s %q (known: %s)", connectors.ErrInvalid, kind, name, strings.Join(names, ", "))
		}
	}
	panic("unreachable")
}

// resolveUser finds a user by numeric id, login or name among the project's
// members (what a non-admin key can see), then among all users (admin).
// "" means unassigned (0).
func (c *conn) resolveUser(ctx context.Context, who string) (int64, error) {
	who = strings.TrimSpace(who)
	if who == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(who, 10, 64); err == nil && n > 0 {
		return n, nil
	}
	var mem struct {
		Memberships []struct {
			User *named `json:"user"`
		} `json:"memberships"`
	}
	if err := c.http.Do(ctx, "GET", fmt.Sprintf("/projects/%d/memberships.json?limit=100", c.projectID), nil, &mem); err == nil {
		for _, m := range mem.Memberships {
			if m.User != nil && strings.EqualFold(m.User.Name, who) {
				return m.User.ID, nil
			}
		}
	}
	var us struct {
		Users []struct {
			ID        int64  `json:"id"`
			Login     string `json:"login"`
			Firstname string `json:"firstname"`
			Lastname  string `json:"lastname"`
		} `json:"users"`
	}
	err := c.http.Do(ctx, "GET", "/users.json?"+url.Values{"name": {who}, "limit": {"25"}}.Encode(), nil, &us)
	if err != nil && !errors.Is(err, connectors.ErrBadConfig) {
		return 0, fmt.Errorf("redmine find user %q: %w", who, err)
	}
	for _, u := range us.Users {
		if strings.EqualFold(u.Login, who) || strings.EqualFold(u.Firstname+" "+u.Lastname, who) {
			return u.ID, nil
		}
	}
	return 0, fmt.Errorf("%w: redmine: no user %q among the project's members or the users this key can see", connectors.ErrInvalid, who)
}
