package crash

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/demo"
	"github.com/duplexsync/duplex/internal/itemsvc"
	"github.com/duplexsync/duplex/internal/outbound"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripts"
)

// server is one `duplex serve` of the cluster.
type server struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
	gone bool
}

func startServer(t *testing.T, name, dir, dsn string, env []string) *server {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, name)
	args := []string{"serve", "--db", dsn, "--data", data, "--addr", "127.0.0.1:0"}
	bin := binary
	if b := os.Getenv("DUPLEX_BENCH_BINARY"); b != "" && strings.HasPrefix(name, "b") {
		bin = b // the benchmark against another build (without --lease, unless it knows it)
		if os.Getenv("DUPLEX_BENCH_BINARY_LEASE") != "" {
			args = append(args, "--lease", clusterLease.String())
		}
	} else {
		args = append(args, "--lease", clusterLease.String())
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); _ = log.Close() }()
	t.Cleanup(func() {
		if !s.gone {
			_ = cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

// clusterLease is the processes' claim lease: short, so the killed one's
// work is taken over within the run.
const clusterLease = 2 * time.Second

// processID reads the process id the server logged at start.
func (s *server) processID(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	re := regexp.MustCompile(`duplex is serving.*process=(\S+)`)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(s.log)
		if m := re.FindSubmatch(b); m != nil {
			return string(m[1])
		}
		if strings.HasPrefix(s.name, "b") && strings.Contains(string(b), "duplex is serving") {
			return s.name // another build (DUPLEX_BENCH_BINARY) logs no process id
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(s.log)
	t.Fatalf("%s did not start:\n%s", s.name, tail(string(b), 20))
	return ""
}

// Three `duplex serve` processes share one PostgreSQL store while both sides
// of the demo keep changing; one is killed with SIGKILL (holding a poller
// and events), another stopped with SIGTERM. At the end every change arrived
// exactly once, in order per twin (the final values are the last written),
// no event was recorded twice, and nothing failed or stayed queued.
func TestClusterKillAndStop(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the cluster run builds the binary and takes about half a minute")
	}
	base := os.Getenv(testdb.PostgresEnv)
	if base == "" {
		t.Skipf("the cluster run needs PostgreSQL: set %s (for example postgres://postgres@127.0.0.1:5432/test?sslmode=disable; .ci/run sets it)", testdb.PostgresEnv)
	}
	ctx := context.Background()
	dsn, drop := testdb.Schema(t, base)
	if keep := os.Getenv("DUPLEX_CLUSTER_KEEP"); keep == "" {
		t.Cleanup(drop)
	} else { // the store's schema is kept for a look afterwards, with the logs
		fmt.Println("cluster: the store is kept:", dsn)
		_ = os.WriteFile(filepath.Join(keep, "store-dsn.txt"), []byte(dsn+"\n"), 0o644)
	}
	dir := t.TempDir()

	// Systems and the connection go in through the store before any
	// process starts: the processes need no API call.
	paths, err := demo.CreateDatabases(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	key, err := secret.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	box, err := secret.New(key)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := scripts.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := demo.Install(ctx, st, box, lib, paths, 50); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	pg, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()

	env := []string{"DUPLEX_SECRET_KEY=" + secret.EncodeKey(key), "DUPLEX_LOG_LEVEL=info"}
	servers := make([]*server, 3)
	byID := map[string]*server{}
	for i := range servers {
		servers[i] = startServer(t, fmt.Sprint("p", i+1), dir, dsn, env)
	}
	for _, s := range servers {
		byID[s.processID(t)] = s
	}
	support := open(t, paths.Support)
	eng := open(t, paths.Engineering)

	seed := uint64(20261203)
	if v := os.Getenv("DUPLEX_CRASH_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	ex := &expect{subject: map[int64]string{1: "Checkout fails with a 500"}, state: map[int64]string{},
		supportNotes: map[int64][]string{}, engineerNotes: map[int64][]string{}}
	wctx, stopWriting := context.WithTimeout(ctx, 15*time.Second)
	defer stopWriting()
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() { defer wg.Done(); write(wctx, t, rand.New(rand.NewPCG(seed, 3)), support, eng, ex, 900) }()

	holder := func(system string) *server {
		var id sql.NullString
		_ = pg.QueryRow(`SELECT poller_id FROM systems WHERE name = $1`, system).Scan(&id)
		if s := byID[id.String]; s != nil && !s.gone {
			return s
		}
		return nil
	}
	// SIGKILL the process polling the support desk, mid-stream: its events
	// and its poller wait for the lease, then another process takes them.
	time.Sleep(4 * time.Second)
	killed := holder("support-desk")
	if killed == nil {
		killed = servers[0]
	}
	// Preferably while it holds queued events (a batch in flight), so that
	// their takeover is exercised too; batches are short, so look for up to
	// three seconds.
	var killedID string
	for id, s := range byID {
		if s == killed {
			killedID = id
		}
	}
	held := 0
	for look := time.Now(); time.Since(look) < 3*time.Second; time.Sleep(2 * time.Millisecond) {
		_ = pg.QueryRow(`SELECT COUNT(*) FROM sync_events WHERE claimed_by = $1 AND status = 'queued'`, killedID).Scan(&held)
		if held > 0 {
			break
		}
	}
	_ = killed.cmd.Process.Kill()
	<-killed.done
	killed.gone = true
	t.Logf("SIGKILL %s at %s (it held about %d queued events)", killed.name, time.Since(start).Round(time.Millisecond), held)

	// SIGTERM another one (the engineering poller's holder if that is not
	// the killed one): it finishes its batch, releases its claims, exits 0.
	time.Sleep(4 * time.Second)
	stopped := holder("engineering")
	if stopped == nil {
		for _, s := range servers {
			if !s.gone {
				stopped = s
				break
			}
		}
	}
	_ = stopped.cmd.Process.Signal(syscall.SIGTERM)
	termAt := time.Now()
	select {
	case err := <-stopped.done:
		stopped.gone = true
		if err != nil {
			// On one line, so that make figures' filter keeps the panic.
			b, _ := os.ReadFile(stopped.log)
			t.Errorf("%s after SIGTERM: %v; its log ends: %s", stopped.name, err, strings.ReplaceAll(tail(string(b), 40), "\n", " | "))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30 s of SIGTERM", stopped.name)
	}
	t.Logf("SIGTERM %s at %s, exited after %s", stopped.name, termAt.Sub(start).Round(time.Millisecond), time.Since(termAt).Round(time.Millisecond))
	// What the stopped process still holds right after it exited, read
	// before its 2 s leases could lapse: a graceful stop gives everything
	// back at once. The store is the evidence, not the log line.
	var stoppedID string
	for id, s := range byID {
		if s == stopped {
			stoppedID = id
		}
	}
	var stillHeld int
	_ = pg.QueryRow(`SELECT (SELECT COUNT(*) FROM sync_events WHERE claimed_by = $1)
		+ (SELECT COUNT(*) FROM webhook_deliveries WHERE claimed_by = $1)
		+ (SELECT COUNT(*) FROM backfills WHERE claimed_by = $1)
		+ (SELECT COUNT(*) FROM systems WHERE poller_id = $1)`, stoppedID).Scan(&stillHeld)
	wg.Wait()
	streamed := time.Since(start)

	var report string
	ok := false
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, report = check(t, support, eng, ex, pg)
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	converged := time.Since(start)
	debugBounces(pg)
	if !ok {
		debugTwins(pg, ex, report)
	}
	before := fingerprint(t, support, eng)
	time.Sleep(2 * time.Second)
	looped := fingerprint(t, support, eng) != before

	// An event applied and recorded by two processes would have two audit
	// entries; a taken-over event the killed process applied but never
	// recorded has one (and its re-application is the restart case the
	// crash run proves harmless).
	var twice, done, events int
	_ = pg.QueryRow(`SELECT COUNT(*) FROM (SELECT event_id FROM audit_log WHERE action LIKE 'sync.%' AND event_id IS NOT NULL
		GROUP BY event_id HAVING COUNT(*) > 1) x`).Scan(&twice)
	_ = pg.QueryRow(`SELECT COUNT(*) FROM sync_events WHERE status = 'done'`).Scan(&done)
	_ = pg.QueryRow(`SELECT COUNT(*) FROM sync_events`).Scan(&events)
	var dupTwins int
	_ = pg.QueryRow(`SELECT COUNT(*) FROM (SELECT connection_id, a_id FROM twins WHERE a_id IS NOT NULL GROUP BY connection_id, a_id HAVING COUNT(*) > 1) x`).Scan(&dupTwins)

	takeovers, pollerTakeovers, deadlocks := 0, 0, 0
	for _, s := range servers {
		te, tp, dl := countTakeovers(s.log)
		takeovers += te
		pollerTakeovers += tp
		deadlocks += dl
	}
	stoppedLog, _ := os.ReadFile(stopped.log)
	released := stillHeld == 0
	if !released || !strings.Contains(string(stoppedLog), "released claims") {
		// On one line, so that make figures' filter keeps it.
		var lines []string
		for _, l := range strings.Split(string(stoppedLog), "\n") {
			if strings.Contains(l, "releas") || strings.Contains(l, "level=ERROR") {
				lines = append(lines, l)
			}
		}
		fmt.Printf("cluster: %s still held %d claims after it exited; its release lines: %s | log ends: %s\n", stopped.name, stillHeld,
			strings.Join(lines, " | "), strings.ReplaceAll(tail(string(stoppedLog), 8), "\n", " | "))
	}

	line := fmt.Sprintf("cluster: processes=3 killed=%s stopped=%s changes=%d events=%d done=%d recorded twice=%d duplicate twins=%d %s looped=%v takeovers: events=%d pollers=%d; deadlocks logged=%d; stream %s, converged at %s",
		killed.name, stopped.name, ex.changes, events, done, twice, dupTwins, report, looped, takeovers, pollerTakeovers, deadlocks,
		streamed.Round(time.Millisecond), converged.Round(time.Millisecond))
	fmt.Println(line)
	t.Log(line)
	if keep := os.Getenv("DUPLEX_CLUSTER_KEEP"); keep != "" { // a folder for the servers' logs, kept after the run
		for _, s := range servers {
			if b, err := os.ReadFile(s.log); err == nil {
				_ = os.WriteFile(filepath.Join(keep, s.name+".log"), b, 0o644)
			}
		}
	}
	if !ok || looped || twice > 0 || dupTwins > 0 || !released {
		var logs strings.Builder
		for _, s := range servers {
			b, _ := os.ReadFile(s.log)
			fmt.Fprintf(&logs, "--- %s\n%s\n", s.name, tail(string(b), 15))
		}
		t.Fatalf("%s (stopped process released its claims: %v)\n%s", line, released, logs.String())
	}
}

var (
	eventTakeover  = regexp.MustCompile(`took over events whose claim lapsed.* events=(\d+)`)
	pollerTakeover = regexp.MustCompile(`took over a system's poller`)
)

// countTakeovers reads a server's log for the claims it took over, and
// counts the lines that report a PostgreSQL deadlock (SQLSTATE 40P01: each
// stalled its transactions for the server's deadlock_timeout).
func countTakeovers(path string) (events, pollers, deadlocks int) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := eventTakeover.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[1])
			events += n
		}
		if pollerTakeover.MatchString(sc.Text()) {
			pollers++
		}
		if strings.Contains(sc.Text(), "40P01") {
			deadlocks++
		}
	}
	return events, pollers, deadlocks
}

// TestClusterThroughput is the scale-out benchmark (make bench-cluster, not
// part of make test): the demo connection with n new escalated tickets
// waiting on the support side, run by 1 process on a SQLite store and by 1,
// 2 and 3 processes sharing a PostgreSQL store, in the same run; each figure
// is tickets created on the engineering side per second, from the moment
// every process serves until the last one arrived.
func TestClusterThroughput(t *testing.T) {
	if os.Getenv("DUPLEX_BENCH_CLUSTER") == "" {
		t.Skip("a benchmark: make bench-cluster (DUPLEX_BENCH_CLUSTER=1, needs DUPLEX_TEST_POSTGRES)")
	}
	base := os.Getenv(testdb.PostgresEnv)
	if base == "" {
		t.Skipf("set %s", testdb.PostgresEnv)
	}
	n := 3000
	if v, err := strconv.Atoi(os.Getenv("DUPLEX_BENCH_TICKETS")); err == nil && v > 0 {
		n = v
	}
	// The remote's latency: the same runs on PostgreSQL with the target an
	// HTTP item service that answers each write after this long (the
	// realistic case for scale-out: the limit is the wait, not the CPU).
	// DUPLEX_BENCH_REMOTE_MS=0 leaves those runs out.
	remote := 20 * time.Millisecond
	if v, err := strconv.Atoi(os.Getenv("DUPLEX_BENCH_REMOTE_MS")); err == nil && v >= 0 {
		remote = time.Duration(v) * time.Millisecond
	}
	type run struct {
		name   string
		procs  int
		pg     bool
		remote time.Duration
	}
	runs := []run{{"sqlite, 1 process", 1, false, 0}, {"postgres, 1 process", 1, true, 0}, {"postgres, 2 processes", 2, true, 0}, {"postgres, 3 processes", 3, true, 0}}
	if remote > 0 {
		for procs := 1; procs <= 3; procs++ {
			runs = append(runs, run{fmt.Sprintf("postgres, %d, remote %v", procs, remote), procs, true, remote})
		}
	}
	var lines []string
	var one float64                        // postgres with the remote, one process
	only := os.Getenv("DUPLEX_BENCH_ONLY") // runs whose name holds it (a profile of one run)
	for _, r := range runs {
		if only != "" && !strings.Contains(r.name, only) {
			continue
		}
		rate := throughputRun(t, base, n, r.procs, r.pg, r.remote)
		line := fmt.Sprintf("cluster bench: %-26s %d tickets: %7.0f changes/s", r.name, n, rate)
		if r.remote > 0 && r.procs == 1 {
			one = rate
		} else if r.remote > 0 && one > 0 {
			line += fmt.Sprintf(" (%.2f× one process)", rate/one)
		}
		lines = append(lines, line)
		fmt.Println(line)
	}
	t.Log("\n" + strings.Join(lines, "\n"))
}

// benchBound is how long one run of the throughput bench may take.
var benchBound = 5 * time.Minute

// slowRemote is the item service behind a delay on every write.
type slowRemote struct {
	items *itemsvc.Service
	delay time.Duration
	mu    sync.Mutex
	refs  map[string]string // item id → its ticket_ref
}

func (s *slowRemote) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		time.Sleep(s.delay)
	}
	s.items.ServeHTTP(w, r)
}

