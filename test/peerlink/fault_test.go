package peerlink

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFaultsAndKills runs a stream of changes on both deployments while the
// proxies between them drop, delay, duplicate and replay messages late and
// lose answers, and while either process is killed with SIGKILL at random;
// then checks that every change arrived once, nothing looped, and the twins
// agree. It prints its figures like the crash run. Bounded: 160 changes,
// 6 kills, loopback only.
func TestFaultsAndKills(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary and runs two deployments")
	}
	seed := uint64(20261206)
	if v := os.Getenv("DUPLEX_PEER_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	log, err := os.Create(filepath.Join(t.TempDir(), "duplex.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	p := link(t, log)
	x, y := p.x, p.y
	// Engineering closes the issue of a ticket support deletes (its own
	// delete policy, applied on a delete message from the link).
	y.must(t, "PUT", fmt.Sprintf("/api/connections/%d/options", p.yLink.ConnectionID),
		map[string]any{"on_delete": "close", "close": map[string]any{"b": map[string]any{"state": "closed"}}}, nil)

	var fmu sync.Mutex
	frng := rand.New(rand.NewPCG(seed, 1))
	var figures struct{ dropped, delayed, duplicated, late, lostAnswers int }
	plan := func([]byte) faultPlan {
		fmu.Lock()
		defer fmu.Unlock()
		var f faultPlan
		switch k := frng.IntN(100); {
		case k < 12:
			f.drop = true
			figures.dropped++
			return f
		case k < 22:
			f.loseAnswer = true
			figures.lostAnswers++
		case k < 32:
			f.duplicate = true
			figures.duplicated++
		case k < 40:
			f.late = time.Duration(200+frng.IntN(800)) * time.Millisecond
			figures.late++
		}
		if frng.IntN(4) == 0 {
			f.delay = time.Duration(frng.IntN(150)) * time.Millisecond
			figures.delayed++
		}
		return f
	}
	for _, n := range []*node{x, y} {
		n.proxy.mu.Lock()
		n.proxy.fault = plan
		n.proxy.mu.Unlock()
	}

	ex := &expectation{subject: map[int64]string{1: "Checkout fails with a 500"}, state: map[int64]string{}, deleted: map[int64]bool{},
		supportNotes: map[int64][]string{1: {"It happens with every card type."}}, engineerNotes: map[int64][]string{}}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); ex.write(ctx, rand.New(rand.NewPCG(seed, 2)), x.db, y.db, 160) }()

	rng := rand.New(rand.NewPCG(seed, 3))
	kills := 0
	for kills < 6 {
		time.Sleep(time.Duration(800+rng.IntN(1200)) * time.Millisecond)
		n := []*node{x, y}[rng.IntN(2)]
		n.stop() // SIGKILL
		kills++
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		n.start(t, log)
	}
	wg.Wait()
	stop()
	for _, n := range []*node{x, y} { // faults off: now it must converge
		n.proxy.mu.Lock()
		n.proxy.fault = nil
		n.proxy.mu.Unlock()
	}

	var report string
	var ok bool
	deadline := time.Now().Add(90 * time.Second)
	for {
		ok, report = ex.check(x.db, y.db)
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	// The last writes may still be settling when the check first passes
	// (a closed issue's state going back to its deleted ticket): wait for
	// one quiet second (at most 15), then two more must change nothing. A
	// loop is never quiet, so it still shows.
	settledAt := time.Now().Add(-3 * time.Second).UTC()
	before := fingerprint(x.db, y.db)
	for quiet := time.Now().Add(15 * time.Second); time.Now().Before(quiet); {
		time.Sleep(time.Second)
		f := fingerprint(x.db, y.db)
		if f == before {
			break
		}
		before = f
	}
	time.Sleep(2 * time.Second)
	after := fingerprint(x.db, y.db)
	looped := after != before
	if looped { // which side still changed, and what: the evidence for the next reader
		t.Logf("still changing after a quiet second: fingerprint %q → %q; rows since: %s", before, after, changedSince(x.db, y.db, before))
		for _, n := range []*node{x, y} {
			t.Logf("audit of %s since %s:\n%s", n.name, settledAt, auditSince(n, settledAt))
		}
	}
	var refusedDup int
	for _, n := range []*node{x, y} {
		n.proxy.mu.Lock()
		refusedDup += n.proxy.duplicates
		n.proxy.mu.Unlock()
	}
	applied, dupDeletes := deletesTaken(t, y)
	closesBack := closesSentBack(t, y)
	if dupDeletes > 0 || closesBack > 0 {
		ok = false
	}
	line := fmt.Sprintf("peer faults: seed=%d kills=%d changes=%d dropped=%d lost_answers=%d duplicated=%d replayed_late=%d delayed=%d duplicates_refused=%d %s deletes_taken=%d deletes_twice=%d closes_sent_back=%d looped=%v",
		seed, kills, ex.changes, figures.dropped, figures.lostAnswers, figures.duplicated, figures.late, figures.delayed, refusedDup, report, applied, dupDeletes, closesBack, looped)
	fmt.Println(line)
	t.Log(line)
	if !ok || looped {
		b, _ := os.ReadFile(log.Name())
		t.Fatalf("%s\nlast log lines:\n%s", line, tail(string(b), 40))
	}
}

