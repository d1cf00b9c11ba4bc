// Package peerlink runs two `duplex serve` processes with separate SQLite
// stores on loopback, links them with an invitation, and syncs a support
// desk in one with an engineering tracker in the other (docs/peers.md).
// The peers talk through a recording proxy in this test, so the test can
// read every message that crossed and replay or tamper with them.
package peerlink

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/demo"
	"github.com/duplexsync/duplex/internal/testbin"
	"github.com/duplexsync/duplex/peering"
	"github.com/duplexsync/duplex/scripts"
)

var binary string

func TestMain(m *testing.M) { testbin.Main(m, "duplex-peerlink-bin", &binary) }

const password = "peer link test password 42"

// node is one deployment: a `duplex serve` process, its store and key, its
// one SQLite system, and the proxy the other deployment reaches it through.
type node struct {
	name   string
	dir    string
	key    []byte
	url    string // the process itself
	public string // the proxy in front of it
	token  string
	cmd    *exec.Cmd
	db     *sql.DB // its system's database
	proxy  *recorder
}

// recorder forwards /peer/v1 requests to a node and keeps what crossed.
type recorder struct {
	mu     sync.Mutex
	target *url.URL
	seen   []crossed
	// fault, when set, decides what the proxy does to a request.
	fault func(body []byte) faultPlan
	// duplicates counts the 409 peer_message_duplicate answers.
	duplicates int
}

// faultPlan is what the proxy does to one request.
type faultPlan struct {
	drop       bool          // not forwarded
	delay      time.Duration // before forwarding
	duplicate  bool          // forwarded twice
	late       time.Duration // forwarded once more this much later
	loseAnswer bool          // forwarded, but the sender gets a 502
}

type crossed struct {
	path, sig string
	body      []byte
	status    int
	answer    []byte
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	target, fault := r.target, r.fault
	r.mu.Unlock()
	var f faultPlan
	if fault != nil {
		f = fault(body)
	}
	if f.drop {
		http.Error(w, "dropped by the test's proxy", http.StatusBadGateway)
		return
	}
	time.Sleep(f.delay)
	forward := func() *httptest.ResponseRecorder {
		req.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		proxy(target).ServeHTTP(rec, req)
		r.note(rec.Code)
		return rec
	}
	rec := forward()
	if f.duplicate {
		forward()
	}
	if f.late > 0 { // an old message arriving after newer ones
		late := req.Clone(context.Background())
		go func() {
			time.Sleep(f.late)
			late.Body = io.NopCloser(bytes.NewReader(body))
			rec := httptest.NewRecorder()
			proxy(target).ServeHTTP(rec, late)
			r.note(rec.Code)
		}()
	}
	r.mu.Lock()
	r.seen = append(r.seen, crossed{path: req.URL.Path, sig: req.Header.Get(peering.SignatureHeader), body: body,
		status: rec.Code, answer: rec.Body.Bytes()})
	r.mu.Unlock()
	if f.loseAnswer { // the receiver took it; the sender does not learn so
		http.Error(w, "answer lost by the test's proxy", http.StatusBadGateway)
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// proxy forwards to target; a node being restarted is an expected error.
func proxy(target *url.URL) *httputil.ReverseProxy {
	p := httputil.NewSingleHostReverseProxy(target)
	p.ErrorLog = stdlog.New(io.Discard, "", 0)
	return p
}

// note counts the peer's refusals of duplicates.
func (r *recorder) note(status int) {
	if status == http.StatusConflict {
		r.mu.Lock()
		r.duplicates++
		r.mu.Unlock()
	}
}

func (r *recorder) messages() []crossed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]crossed(nil), r.seen...)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startNode(t *testing.T, name string, log io.Writer) *node {
	t.Helper()
	dir := t.TempDir()
	key, err := secret.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, dir: dir, key: key, proxy: &recorder{}}
	srv := httptest.NewServer(n.proxy)
	t.Cleanup(srv.Close)
	n.public = srv.URL
	n.start(t, log)
	return n
}

