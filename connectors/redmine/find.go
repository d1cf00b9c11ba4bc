package redmine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
)

// FindBy returns the project's issues (open and closed, subprojects as in
// Changes) whose field equals value exactly, by id, each read as Get reads
// it. field is "subject" or an issue custom field (by its name, or the
// "cf_" name Describe gives one named like a standard field).
//
// The search is Redmine's issue filter in its long form (f[], op[], v[]):
// the short form (cf_N=value) would read a leading "~", "!", "*"... in the
// value as an operator and split it at "|". The filter is only a first cut:
// Redmine may compare without case, "~" (subject) is "contains", and a
// filter Redmine does not offer is silently ignored (then every issue is
// listed). So every listed issue is compared exactly, page after page,
// until limit matches are found or the list ends.
func (c *conn) FindBy(ctx context.Context, field, value string, limit int) ([]connectors.Entity, error) {
	if limit <= 0 {
		limit = listPage
	}
	filter, op, key, err := c.findFilter(ctx, field)
	if err != nil {
		return nil, err
	}
	matches := func(e connectors.Entity) bool {
		s, ok := e.Fields[key].(string)
		return ok && s == value
	}
	var out []connectors.Entity
	for offset := 0; ; {
		q := url.Values{
			"project_id":          {strconv.FormatInt(c.projectID, 10)},
			"set_filter":          {"1"},
			"f[]":                 {"status_id", filter},
			"op[status_id]":       {"*"}, // closed issues too
			"op[" + filter + "]":  {op},
			"v[" + filter + "][]": {value},
			"sort":                {"id"},
			"limit":               {strconv.Itoa(listPage)},
			"offset":              {strconv.Itoa(offset)},
		}
		var page struct {
			Issues     []issue `json:"issues"`
			TotalCount int     `json:"total_count"`
		}
		if err := c.http.Do(ctx, "GET", "/issues.json?"+q.Encode(), nil, &page); err != nil {
			var se *httpx.StatusError
			if errors.As(err, &se) && se.Code == http.StatusUnprocessableEntity {
				// Redmine refuses a filter value the field's format cannot
				// hold (text for an integer field): no issue has it.
				return nil, nil
			}
			return nil, fmt.Errorf("redmine find issues by %s: %w", field, err)
		}
		for _, listed := range page.Issues {
			if !matches(c.entity(listed)) {
				continue
			}
			full, err := c.getIssue(ctx, listed.ID)
			if errors.Is(err, connectors.ErrNotFound) {
				continue // deleted since the list
			}
			if err != nil {
				return nil, err
			}
			if e := c.entity(full); matches(e) {
				out = append(out, e)
				if len(out) == limit {
					return out, nil
				}
			}
		}
		offset += len(page.Issues)
		if len(page.Issues) == 0 || offset >= page.TotalCount {
			return out, nil
		}
	}
}

// findFilter resolves a field to Redmine's filter name and operator and the
// entity key its value is read from: the field's name as Get maps it. A
// field it cannot search wraps ErrInvalid.
func (c *conn) findFilter(ctx context.Context, field string) (filter, op, key string, err error) {
	if field == "subject" {
		// Subject has no "is" filter in every Redmine version: "contains",
		// then the exact comparison.
		return "subject", "~", "subject", nil
	}
	name := field // the custom field's name; Get shows it as cfKey(name)
	if n, ok := strings.CutPrefix(field, "cf_"); ok && cfKey(n) == field {
		name = n
	}
	if cfKey(name) != field {
		return "", "", "", fmt.Errorf("%w: redmine: cannot search the standard field %q (searchable: subject and the issue custom fields used as filters)", connectors.ErrInvalid, field)
	}
	for _, reload := range []bool{false, true} {
		ids, err := c.lookups(ctx, reload)
		if err != nil {
			return "", "", "", err
		}
		id, ok := ids.customByName[name]
		if !ok {
			continue // an administrator may have added it since
		}
		switch {
		case ids.customMultiple[name]:
			return "", "", "", fmt.Errorf("%w: redmine: cannot search custom field %q: it holds several values", connectors.ErrInvalid, field)
		case ids.customNoFilter[name]:
			return "", "", "", fmt.Errorf("%w: redmine: cannot search custom field %q: it is not \"Used as a filter\" (an administrator can tick that in its settings)", connectors.ErrInvalid, field)
		}
		return fmt.Sprintf("cf_%d", id), "=", field, nil
	}
	return "", "", "", fmt.Errorf("%w: redmine: cannot search field %q: not a standard field nor a custom field of this Redmine", connectors.ErrInvalid, field)
}