// expectation is what the writer did, and so what both sides must show.
type expectation struct {
	mu            sync.Mutex
	subject       map[int64]string // ticket → final subject
	state         map[int64]string // ticket → final engineering state
	supportNotes  map[int64][]string
	engineerNotes map[int64][]string
	deleted       map[int64]bool // tickets support deleted (no more writes to them)
	changes       int
}

// deletesTaken counts, in engineering's store, the delete events its inbox
// queued from the peer, and the pairs that got more than one (a delete
// applied twice).
func deletesTaken(t *testing.T, n *node) (taken, twice int) {
	t.Helper()
	db, err := sql.Open("sqlite3", filepath.Join(n.dir, "duplex.db")+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.QueryRow(`SELECT COUNT(*) FROM sync_events WHERE action = 'delete' AND direction = 'a_to_b'`).Scan(&taken)
	_ = db.QueryRow(`SELECT COUNT(*) FROM (SELECT source_id FROM sync_events WHERE action = 'delete' AND direction = 'a_to_b'
		GROUP BY source_id HAVING COUNT(*) > 1)`).Scan(&twice)
	return taken, twice
}

// closesSentBack counts, in engineering's store, the events that sent a
// closed issue to support: only engineering's delete policy closes an issue
// (the writer never does), so each is Duplex's own close taken for a
// person's change and sent back to the deleted ticket. One path is left
// open in principle, not seen in 14 runs (8 seeds): an engineer's state
// change queued before the close and applied after it reads the issue
// again (its replica is stale: replicaOf) and sends what it finds, the
// closed state. If this fails, look there first.
func closesSentBack(t *testing.T, n *node) (back int) {
	t.Helper()
	db, err := sql.Open("sqlite3", filepath.Join(n.dir, "duplex.db")+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT COUNT(*) FROM sync_events WHERE direction = 'b_to_a' AND source_fields LIKE '%"state":"closed"%'`).Scan(&back); err != nil {
		t.Fatal(err)
	}
	return back
}

var statusOf = map[string]string{"new": "escalated", "in_progress": "escalated", "resolved": "solved", "closed": "solved"}

// write makes a bounded stream of changes on both sides until ctx ends or
// the budget is spent.
func (ex *expectation) write(ctx context.Context, rng *rand.Rand, support, eng *sql.DB, budget int) {
	tickets := []int64{1}
	for i := 0; i < budget && ctx.Err() == nil; i++ {
		time.Sleep(time.Duration(20+rng.IntN(40)) * time.Millisecond)
		ex.mu.Lock()
		switch k := rng.IntN(10); {
		case k < 2 || len(tickets) < 3:
			res, err := support.Exec(`INSERT INTO tickets (subject, labels, priority) VALUES (?, 'todev', 'high')`, fmt.Sprint("ticket ", i))
			if err == nil {
				id, _ := res.LastInsertId()
				tickets = append(tickets, id)
				ex.subject[id] = fmt.Sprint("ticket ", i)
			}
		case k < 4:
			id := tickets[rng.IntN(len(tickets))]
			s := fmt.Sprint("subject ", i)
			if _, err := support.Exec(`UPDATE tickets SET subject = ? WHERE id = ?`, s, id); err == nil {
				ex.subject[id] = s
			}
		case k < 6:
			id := tickets[rng.IntN(len(tickets))]
			body := fmt.Sprint("support note ", i)
			if _, err := support.Exec(`INSERT INTO ticket_comments (ticket_id, author, body) VALUES (?, 'ana', ?)`, id, body); err == nil {
				ex.supportNotes[id] = append(ex.supportNotes[id], body)
			}
		case k == 9 && len(tickets) > 3:
			// Support deletes a ticket (soft delete, never ticket 1); it
			// gets no more changes on either side.
			i := 1 + rng.IntN(len(tickets)-1)
			id := tickets[i]
			if _, err := support.Exec(`UPDATE tickets SET deleted_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?`, id); err == nil {
				tickets = append(tickets[:i], tickets[i+1:]...)
				ex.deleted[id] = true
			}
		default:
			id := tickets[rng.IntN(len(tickets))]
			var issue int64
			if err := eng.QueryRow(`SELECT id FROM issues WHERE ticket_ref = ?`, fmt.Sprint("T-", id)).Scan(&issue); err != nil {
				ex.mu.Unlock()
				continue
			}
			if rng.IntN(2) == 0 {
				st := []string{"in_progress", "resolved"}[rng.IntN(2)]
				if _, err := eng.Exec(`UPDATE issues SET state = ? WHERE id = ?`, st, issue); err == nil {
					ex.state[id] = st
				}
			} else {
				body := fmt.Sprint("engineering note ", i)
				if _, err := eng.Exec(`INSERT INTO issue_comments (issue_id, author, body) VALUES (?, 'dev', ?)`, issue, body); err == nil {
					ex.engineerNotes[id] = append(ex.engineerNotes[id], body)
				}
			}
		}
		ex.changes++
		ex.mu.Unlock()
	}
}

// check compares both databases with what was written.
func (ex *expectation) check(support, eng *sql.DB) (bool, string) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	var lost, dup, wrong, notesLost, notesDup, closed int
	var details []string
	count := func(db *sql.DB, q string, args ...any) int {
		var n int
		_ = db.QueryRow(q, args...).Scan(&n)
		return n
	}
	for id, subject := range ex.subject {
		ref := fmt.Sprint("T-", id)
		if ex.deleted[id] {
			// A deleted ticket's issue (none when support's poller never
			// saw the ticket alive) is closed by engineering's policy.
			// Its last changes before the delete may be folded into it.
			switch n := count(eng, `SELECT COUNT(*) FROM issues WHERE ticket_ref = ?`, ref); {
			case n > 1:
				dup += n - 1
			case n == 1:
				if st := queryString(eng, `SELECT state FROM issues WHERE ticket_ref = ?`, ref); st != "closed" {
					wrong++
					details = append(details, fmt.Sprintf("%s of a deleted ticket is %q, want closed", ref, st))
				} else {
					closed++
				}
			}
			continue
		}
		switch n := count(eng, `SELECT COUNT(*) FROM issues WHERE ticket_ref = ?`, ref); {
		case n == 0:
			lost++
			continue
		case n > 1:
			dup += n - 1
		}
		var title, state string
		var issue int64
		_ = eng.QueryRow(`SELECT id, title, state FROM issues WHERE ticket_ref = ? ORDER BY id LIMIT 1`, ref).Scan(&issue, &title, &state)
		if title != subject {
			wrong++
			details = append(details, fmt.Sprintf("%s title %q, want %q", ref, title, subject))
		}
		if want, ok := ex.state[id]; ok {
			var status string
			_ = support.QueryRow(`SELECT status FROM tickets WHERE id = ?`, id).Scan(&status)
			if state != want || status != statusOf[want] {
				wrong++
				details = append(details, fmt.Sprintf("%s state %q status %q, want %q/%q", ref, state, status, want, statusOf[want]))
			}
		}
		for _, body := range ex.supportNotes[id] {
			switch n := count(eng, `SELECT COUNT(*) FROM issue_comments WHERE issue_id = ? AND body = ?`, issue, "[support] ana: "+body); {
			case n == 0 && !strings.HasPrefix(body, "It happens"):
				notesLost++
			case n > 1:
				notesDup += n - 1
			}
		}
		for _, body := range ex.engineerNotes[id] {
			switch n := count(support, `SELECT COUNT(*) FROM ticket_comments WHERE ticket_id = ? AND body = ?`, id, "[engineering] dev: "+body); {
			case n == 0:
				notesLost++
			case n > 1:
				notesDup += n - 1
			}
		}
	}
	// Nothing looped back: no engineering copy of a support copy, and so on.
	bounced := count(support, `SELECT COUNT(*) FROM ticket_comments WHERE body LIKE '[engineering]%[support]%'`) +
		count(eng, `SELECT COUNT(*) FROM issue_comments WHERE body LIKE '[support]%[engineering]%'`)
	sort.Strings(details)
	if len(details) > 5 {
		details = details[:5]
	}
	ok := lost == 0 && dup == 0 && wrong == 0 && notesLost == 0 && notesDup == 0 && bounced == 0
	verdict := "ok"
	if !ok {
		verdict = "FAILED " + strings.Join(details, "; ")
	}
	return ok, fmt.Sprintf("tickets=%d deleted=%d closed=%d lost=%d duplicated=%d wrong=%d notes_lost=%d notes_duplicated=%d bounced=%d %s",
		len(ex.subject), len(ex.deleted), closed, lost, dup, wrong, notesLost, notesDup, bounced, verdict)
}

func fingerprint(support, eng *sql.DB) string {
	var parts []string
	for _, q := range []struct {
		db *sql.DB
		q  string
	}{
		{support, `SELECT COUNT(*) || '/' || COALESCE(MAX(updated_at), '') FROM tickets`},
		{support, `SELECT COUNT(*) FROM ticket_comments`},
		{eng, `SELECT COUNT(*) || '/' || COALESCE(MAX(updated_at), '') FROM issues`},
		{eng, `SELECT COUNT(*) FROM issue_comments`},
	} {
		var s string
		_ = q.db.QueryRow(q.q).Scan(&s)
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// changedSince lists the tickets and issues whose updated_at is later than
// the newest one a fingerprint recorded (its second and fourth fields).
func changedSince(support, eng *sql.DB, fp string) string {
	parts := strings.Split(fp, " ")
	if len(parts) < 3 {
		return ""
	}
	at := func(p string) string {
		if i := strings.Index(p, "/"); i >= 0 {
			return p[i+1:]
		}
		return ""
	}
	var out []string
	for _, q := range []struct {
		db          *sql.DB
		table, cols string
		since       string
	}{
		{support, "tickets", "id, subject, status, updated_at", at(parts[0])},
		{eng, "issues", "id, title, state, updated_at", at(parts[2])},
	} {
		rows, err := q.db.Query(`SELECT `+q.cols+` FROM `+q.table+` WHERE updated_at > ? ORDER BY updated_at`, q.since)
		if err != nil {
			out = append(out, err.Error())
			continue
		}
		for rows.Next() {
			var id, a, b, u string
			_ = rows.Scan(&id, &a, &b, &u)
			out = append(out, fmt.Sprintf("%s %s %q %s %s", q.table, id, a, b, u))
		}
		rows.Close()
	}
	return strings.Join(out, "; ")
}

// auditSince is a deployment's audit trail after t, a line an entry: what
// it wrote, and why, for the reader of a failed run.
func auditSince(n *node, t time.Time) string {
	db, err := sql.Open("sqlite3", filepath.Join(n.dir, "duplex.db")+"?_busy_timeout=10000")
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	rows, err := db.Query(`SELECT at, action, COALESCE(twin_id, 0), COALESCE(event_id, 0), detail FROM audit_log WHERE at > ? ORDER BY id`, t)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var at, action, detail string
		var twin, event int64
		_ = rows.Scan(&at, &action, &twin, &event, &detail)
		if len(detail) > 300 {
			detail = detail[:300] + "…"
		}
		out = append(out, fmt.Sprintf("  %s %s twin=%d event=%d %s", at, action, twin, event, detail))
	}
	return strings.Join(out, "\n")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
