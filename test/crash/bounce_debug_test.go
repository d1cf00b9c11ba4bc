package crash

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// debugBounces prints each bounce-back with its twin's events, when
// DUPLEX_BOUNCE_DEBUG is set: which twin, when, and what it added.
func debugBounces(st *sql.DB) {
	if os.Getenv("DUPLEX_BOUNCE_DEBUG") == "" {
		return
	}
	rows, err := st.Query(`SELECT id, twin_id, direction, replica, previous, created_at, updated_at FROM sync_events WHERE action <> 'delete' AND replica <> '' ORDER BY id`)
	if err != nil {
		fmt.Println("debug:", err)
		return
	}
	type ev struct {
		id, twin     int64
		dir, rep     string
		prev         sql.NullString
		created, upd string
	}
	var all []ev
	for rows.Next() {
		var e ev
		var c, u any
		_ = rows.Scan(&e.id, &e.twin, &e.dir, &e.rep, &e.prev, &c, &u)
		e.created, e.upd = fmt.Sprint(c), fmt.Sprint(u)
		all = append(all, e)
	}
	rows.Close()
	for _, e := range all {
		if !bounced(e.dir, e.rep, e.prev) {
			continue
		}
		var cur, old replica
		_ = json.Unmarshal([]byte(e.rep), &cur)
		_ = json.Unmarshal([]byte(e.prev.String), &old)
		seen := map[string]bool{}
		for _, c := range old.Comments {
			seen[c.ID] = true
		}
		var added []string
		for _, c := range cur.Comments {
			if !seen[c.ID] {
				added = append(added, c.ID+":"+c.Body)
			}
		}
		fmt.Printf("BOUNCE event %d twin %d %s created %s state %q prev-null %v added %s\n", e.id, e.twin, e.dir, e.created, cur.State, !e.prev.Valid, strings.Join(added, " | "))
		for _, o := range all {
			if o.twin == e.twin && o.id != e.id {
				fmt.Printf("   twin event %d %s created %s done %s\n", o.id, o.dir, o.created, o.upd)
			}
		}
	}
}
