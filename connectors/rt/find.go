package rt

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

// FindBy returns the queue's tickets whose field equals value exactly,
// deleted ones excluded, by id, each read as Get reads it. field is
// "subject" or a custom field of the queue (by its name, or the "cf_" name
// Describe gives one named like a standard field).
//
// The search is TicketSQL with the value as a quoted literal (quotes and
// backslashes escaped) and the custom field named by its id. RT compares
// without case, so every ticket found is compared exactly, page after page,
// until limit matches are found or the results end.
func (c *conn) FindBy(ctx context.Context, field, value string, limit int) ([]connectors.Entity, error) {
	if limit <= 0 {
		limit = 100
	}
	column, err := c.findColumn(field)
	if err != nil {
		return nil, err
	}
	q := "Queue = " + quote(c.queueName) + " AND " + column + " = " + quote(value)
	var out []connectors.Entity
	for page := 1; page <= 1000; page++ {
		v := url.Values{"query": {q}, "orderby": {"id"}, "order": {"ASC"}, "per_page": {"100"}, "page": {strconv.Itoa(page)}}
		var res struct {
			Items []ref   `json:"items"`
			Pages float64 `json:"pages"`
		}
		if err := c.do(ctx, "GET", "/tickets?"+v.Encode(), nil, &res); err != nil {
			return nil, fmt.Errorf("rt find tickets by %s: %w", field, err)
		}
		for _, it := range res.Items {
			e, err := c.Get(ctx, it.ID.String())
			if errors.Is(err, connectors.ErrNotFound) {
				continue // moved to another queue since the search
			}
			if err != nil {
				return nil, err
			}
			if s, ok := e.Fields[field].(string); !ok || s != value || e.Fields["status"] == "deleted" {
				continue
			}
			out = append(out, e)
			if len(out) == limit {
				return out, nil
			}
		}
		if len(res.Items) == 0 || float64(page) >= res.Pages {
			return out, nil
		}
	}
	return out, nil
}

// findColumn is the TicketSQL column for a field, named as Get maps it. A
// field it cannot search wraps ErrInvalid.
func (c *conn) findColumn(field string) (string, error) {
	if field == "subject" {
		return "Subject", nil
	}
	name := field // the custom field's name; Get shows it as cfKey(name)
	if n, ok := strings.CutPrefix(field, "cf_"); ok && cfKey(n) == field {
		name = n
	}
	if cfKey(name) != field {
		return "", fmt.Errorf("%w: rt: cannot search the standard field %q (searchable: subject and the queue's custom fields)", connectors.ErrInvalid, field)
	}
	id, ok := c.customFieldIDs[name]
	if !ok {
		return "", fmt.Errorf("%w: rt: cannot search field %q: not a standard field nor a custom field of queue %s", connectors.ErrInvalid, field, c.queueName)
	}
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return "", fmt.Errorf("%w: rt: custom field %q has no numeric id (%q)", connectors.ErrInvalid, name, id)
	}
	return "'CF.{" + id + "}'", nil
}