func (n *node) start(t *testing.T, log io.Writer) {
	t.Helper()
	addr := freeAddr(t)
	n.url = "http://" + addr
	target, _ := url.Parse(n.url)
	n.proxy.mu.Lock()
	n.proxy.target = target
	n.proxy.mu.Unlock()
	cmd := exec.Command(binary, "serve", "--data", n.dir, "--addr", addr)
	cmd.Env = append(os.Environ(), "DUPLEX_ADMIN_EMAIL=admin@"+n.name+".test", "DUPLEX_ADMIN_PASSWORD="+password,
		"DUPLEX_SECRET_KEY="+secret.EncodeKey(n.key), "DUPLEX_LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.cmd = cmd
	t.Cleanup(func() { n.stop() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(n.url + "/livez")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start", n.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *node) stop() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

// call sends a JSON request with the node's token (or cookie and CSRF
// header) and decodes the answer into out; it returns the status and body.
func (n *node) call(t *testing.T, method, path string, in, out any) (int, []byte) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.url+path, body)
	req.Header.Set("Content-Type", "application/json")
	if n.token != "" {
		req.Header.Set("Authorization", "Bearer "+n.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, raw
}

func (n *node) must(t *testing.T, method, path string, in, out any) {
	t.Helper()
	if code, raw := n.call(t, method, path, in, out); code/100 != 2 {
		t.Fatalf("%s: %s %s: %d %s", n.name, method, path, code, raw)
	}
}

// signIn makes an API token for the node's admin.
func (n *node) signIn(t *testing.T) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"email": "admin@" + n.name + ".test", "password": password})
	resp, err := http.Post(n.url+"/api/auth/login", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&me)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: login %d", n.name, resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", n.url+"/api/me/tokens", strings.NewReader(`{"name":"peer test"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", me.CSRF)
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		Token string `json:"token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	if tok.Token == "" {
		t.Fatalf("%s: no token (%d)", n.name, resp.StatusCode)
	}
	n.token = tok.Token
}

// system creates the node's one SQLite system (its database made like the
// demo's) and allows its folder; the DSN is given as a secret, which the
// other deployment must never see.
func (n *node) system(t *testing.T, name string, settings func(string) map[string]any, file string) int64 {
	t.Helper()
	paths, err := demo.CreateDatabases(context.Background(), filepath.Join(n.dir, "systems"))
	if err != nil {
		t.Fatal(err)
	}
	path := paths.Support
	if file == "engineering.db" {
		path = paths.Engineering
	}
	db, err := sql.Open("sqlite3", path+"?_busy_timeout=10000&_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	n.db = db
	abs, _ := filepath.Abs(filepath.Dir(path))
	// The peer is reached through the outbound policy, as systems are:
	// here both deployments are on loopback.
	n.must(t, "PUT", "/api/outbound-policy", map[string]any{"allow": []map[string]any{{"sqlite_dir": abs}, {"network": "127.0.0.1"}}}, nil)
	var sys struct {
		ID int64 `json:"id"`
	}
	n.must(t, "POST", "/api/systems", map[string]any{"name": name, "kind": "sql", "team_id": 1,
		"settings": settings(path), "secrets": map[string]string{"dsn": path}, "poll_interval_ms": 100}, &sys)
	return sys.ID
}

// sideScripts are the built-in template's scripts of one side with a
// marker comment, so a leak of them anywhere is found by the marker.
func sideScripts(t *testing.T, side, marker string) map[string]string {
	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := lib.Get("support-escalation")
	if err != nil {
		t.Fatal(err)
	}
	src, err := tpl.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"trigger":  src[side]["trigger"],
		"outgoing": "// " + marker + "\n" + src[side]["outgoing"],
		"incoming": "// " + marker + "\n" + src[side]["incoming"],
	}
}

func waitFor(t *testing.T, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func queryString(db *sql.DB, q string, args ...any) string {
	var s sql.NullString
	_ = db.QueryRow(q, args...).Scan(&s)
	return s.String
}

func queryInt(db *sql.DB, q string, args ...any) int {
	var n int
	_ = db.QueryRow(q, args...).Scan(&n)
	return n
}

type linkView struct {
	ID           int64  `json:"id"`
	Status       string `json:"status"`
	ConnectionID int64  `json:"connection_id"`
	LocalNode    string `json:"local_node"`
	RemoteNode   string `json:"remote_node"`
	LastError    string `json:"last_error"`
	Counts       struct {
		Waiting, Sent, Received int64
	} `json:"counts"`
	Pairs []struct {
		PairKey   string `json:"pair_key"`
		RemoteID  string `json:"remote_id"`
		RemoteKey string `json:"remote_key"`
	} `json:"pairs"`
}

// pair is two linked deployments: support (X, inviting, side a) and
// engineering (Y, accepting, side b).
type pair struct {
	x, y         *node
	xLink, yLink linkView
	code         string
	xSys, ySys   int64
}

func link(t *testing.T, log io.Writer) *pair {
	t.Helper()
	p := &pair{x: startNode(t, "support", log), y: startNode(t, "engineering", log)}
	for _, n := range []*node{p.x, p.y} {
		n.signIn(t)
	}
	p.xSys = p.x.system(t, "support-desk", demo.SupportSettings, "support.db")
	p.ySys = p.y.system(t, "engineering", demo.EngineeringSettings, "engineering.db")
	var inv peering.Invited
	p.x.must(t, "POST", "/api/peer-links", map[string]any{"team_id": 1, "name": "escalation", "system_id": p.xSys,
		"scripts": sideScripts(t, "a", "x-only-script-marker"), "public_url": p.x.public, "side": "a", "valid_minutes": 30}, &inv)
	p.code = inv.Code
	p.y.must(t, "POST", "/api/peer-links/accept", map[string]any{"team_id": 1, "name": "escalation", "system_id": p.ySys,
		"scripts": sideScripts(t, "b", "y-only-script-marker"), "public_url": p.y.public, "code": inv.Code}, &p.yLink)
	p.x.must(t, "GET", fmt.Sprintf("/api/peer-links/%d", inv.Link.ID), nil, &p.xLink)
	if p.xLink.Status != "active" || p.yLink.Status != "active" {
		t.Fatalf("links not active: support %q, engineering %q", p.xLink.Status, p.yLink.Status)
	}
	// The system's poller may have read ticket 1 before the link's
	// connection existed (changes from before a connection are a
	// backfill's job): touch it, so it is a change the link takes.
	if _, err := p.x.db.Exec("UPDATE tickets SET labels = labels WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTwoDeploymentsSyncBothWays(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary and runs two deployments")
	}
	log, err := os.Create(filepath.Join(t.TempDir(), "duplex.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	p := link(t, log)
	x, y := p.x, p.y
	dump := func() {
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("logs:\n%s", b)
		}
	}
	defer dump()

	// Escalation: ticket 1 carries "todev" from the start.
	waitFor(t, "the escalated ticket on the engineering side", 30*time.Second, func() bool {
		return queryInt(y.db, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'") == 1
	})
	if got := queryString(y.db, "SELECT title FROM issues WHERE ticket_ref = 'T-1'"); got != "Checkout fails with a 500" {
		t.Errorf("issue title %q", got)
	}
	if got := queryString(y.db, "SELECT priority FROM issues WHERE ticket_ref = 'T-1'"); got != "critical" {
		t.Errorf("issue priority %q: the engineering side's own incoming script maps it", got)
	}
	// The existing comment came along, through Y's own incoming script.
	waitFor(t, "the ticket's comment on the issue", 20*time.Second, func() bool {
		return queryInt(y.db, "SELECT COUNT(*) FROM issue_comments WHERE body LIKE '[support]%every card type.'") == 1
	})
	// The acknowledgement carried the created issue's id and key to X.
	waitFor(t, "the acknowledgement", 20*time.Second, func() bool {
		var v linkView
		x.must(t, "GET", fmt.Sprintf("/api/peer-links/%d", p.xLink.ID), nil, &v)
		return len(v.Pairs) == 1 && strings.HasPrefix(v.Pairs[0].RemoteKey, "ENG-")
	})

	// Escalate another ticket on X.
	if _, err := x.db.Exec("UPDATE tickets SET labels = 'export,todev' WHERE id = 3"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ticket 3 on the engineering side", 20*time.Second, func() bool {
		return queryInt(y.db, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-3'") == 1
	})

	// Status and a comment back from engineering (Y → X).
	if _, err := y.db.Exec("UPDATE issues SET state = 'resolved' WHERE ticket_ref = 'T-1'"); err != nil {
		t.Fatal(err)
	}
	if _, err := y.db.Exec("INSERT INTO issue_comments (issue_id, author, body) SELECT id, 'dev@eng', 'Fixed in 4.2.1' FROM issues WHERE ticket_ref = 'T-1'"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ticket solved on the support side", 20*time.Second, func() bool {
		return queryString(x.db, "SELECT status FROM tickets WHERE id = 1") == "solved"
	})
	waitFor(t, "the engineer's comment on the ticket", 20*time.Second, func() bool {
		return queryInt(x.db, "SELECT COUNT(*) FROM ticket_comments WHERE ticket_id = 1 AND body LIKE '[engineering] dev@eng: Fixed in 4.2.1'") == 1
	})
	// A comment from support (X → Y) after that.
	if _, err := x.db.Exec("INSERT INTO ticket_comments (ticket_id, author, body) VALUES (1, 'agent@support', 'Customer confirms')"); err != nil {
		t.Fatal(err)
	}
	if _, err := x.db.Exec("UPDATE tickets SET subject = 'Checkout fails with a 500 (EU only)' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the support comment and subject on the issue", 20*time.Second, func() bool {
		return queryInt(y.db, "SELECT COUNT(*) FROM issue_comments WHERE body LIKE '[support] agent@support: Customer confirms'") == 1 &&
			queryString(y.db, "SELECT title FROM issues WHERE ticket_ref = 'T-1'") == "Checkout fails with a 500 (EU only)"
	})

	// Settled: nothing waits, and nothing was copied twice or looped back.
	settle(t, p)
	if n := queryInt(x.db, "SELECT COUNT(*) FROM ticket_comments WHERE ticket_id = 1"); n != 3 {
		t.Errorf("ticket 1 has %d comments, want 3 (its own two and the engineer's)", n)
	}
	if n := queryInt(y.db, "SELECT COUNT(*) FROM issue_comments i JOIN issues s ON s.id = i.issue_id WHERE s.ticket_ref = 'T-1'"); n != 3 {
		t.Errorf("issue T-1 has %d comments, want 3 (two from support and its own)", n)
	}
	if n := queryInt(y.db, "SELECT COUNT(*) FROM issues"); n != 3 {
		t.Errorf("engineering has %d issues, want 3 (its own and two escalations)", n)
	}

	// The trust boundary: no message and no API answer of one side holds
	// the other side's scripts or secrets (the DSN, a secret, names its
	// database file in its own data folder).
	t.Run("boundary", func(t *testing.T) {
		xSecrets := []string{"x-only-script-marker", x.dir}
		ySecrets := []string{"y-only-script-marker", y.dir}
		for _, m := range x.proxy.messages() { // what Y sent to X and X's answers
			for _, s := range ySecrets {
				if bytes.Contains(m.body, []byte(s)) || bytes.Contains(m.answer, []byte(s)) {
					t.Errorf("a message from engineering holds %q: %s", s, m.body)
				}
			}
			for _, s := range xSecrets {
				if bytes.Contains(m.answer, []byte(s)) {
					t.Errorf("an answer of support to engineering holds %q", s)
				}
			}
		}
		for _, m := range y.proxy.messages() {
			for _, s := range xSecrets {
				if bytes.Contains(m.body, []byte(s)) || bytes.Contains(m.answer, []byte(s)) {
					t.Errorf("a message from support holds %q: %s", s, m.body)
				}
			}
		}
		if len(x.proxy.messages()) == 0 || len(y.proxy.messages()) == 0 {
			t.Fatal("no messages crossed the proxies")
		}
		for _, c := range []struct {
			n      *node
			others []string
			conn   int64
			link   int64
		}{{x, ySecrets, p.xLink.ConnectionID, p.xLink.ID}, {y, xSecrets, p.yLink.ConnectionID, p.yLink.ID}} {
			for _, path := range []string{"/api/peer-links", fmt.Sprintf("/api/peer-links/%d", c.link), "/api/systems",
				"/api/connections", fmt.Sprintf("/api/connections/%d", c.conn), fmt.Sprintf("/api/connections/%d/twins", c.conn),
				"/api/events", "/api/audit"} {
				code, raw := c.n.call(t, "GET", path, nil, nil)
				if code != 200 {
					t.Errorf("%s %s: %d", c.n.name, path, code)
				}
				for _, s := range c.others {
					if bytes.Contains(raw, []byte(s)) {
						t.Errorf("%s's %s holds the other side's %q", c.n.name, path, s)
					}
				}
			}
			// Each side sees its own scripts, and only placeholders for the peer's.
			_, raw := c.n.call(t, "GET", fmt.Sprintf("/api/connections/%d", c.conn), nil, nil)
			if !bytes.Contains(raw, []byte("The peer deployment runs its own script")) {
				t.Errorf("%s: the peer side's scripts are not the placeholder: %s", c.n.name, raw)
			}
		}
	})

	// Each side changes only its own scripts: the peer side's are the other
	// deployment's, and saving them is refused.
	t.Run("own scripts only", func(t *testing.T) {
		for _, c := range []struct {
			n          *node
			conn       int64
			own, other string
		}{{x, p.xLink.ConnectionID, "a", "b"}, {y, p.yLink.ConnectionID, "b", "a"}} {
			path := fmt.Sprintf("/api/connections/%d/scripts/%%s/outgoing", c.conn)
			if code, raw := c.n.call(t, "PUT", fmt.Sprintf(path, c.other), map[string]string{"source": "replica.x = 1;"}, nil); code != 400 {
				t.Errorf("%s: saving the peer side's script: %d %s, want 400", c.n.name, code, raw)
			}
			var cur struct {
				Scripts map[string]map[string]struct{ Source string } `json:"scripts"`
			}
			c.n.must(t, "GET", fmt.Sprintf("/api/connections/%d", c.conn), nil, &cur)
			src := cur.Scripts[c.own]["outgoing"].Source
			if src == "" {
				t.Fatalf("%s: no own outgoing script in %+v", c.n.name, cur.Scripts)
			}
			c.n.must(t, "PUT", fmt.Sprintf(path, c.own), map[string]string{"source": src + "\n// edited by its own admin"}, nil)
		}
	})

	// Conflicts are each side's own: engineering's policy is manual, so a
	// title changed on both sides waits in engineering's queue, and
	// engineering's edit stays until someone there decides.
	t.Run("conflict on the receiving side", func(t *testing.T) {
		y.must(t, "PUT", fmt.Sprintf("/api/connections/%d/conflict-policy", p.yLink.ConnectionID), map[string]any{"default": "manual"}, nil)
		if _, err := y.db.Exec("UPDATE issues SET title = 'Engineering renamed it' WHERE ticket_ref = 'T-3'"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // engineering's poll sees its own edit (its outgoing script does not carry titles)
		if _, err := x.db.Exec("UPDATE tickets SET subject = 'Support renamed it' WHERE id = 3"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a conflict in engineering's queue", 20*time.Second, func() bool {
			var evs []struct{ Status string }
			y.must(t, "GET", fmt.Sprintf("/api/events?status=conflict&connection_id=%d", p.yLink.ConnectionID), nil, &evs)
			return len(evs) == 1
		})
		if got := queryString(y.db, "SELECT title FROM issues WHERE ticket_ref = 'T-3'"); got != "Engineering renamed it" {
			t.Errorf("title %q: the manual policy must keep engineering's edit", got)
		}
		var evs []struct{ Status string }
		x.must(t, "GET", "/api/events?status=conflict", nil, &evs)
		if len(evs) != 0 {
			t.Errorf("support has %d conflicts: the conflict is engineering's alone", len(evs))
		}
	})

	t.Run("deletes", func(t *testing.T) { deletes(t, p) })
	t.Run("security", func(t *testing.T) { security(t, p) })
	t.Run("metrics per link", func(t *testing.T) { linkMetrics(t, p) })
}

// linkMetrics: /metrics counts per link (labels link_id and link): both
// sides sent and received on their link, and the refusals of the security
// run (messages addressed to Y's link) are counted on Y's link.
func linkMetrics(t *testing.T, p *pair) {
	scrape := func(n *node) string {
		code, raw := n.call(t, "GET", "/metrics", nil, nil)
		if code != 200 {
			t.Fatalf("%s: /metrics %d", n.name, code)
		}
		return string(raw)
	}
	value := func(text, name string, link int64) float64 {
		re := regexp.MustCompile(`(?m)^` + name + `\{link="escalation",link_id="` + strconv.FormatInt(link, 10) + `"\} (\S+)$`)
		m := re.FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no %s for link %d in:\n%s", name, link, text)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	x, y := scrape(p.x), scrape(p.y)
	for _, c := range []struct {
		text string
		link int64
		side string
	}{{x, p.xLink.ID, "support"}, {y, p.yLink.ID, "engineering"}} {
		for _, name := range []string{"duplex_peer_messages_sent_total", "duplex_peer_messages_received_total"} {
			if v := value(c.text, name, c.link); v < 1 {
				t.Errorf("%s: %s = %v", c.side, name, v)
			}
		}
	}
	if v := value(y, "duplex_peer_refused_total", p.yLink.ID); v < 3 {
		t.Errorf("engineering: %v refusals counted on its link after the security run", v)
	}
}

// deletes: a delete crosses the link as a message, and the receiving side
// applies its own connection's delete policy, as for a local delete, once:
// engineering closes its issue (close), support deletes its ticket
// (delete). Neither bounces back, and a delete of a ticket never sent
// sends nothing.
func deletes(t *testing.T, p *pair) {
	x, y := p.x, p.y
	settle(t, p)
	y.must(t, "PUT", fmt.Sprintf("/api/connections/%d/options", p.yLink.ConnectionID),
		map[string]any{"on_delete": "close", "close": map[string]any{"b": map[string]any{"state": "closed"}}}, nil)
	x.must(t, "PUT", fmt.Sprintf("/api/connections/%d/options", p.xLink.ConnectionID), map[string]any{"on_delete": "delete"}, nil)
	var before linkView
	x.must(t, "GET", fmt.Sprintf("/api/peer-links/%d", p.xLink.ID), nil, &before)

	// Support deletes ticket 3 (soft delete, as the demo's table does) and
	// ticket 2, which was never escalated.
	if _, err := x.db.Exec("UPDATE tickets SET deleted_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id IN (2, 3)"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "engineering to close T-3 by its own delete policy", 20*time.Second, func() bool {
		return queryString(y.db, "SELECT state FROM issues WHERE ticket_ref = 'T-3'") == "closed"
	})
	if got := queryString(y.db, "SELECT COALESCE(deleted_at, '') FROM issues WHERE ticket_ref = 'T-3'"); got != "" {
		t.Errorf("T-3 deleted at %q: engineering's policy is close", got)
	}

	// Engineering deletes T-1: support's policy deletes ticket 1.
	if _, err := y.db.Exec("UPDATE issues SET deleted_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE ticket_ref = 'T-1'"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "support to delete ticket 1 by its own delete policy", 20*time.Second, func() bool {
		return queryString(x.db, "SELECT COALESCE(deleted_at, '') FROM tickets WHERE id = 1") != ""
	})
	settle(t, p)

	// Exactly once on each side: one delete event from the peer, applied
	// by the local policy; one delete message sent each way (ticket 2
	// sent nothing), none bounced.
	type event struct {
		Action string `json:"action"`
		Status string `json:"status"`
		Source string `json:"source_id"`
		Dir    string `json:"direction"`
	}
	deleteEvents := func(n *node, conn int64) (out []event) {
		var evs []event
		n.must(t, "GET", fmt.Sprintf("/api/events?connection_id=%d&limit=500", conn), nil, &evs)
		for _, e := range evs {
			if e.Action == "delete" {
				out = append(out, e)
			}
		}
		return out
	}
	// Events from the peer side are what the inbox took: one delete each way.
	fromPeer := func(evs []event, d string) (n int) {
		for _, e := range evs {
			if e.Dir == d {
				n++
			}
		}
		return n
	}
	xd, yd := deleteEvents(x, p.xLink.ConnectionID), deleteEvents(y, p.yLink.ConnectionID)
	if fromPeer(xd, "b_to_a") != 1 || fromPeer(yd, "a_to_b") != 1 {
		t.Fatalf("delete events: support %+v, engineering %+v; want one from the peer on each side", xd, yd)
	}
	for _, e := range append(xd, yd...) {
		if e.Status != "done" {
			t.Errorf("a delete event ended %q: %s", e.Status, e.Source)
		}
	}
	var after linkView
	x.must(t, "GET", fmt.Sprintf("/api/peer-links/%d", p.xLink.ID), nil, &after)
	if d := after.Counts.Sent - before.Counts.Sent; d < 1 {
		t.Errorf("support sent %d messages for the deletes", d)
	}
	if n := queryInt(y.db, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-2'"); n != 0 {
		t.Errorf("the never escalated ticket 2 has %d issues", n)
	}
	if n := queryInt(x.db, "SELECT COUNT(*) FROM tickets WHERE deleted_at IS NOT NULL"); n != 3 {
		t.Errorf("%d deleted tickets on support; want 3 (1 by the policy, 2 and 3 by hand)", n)
	}
}

// settle waits until neither side has messages waiting or events queued.
func settle(t *testing.T, p *pair) {
	t.Helper()
	waitFor(t, "both sides to settle", 30*time.Second, func() bool {
		for _, c := range []struct {
			n    *node
			link int64
		}{{p.x, p.xLink.ID}, {p.y, p.yLink.ID}} {
			var v linkView
			c.n.must(t, "GET", fmt.Sprintf("/api/peer-links/%d", c.link), nil, &v)
			if v.Counts.Waiting > 0 {
				return false
			}
			var evs []struct{ Status string }
			c.n.must(t, "GET", "/api/events?status=queued", nil, &evs)
			if len(evs) > 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second) // a poll or two more: an echo would show now
	for _, c := range []*node{p.x, p.y} {
		var evs []struct{ Status string }
		c.must(t, "GET", "/api/events?status=queued", nil, &evs)
		if len(evs) > 0 {
			t.Errorf("%s: %d events queued after settling (a loop?)", c.name, len(evs))
		}
	}
}

// xKey reads X's private key of the link from its store, as only X can:
// the test uses it to sign messages that X did not send.
func xKey(t *testing.T, p *pair) ed25519.PrivateKey {
	t.Helper()
	st, err := store.Connect(context.Background(), filepath.Join(p.x.dir, "duplex.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := st.GetPeerLink(context.Background(), p.xLink.ID)
	if err != nil {
		t.Fatal(err)
	}
	box, err := secret.New(p.x.key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := box.Open(l.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.PrivateKey(k)
}

// post sends a raw peer request to Y itself and returns status and code.
func post(t *testing.T, n *node, path string, body []byte, sig string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", n.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set(peering.SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Code string }
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Code
}

// recorded is what Y holds: inbox size, links, events.
func recorded(t *testing.T, n *node, link int64) string {
	var v linkView
	n.must(t, "GET", fmt.Sprintf("/api/peer-links/%d", link), nil, &v)
	var links, evs []json.RawMessage
	n.must(t, "GET", "/api/peer-links", nil, &links)
	n.must(t, "GET", "/api/events?limit=500", nil, &evs)
	return fmt.Sprintf("received %d, links %d, events %d", v.Counts.Received, len(links), len(evs))
}

func security(t *testing.T, p *pair) {
	x, y := p.x, p.y
	key := xKey(t, p)
	fresh := func(id string, at time.Time) []byte {
		env := peering.Envelope{From: p.yLink.RemoteNode, To: p.yLink.LocalNode, ID: id, Time: at, Kind: peering.KindReplica,
			Pair: p.yLink.RemoteNode + ".999", Replica: json.RawMessage(`{"title":"forged","ticket":"T-999"}`)}
		b, _ := json.Marshal(env)
		return b
	}
	sign := func(b []byte) string {
		body, sig, err := peering.Sign(json.RawMessage(b), key)
		if err != nil || !bytes.Equal(body, b) {
			t.Fatalf("sign: %v", err)
		}
		return sig
	}
	before := recorded(t, y, p.yLink.ID)
	var last crossed
	for _, m := range y.proxy.messages() {
		if m.path == "/peer/v1/messages" && m.status == 200 {
			last = m
		}
	}
	cases := []struct {
		name       string
		body       []byte
		sig        string
		path       string
		wantStatus int
		wantCode   string
	}{
		{"bad signature", fresh("forged-1", time.Now()), sign(fresh("other", time.Now())), "/peer/v1/messages", 401, peering.CodeSignature},
		{"no signature", fresh("forged-2", time.Now()), "", "/peer/v1/messages", 401, peering.CodeSignature},
		{"replayed message", last.body, last.sig, "/peer/v1/messages", 409, peering.CodeDuplicate},
		{"stale message", fresh("forged-3", time.Now().Add(-10*time.Minute)), "", "/peer/v1/messages", 401, peering.CodeReplay},
		{"oversized body", bytes.Repeat([]byte("x"), peering.MaxBody+1), "", "/peer/v1/messages", 413, "too_large"},
		{"unknown link", bytes.Replace(fresh("forged-4", time.Now()), []byte(p.yLink.LocalNode), []byte("nosuchnode"), 1), "", "/peer/v1/messages", 403, peering.CodeUnknown},
	}
	for _, c := range cases {
		sig := c.sig
		if sig == "" && c.name != "no signature" && c.name != "oversized body" {
			sig = sign(c.body)
		}
		status, code := post(t, y, c.path, c.body, sig)
		if status != c.wantStatus || code != c.wantCode {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, code, c.wantStatus, c.wantCode)
		}
	}
	if after := recorded(t, y, p.yLink.ID); after != before {
		t.Errorf("refused messages left a trace: before %s, after %s", before, after)
	}
	// A properly signed fresh message is taken: the checks above refused
	// for their reason, not because the test's signing was wrong.
	good := fresh("positive-2", time.Now())
	if status, code := post(t, y, "/peer/v1/messages", good, sign(good)); status != 200 {
		t.Errorf("a fresh, signed message: %d %s, want 200", status, code)
	}

	// Invitations: a used one and an expired one are refused by the
	// inviter, and the accepting side keeps nothing of the attempt.
	before = recorded(t, y, p.yLink.ID)
	accept := func(code string) (int, string) {
		status, raw := y.call(t, "POST", "/api/peer-links/accept", map[string]any{"team_id": 1, "name": "again", "system_id": p.ySys,
			"template": "support-escalation", "public_url": y.public, "code": code}, nil)
		var e struct{ Code string }
		_ = json.Unmarshal(raw, &e)
		return status, e.Code
	}
	// A code naming an address the outbound policy refuses makes Duplex
	// post nowhere: an admin cannot use a crafted code to reach the network.
	crafted := peering.Invitation{URL: "http://10.255.255.1:9", Node: "n", Secret: "s", Expires: time.Now().Add(time.Hour),
		Side: "b", Key: make([]byte, ed25519.PublicKeySize)}.Encode()
	if status, code := accept(crafted); status != 422 || code != "outbound_refused" {
		t.Errorf("invitation to a refused address: %d %s, want 422 outbound_refused", status, code)
	}
	if status, code := accept(p.code); status != 422 || code != peering.CodeInvitation {
		t.Errorf("reused invitation: %d %s, want 422 %s", status, code, peering.CodeInvitation)
	}
	var inv peering.Invited
	x.must(t, "POST", "/api/peer-links", map[string]any{"team_id": 1, "name": "expiring", "system_id": p.xSys,
		"template": "support-escalation", "public_url": x.public, "valid_minutes": 1}, &inv)
	xdb, err := sql.Open("sqlite3", filepath.Join(x.dir, "duplex.db")+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer xdb.Close()
	if _, err := xdb.Exec("UPDATE peer_invites SET expires_at = ? WHERE link_id = ?", time.Now().Add(-time.Minute).UTC(), inv.Link.ID); err != nil {
		t.Fatal(err)
	}
	if status, code := accept(inv.Code); status != 422 || code != peering.CodeInvitation {
		t.Errorf("expired invitation: %d %s, want 422 %s", status, code, peering.CodeInvitation)
	}
	if after := recorded(t, y, p.yLink.ID); after != before {
		t.Errorf("refused invitations left a trace: before %s, after %s", before, after)
	}

	// Revoke on Y: at once, X's messages are refused, and X learns of it.
	var v linkView
	y.must(t, "POST", fmt.Sprintf("/api/peer-links/%d/revoke", p.yLink.ID), nil, &v)
	if v.Status != "revoked" {
		t.Fatalf("revoked link: %q", v.Status)
	}
	before = recorded(t, y, p.yLink.ID)
	late := fresh("after-revoke", time.Now())
	if status, code := post(t, y, "/peer/v1/messages", late, sign(late)); status != 403 || code != peering.CodeRevoked {
		t.Errorf("message from a revoked peer: %d %s, want 403 %s", status, code, peering.CodeRevoked)
	}
	if after := recorded(t, y, p.yLink.ID); after != before {
		t.Errorf("a revoked peer's message left a trace: before %s, after %s", before, after)
	}
	waitFor(t, "support to learn of the revocation", 10*time.Second, func() bool {
		x.must(t, "GET", fmt.Sprintf("/api/peer-links/%d", p.xLink.ID), nil, &v)
		return v.Status == "revoked_by_peer"
	})
	var audit []struct{ Action string }
	y.must(t, "GET", "/api/audit", nil, &audit)
	found := false
	for _, a := range audit {
		found = found || a.Action == "peer.revoke"
	}
	if !found {
		t.Error("the revocation is not in the audit log")
	}
}

// TestDemoPeers runs `duplex demo --peers` and sees ticket 1 reach the
// engineering deployment and its resolution come back.
func TestDemoPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	peer := freeAddr(t)
	out, err := os.Create(filepath.Join(t.TempDir(), "banner"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(binary, "demo", "--peers", "--data", dir, "--addr", addr, "--peer-addr", peer, "--poll", "100ms")
	cmd.Stdout, cmd.Stderr = out, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	eng := filepath.Join(dir, "engineering", "systems", "engineering.db")
	sup := filepath.Join(dir, "support", "systems", "support.db")
	open := func(path string) *sql.DB {
		waitFor(t, path, 30*time.Second, func() bool { _, err := os.Stat(path); return err == nil })
		db, err := sql.Open("sqlite3", path+"?_busy_timeout=10000&_journal_mode=WAL")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	e, s := open(eng), open(sup)
	waitFor(t, "ticket 1 on the engineering deployment", 30*time.Second, func() bool {
		return queryInt(e, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'") == 1
	})
	if _, err := e.Exec("UPDATE issues SET state = 'resolved' WHERE ticket_ref = 'T-1'"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ticket solved on the support deployment", 30*time.Second, func() bool {
		return queryString(s, "SELECT status FROM tickets WHERE id = 1") == "solved"
	})
	if banner, _ := os.ReadFile(out.Name()); !strings.Contains(string(banner), "two deployments") {
		t.Errorf("banner: %s", banner)
	}
}