// arrived counts the distinct tickets the remote holds an item for, and the
// items beyond one per ticket.
func (s *slowRemote) arrived() (tickets, dup int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]int{}
	for _, ref := range s.refs {
		if ref != "" {
			seen[ref]++
		}
	}
	for _, k := range seen {
		dup += k - 1
	}
	return len(seen), dup
}

// useRemote turns the demo's engineering system into the generic HTTP
// connector on a slow item service (loopback, allowed in the policy).
func useRemote(t *testing.T, ctx context.Context, st *store.Store, box *secret.Box, sysID int64, delay time.Duration) *slowRemote {
	t.Helper()
	rem := &slowRemote{items: itemsvc.New(), delay: delay, refs: map[string]string{}}
	rem.items.OnWrite = func(id string) {
		it := rem.items.Item(id)
		ref, _ := it["ticket_ref"].(string)
		rem.mu.Lock()
		rem.refs[id] = ref
		rem.mu.Unlock()
	}
	srv := httptest.NewServer(rem)
	t.Cleanup(srv.Close)
	settings, _ := json.Marshal(map[string]any{
		"url": srv.URL, "list_path": "/items?since={since}", "get_path": "/items/{id}", "create_path": "/items",
		"update_path": "/items/{id}", "comment_path": "/items/{id}/comments",
		"fields": []map[string]any{{"name": "title"}, {"name": "body"}, {"name": "state"}, {"name": "priority"}, {"name": "ticket_ref"}},
	})
	sealed, err := box.SealMap(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DB().WithContext(ctx).Exec(`UPDATE systems SET kind = 'http', settings = ?, secrets = ? WHERE id = ?`,
		string(settings), sealed, sysID).Error; err != nil {
		t.Fatal(err)
	}
	row, err := st.OutboundPolicy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := outbound.Parse([]byte(row.Policy))
	if err != nil {
		t.Fatal(err)
	}
	p.Allow = append(p.Allow, outbound.Rule{Network: "127.0.0.1", Note: "cluster bench: the slow remote"})
	if err := st.SetOutboundPolicy(ctx, p.JSON(), "bench", "outbound policy set"); err != nil {
		t.Fatal(err)
	}
	return rem
}

func throughputRun(t *testing.T, base string, n, procs int, pg bool, remote time.Duration) float64 {
	ctx := context.Background()
	dir := t.TempDir()
	dsn := filepath.Join(dir, "duplex.db")
	if pg {
		var drop func()
		dsn, drop = testdb.Schema(t, base)
		defer drop()
	}
	paths, err := demo.CreateDatabases(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	support := open(t, paths.Support)
	tx, err := support.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := tx.Exec(`INSERT INTO tickets (subject, labels, priority) VALUES (?, 'todev', 'high')`, fmt.Sprint("bench ", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	key, _ := secret.GenerateKey()
	box, _ := secret.New(key)
	lib, _ := scripts.Builtin()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := demo.Install(ctx, st, box, lib, paths, 100)
	if err != nil {
		t.Fatal(err)
	}
	var rem *slowRemote
	if remote > 0 {
		rem = useRemote(t, ctx, st, box, conn.SystemBID, remote)
	}
	_ = st.Close()
	env := []string{"DUPLEX_SECRET_KEY=" + secret.EncodeKey(key), "DUPLEX_LOG_LEVEL=warn"}
	var servers []*server
	start := time.Now() // startup included: the processes start one after another
	for i := 0; i < procs; i++ {
		servers = append(servers, startServer(t, fmt.Sprint("b", i+1), dir, dsn, append(env, "DUPLEX_LOG_LEVEL=info")))
	}
	for _, s := range servers {
		s.processID(t)
	}
	eng := open(t, paths.Engineering)
	want := n + 1 // and the demo's ticket 1
	deadline := start.Add(benchBound)
	for {
		var got int
		if rem != nil {
			got, _ = rem.arrived()
		} else {
			_ = eng.QueryRow(`SELECT COUNT(DISTINCT ticket_ref) FROM issues WHERE ticket_ref <> ''`).Scan(&got)
		}
		if got >= want {
			break
		}
		if time.Now().After(deadline) {
			for _, s := range servers {
				if raw, err := os.ReadFile(s.log); err == nil {
					t.Logf("%s's log ends:\n%s", s.name, raw[max(0, len(raw)-3000):])
				}
			}
			t.Fatalf("%d of %d tickets arrived in 5 minutes", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	var dup int
	if rem != nil {
		_, dup = rem.arrived()
	} else {
		_ = eng.QueryRow(`SELECT COUNT(*) - COUNT(DISTINCT ticket_ref) FROM issues WHERE ticket_ref <> ''`).Scan(&dup)
	}
	if dup != 0 {
		t.Errorf("%d processes: %d duplicate issues", procs, dup)
	}
	for _, s := range servers {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		<-s.done
		s.gone = true
	}
	return float64(want) / elapsed.Seconds()
}
