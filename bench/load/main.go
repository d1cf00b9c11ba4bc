// Command load is `make bench`: it runs, in one go and on loopback only,
// the floor server (bench/floor) and Duplex end to end (`duplex serve` as a
// separate process, so CPU and memory are the server's own) under the same
// webhook load, then a backfill of existing entities, and prints every
// figure with the floor's from the same run. Every phase is bounded in time.
//
// Duplex's path per change: signed webhook (carrying the item, or with -hook get
// naming it) → delivery recorded → hook loop (-hook get: the item read back)
// → trigger → outgoing script → durable sync event → worker → incoming
// script → row created on side b (the sql connector on SQLite) → twin,
// event status and audit entry committed. Latency is from sending the
// webhook to the row being visible in side b's table (the load tool polls
// it every millisecond, so add up to 1 ms of granularity).
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/duplexsync/duplex/bench"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/itemsvc"
)

var (
	duplexBin = flag.String("duplex", "bin/bench/duplex", "the duplex binary")
	floorBin  = flag.String("floor", "bin/bench/floor", "the floor server binary")
	dur       = flag.Duration("dur", 10*time.Second, "length of each load phase")
	conns     = flag.Int("conns", 16, "concurrent connections")
	rate      = flag.Int("rate", 1000, "offered changes per second in the latency phase")
	backfillN = flag.Int("backfill", 100_000, "entities in the backfill run (0 skips it)")
	hookMode  = flag.String("hook", "body", "webhook kind: body (the webhook carries the item, webhook_item_path \".\"), get (it names the item, Duplex reads it back from the item service)")
	bpoll     = flag.Duration("bpoll", time.Minute, "poll interval of side b (its own writes come back as changes and are echo-checked)")
	only      = flag.String("only", "", "run only these phases, comma-separated: floor, duplex, backfill (e.g. floor,backfill)")
	pprofAddr = flag.String("pprof", "", "serve pprof from the duplex process on this loopback address (DUPLEX_PPROF)")
	keep      = flag.Bool("keep", false, "keep the work directory")
	maxDrain  = flag.Duration("drain", 60*time.Second, "how long to wait for Duplex to apply what it accepted")
	dumpPaced = flag.String("dump-paced", "", "write each change of Duplex's paced phase to this file: seq, sent (ms after the phase began), latency (ms)")
)

const secretText = "hush"

func main() {
	flag.Parse()
	work, err := os.MkdirTemp("", "duplex-bench-")
	check(err)
	if !*keep {
		defer os.RemoveAll(work)
	} else {
		fmt.Println("work directory:", work)
	}
	fmt.Printf("bench: %d connections, %v per phase, latency phase at %d/s, GOMAXPROCS of the servers: default (%d CPUs)\n",
		*conns, *dur, *rate, numCPU())
	var floor, dup report
	if runs("floor") {
		floor = runFloor(work)
		floor.print("floor")
	}
	if runs("duplex") {
		dup = runDuplex(work)
		dup.print("duplex")
	}
	if floor.throughput > 0 && dup.throughput > 0 {
		fmt.Printf("ratio duplex/floor: throughput %.0f%% (%.0f vs %.0f changes/s), CPU per change %.1f× (%.0f vs %.0f µs), p99 at %d/s %v vs %v\n",
			100*dup.throughput/floor.throughput, dup.throughput, floor.throughput,
			dup.cpuPerChange/floor.cpuPerChange, dup.cpuPerChange, floor.cpuPerChange, *rate, dup.paced.p99, floor.paced.p99)
	}
	if runs("backfill") && *backfillN > 0 {
		runBackfill(work, *backfillN)
	}
}

// runs tells whether -only lets a phase run.
func runs(phase string) bool {
	return *only == "" || slices.Contains(strings.Split(*only, ","), phase)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return bytes.Count(b, []byte("processor\t:"))
}

// report is one server's figures.
type report struct {
	accepted     int64   // webhooks answered 202 in the throughput phase
	applied      int64   // changes seen applied (Duplex) or answered (floor)
	throughput   float64 // changes per second, sustained
	intake       float64 // webhooks accepted per second (Duplex)
	cpuPerChange float64 // server CPU µs per change
	sat          lat     // latency during the throughput phase
	paced        lat     // latency at -rate changes per second
	pacedSent    float64 // the rate actually sent
	rssMB        float64 // peak RSS (VmHWM)
	memMB        float64 // peak memory, anonymous summed, files once (memPeak)
	fileMB       float64 // of which files mapped
	extra        []string
}

