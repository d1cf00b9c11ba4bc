// Package e2e runs the rt-redmine-escalation template end to end against a
// real Request Tracker and a real Redmine (test/e2e/peers/*.sh install and
// start them on loopback; `make test-e2e` does it all). Each test makes its
// own RT queue and Redmine project, so tests need no reset between them.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
	"github.com/duplexsync/duplex/connectors/redmine"
	"github.com/duplexsync/duplex/connectors/rt"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/outbound"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
)

type peers struct {
	rtURL, rtToken, rmURL, rmKey string
	rtSecrets                    map[string]string
}

func env(t *testing.T) peers {
	t.Helper()
	p := peers{os.Getenv("DUPLEX_TEST_RT_URL"), os.Getenv("DUPLEX_TEST_RT_TOKEN"), os.Getenv("DUPLEX_TEST_REDMINE_URL"), os.Getenv("DUPLEX_TEST_REDMINE_KEY"), nil}
	if p.rtURL == "" || p.rtToken == "" || p.rmURL == "" || p.rmKey == "" {
		t.Skip("DUPLEX_TEST_RT_URL/TOKEN and DUPLEX_TEST_REDMINE_URL/KEY not set: run make test-e2e")
	}
	// With root's password the connector keeps an RT session (reads skip
	// RT's slow per-request credential check); else it uses the token.
	p.rtSecrets = map[string]string{"token": p.rtToken}
	if pw := os.Getenv("DUPLEX_TEST_RT_PASSWORD"); pw != "" {
		p.rtSecrets = map[string]string{"user": "root", "password": pw}
	}
	return p
}

// counter is a reverse proxy that counts the requests Duplex sends to a peer.
type counter struct {
	srv *httptest.Server
	n   atomic.Int64
	// lose, when set, sees each request's body; for true the peer gets the
	// request and does the work, and Duplex gets a 502 instead of the
	// answer: a crash between a remote write and Duplex's record of it.
	lose atomic.Pointer[func(body []byte) bool]
}

