package crash

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// debugBounces prints each bounce-back with its twin's events, when
// DUPLEX_BOUNCE_DEBUG is set: which twin, when, and what it added.
func debugBounces(st *sql.DB) {
	if os.Getenv("DUPLEX_BOUNCE_DEBUG") == "" {
		return
	}
	rows, err := st.Query(`SELECT id, twin_id, direction, replica, previous, source_fields, created_at, updated_at FROM sync_events WHERE action <> 'delete' AND replica <> '' ORDER BY id`)
	if err != nil {
		fmt.Println("debug:", err)
		return
	}
	type ev struct {
		id, twin     int64
		dir, rep     string
		prev, src    sql.NullString
		created, upd string
	}
	var all []ev
	for rows.Next() {
		var e ev
		var c, u any
		_ = rows.Scan(&e.id, &e.twin, &e.dir, &e.rep, &e.prev, &e.src, &c, &u)
		e.created, e.upd = fmt.Sprint(c), fmt.Sprint(u)
		all = append(all, e)
	}
	rows.Close()
	for _, e := range all {
		if !bounced(e.dir, e.rep, e.prev, e.src) {
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

var ticketRef = regexp.MustCompile(`T-(\d+) (title|state)`)

// debugTwins prints, with DUPLEX_BOUNCE_DEBUG set, everything the store knows
// about each twin the report names as wrong: the writes the test made, the
// twin row, its events and its audit entries, so that a lost edit can be
// traced from one failing run.
func debugTwins(st *sql.DB, ex *expect, report string) {
	if os.Getenv("DUPLEX_BOUNCE_DEBUG") == "" {
		return
	}
	seen := map[string]bool{}
	for _, m := range ticketRef.FindAllStringSubmatch(report, -1) {
		if seen[m[1]] {
			continue
		}
		seen[m[1]] = true
		id, _ := strconv.ParseInt(m[1], 10, 64)
		ex.mu.Lock()
		fmt.Printf("TWIN T-%s writes: %s\n", m[1], strings.Join(ex.history[id], " | "))
		ex.mu.Unlock()
		var twin int64
		var bID, aHash, bHash, baseA, baseB, sentAB, sentBA sql.NullString
		_ = st.QueryRow(`SELECT id, b_id, a_hash, b_hash, base_a, base_b, sent_ab, sent_ba FROM twins WHERE a_id = $1`, m[1]).
			Scan(&twin, &bID, &aHash, &bHash, &baseA, &baseB, &sentAB, &sentBA)
		fmt.Printf("  twin %d b=%s a_hash=%.12s b_hash=%.12s\n  base_a=%s\n  base_b=%s\n  sent_ab=%s\n  sent_ba=%s\n", twin, bID.String, aHash.String, bHash.String,
			short(baseA.String), short(baseB.String), short(sentAB.String), short(sentBA.String))
		rows, err := st.Query(`SELECT id, direction, status, action, attempts, replica, COALESCE(previous, ''), created_at, updated_at, COALESCE(claimed_by, ''), last_error
			FROM sync_events WHERE twin_id = $1 ORDER BY id`, twin)
		if err != nil {
			fmt.Println("  events:", err)
			continue
		}
		for rows.Next() {
			var eid int64
			var dir, status, action, rep, prev, claimed, lastErr string
			var attempts int
			var created, updated time.Time
			_ = rows.Scan(&eid, &dir, &status, &action, &attempts, &rep, &prev, &created, &updated, &claimed, &lastErr)
			var cur, old replica
			_ = json.Unmarshal([]byte(rep), &cur)
			_ = json.Unmarshal([]byte(prev), &old)
			fmt.Printf("  event %d %s %s %s attempts=%d created %s updated %s claimed %q title %q state %q (prev title %q state %q) %s\n",
				eid, dir, status, action, attempts, created.UTC().Format("15:04:05.000"), updated.UTC().Format("15:04:05.000"), claimed,
				cur.Title, cur.State, old.Title, old.State, lastErr)
		}
		rows.Close()
		rows, err = st.Query(`SELECT at, actor, action, COALESCE(event_id, 0), detail FROM audit_log WHERE twin_id = $1 ORDER BY id`, twin)
		if err != nil {
			fmt.Println("  audit:", err)
			continue
		}
		for rows.Next() {
			var at time.Time
			var actor, action, detail string
			var eid int64
			_ = rows.Scan(&at, &actor, &action, &eid, &detail)
			fmt.Printf("  audit %s %s %s event %d %s\n", at.UTC().Format("15:04:05.000"), actor, action, eid, short(detail))
		}
		rows.Close()
	}
}

func short(s string) string {
	if len(s) > 400 {
		return s[:400] + "…"
	}
	return s
}
