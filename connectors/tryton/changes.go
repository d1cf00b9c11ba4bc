package tryton

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// lookBack is how far before the newest stamp taken each poll looks again.
// Tryton stamps write_date with the transaction's start and makes it visible
// at commit, so a record can appear after a later-stamped one was listed;
// the window catches it, and the cursor's seen list keeps the records
// already taken in it from being taken twice.
const lookBack = 3 * time.Second

// cursor is the poll position: the newest stamp taken and, for the records
// stamped within lookBack of it, the stamp each was taken at (microseconds,
// Tryton's precision). A record written again gets a new stamp and is taken
// again.
type cursor struct {
	T    time.Time        `json:"t"`
	Seen map[string]int64 `json:"seen,omitempty"`
}

func parseCursor(s string) (cursor, error) {
	var c cursor
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("poll cursor %q: %w", s, err)
	}
	return c, nil
}

func (c cursor) since() time.Time {
	if c.T.IsZero() {
		return time.Time{}
	}
	return c.T.Add(-lookBack)
}

func (c cursor) taken(id string, t time.Time) bool {
	if !c.T.IsZero() && t.Before(c.since()) {
		return true
	}
	at, ok := c.Seen[id]
	return ok && at == t.UnixMicro()
}

// stream is one search of changed records, in stamp order: written since,
// or created since and never written (Tryton cannot order by the two
// together). It reads only ids, stamps and, for invoices, the party.
func (c *conn) stream(ctx context.Context, model string, base []any, written bool, since time.Time, fetch int, extra ...string) ([]map[string]any, error) {
	domain := append([]any{}, base...)
	order := "create_date"
	if written {
		order = "write_date"
		domain = append(domain, []any{"write_date", "!=", nil})
	} else {
		domain = append(domain, []any{"write_date", "=", nil})
	}
	if !since.IsZero() {
		domain = append(domain, []any{order, ">=", wireTime(since)})
	}
	var out []map[string]any
	fields := append([]string{"id", "write_date", "create_date"}, extra...)
	if err := c.rpc.call(ctx, "model."+model+".search_read", []any{domain, 0, fetch, [][]string{{order, "ASC"}, {"id", "ASC"}}, fields, c.ctx()}, &out); err != nil {
		return nil, fmt.Errorf("tryton poll %s: %w", model, err)
	}
	return out, nil
}

// Changes lists records by their change stamp: write_date, or create_date
// for a record never written. Each stream asks for enough records to hold
// limit not taken yet; a stream cut there may hold more past its last
// stamp (the horizon), so nothing past the earliest horizon is taken. With
// invoices on, a party also changes when one of its customer invoices does
// (a payment writes the invoice, not the party): the invoice streams name
// the parties, stamped with the invoice's stamp.
func (c *conn) Changes(ctx context.Context, cur string, limit int) (connectors.Page, error) {
	from, err := parseCursor(cur)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("%w: tryton: %w", connectors.ErrBadConfig, err)
	}
	if limit <= 0 {
		limit = 100
	}
	fetch := limit + len(from.Seen) + 1
	since := from.since()
	type source struct {
		model   string
		base    []any
		extra   []string
		written []bool                     // the streams: written since, created since
		owner   func(map[string]any) int64 // the record that changed, when not this one
	}
	both := []bool{true, false}
	sources := []source{{model: c.m.name, base: c.m.all(), written: both}}
	// From the start every record is listed anyway, with its notes and
	// invoices. After that a new note (ir.note, which writes nothing on the
	// record) and, with invoices, a changed invoice are changes of their
	// record; notes are taken as they are created (an edited note is not
	// a new comment).
	if !since.IsZero() {
		sources = append(sources, source{model: "ir.note", base: []any{[]any{"resource", "like", c.m.name + ",%"}}, extra: []string{"resource"},
			written: []bool{false}, owner: func(r map[string]any) int64 {
				_, id, _ := strings.Cut(str(r["resource"]), ",")
				n, _ := strconv.ParseInt(id, 10, 64)
				return n
			}})
		if c.m == partyModel && c.s.Invoices {
			sources = append(sources, source{model: invoiceModel.name, base: invoiceModel.base(), extra: []string{"party"}, written: both,
				owner: func(r map[string]any) int64 { return intOf(r["party"]) }})
		}
	}
	stamps := map[int64]time.Time{} // record → newest stamp seen for it
	var horizon time.Time
	for _, src := range sources {
		for _, written := range src.written {
			recs, err := c.stream(ctx, src.model, src.base, written, since, fetch, src.extra...)
			if err != nil {
				return connectors.Page{}, err
			}
			if len(recs) == fetch {
				if t := stamp(recs[len(recs)-1]); horizon.IsZero() || t.Before(horizon) {
					horizon = t
				}
			}
			for _, r := range recs {
				id := intOf(r["id"])
				if src.owner != nil {
					id = src.owner(r)
				}
				if t := stamp(r); id > 0 && t.After(stamps[id]) {
					stamps[id] = t
				}
			}
		}
	}
	type cand struct {
		id int64
		t  time.Time
	}
	all := make([]cand, 0, len(stamps))
	for id, t := range stamps {
		all = append(all, cand{id, t})
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].t.Equal(all[j].t) {
			return all[i].t.Before(all[j].t)
		}
		return all[i].id < all[j].id
	})
	var picked []cand
	more := false
	for _, x := range all {
		if from.taken(strconv.FormatInt(x.id, 10), x.t) {
			continue
		}
		if len(picked) == limit || (!horizon.IsZero() && x.t.After(horizon)) {
			more = true
			break
		}
		picked = append(picked, x)
	}
	page := connectors.Page{More: more}
	if len(picked) == 0 {
		return page, nil
	}
	ids := make([]int64, len(picked))
	for i, x := range picked {
		ids[i] = x.id
	}
	es, err := c.readEntities(ctx, append(c.m.all(), []any{"id", "in", ids}), 0)
	if err != nil {
		return connectors.Page{}, err
	}
	byID := map[string]connectors.Entity{}
	for _, e := range es {
		byID[e.ID] = e
	}
	next := cursor{T: from.T, Seen: map[string]int64{}}
	for id, at := range from.Seen {
		next.Seen[id] = at
	}
	for _, x := range picked {
		id := strconv.FormatInt(x.id, 10)
		if e, ok := byID[id]; ok { // else deleted since the list: nothing to send
			page.Entities = append(page.Entities, e)
		}
		if x.t.After(next.T) {
			next.T = x.t
		}
		next.Seen[id] = x.t.UnixMicro()
	}
	floor := next.T.Add(-lookBack).UnixMicro()
	for id, at := range next.Seen {
		if at < floor {
			delete(next.Seen, id)
		}
	}
	b, err := json.Marshal(next)
	if err != nil {
		return connectors.Page{}, fmt.Errorf("tryton poll cursor: %w", err)
	}
	page.Cursor = string(b)
	return page, nil
}

// CursorAt is a poll position from which only records stamped at t or later
// are taken: for a system set up on a database that already holds records
// nobody wants synced, without reading them all once.
func CursorAt(t time.Time) string {
	b, _ := json.Marshal(cursor{T: t.UTC().Add(lookBack)})
	return string(b)
}