func newCounter(t *testing.T, target string) *counter {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.n.Add(1)
		if lose := c.lose.Load(); lose != nil {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if (*lose)(body) {
				proxy.ServeHTTP(httptest.NewRecorder(), r)
				http.Error(w, "answer lost (test fault)", http.StatusBadGateway)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// rig is one connection from the template between a fresh RT queue and a
// fresh Redmine project, with direct clients to both for the test's own
// edits and checks.
type rig struct {
	t        *testing.T
	ctx      context.Context
	st       *store.Store
	box      *secret.Box
	reg      *connectors.Registry
	runner   *scripting.Runner
	eng      *engine.Engine
	conn     store.Connection
	queue    string
	project  string
	rtAPI    *httpx.Client
	rmAPI    *httpx.Client
	rtCount  *counter
	rmCount  *counter
	rtDirect connectors.Connector // the test's own view of RT
	rmDirect connectors.Connector
}

func newRig(t *testing.T, policy string) *rig { return newRigWith(t, policy, nil) }

// newRigWith calls before (when not nil) once both systems exist and the
// engine runs, before the connection is made.
func newRigWith(t *testing.T, policy string, before func(r *rig)) *rig {
	return newRigParams(t, policy, nil, before)
}

// newRigParams renders the template with params (project is set here).
func newRigParams(t *testing.T, policy string, params map[string]any, before func(r *rig)) *rig {
	p := env(t)
	ctx := context.Background()
	r := &rig{t: t, ctx: ctx}
	r.rtAPI = &httpx.Client{Base: p.rtURL + "/REST/2.0", Header: http.Header{"Authorization": {"token " + p.rtToken}}}
	r.rmAPI = &httpx.Client{Base: p.rmURL, Header: http.Header{"X-Redmine-Api-Key": {p.rmKey}}}
	stamp := time.Now().UnixNano()
	r.queue = fmt.Sprintf("e2e-%s-%d", t.Name(), stamp)
	r.project = fmt.Sprintf("e2e%d", stamp)
	if err := r.rtAPI.Do(ctx, "POST", "/queue", map[string]any{"Name": r.queue}, nil); err != nil {
		t.Fatalf("create RT queue: %v", err)
	}
	if err := r.rmAPI.Do(ctx, "POST", "/projects.json", map[string]any{"project": map[string]any{
		"name": r.project, "identifier": r.project, "tracker_ids": []int{1, 2, 3}, "enabled_module_names": []string{"issue_tracking"}}}, nil); err != nil {
		t.Fatalf("create Redmine project: %v", err)
	}
	r.rtCount, r.rmCount = newCounter(t, p.rtURL), newCounter(t, p.rmURL)

	var err error
	if r.st, err = store.Open(ctx, store.SQLiteDSN(filepath.Join(t.TempDir(), "duplex.db"))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	if r.box, err = secret.New(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	r.reg = connectors.NewRegistry()
	_ = r.reg.Register("rt", rt.New)
	_ = r.reg.Register("redmine", redmine.New)
	r.runner = scripting.NewRunner(scripting.Options{})

	rtSettings := map[string]any{"url": r.rtCount.srv.URL, "queue": r.queue, "correlation_field": "Duplex key"}
	rmSettings := map[string]any{"url": r.rmCount.srv.URL, "project": r.project, "correlation_field": "Duplex key"}
	a := r.system("support", "rt", rtSettings, p.rtSecrets)
	b := r.system("engineering", "redmine", rmSettings, map[string]string{"api_key": p.rmKey})

	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := lib.Get("rt-redmine-escalation")
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{"project": r.project}
	for k, v := range params {
		vals[k] = v
	}
	src, err := tpl.Render(vals)
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
	r.conn = store.Connection{Name: "escalation", SystemAID: a, SystemBID: b, Active: true, Template: tpl.Name, ConflictPolicy: policy, Options: string(tpl.Options)}
	r.eng = r.newEngine()

	raw := func(m map[string]any) json.RawMessage {
		m2 := map[string]any{}
		for k, v := range m {
			m2[k] = v
		}
		m2["url"] = map[bool]string{true: p.rtURL, false: p.rmURL}[m["queue"] != nil]
		b, _ := json.Marshal(m2)
		return b
	}
	if r.rtDirect, err = rt.New(ctx, connectors.Config{Name: "direct", Settings: raw(rtSettings), Secrets: p.rtSecrets}); err != nil {
		t.Fatal(err)
	}
	if r.rmDirect, err = redmine.New(ctx, connectors.Config{Name: "direct", Settings: raw(rmSettings), Secrets: map[string]string{"api_key": p.rmKey}}); err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(r)
	}
	if err := r.st.CreateConnection(ctx, &r.conn, bySide, "e2e"); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) system(name, kind string, settings map[string]any, secrets map[string]string) int64 {
	raw, _ := json.Marshal(settings)
	sealed, err := r.box.SealMap(secrets)
	if err != nil {
		r.t.Fatal(err)
	}
	s := store.System{Name: name, Kind: kind, Settings: string(raw), Secrets: sealed}
	if err := r.st.CreateSystem(r.ctx, &s); err != nil {
		r.t.Fatal(err)
	}
	return s.ID
}

func (r *rig) newEngine() *engine.Engine {
	// The peers run on loopback, which the default policy refuses: the
	// engine gets the outbound guards main wires, allowing it explicitly.
	guards := outbound.NewGuards(outbound.Fixed(outbound.LoopbackForTests), outbound.Fence{}, nil)
	e := engine.New(engine.Options{Store: r.st, Connectors: r.reg, Secrets: r.box, Runner: r.runner, PageSize: 20, Outbound: guards.For,
		Backoff: func(int) time.Duration { return 0 }})
	r.t.Cleanup(func() { _ = e.Close() })
	return e
}

// cycle polls both systems and works the queue until it is empty; any
// failed event fails the test.
func (r *rig) cycle() {
	r.t.Helper()
	r.run()
	r.failed()
}

// run is cycle leaving failed events for the test to look at.
func (r *rig) run() {
	r.t.Helper()
	for _, id := range []int64{r.conn.SystemAID, r.conn.SystemBID} {
		for {
			res, err := r.eng.PollOnce(r.ctx, id)
			if err != nil {
				r.t.Fatalf("poll: %v", err)
			}
			if !res.More {
				break
			}
		}
	}
	for i := 0; i < 20; i++ {
		n, err := r.eng.WorkOnce(r.ctx)
		if err != nil {
			r.t.Fatalf("work: %v", err)
		}
		if n == 0 {
			break
		}
	}
}

// failed fails the test on any failed event, with its error.
func (r *rig) failed() {
	r.t.Helper()
	evs, err := r.st.ListEvents(r.ctx, store.EventFilter{ConnectionID: r.conn.ID, Status: store.StatusFailed})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, ev := range evs {
		r.t.Errorf("failed event %d (%s %s): %s", ev.ID, ev.Direction, ev.SourceID, ev.LastError)
	}
}

// settle waits for the whole-second stamps of both systems to move on, so a
// cycle sees every change made before it.
func settle() { time.Sleep(1100 * time.Millisecond) }

func (r *rig) ticket(subject, body string, fields map[string]any) connectors.Entity {
	r.t.Helper()
	f := map[string]any{"subject": subject, "description": body, "requestors": []any{"customer@example.com"}, "Escalation": "todev"}
	for k, v := range fields {
		f[k] = v
	}
	e, err := r.rtDirect.Create(r.ctx, f)
	if err != nil {
		r.t.Fatal(err)
	}
	return e
}

// issues lists the project's issues.
func (r *rig) issues() []connectors.Entity {
	r.t.Helper()
	return listAll(r.t, r.ctx, r.rmDirect)
}

func (r *rig) twinOf(rtID string) string {
	r.t.Helper()
	twins, err := r.st.ListTwins(r.ctx, r.conn.ID, 1000, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, tw := range twins {
		if tw.AID != nil && *tw.AID == rtID && tw.BID != nil {
			return *tw.BID
		}
	}
	r.t.Fatalf("RT ticket %s has no Redmine twin", rtID)
	return ""
}

func (r *rig) get(c connectors.Connector, id string) connectors.Entity {
	r.t.Helper()
	return mustGet(r.t, r.ctx, c, id)
}

// listAll reads every entity of c through its change feed, page by page.
func listAll(t *testing.T, ctx context.Context, c connectors.Connector) []connectors.Entity {
	t.Helper()
	var out []connectors.Entity
	cur := ""
	for i := 0; i < 50; i++ {
		p, err := c.Changes(ctx, cur, 100)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Entities...)
		if p.Cursor != "" {
			cur = p.Cursor
		}
		if !p.More {
			break
		}
	}
	return out
}

// mustGet reads one entity of c, failing the test when it cannot.
func mustGet(t *testing.T, ctx context.Context, c connectors.Connector, id string) connectors.Entity {
	t.Helper()
	e, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func bodies(cs []connectors.Comment) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Body
		if c.Private {
			out[i] = "(private) " + c.Body
		}
	}
	return out
}

// TestEscalateOnce: an escalated ticket creates one issue, however many
// polls and cycles see it; a ticket not escalated creates none.
func TestEscalateOnce(t *testing.T) {
	r := newRig(t, "")
	tk := r.ticket("Checkout fails", "Since 9:00, every card.", map[string]any{"priority": 45.0})
	r.ticket("Password reset", "please", map[string]any{"Escalation": ""})
	for i := 0; i < 3; i++ {
		r.cycle()
		settle()
	}
	issues := r.issues()
	if len(issues) != 1 {
		t.Fatalf("want 1 issue, got %d: %v", len(issues), issues)
	}
	is := issues[0]
	if is.Fields["subject"] != "Checkout fails" || is.Fields["priority"] != "High" ||
		!strings.HasPrefix(fmt.Sprint(is.Fields["description"]), "Since 9:00, every card.\n\nEscalated from RT ticket #"+tk.ID) {
		t.Fatalf("issue: %q", is.Fields)
	}
	// Sent back once after the create (sync_back_on_create). Duplex reaches
	// Redmine through the counting proxy, so the URL has the proxy's host.
	got := r.get(r.rtDirect, tk.ID)
	if u := fmt.Sprint(got.Fields["Engineering URL"]); !strings.HasSuffix(u, "/issues/"+is.ID) || got.Fields["status"] != "open" {
		t.Fatalf("RT ticket after the sync back: Engineering URL %q (issue %s), status %v", u, is.ID, got.Fields["status"])
	}
	if r.twinOf(tk.ID) != is.ID {
		t.Fatalf("twin points elsewhere")
	}
}

// TestCommentsAndPrivacy: correspondence goes to Redmine, public notes come
// back as internal RT comments; private notes and RT comments stay home.
func TestCommentsAndPrivacy(t *testing.T) {
	r := newRig(t, "")
	tk := r.ticket("VPN drops", "hourly", nil)
	r.cycle()
	issueID := r.twinOf(tk.ID)
	must := func(_ connectors.Comment, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.rtDirect.AddComment(r.ctx, tk.ID, connectors.Comment{Body: "Customer says it also happens on Wi-Fi"}))
	must(r.rtDirect.AddComment(r.ctx, tk.ID, connectors.Comment{Body: "support-only: VIP customer", Private: true}))
	must(r.rmDirect.AddComment(r.ctx, issueID, connectors.Comment{Body: "Reproduced, fix in progress"}))
	must(r.rmDirect.AddComment(r.ctx, issueID, connectors.Comment{Body: "dev-only: the lease timer is wrong", Private: true}))
	settle()
	r.cycle()
	settle()
	r.cycle()
	is := r.get(r.rmDirect, issueID)
	want := []string{"Reproduced, fix in progress", "(private) dev-only: the lease timer is wrong", "[RT] root: Customer says it also happens on Wi-Fi"}
	if got := bodies(is.Comments); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Redmine notes:\n got %q\nwant %q", got, want)
	}
	tkNow := r.get(r.rtDirect, tk.ID)
	want = []string{"Customer says it also happens on Wi-Fi", "(private) support-only: VIP customer", "(private) [engineering] Redmine Admin: Reproduced, fix in progress"}
	if got := bodies(tkNow.Comments); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("RT comments:\n got %q\nwant %q", got, want)
	}
}

// TestStatusRoundTripAndQuiet: Redmine's status maps onto RT's, forth and
// back; then ten quiet cycles, spread over more than the poll window, add no
// journal or transaction on either side and cost one list request per
// system each.
func TestStatusRoundTripAndQuiet(t *testing.T) {
	r := newRig(t, "")
	tk := r.ticket("Export broken", "CSV export is empty", nil)
	r.ticket("Import slow", "a second escalation, stamped earlier", nil)
	r.cycle()
	issueID := r.twinOf(tk.ID)
	for _, step := range []struct{ redmine, rt string }{{"In Progress", "open"}, {"Resolved", "resolved"}, {"Feedback", "stalled"}, {"Closed", "resolved"}} {
		if _, err := r.rmDirect.Update(r.ctx, issueID, map[string]any{"status": step.redmine}); err != nil {
			t.Fatal(err)
		}
		settle()
		r.cycle()
		if got := r.get(r.rtDirect, tk.ID).Fields["status"]; got != step.rt {
			t.Fatalf("Redmine %s: RT status %v, want %s", step.redmine, got, step.rt)
		}
	}
	settle()
	r.cycle()
	settle()
	journals, txs := r.journalCount(issueID), r.transactionCount(tk.ID)
	rtReq, rmReq := r.rtCount.n.Load(), r.rmCount.n.Load()
	const quiet = 10
	for i := 0; i < quiet; i++ {
		r.cycle()
		time.Sleep(500 * time.Millisecond) // past the poll window (3 s) by the end
	}
	if j, x := r.journalCount(issueID), r.transactionCount(tk.ID); j != journals || x != txs {
		t.Fatalf("quiet cycles wrote: journals %d → %d, transactions %d → %d", journals, j, txs, x)
	}
	rtN, rmN := r.rtCount.n.Load()-rtReq, r.rmCount.n.Load()-rmReq
	t.Logf("e2e: %d quiet polls per system: %.1f RT requests, %.1f Redmine requests per poll, no writes",
		quiet, float64(rtN)/quiet, float64(rmN)/quiet)
	if rtN != quiet || rmN != quiet {
		t.Fatalf("a quiet poll must cost one list request per system: RT %d, Redmine %d for %d polls", rtN, rmN, quiet)
	}
}

func (r *rig) journalCount(issueID string) int {
	var out struct {
		Issue struct {
			Journals []json.RawMessage `json:"journals"`
		} `json:"issue"`
	}
	if err := r.rmAPI.Do(r.ctx, "GET", "/issues/"+issueID+".json?include=journals", nil, &out); err != nil {
		r.t.Fatal(err)
	}
	return len(out.Issue.Journals)
}

func (r *rig) transactionCount(ticketID string) int {
	var out struct {
		Total int `json:"total"`
	}
	if err := r.rtAPI.Do(r.ctx, "GET", "/ticket/"+ticketID+"/history?per_page=1", nil, &out); err != nil {
		r.t.Fatal(err)
	}
	return out.Total
}

// TestConflictPolicy: the subject edited on both sides between polls. With
// the manual policy the change waits in the conflict list and nothing is
// overwritten; the person's choice is then applied.
func TestConflictPolicy(t *testing.T) {
	r := newRig(t, `{"default":"manual"}`)
	tk := r.ticket("Login slow", "3 s per login", nil)
	r.cycle()
	issueID := r.twinOf(tk.ID)
	settle()
	if _, err := r.rtDirect.Update(r.ctx, tk.ID, map[string]any{"subject": "Login slow for EU customers"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.rmDirect.Update(r.ctx, issueID, map[string]any{"subject": "Auth latency regression"}); err != nil {
		t.Fatal(err)
	}
	settle()
	r.cycle()
	if got := r.get(r.rmDirect, issueID).Fields["subject"]; got != "Auth latency regression" {
		t.Fatalf("manual policy overwrote the engineer's subject: %v", got)
	}
	evs, err := r.st.ListEvents(r.ctx, store.EventFilter{ConnectionID: r.conn.ID, Status: store.StatusConflict})
	if err != nil || len(evs) != 1 || evs[0].Conflicts == nil || !strings.Contains(*evs[0].Conflicts, "subject") {
		t.Fatalf("want one conflict on subject, got %d (%v)", len(evs), err)
	}
	if err := r.st.ResolveConflict(r.ctx, evs[0].ID, `{"subject":{"take":"source"}}`); err != nil {
		t.Fatal(err)
	}
	r.cycle()
	if got := r.get(r.rmDirect, issueID).Fields["subject"]; got != "Login slow for EU customers" {
		t.Fatalf("after choosing the RT side: %v", got)
	}
}

// TestBackfillWithRestart: 50 tickets escalated before the connection
// existed are synced by "sync existing"; the engine is stopped halfway and a
// new one resumes: 50 issues, no duplicates.
func TestBackfillWithRestart(t *testing.T) {
	const n = 50
	subjects := map[string]int{}
	r := newRigWith(t, "", func(r *rig) {
		for i := 0; i < n; i++ {
			s := fmt.Sprintf("legacy %02d", i)
			subjects[s] = 0
			r.ticket(s, "old ticket", nil)
		}
		settle()
		// No connection uses RT yet: polling moves the cursor past the old
		// tickets without queuing them, as on a system Duplex already watched.
		for {
			res, err := r.eng.PollOnce(r.ctx, r.conn.SystemAID)
			if err != nil {
				t.Fatal(err)
			}
			if !res.More {
				break
			}
		}
	})
	r.cycle()
	if got := len(r.issues()); got != 0 {
		t.Fatalf("before the backfill: %d issues", got)
	}
	if _, err := r.st.StartBackfill(r.ctx, r.conn.ID, store.SideA); err != nil {
		t.Fatal(err)
	}
	// Half the job: two pages of 20 scanned, one batch worked.
	for i := 0; i < 2; i++ {
		if _, err := r.eng.BackfillOnce(r.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.eng.WorkOnce(r.ctx); err != nil {
		t.Fatal(err)
	}
	half := len(r.issues())
	// Restart: a new engine on the same store picks up job and queue.
	_ = r.eng.Close()
	r.eng = r.newEngine()
	for i := 0; i < 10; i++ {
		if _, err := r.eng.BackfillOnce(r.ctx); err != nil {
			t.Fatal(err)
		}
		r.cycle()
	}
	jobs, err := r.st.ListBackfills(r.ctx, r.conn.ID)
	if err != nil || len(jobs) != 1 || jobs[0].Status != "done" || jobs[0].Scanned != n {
		t.Fatalf("job: %+v %v", jobs, err)
	}
	for _, is := range r.issues() {
		subjects[fmt.Sprint(is.Fields["subject"])]++
	}
	for s, c := range subjects {
		if c != 1 {
			t.Errorf("%q: %d issues", s, c)
		}
	}
	if len(subjects) != n {
		t.Errorf("unexpected issues: %v", sortedKeys(subjects))
	}
	t.Logf("e2e: backfill of %d tickets: %d issues before the restart, %d after, none twice", n, half, len(r.issues()))
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestLatency measures, with the engine running as in production (default
// poll interval, 2 s), the time from an RT edit to the Redmine issue showing
// it, over 20 edits, and the requests Duplex sent per edit. It reports; it
// asserts only that every edit arrived within a generous bound.
func TestLatency(t *testing.T) {
	r := newRig(t, "")
	tk := r.ticket("latency probe", "x", nil)
	r.cycle()
	issueID := r.twinOf(tk.ID)
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- r.eng.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	const edits = 20
	var lat []time.Duration
	rt0, rm0 := r.rtCount.n.Load(), r.rmCount.n.Load()
	for i := 0; i < edits; i++ {
		want := fmt.Sprintf("latency probe %d", i)
		if _, err := r.rtDirect.Update(r.ctx, tk.ID, map[string]any{"subject": want}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for {
			if got := r.get(r.rmDirect, issueID).Fields["subject"]; got == want {
				break
			}
			if time.Since(start) > 60*time.Second {
				t.Fatalf("edit %d not in Redmine after 60 s", i)
			}
			time.Sleep(100 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	rtReq, rmReq := r.rtCount.n.Load()-rt0, r.rmCount.n.Load()-rm0
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("e2e: RT edit → Redmine, %d edits, poll every 2 s: p50 %.2f s, max %.2f s; requests by Duplex per edit: RT %.1f, Redmine %.1f (idle polls included)",
		edits, lat[edits/2].Seconds(), lat[edits-1].Seconds(), float64(rtReq)/edits, float64(rmReq)/edits)
	r.failed()
}
