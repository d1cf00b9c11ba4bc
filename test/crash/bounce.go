package crash

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

// A bounce-back is a sync event whose source change is Duplex's own write:
// nothing a person did on that side is in it. The demo tells them apart by
// content. Duplex writes to engineering the ticket's title, body, priority,
// the state "new" (on create only) and comments "[support] …"; a person
// there changes the state or adds other comments. Duplex writes to support
// the status (not in support's replica) and comments "[engineering] …"; a
// person there changes subject, description or priority, or adds other
// comments. An event is a person's if its replica differs from the one sent
// before it (sync_events.previous) by a field a person writes, or carries a
// comment that is new and not one of Duplex's; it is a bounce-back if it
// carries something Duplex wrote (a new comment of Duplex's, or the issue
// as Duplex created it). The replica is the one applied: an event found
// stale when applied reads its source again, and a person may have changed
// a field back meanwhile. So the state intake queued the event for
// (sync_events.source_fields) decides too: a field a person writes that
// differs there from the previous replica makes the event a person's. (The
// cluster run counted such events as bounce-backs: an issue moved to
// in_progress and back to resolved, applied after the move back.)
type replica struct {
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Priority    string    `json:"priority"`
	Ticket      string    `json:"ticket"`
	State       string    `json:"state"`
	Comments    []comment `json:"comments"`
}

type comment struct {
	ID   string `json:"id"`
	Body string `json:"body"`
}

// bounces counts the bounce-backs among all events of the store and
// describes the first few.
func bounces(st *sql.DB) (int, []string, error) {
	rows, err := st.Query(`SELECT id, twin_id, direction, replica, previous, source_fields FROM sync_events
		WHERE action <> 'delete' AND replica <> '' ORDER BY id`)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	n := 0
	var details []string
	for rows.Next() {
		var id, twin int64
		var dir, rep string
		var prev, src sql.NullString
		if err := rows.Scan(&id, &twin, &dir, &rep, &prev, &src); err != nil {
			return 0, nil, err
		}
		if !bounced(dir, rep, prev, src) {
			continue
		}
		n++
		if len(details) < 5 {
			details = append(details, fmt.Sprintf("event %d twin %d %s", id, twin, dir))
		}
	}
	return n, details, rows.Err()
}

func bounced(dir, rep string, prev, src sql.NullString) bool {
	var cur, old replica
	if json.Unmarshal([]byte(rep), &cur) != nil {
		return false
	}
	fromEng := dir == "b_to_a"
	// A new twin's first event carries its own replica as the previous one.
	if !prev.Valid || prev.String == "" || prev.String == "null" || prev.String == rep {
		if !fromEng {
			return false // a ticket a person created
		}
		old.State = "new" // the issue as Duplex created it
	} else if json.Unmarshal([]byte(prev.String), &old) != nil {
		return false
	}
	if queuedForAPerson(fromEng, old, src) {
		return false
	}
	ours := "[support] "
	if fromEng {
		if cur.State != old.State {
			return false
		}
	} else {
		ours = "[engineering] "
		if cur.Title != old.Title || cur.Description != old.Description || cur.Priority != old.Priority || cur.Ticket != old.Ticket {
			return false
		}
	}
	seen := map[string]bool{}
	for _, c := range old.Comments {
		seen[c.ID] = true
	}
	carried := !prev.Valid || prev.String == "" || prev.String == "null" || prev.String == rep // the issue Duplex created
	for _, c := range cur.Comments {
		switch {
		case seen[c.ID]:
		case !strings.HasPrefix(c.Body, ours):
			return false
		default:
			carried = true
		}
	}
	// Only an event that carries something Duplex wrote is its write coming
	// back; one with nothing new at all (a state read late, queued after a
	// newer one) is no echo.
	return carried
}

// queuedForAPerson says whether the source state intake queued the event
// for (its fields, as the system names them) holds a field a person writes
// with another value than the previous replica: engineering's state, or
// support's subject, description or priority.
func queuedForAPerson(fromEng bool, old replica, src sql.NullString) bool {
	if !src.Valid || src.String == "" {
		return false
	}
	var snap struct {
		F map[string]any `json:"f"`
	}
	if json.Unmarshal([]byte(src.String), &snap) != nil || snap.F == nil {
		return false
	}
	differs := func(field, was string) bool {
		v, ok := snap.F[field].(string)
		return ok && v != was
	}
	if fromEng {
		return differs("state", old.State)
	}
	return differs("subject", old.Title) || differs("description", old.Description) || differs("priority", old.Priority)
}
