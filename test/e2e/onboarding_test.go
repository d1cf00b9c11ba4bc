package e2e

// The hr-it-onboarding template end to end: an HR database (SQLite, through
// the sql connector, with the template's own testdata/hr-schema.sql) and a
// real Request Tracker (test/e2e/peers/rt.sh). Only RT is needed: these
// tests skip when the RT env is unset, whatever Redmine's.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
	"github.com/duplexsync/duplex/connectors/rt"
	"github.com/duplexsync/duplex/connectors/sqlconn"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/outbound"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
)

// onbRig is one hr-it-onboarding connection between a fresh HR database
// and a fresh RT queue, with direct connectors for the test's own edits
// (HR's application, IT's agents) and checks.
type onbRig struct {
	t       *testing.T
	ctx     context.Context
	st      *store.Store
	box     *secret.Box
	reg     *connectors.Registry
	runner  *scripting.Runner
	policy  string
	eng     *engine.Engine
	conn    store.Connection
	queue   string
	rtAPI   *httpx.Client
	rtCount *counter
	rt      connectors.Connector // IT's view of RT
	hr      connectors.Connector // HR's application
}

// rtPeer is the RT test server's address and credentials; it skips the
// test when the env is unset.
func rtPeer(t *testing.T) (rtURL, rtToken string, secrets map[string]string) {
	t.Helper()
	rtURL, rtToken = os.Getenv("DUPLEX_TEST_RT_URL"), os.Getenv("DUPLEX_TEST_RT_TOKEN")
	if rtURL == "" || rtToken == "" {
		t.Skip("DUPLEX_TEST_RT_URL/TOKEN not set: run make test-e2e (or eval \"$(test/e2e/peers/rt.sh env)\" with RT started)")
	}
	secrets = map[string]string{"token": rtToken}
	if pw := os.Getenv("DUPLEX_TEST_RT_PASSWORD"); pw != "" {
		secrets = map[string]string{"user": "root", "password": pw}
	}
	return rtURL, rtToken, secrets
}

// newQueue makes a fresh RT queue for one test.
func newQueue(t *testing.T, api *httpx.Client) string {
	t.Helper()
	q := fmt.Sprintf("e2e-%s-%d", t.Name(), time.Now().UnixNano())
	if err := api.Do(context.Background(), "POST", "/queue", map[string]any{"Name": q}, nil); err != nil {
		t.Fatalf("create RT queue: %v", err)
	}
	return q
}

