// Package pollwindow is the polling cursor for systems whose "updated" time
// has whole seconds (Redmine's updated_on, Request Tracker's LastUpdated).
//
// Asking for "updated > T" would lose an item updated later in the same
// second as the last one taken; "updated >= T" alone would take items twice.
// Worse, both systems stamp the time before their transaction commits, so an
// update can become visible after a later-stamped one was listed. So a poll
// asks for updated >= T - LookBack and skips the (id, time) pairs it already
// took in that window. An item stamped in the second the server is still in
// is not recorded: a second update within that second keeps the same stamp,
// so it is taken again on the next poll (the engine sees an unchanged re-read
// as nothing new).
//
// An item stamped before the window is never taken again, whatever the
// server returns: Redmine turns "updated_on >= T" into "> T - 1 s" and keeps
// fractions of seconds, so it also lists items stamped in the second before
// T. The cursor has already forgotten those (it keeps only the window), and
// taking them as new made a quiet poller re-read them on every poll.
package pollwindow

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// LookBack is how far before the newest taken time each poll looks again.
const LookBack = 3 * time.Second

// Cursor is the poll position. The zero value means "from the start".
type Cursor struct {
	T    time.Time        `json:"t"`
	Seen map[string]int64 `json:"seen,omitempty"` // id → Unix second taken
}

// Parse reads a cursor written by Encode ("" = from the start).
func Parse(s string) (Cursor, error) {
	var c Cursor
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("poll cursor %q: %w", s, err)
	}
	return c, nil
}

// Since is the lower bound (inclusive) the next query should use; zero when
// polling from the start.
func (c Cursor) Since() time.Time {
	if c.T.IsZero() {
		return time.Time{}
	}
	return c.T.Add(-LookBack).UTC()
}

// Taken reports whether id stamped at t was already taken, or is stamped
// before the window (Since) and so was taken, or skipped, by an earlier poll.
func (c Cursor) Taken(id string, t time.Time) bool {
	if !c.T.IsZero() && t.Before(c.Since()) {
		return true
	}
	at, ok := c.Seen[id]
	return ok && at == t.Unix()
}

// Next accumulates the items of one poll into the next cursor.
type Next struct {
	c   Cursor
	now time.Time
}

// Advance starts the next cursor from c. now is the server's clock (see
// ServerNow); zero means unknown, and then every item is recorded.
func (c Cursor) Advance(now time.Time) *Next {
	n := &Next{c: Cursor{T: c.T, Seen: make(map[string]int64, len(c.Seen))}, now: now}
	for id, at := range c.Seen {
		n.c.Seen[id] = at
	}
	return n
}

// Take records that id stamped at t was handed to the engine.
func (n *Next) Take(id string, t time.Time) {
	t = t.UTC()
	if t.After(n.c.T) {
		n.c.T = t
	}
	if n.now.IsZero() || t.Before(n.now.Truncate(time.Second)) {
		n.c.Seen[id] = t.Unix()
	} else {
		delete(n.c.Seen, id) // the open second: take it again next poll
	}
}

// Encode prunes what fell out of the window and writes the cursor.
func (n *Next) Encode() (string, error) {
	floor := n.c.T.Add(-LookBack).Unix()
	for id, at := range n.c.Seen {
		if at < floor {
			delete(n.c.Seen, id)
		}
	}
	b, err := json.Marshal(n.c)
	if err != nil {
		return "", fmt.Errorf("poll cursor: %w", err)
	}
	return string(b), nil
}

// ServerNow reads the server's clock from a response's Date header (zero if
// absent), so "this second is still open" does not depend on two clocks
// agreeing.
func ServerNow(h http.Header) time.Time {
	if h == nil {
		return time.Time{}
	}
	t, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