type lat struct {
	n             int
	p50, p99, max time.Duration
}

func latOf(ds []time.Duration) lat {
	if len(ds) == 0 {
		return lat{}
	}
	slices.Sort(ds)
	p := func(q float64) time.Duration { return ds[int(float64(len(ds)-1)*q)] }
	r := func(d time.Duration) time.Duration {
		if d > 10*time.Millisecond {
			return d.Round(100 * time.Microsecond)
		}
		return d.Round(10 * time.Microsecond)
	}
	return lat{n: len(ds), p50: r(p(.5)), p99: r(p(.99)), max: r(ds[len(ds)-1])}
}

func (l lat) String() string {
	return fmt.Sprintf("p50 %v p99 %v max %v (n=%d)", l.p50, l.p99, l.max, l.n)
}

func (r report) print(name string) {
	fmt.Printf("%s: %.0f changes/s", name, r.throughput)
	if r.intake > 0 {
		fmt.Printf(" applied (%d accepted at %.0f/s, %d applied)", r.accepted, r.intake, r.applied)
	}
	fmt.Printf(", CPU %.0f µs/change, peak RSS %.1f MB\n", r.cpuPerChange, r.rssMB)
	if r.memMB > 0 {
		fmt.Printf("%s:   peak memory %.1f MB: anonymous of all processes together %.1f, files mapped %.1f (the binary's text, once)\n",
			name, r.memMB, r.memMB-r.fileMB, r.fileMB)
	}
	fmt.Printf("%s:   latency under full load: %v\n", name, r.sat)
	fmt.Printf("%s:   latency at %d/s (%.0f/s sent): %v\n", name, *rate, r.pacedSent, r.paced)
	for _, e := range r.extra {
		fmt.Printf("%s:   %s\n", name, e)
	}
}

// proc is a server process started by the bench.
type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	mu     sync.Mutex
}

func (p *proc) stop() string {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// cpu is the user+system CPU time so far of the process and its children
// (Duplex's script workers: the live ones, and those it has reaped).
func (p *proc) cpu() time.Duration {
	f := statFields(p.cmd.Process.Pid)
	if f == nil {
		check(fmt.Errorf("no /proc/%d/stat", p.cmd.Process.Pid))
	}
	ticks := field(f, 11) + field(f, 12) + field(f, 13) + field(f, 14) // utime stime cutime cstime
	for _, c := range children(p.cmd.Process.Pid) {
		if cf := statFields(c); cf != nil {
			ticks += field(cf, 11) + field(cf, 12)
		}
	}
	const clkTck = 100 // USER_HZ, 100 on Linux
	return time.Duration(ticks) * time.Second / clkTck
}

// childCPU is the part of cpu that is the children's (the script workers).
func (p *proc) childCPU() time.Duration {
	f := statFields(p.cmd.Process.Pid)
	if f == nil {
		return 0
	}
	ticks := field(f, 13) + field(f, 14) // cutime cstime
	for _, c := range children(p.cmd.Process.Pid) {
		if cf := statFields(c); cf != nil {
			ticks += field(cf, 11) + field(cf, 12)
		}
	}
	const clkTck = 100
	return time.Duration(ticks) * time.Second / clkTck
}

// statFields are the fields of /proc/PID/stat after the command name (which
// may hold spaces, in parentheses): field 3 of the line is f[0].
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
}

func field(f []string, i int) int64 {
	n, _ := strconv.ParseInt(f[i], 10, 64)
	return n
}

// children lists the live processes whose parent is pid.
func children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(c); f != nil && field(f, 1) == int64(pid) {
			out = append(out, c)
		}
	}
	return out
}

// peakRSS is VmHWM in MB of the process plus that of its live children
// (each one's own peak: an upper bound of the peak of all together).
func (p *proc) peakRSS() float64 {
	total := hwm(p.cmd.Process.Pid)
	for _, c := range children(p.cmd.Process.Pid) {
		total += hwm(c)
	}
	return total
}

func hwm(pid int) float64 { return procStatusMB(pid)["VmHWM"] }

// procStatusMB reads the kB figures of /proc/PID/status, in MB by name
// (empty once the process is gone).
func procStatusMB(pid int) map[string]float64 {
	out := map[string]float64{}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			kb, _ := strconv.ParseFloat(f[0], 64)
			out[k] = kb / 1024
		}
	}
	return out
}