// newHR makes the HR database from the template's own schema, in a folder
// of its own; it returns the folder, the file and the sql system's settings
// as docs/templates.md gives them.
func newHR(t *testing.T) (dir, dsn string, settings map[string]any) {
	t.Helper()
	dir = t.TempDir()
	dsn = filepath.Join(dir, "hr.db")
	schema, err := os.ReadFile(filepath.Join("..", "..", "scripts", "hr-it-onboarding", "testdata", "hr-schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if err := execSQLite(context.Background(), dsn, string(schema)); err != nil {
		t.Fatalf("hr-schema.sql: %v", err)
	}
	settings = map[string]any{
		"driver": "sqlite", "dsn": dsn, "table": "employees", "key_prefix": "E-",
		"fields": []map[string]any{{"name": "name"}, {"name": "email"}, {"name": "start_date"}, {"name": "role"},
			{"name": "manager"}, {"name": "equipment", "type": "list"}, {"name": "onboarding_status"}, {"name": "notes"}},
	}
	return dir, dsn, settings
}

func newOnbRig(t *testing.T, before func(r *onbRig)) *onbRig {
	rtURL, rtToken, rtSecrets := rtPeer(t)
	ctx := context.Background()
	r := &onbRig{t: t, ctx: ctx}
	r.rtAPI = &httpx.Client{Base: rtURL + "/REST/2.0", Header: http.Header{"Authorization": {"token " + rtToken}}}
	r.queue = newQueue(t, r.rtAPI)
	r.rtCount = newCounter(t, rtURL)
	hrDir, _, hrSettings := newHR(t)
	var err error
	if r.hr, err = sqlconn.New(ctx, connectors.Config{Name: "hr-app", Settings: jsonOf(hrSettings)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.hr.Close() })

	if r.st, err = store.Open(ctx, store.SQLiteDSN(filepath.Join(t.TempDir(), "duplex.db"))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	if r.box, err = secret.New(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	r.reg = connectors.NewRegistry()
	_ = r.reg.Register("rt", rt.New)
	_ = r.reg.Register("sql", sqlconn.New)
	r.runner = scripting.NewRunner(scripting.Options{})
	// Loopback (RT) and the HR database's directory, allowed explicitly as
	// an org admin would.
	r.policy = string(jsonOf(map[string]any{"allow": []map[string]any{{"network": "127.0.0.1"}, {"network": "::1"}, {"sqlite_dir": hrDir}}}))

	rtSettings := map[string]any{"url": r.rtCount.srv.URL, "queue": r.queue, "correlation_field": "Duplex key"}
	a := r.system("hr", "sql", hrSettings, nil)
	b := r.system("it", "rt", rtSettings, rtSecrets)
	direct := map[string]any{"url": rtURL, "queue": r.queue}
	if r.rt, err = rt.New(ctx, connectors.Config{Name: "it-agent", Settings: jsonOf(direct), Secrets: rtSecrets}); err != nil {
		t.Fatal(err)
	}

	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := lib.Get("hr-it-onboarding")
	if err != nil {
		t.Fatal(err)
	}
	src, err := tpl.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	bySide := map[store.Side]map[store.ScriptKind]string{}
	for side, kinds := range src {
		bySide[store.Side(side)] = map[store.ScriptKind]string{}
		for kind, s := range kinds {
			bySide[store.Side(side)][store.ScriptKind(kind)] = s
		}
	}
	r.conn = store.Connection{Name: "onboarding", SystemAID: a, SystemBID: b, Active: true, Template: tpl.Name, Options: string(tpl.Options)}
	r.eng = r.newEngine()
	if before != nil {
		before(r)
	}
	if err := r.st.CreateConnection(ctx, &r.conn, bySide, "e2e"); err != nil {
		t.Fatal(err)
	}
	return r
}

// execSQLite runs a script of statements (the template's schema) as HR's
// database administrator would; sqlconn registers the driver.
func execSQLite(ctx context.Context, path, script string) error {
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, script)
	return err
}

func jsonOf(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func (r *onbRig) system(name, kind string, settings map[string]any, secrets map[string]string) int64 {
	sealed, err := r.box.SealMap(secrets)
	if err != nil {
		r.t.Fatal(err)
	}
	s := store.System{Name: name, Kind: kind, Settings: string(jsonOf(settings)), Secrets: sealed}
	if err := r.st.CreateSystem(r.ctx, &s); err != nil {
		r.t.Fatal(err)
	}
	return s.ID
}

func (r *onbRig) newEngine() *engine.Engine {
	guards := outbound.NewGuards(outbound.Fixed(r.policy), outbound.Fence{}, nil)
	e := engine.New(engine.Options{Store: r.st, Connectors: r.reg, Secrets: r.box, Runner: r.runner, PageSize: 20, Outbound: guards.For,
		Backoff: func(int) time.Duration { return 0 }})
	r.t.Cleanup(func() { _ = e.Close() })
	return e
}

// poll reads every page of one system's changes.
func (r *onbRig) poll(systemID int64) {
	r.t.Helper()
	for {
		res, err := r.eng.PollOnce(r.ctx, systemID)
		if err != nil {
			r.t.Fatalf("poll: %v", err)
		}
		if !res.More {
			return
		}
	}
}

func (r *onbRig) work() {
	r.t.Helper()
	for i := 0; i < 50; i++ {
		n, err := r.eng.WorkOnce(r.ctx)
		if err != nil {
			r.t.Fatalf("work: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

// cycle polls both systems, works the queue until it is empty and fails
// the test on any failed event.
func (r *onbRig) cycle() {
	r.t.Helper()
	r.poll(r.conn.SystemAID)
	r.poll(r.conn.SystemBID)
	r.work()
	evs, err := r.st.ListEvents(r.ctx, store.EventFilter{ConnectionID: r.conn.ID, Status: store.StatusFailed})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, ev := range evs {
		r.t.Errorf("failed event %d (%s %s): %s", ev.ID, ev.Direction, ev.SourceID, ev.LastError)
	}
}

// hire adds an employee as HR's application does.
func (r *onbRig) hire(name, start, role string, equipment ...any) connectors.Entity {
	r.t.Helper()
	slug := strings.ToLower(strings.ReplaceAll(name, " ", "."))
	e, err := r.hr.Create(r.ctx, map[string]any{"name": name, "email": slug + "@example.com", "start_date": start, "role": role,
		"manager": "carla.diaz@example.com", "equipment": equipment, "onboarding_status": "pending", "notes": "HR: " + name})
	if err != nil {
		r.t.Fatal(err)
	}
	return e
}

// tickets lists the queue's tickets.
func (r *onbRig) tickets() []connectors.Entity {
	r.t.Helper()
	return listAll(r.t, r.ctx, r.rt)
}

func (r *onbRig) get(c connectors.Connector, id string) connectors.Entity {
	r.t.Helper()
	return mustGet(r.t, r.ctx, c, id)
}

func (r *onbRig) ticketOf(employeeID string) string {
	r.t.Helper()
	twins, err := r.st.ListTwins(r.ctx, r.conn.ID, 1000, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, tw := range twins {
		if tw.AID != nil && *tw.AID == employeeID && tw.BID != nil {
			return *tw.BID
		}
	}
	r.t.Fatalf("employee %s has no ticket", employeeID)
	return ""
}

func (r *onbRig) transactions(ticketID string) int {
	var out struct {
		Total int `json:"total"`
	}
	if err := r.rtAPI.Do(r.ctx, "GET", "/ticket/"+ticketID+"/history?per_page=1", nil, &out); err != nil {
		r.t.Fatal(err)
	}
	return out.Total
}

// TestOnboardingLifecycle: a new hire opens one ticket, however many polls
// see it; a moved start date updates that ticket; IT's public reply reaches
// the employee's notes and a private comment does not; resolving the ticket
// marks the employee done; quiet polls then write nothing anywhere.
func TestOnboardingLifecycle(t *testing.T) {
	r := newOnbRig(t, nil)
	ana := r.hire("Ana Lima", "2027-01-04", "engineer", "laptop", "monitor")
	dora := r.hire("Dora Nilsson", "2025-03-03", "support", "laptop")
	if _, err := r.hr.Update(r.ctx, dora.ID, map[string]any{"onboarding_status": "done"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // past the sql connector's settle time
	// Two polls before the queue is worked, then two more cycles.
	rt0 := r.rtCount.n.Load()
	r.poll(r.conn.SystemAID)
	r.poll(r.conn.SystemAID)
	r.work()
	createReq := r.rtCount.n.Load() - rt0
	for i := 0; i < 2; i++ {
		settle()
		r.cycle()
	}
	tks := r.tickets()
	if len(tks) != 1 {
		t.Fatalf("want 1 onboarding ticket (Dora is onboarded already), got %d", len(tks))
	}
	tk := tks[0]
	if tk.ID != r.ticketOf(ana.ID) {
		t.Fatalf("the ticket is not Ana's twin")
	}
	desc := fmt.Sprint(tk.Fields["description"])
	if tk.Fields["subject"] != "Onboarding: Ana Lima (engineer), starts 2027-01-04" || tk.Fields["due"] != "2027-01-04T00:00:00Z" ||
		fmt.Sprint(tk.Fields["requestors"]) != "[carla.diaz@example.com]" || tk.Fields["status"] != "new" ||
		!strings.Contains(desc, "[ ] VPN profile\n[ ] Production read-only access after week one\n[ ] Prepare and enrol a laptop\n[ ] Set up a monitor at the desk") {
		t.Fatalf("ticket: %q", tk.Fields)
	}
	emp := r.get(r.hr, ana.ID)
	if emp.Fields["onboarding_status"] != "requested" || !strings.HasPrefix(fmt.Sprint(emp.Fields["notes"]), "HR: Ana Lima\n\n--- IT onboarding #"+tk.ID+" ---\n") {
		t.Fatalf("employee after the create: %q", emp.Fields)
	}

	// HR moves the start date: the same ticket is updated, with a note for IT.
	settle()
	if _, err := r.hr.Update(r.ctx, ana.ID, map[string]any{"start_date": "2027-01-11"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	r.cycle()
	settle()
	r.cycle()
	tks = r.tickets()
	if len(tks) != 1 || tks[0].ID != tk.ID {
		t.Fatalf("after the start date moved: %d tickets", len(tks))
	}
	tk = r.get(r.rt, tk.ID)
	if tk.Fields["subject"] != "Onboarding: Ana Lima (engineer), starts 2027-01-11" || tk.Fields["due"] != "2027-01-11T00:00:00Z" {
		t.Fatalf("ticket after the start date moved: %q", tk.Fields)
	}
	want := []string{"(private) [HR] Ana Lima <ana.lima@example.com>: Start date changed from 2027-01-04 to 2027-01-11."}
	if got := bodies(tk.Comments); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("RT comments:\n got %q\nwant %q", got, want)
	}

	// IT answers: a public reply and an internal comment.
	if _, err := r.rt.AddComment(r.ctx, tk.ID, connectors.Comment{Body: "Laptop enrolled, accounts created."}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.rt.AddComment(r.ctx, tk.ID, connectors.Comment{Body: "internal: reuse the spare monitor", Private: true}); err != nil {
		t.Fatal(err)
	}
	settle()
	r.cycle()
	emp = r.get(r.hr, ana.ID)
	notes := fmt.Sprint(emp.Fields["notes"])
	if !strings.HasSuffix(notes, " root: Laptop enrolled, accounts created.") || strings.Contains(notes, "spare monitor") ||
		!strings.HasPrefix(notes, "HR: Ana Lima\n\n") || emp.Fields["onboarding_status"] != "in_progress" {
		t.Fatalf("employee after IT's reply: status %v, notes %q", emp.Fields["onboarding_status"], notes)
	}

	// IT resolves the ticket.
	if _, err := r.rt.Update(r.ctx, tk.ID, map[string]any{"status": "resolved"}); err != nil {
		t.Fatal(err)
	}
	settle()
	r.cycle()
	if got := r.get(r.hr, ana.ID).Fields["onboarding_status"]; got != "done" {
		t.Fatalf("onboarding_status after RT resolved: %v", got)
	}

	// Quiet: nothing changes on either side, and a poll costs one RT request.
	settle()
	r.cycle()
	settle()
	txs, hrAt := r.transactions(tk.ID), r.get(r.hr, ana.ID).UpdatedAt
	rtReq := r.rtCount.n.Load()
	const quiet = 10
	for i := 0; i < quiet; i++ {
		r.cycle()
		time.Sleep(500 * time.Millisecond) // past RT's poll window (3 s) by the end
	}
	if x, at := r.transactions(tk.ID), r.get(r.hr, ana.ID).UpdatedAt; x != txs || !at.Equal(hrAt) {
		t.Fatalf("quiet cycles wrote: RT transactions %d → %d, employee updated %v → %v", txs, x, hrAt, at)
	}
	rtN := r.rtCount.n.Load() - rtReq
	t.Logf("e2e: onboarding: new hire → ticket cost %d RT requests; %d quiet polls: %.1f RT requests per poll, no writes on either side",
		createReq, quiet, float64(rtN)/quiet)
	if rtN != quiet {
		t.Fatalf("a quiet poll must cost one RT request: %d for %d polls", rtN, quiet)
	}
}

// TestOnboardingBackfillWithRestart: employees hired before the connection
// existed get their tickets from "sync existing"; the engine stops halfway
// and a new one resumes: one ticket each, none twice, none missing.
func TestOnboardingBackfillWithRestart(t *testing.T) {
	const n = 30
	names := map[string]int{}
	r := newOnbRig(t, func(r *onbRig) {
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("Hire %02d", i)
			names[name] = 0
			r.hire(name, fmt.Sprintf("2027-02-%02d", 1+i%28), []string{"engineer", "sales", "support"}[i%3], "laptop")
		}
		time.Sleep(50 * time.Millisecond)
		// No connection uses the HR system yet: polling moves its cursor
		// past the rows without queuing them, as on a system Duplex watched.
		r.poll(r.conn.SystemAID)
	})
	r.cycle()
	if got := len(r.tickets()); got != 0 {
		t.Fatalf("before the backfill: %d tickets", got)
	}
	if _, err := r.st.StartBackfill(r.ctx, r.conn.ID, store.SideA); err != nil {
		t.Fatal(err)
	}
	rt0 := r.rtCount.n.Load()
	start := time.Now()
	// Half the job: one page of 20 scanned, one batch worked.
	if _, err := r.eng.BackfillOnce(r.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.eng.WorkOnce(r.ctx); err != nil {
		t.Fatal(err)
	}
	half := len(r.tickets())
	// Restart: a new engine on the same store picks up the job and queue.
	_ = r.eng.Close()
	r.eng = r.newEngine()
	for i := 0; i < 10; i++ {
		if _, err := r.eng.BackfillOnce(r.ctx); err != nil {
			t.Fatal(err)
		}
		r.cycle()
	}
	took := time.Since(start)
	jobs, err := r.st.ListBackfills(r.ctx, r.conn.ID)
	if err != nil || len(jobs) != 1 || jobs[0].Status != "done" || jobs[0].Scanned != n {
		t.Fatalf("job: %+v %v", jobs, err)
	}
	tks := r.tickets()
	for _, tk := range tks {
		s := fmt.Sprint(tk.Fields["subject"])
		name, _, _ := strings.Cut(strings.TrimPrefix(s, "Onboarding: "), " (")
		names[name]++
	}
	for name, c := range names {
		if c != 1 {
			t.Errorf("%q: %d tickets", name, c)
		}
	}
	if len(names) != n {
		keys := make([]string, 0, len(names))
		for k := range names {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Errorf("unexpected tickets: %v", keys)
	}
	t.Logf("e2e: onboarding backfill of %d employees: %d tickets before the restart, %d after, none twice; %.1f s, %.1f RT requests per employee",
		n, half, len(tks), took.Seconds(), float64(r.rtCount.n.Load()-rt0)/n)
}

// TestOnboardingLatency measures, with the engine running as in production
// (default poll interval), HR edit → RT ticket and RT reply → HR notes,
// and the RT requests Duplex sent per change. It reports; it asserts only
// that every change arrived within a generous bound.
func TestOnboardingLatency(t *testing.T) {
	r := newOnbRig(t, nil)
	emp := r.hire("Lat Probe", "2027-03-01", "sales", "phone")
	time.Sleep(50 * time.Millisecond)
	r.cycle()
	tkID := r.ticketOf(emp.ID)
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- r.eng.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	wait := func(what string, ok func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > 60*time.Second {
				t.Fatalf("%s: not there after 60 s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return time.Since(start)
	}
	const edits = 8
	var toRT, toHR []time.Duration
	rt0 := r.rtCount.n.Load()
	for i := 0; i < edits; i++ {
		day := fmt.Sprintf("2027-03-%02d", 2+i)
		if _, err := r.hr.Update(r.ctx, emp.ID, map[string]any{"start_date": day}); err != nil {
			t.Fatal(err)
		}
		toRT = append(toRT, wait("start date "+day, func() bool {
			return strings.HasSuffix(fmt.Sprint(r.get(r.rt, tkID).Fields["subject"]), "starts "+day)
		}))
	}
	rtPerEdit := float64(r.rtCount.n.Load()-rt0) / edits
	rt0 = r.rtCount.n.Load()
	for i := 0; i < edits; i++ {
		body := fmt.Sprintf("step %d done", i)
		if _, err := r.rt.AddComment(r.ctx, tkID, connectors.Comment{Body: body}); err != nil {
			t.Fatal(err)
		}
		toHR = append(toHR, wait("reply "+body, func() bool {
			return strings.HasSuffix(fmt.Sprint(r.get(r.hr, emp.ID).Fields["notes"]), ": "+body)
		}))
	}
	rtPerReply := float64(r.rtCount.n.Load()-rt0) / edits
	for _, l := range [][]time.Duration{toRT, toHR} {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	}
	t.Logf("e2e: onboarding, engine running (poll every 2 s), %d changes each way: HR start date → RT ticket p50 %.2f s, max %.2f s, %.1f RT requests per change; "+
		"RT reply → HR notes p50 %.2f s, max %.2f s, %.1f RT requests per reply (idle polls included)",
		edits, toRT[edits/2].Seconds(), toRT[edits-1].Seconds(), rtPerEdit, toHR[edits/2].Seconds(), toHR[edits-1].Seconds(), rtPerReply)
	if tks := r.tickets(); len(tks) != 1 {
		t.Fatalf("%d tickets after the edits, want 1", len(tks))
	}
}