// memPeak samples, every 50 ms while it runs, the memory of a process and
// its live children (the script workers) as it should be added up: their
// anonymous memory (RssAnon + RssShmem) summed, and the files they map
// (mostly the one duplex binary's text, which every process maps) once, as
// the largest of any one process. The sum of VmHWM counts that text in every
// process, and how much of it is resident depends on the page cache: a
// freshly linked binary's pages come as huge pages, and the same bytes
// measured 153 MB after a cp and 179-203 MB straight from go build.
type memPeak struct {
	stopped    chan struct{}
	done       chan struct{}
	anon, file float64 // MB
}

func sampleMem(p *proc) *memPeak {
	m := &memPeak{stopped: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			var anon float64
			for _, pid := range append([]int{p.cmd.Process.Pid}, children(p.cmd.Process.Pid)...) {
				a, f := rssParts(pid)
				anon += a
				m.file = max(m.file, f)
			}
			m.anon = max(m.anon, anon)
			select {
			case <-m.stopped:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// stop ends the sampling and returns the peaks.
func (m *memPeak) stop() (anon, file float64) {
	close(m.stopped)
	<-m.done
	return m.anon, m.file
}

// rssParts is a process's resident anonymous (and shared-memory) and
// file-backed memory, in MB.
func rssParts(pid int) (anon, file float64) {
	st := procStatusMB(pid)
	return st["RssAnon"] + st["RssShmem"], st["RssFile"]
}

type lockedBuf struct {
	p *proc
}

func (w lockedBuf) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

func start(bin string, env []string, args ...string) *proc {
	p := &proc{cmd: exec.Command(bin, args...), stderr: &bytes.Buffer{}}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = lockedBuf{p}
	return p
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	return ln.Addr().String()
}

// sender posts signed webhooks.
type sender struct {
	client *http.Client
	url    string
	get    *itemsvc.Service // -hook=get: the entity lives here, the webhook names it
	t0     time.Time
	sent   []int64 // ns after t0 at which change seq was sent, by seq
	seq    atomic.Int64
	errs   atomic.Int64
	lastEr atomic.Value
}

func newSender(url string, maxSeq int) *sender {
	tr := &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns, DisableCompression: true}
	return &sender{client: &http.Client{Timeout: 30 * time.Second, Transport: tr}, url: url, t0: time.Now(), sent: make([]int64, maxSeq)}
}

// one sends change seq and returns its answer time.
func (s *sender) one(seq int64) (time.Duration, bool) {
	id := strconv.FormatInt(seq, 10)
	body := bench.Payload(id, seq, time.Now())
	if s.get != nil {
		var fields map[string]any
		_ = json.Unmarshal(body, &fields)
		delete(fields, "id")
		delete(fields, "updated_at")
		s.get.Put(id, fields)
		body = []byte(`{"id":"` + id + `"}`)
	}
	mac := hmac.New(sha256.New, []byte(secretText))
	mac.Write(body)
	req, _ := http.NewRequest("POST", s.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	req.Header.Set("X-Delivery-Id", "d"+id)
	t := time.Now()
	if seq < int64(len(s.sent)) {
		atomic.StoreInt64(&s.sent[seq], int64(t.Sub(s.t0)))
	}
	resp, err := s.client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
	}
	if err != nil {
		s.errs.Add(1)
		s.lastEr.Store(err.Error())
		return 0, false
	}
	return time.Since(t), true
}

// saturate sends as fast as the server answers, *conns at a time, for d.
// It returns the seqs sent [from, to), the answered count and the answer times.
func (s *sender) saturate(d time.Duration) (from, to int64, ok int64, answers []time.Duration) {
	from = s.seq.Load() + 1
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				seq := s.seq.Add(1)
				if seq >= int64(len(s.sent)) {
					break
				}
				if a, good := s.one(seq); good {
					mine = append(mine, a)
				}
			}
			mu.Lock()
			answers = append(answers, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return from, s.seq.Load() + 1, int64(len(answers)), answers
}

// paced offers perSecond changes per second for d, *conns senders taking
// the next slot each. It returns the seqs sent and the rate reached.
func (s *sender) paced(perSecond int, d time.Duration) (from, to int64, answers []time.Duration, sentRate float64) {
	from = s.seq.Load() + 1
	total := int64(perSecond) * int64(d/time.Millisecond) / 1000
	interval := time.Second / time.Duration(perSecond)
	var next atomic.Int64
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				if w := time.Until(start.Add(time.Duration(i) * interval)); w > 0 {
					time.Sleep(w)
				}
				if a, ok := s.one(from + i); ok {
					mu.Lock()
					answers = append(answers, a)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	s.seq.Store(from + total - 1)
	return from, from + total, answers, float64(total) / time.Since(start).Seconds()
}

func runFloor(work string) report {
	p := start(*floorBin, nil, "-out", filepath.Join(work, "floor.out"), "-secret", secretText)
	out, err := p.cmd.StdoutPipe()
	check(err)
	check(p.cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	check(err)
	url := strings.TrimSpace(strings.TrimPrefix(line, "ready "))
	defer p.stop()

	s := newSender(url+"/hooks/1", 1<<24)
	s.saturate(time.Second) // warm up: connections, runtimes
	c0, t0 := p.cpu(), time.Now()
	_, _, ok, answers := s.saturate(*dur)
	el, cpu := time.Since(t0), p.cpu()-c0
	r := report{applied: ok, throughput: float64(ok) / el.Seconds(), sat: latOf(answers)}
	r.cpuPerChange = float64(cpu.Microseconds()) / float64(ok)
	_, _, pa, sentRate := s.paced(*rate, *dur/2)
	r.paced, r.pacedSent = latOf(pa), sentRate
	r.rssMB = p.peakRSS()
	if n := s.errs.Load(); n > 0 {
		r.extra = append(r.extra, fmt.Sprintf("%d errors, last: %v", n, s.lastEr.Load()))
	}
	return r
}

// sideB is side b's SQLite table, which the load tool watches.
const sideBSchema = `CREATE TABLE items (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	title TEXT NOT NULL DEFAULT '',
	body TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL DEFAULT '',
	priority TEXT NOT NULL DEFAULT '',
	ref TEXT NOT NULL DEFAULT '',
	duplex_ref TEXT,
	updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))`

// The correlation column is looked up on every create (FindCorrelated):
// without an index that is a scan of the whole table.
const sideBIndex = `CREATE UNIQUE INDEX items_duplex_ref ON items (duplex_ref)`

func sideBSettings(path string) map[string]any {
	return map[string]any{
		"driver": "sqlite", "dsn": path, "table": "items",
		"fields": []map[string]any{
			{"name": "title"}, {"name": "body"}, {"name": "state"}, {"name": "priority"}, {"name": "ref"},
		},
		"correlation_column": "duplex_ref",
	}
}

func createDB(path string, stmts ...string) *sql.DB {
	db, err := sql.Open("sqlite3", path+"?_journal_mode=WAL&_busy_timeout=5000")
	check(err)
	for _, s := range stmts {
		_, err := db.Exec(s)
		check(err)
	}
	return db
}

// setup creates the store with systems a and b and their connection.
func setup(dir string, a, b store.System) (connID int64, st *store.Store) {
	ctx := context.Background()
	box, err := secret.LoadOrCreate(filepath.Join(dir, "secret.key"))
	check(err)
	st, err = store.Open(ctx, filepath.Join(dir, "duplex.db"))
	check(err)
	// The floor server is on loopback and the databases are SQLite files
	// here: both allowed explicitly, as the outbound policy requires.
	abs, err := filepath.Abs(dir)
	check(err)
	allow, err := json.Marshal(map[string]any{"allow": []map[string]any{
		{"network": "127.0.0.1", "note": "bench floor server"}, {"sqlite_dir": abs, "note": "bench databases"}}})
	check(err)
	check(st.SetOutboundPolicy(ctx, string(allow), "bench", "outbound policy set: "+string(allow)))
	var ids [2]int64
	for i, sys := range []*store.System{&a, &b} {
		secrets := map[string]string{}
		if sys.Kind == "http" {
			secrets["webhook_secret"] = secretText
		}
		sys.Secrets, err = box.SealMap(secrets)
		check(err)
		check(st.CreateSystem(ctx, sys))
		ids[i] = sys.ID
	}
	conn := store.Connection{Name: "bench", SystemAID: ids[0], SystemBID: ids[1], Active: true}
	check(st.CreateConnection(ctx, &conn, map[store.Side]map[store.ScriptKind]string{
		store.SideA: {store.KindTrigger: bench.Trigger, store.KindOutgoing: bench.Outgoing, store.KindIncoming: "entity.title = replica.title;"},
		store.SideB: {store.KindTrigger: "false", store.KindOutgoing: "replica.title = entity.title;", store.KindIncoming: bench.Incoming},
	}, "bench"))
	return conn.ID, st
}

func startDuplex(dir string) (*proc, string) {
	addr := freeAddr()
	var env []string
	if *pprofAddr != "" {
		env = append(env, "DUPLEX_PPROF="+*pprofAddr)
	}
	p := start(*duplexBin, env, "serve", "--data", dir, "--addr", addr)
	check(p.cmd.Start())
	url := "http://" + addr
	for i := 0; ; i++ {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i > 200 {
			p.stop()
			check(fmt.Errorf("duplex did not start: %v\n%s", err, p.stderr.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p, url
}

// watcher records when each change (by ref) appears in side b's table.
type watcher struct {
	db      *sql.DB
	t0      time.Time
	arrived []int64 // ns after t0, by seq; 0 = not yet
	count   atomic.Int64
	last    atomic.Int64 // ns after t0 of the latest arrival
	stop    chan struct{}
	done    chan struct{}
}

func watch(path string, t0 time.Time, maxSeq int) *watcher {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	check(err)
	db.SetMaxOpenConns(1)
	w := &watcher{db: db, t0: t0, arrived: make([]int64, maxSeq), stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *watcher) loop() {
	defer close(w.done)
	var after int64
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		rows, err := w.db.Query(`SELECT id, ref FROM items WHERE id > ? ORDER BY id LIMIT 10000`, after)
		if err != nil {
			continue // the table may be locked for a moment
		}
		now := int64(time.Since(w.t0))
		for rows.Next() {
			var id int64
			var ref string
			if rows.Scan(&id, &ref) != nil {
				continue
			}
			after = id
			if seq, err := strconv.ParseInt(ref, 10, 64); err == nil && seq > 0 && seq < int64(len(w.arrived)) && w.arrived[seq] == 0 {
				w.arrived[seq] = now
				w.count.Add(1)
				w.last.Store(now)
			}
		}
		rows.Close()
	}
}

func (w *watcher) close() {
	close(w.stop)
	<-w.done
	w.db.Close()
}

// latencies of the seqs [from, to) that arrived, from their send time.
func (w *watcher) latencies(s *sender, from, to int64) (out []time.Duration, missing int) {
	for q := from; q < to; q++ {
		a := atomic.LoadInt64(&w.arrived[q])
		sent := atomic.LoadInt64(&s.sent[q])
		if sent == 0 {
			continue
		}
		if a == 0 {
			missing++
			continue
		}
		out = append(out, time.Duration(a-sent))
	}
	return out, missing
}

// dump writes the changes [from, to) as lines of seq, sent and latency (ms),
// to see when in a phase the slow ones happen.
func (w *watcher) dump(path string, s *sender, from, to int64) error {
	var b strings.Builder
	t0 := atomic.LoadInt64(&s.sent[from])
	fmt.Fprintf(&b, "# phase began at %s\n", s.t0.Add(time.Duration(t0)).Format(time.RFC3339Nano))
	for q := from; q < to; q++ {
		a, sent := atomic.LoadInt64(&w.arrived[q]), atomic.LoadInt64(&s.sent[q])
		if a == 0 || sent == 0 {
			continue
		}
		fmt.Fprintf(&b, "%d %.1f %.2f\n", q, float64(sent-t0)/1e6, float64(a-sent)/1e6)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// waitFor waits until n changes arrived, or nothing arrived for quiet, or max.
func (w *watcher) waitFor(n int64, quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && w.count.Load() < n {
		if l := w.last.Load(); l > 0 && time.Since(w.t0)-time.Duration(l) > quiet {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runDuplex(work string) report {
	dir := filepath.Join(work, "duplex")
	check(os.MkdirAll(dir, 0o700))
	bPath := filepath.Join(dir, "b.db")
	createDB(bPath, sideBSchema, sideBIndex).Close()
	items := itemsvc.New()
	itemSrv := httptest.NewServer(items)
	defer itemSrv.Close()
	aMap := map[string]any{
		"url": itemSrv.URL, "list_path": "/items?since={since}", "get_path": "/items/{id}",
		"fields": []map[string]any{
			{"name": "title"}, {"name": "status"}, {"name": "priority"}, {"name": "labels", "type": "list"},
			{"name": "ref"}, {"name": "description"},
		},
	}
	switch *hookMode {
	case "body":
		aMap["webhook_item_path"] = "." // the payload is the item, as get_path would answer it
	case "get":
	default:
		check(fmt.Errorf("-hook %q: want body or get", *hookMode))
	}
	aSettings, _ := json.Marshal(aMap)
	bSettings, _ := json.Marshal(sideBSettings(bPath))
	_, st := setup(dir,
		store.System{Name: "a", Kind: "http", Settings: string(aSettings), PollIntervalMS: time.Hour.Milliseconds()},
		store.System{Name: "b", Kind: "sql", Settings: string(bSettings), PollIntervalMS: bpoll.Milliseconds()})
	sysA, err := st.ListSystems(context.Background())
	check(err)
	check(st.Close())

	p, url := startDuplex(dir)
	mem := sampleMem(p)
	stopped := false
	defer func() {
		if !stopped {
			p.stop()
		}
	}()
	const maxSeq = 1 << 22
	s := newSender(fmt.Sprintf("%s/hooks/%d", url, sysA[0].ID), maxSeq)
	if *hookMode == "get" {
		s.get = items
	}
	w := watch(bPath, s.t0, maxSeq)
	defer w.close()

	// Warm up: a few hundred changes, applied, so the plan is compiled and
	// every pool and cache is filled before measuring.
	wf, wt, _, _ := s.saturate(500 * time.Millisecond)
	w.waitFor(wt-wf, 2*time.Second, 30*time.Second)

	c0, t0, k0 := p.cpu(), time.Now(), p.childCPU()
	before := w.count.Load()
	from, to, ok, answers := s.saturate(*dur)
	sendTime := time.Since(t0)
	w.waitFor(before+ok, 3*time.Second, *maxDrain)
	applied := w.count.Load() - before
	lastAt := s.t0.Add(time.Duration(w.last.Load()))
	el, cpu := lastAt.Sub(t0), p.cpu()-c0
	r := report{accepted: ok, applied: applied, intake: float64(ok) / sendTime.Seconds()}
	r.throughput = float64(applied) / el.Seconds()
	r.cpuPerChange = float64(cpu.Microseconds()) / float64(applied)
	r.extra = append(r.extra, fmt.Sprintf("CPU of the script workers: %.0f µs/change of that", float64((p.childCPU()-k0).Microseconds())/float64(applied)))
	sat, missing := w.latencies(s, from, to)
	r.sat = latOf(sat)
	r.extra = append(r.extra, fmt.Sprintf("webhook answer under full load: %v", latOf(answers)))
	if missing > 0 {
		r.extra = append(r.extra, fmt.Sprintf("NOT APPLIED within %v: %d of %d accepted", *maxDrain, missing, ok))
	}

	// Latency at a fixed rate, once the queue is empty again.
	before = w.count.Load()
	pf, pt, pans, sentRate := s.paced(*rate, *dur/2)
	w.waitFor(before+(pt-pf), 3*time.Second, *maxDrain)
	pl, pmissing := w.latencies(s, pf, pt)
	if *dumpPaced != "" {
		check(w.dump(*dumpPaced, s, pf, pt))
	}
	r.paced, r.pacedSent = latOf(pl), sentRate
	r.extra = append(r.extra, fmt.Sprintf("webhook answer at %d/s: %v", *rate, latOf(pans)))
	if pmissing > 0 {
		r.extra = append(r.extra, fmt.Sprintf("NOT APPLIED at %d/s: %d", *rate, pmissing))
	}
	r.rssMB = p.peakRSS()
	anon, file := mem.stop()
	r.memMB, r.fileMB = anon+file, file
	if n := s.errs.Load(); n > 0 {
		r.extra = append(r.extra, fmt.Sprintf("%d webhook errors, last: %v", n, s.lastEr.Load()))
	}
	stopped = true
	logText := p.stop()
	r.extra = append(r.extra, compilations(logText, s.seq.Load()))
	if c := crossings(logText, s.seq.Load()); c != "" {
		r.extra = append(r.extra, c)
	}
	if w := targetBatches(logText); w != "" {
		r.extra = append(r.extra, w)
	}
	if t := takenBy(logText); t != "" {
		r.extra = append(r.extra, t)
	}
	if rt := storeRoundTrips(logText, s.seq.Load()); rt != "" {
		r.extra = append(r.extra, rt)
	}
	r.extra = append(r.extra, storeCounts(filepath.Join(dir, "duplex.db"))...)
	return r
}

// compilations reads the count `duplex serve` logs when it stops.
func compilations(logText string, changes int64) string {
	m := regexp.MustCompile(`script_compilations=(\d+)`).FindStringSubmatch(logText)
	if m == nil {
		return "script and expr compilations: not reported by this binary"
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return fmt.Sprintf("script and expr compilations: %d in the whole run of %d changes (%.5f per change; the server compiles the triggers, the scripts compile in the sandbox workers)",
		n, changes, float64(n)/float64(changes))
}

// logCounts reads the numbers logged as key=N, one per key, from what
// `duplex serve` logs when it stops; ok=false if one is missing.
func logCounts(logText string, keys ...string) (out []int64, ok bool) {
	for _, k := range keys {
		m := regexp.MustCompile(regexp.QuoteMeta(k) + `=(\d+)`).FindStringSubmatch(logText)
		if m == nil {
			return nil, false
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		out = append(out, n)
	}
	return out, true
}

// crossings reads the script runs and the messages that carried them to
// the workers ("" if they are not logged).
func crossings(logText string, changes int64) string {
	c, ok := logCounts(logText, "script_runs", "script_messages")
	if !ok || changes == 0 {
		return ""
	}
	r, m := c[0], c[1]
	line := fmt.Sprintf("script runs: %.2f per change in %.2f messages to the workers (%.1f runs per message)",
		float64(r)/float64(changes), float64(m)/float64(changes), float64(r)/float64(max(m, 1)))
	if s, ok := logCounts(logText, "script_worker_starts"); ok {
		line += fmt.Sprintf("; %d worker processes started", s[0])
	}
	return line
}

// targetBatches reads how many writes to the target went in how many
// batches (connectors.BatchWriter).
func targetBatches(logText string) string {
	c, ok := logCounts(logText, "target_writes", "target_write_batches")
	if !ok {
		return ""
	}
	n, m := c[0], c[1]
	return fmt.Sprintf("writes to side b: %d in %d batches (%.1f per transaction)", n, m, float64(n)/float64(max(m, 1)))
}

// takenBy reads how the worker took its events: handed over by intake or
// claimed from the queue.
func takenBy(logText string) string {
	c, ok := logCounts(logText, "events_handed", "events_claimed", "entities_read_again")
	if !ok {
		return ""
	}
	return fmt.Sprintf("events taken by the worker: %d handed over by intake, %d claimed from the queue; %d entities read again before intake", c[0], c[1], c[2])
}

func storeCounts(path string) []string {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return nil
	}
	defer db.Close()
	var out []string
	for _, q := range []struct{ name, q string }{
		{"events by status", `SELECT status || ' ' || COUNT(*) FROM sync_events GROUP BY status`},
		{"twins", `SELECT COUNT(*) FROM twins`},
		{"audit entries", `SELECT COUNT(*) FROM audit_log`},
		{"deliveries by status", `SELECT status || ' ' || COUNT(*) FROM webhook_deliveries GROUP BY status`},
	} {
		rows, err := db.Query(q.q)
		if err != nil {
			continue
		}
		var vals []string
		for rows.Next() {
			var v string
			_ = rows.Scan(&v)
			vals = append(vals, v)
		}
		rows.Close()
		out = append(out, "store: "+q.name+": "+strings.Join(vals, ", "))
	}
	return out
}

func runBackfill(work string, n int) {
	dir := filepath.Join(work, "backfill")
	check(os.MkdirAll(dir, 0o700))
	aPath, bPath := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	a := createDB(aPath, `CREATE TABLE tickets (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		title TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT '', priority TEXT NOT NULL DEFAULT '',
		labels TEXT NOT NULL DEFAULT '', ref TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
		duplex_ref TEXT, updated_at TEXT NOT NULL)`)
	tx, err := a.Begin()
	check(err)
	ins, err := tx.Prepare(`INSERT INTO tickets (title, status, priority, labels, ref, description, updated_at) VALUES (?, 'open', 'high', 'todev,web', ?, ?, '2020-01-01T00:00:00.000Z')`)
	check(err)
	for i := 1; i <= n; i++ {
		_, err := ins.Exec("ticket "+strconv.Itoa(i), strconv.Itoa(i), "The export to CSV fails for reports with more than 10,000 rows; the customer attached a sample and needs it by Friday.")
		check(err)
	}
	check(tx.Commit())
	a.Close()
	createDB(bPath, sideBSchema, sideBIndex).Close()
	aSettings, _ := json.Marshal(map[string]any{
		"driver": "sqlite", "dsn": aPath, "table": "tickets",
		"fields": []map[string]any{
			{"name": "title"}, {"name": "status"}, {"name": "priority"}, {"name": "labels", "type": "list"},
			{"name": "ref"}, {"name": "description"},
		},
		"correlation_column": "duplex_ref",
	})
	bSettings, _ := json.Marshal(sideBSettings(bPath))
	connID, st := setup(dir,
		store.System{Name: "a", Kind: "sql", Settings: string(aSettings), PollIntervalMS: time.Hour.Milliseconds()},
		store.System{Name: "b", Kind: "sql", Settings: string(bSettings), PollIntervalMS: time.Hour.Milliseconds()})
	ctx := context.Background()
	// The rows existed before the connection: the poller starts after them,
	// and the backfill ("sync existing", POST /api/connections/:id/backfill)
	// is what brings them over.
	systems, err := st.ListSystems(ctx)
	check(err)
	check(st.SetCursor(ctx, systems[0].ID, `{"v":1,"rows":{"at":"2020-01-02T00:00:00.000Z","text":true,"id":"0"}}`))
	_, err = st.StartBackfill(ctx, connID, store.SideA)
	check(err)
	check(st.Close())

	p, _ := startDuplex(dir)
	mem := sampleMem(p)
	t0, c0 := time.Now(), p.cpu()
	b, err := sql.Open("sqlite3", "file:"+bPath+"?mode=ro&_busy_timeout=5000")
	check(err)
	defer b.Close()
	limit := 5 * time.Minute
	var got int64
	for time.Since(t0) < limit {
		time.Sleep(100 * time.Millisecond)
		if err := b.QueryRow(`SELECT COUNT(*) FROM items`).Scan(&got); err == nil && got >= int64(n) {
			break
		}
	}
	el, cpu := time.Since(t0), p.cpu()-c0
	rss, own := p.peakRSS(), hwm(p.cmd.Process.Pid)
	anon, file := mem.stop()
	logText := p.stop()
	status := "complete"
	if got < int64(n) {
		status = fmt.Sprintf("INCOMPLETE after %v", limit)
	}
	fmt.Printf("backfill: %d of %d entities created on side b in %v (%.0f/s), CPU %.0f µs/entity, peak RSS %.1f MB (server %.1f, script workers %.1f): %s\n",
		got, n, el.Round(100*time.Millisecond), float64(got)/el.Seconds(), float64(cpu.Microseconds())/float64(max(got, 1)), rss, own, rss-own, status)
	fmt.Printf("backfill:   peak memory %.1f MB: anonymous of all processes together %.1f, files mapped %.1f (the binary's text, once)\n",
		anon+file, anon, file)
	if s := crossings(logText, got); s != "" {
		fmt.Println("backfill:   " + strings.ReplaceAll(s, "change", "entity"))
	}
	if s := storeRoundTrips(logText, got); s != "" {
		fmt.Println("backfill:   " + s)
	}
	for _, l := range storeCounts(filepath.Join(dir, "duplex.db")) {
		fmt.Println("backfill:   " + l)
	}
}

// storeRoundTrips reads the store's statements and commits (what /metrics
// exports as duplex_store_statements_total and _commits_total), which
// `duplex serve` logs when it stops, per entity ("" if it does not).
func storeRoundTrips(logText string, n int64) string {
	stm := regexp.MustCompile(`store_statements=(\d+)`).FindStringSubmatch(logText)
	com := regexp.MustCompile(`store_commits=(\d+)`).FindStringSubmatch(logText)
	if stm == nil || com == nil || n == 0 {
		return ""
	}
	s, _ := strconv.ParseInt(stm[1], 10, 64)
	c, _ := strconv.ParseInt(com[1], 10, 64)
	out := fmt.Sprintf("store: %.2f statements and %.2f commits per change", float64(s)/float64(n), float64(c)/float64(n))
	// The time callers waited for the store's connection: on SQLite one
	// connection serves every goroutine, and this says how much it queues.
	if w := regexp.MustCompile(`store_pool_wait=(\S+) store_pool_waits=(\d+)`).FindStringSubmatch(logText); w != nil {
		out += fmt.Sprintf("; waits for its connection: %s in %s waits", w[1], w[2])
	}
	return out
}
