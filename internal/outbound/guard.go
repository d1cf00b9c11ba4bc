package outbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// Fence is the store's own database, which no system may open whatever the
// policy says.
type Fence struct {
	// Files are the store's SQLite file, its -wal, -shm and -journal
	// files and the secret key file: refused by device and inode (any
	// path, symlink or hard link) and by their path once links are
	// followed (a -wal file that does not exist yet).
	Files []string
	// Postgres is the store's server and database when it is PostgreSQL.
	Postgres *DB
}

// DB names a database server and database.
type DB struct {
	Host     string
	Port     int
	Database string
}

// StoreFence is the fence of a store DSN (a SQLite path or a postgres://
// URL) and its key file ("" for none).
func StoreFence(dsn, keyFile string) Fence {
	var f Fence
	if keyFile != "" {
		f.Files = append(f.Files, keyFile)
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if db, ok := ParsePostgres(dsn); ok {
			f.Postgres = &db
		}
		return f
	}
	path := SQLitePath(strings.TrimPrefix(dsn, "sqlite:"))
	if path != "" {
		f.Files = append(f.Files, path, path+"-wal", path+"-shm", path+"-journal")
	}
	return f
}

// Loader reads the stored policy (JSON); the store implements it.
type Loader func(ctx context.Context) (string, error)

// Guards hands out the guard of each team. The policy is read from the store
// at most every TTL, so a change made by any process applies within it.
type Guards struct {
	load  Loader
	fence Fence
	log   *slog.Logger
	ttl   time.Duration
	// Lookup resolves a host name (net.DefaultResolver.LookupNetIP); tests
	// replace it to play a rebinding DNS server.
	Lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)
	Dialer *net.Dialer

	mu  sync.Mutex
	pol *Policy
	at  time.Time
}

// NewGuards builds the guards; load nil applies Default.
func NewGuards(load Loader, fence Fence, log *slog.Logger) *Guards {
	if log == nil {
		log = slog.Default()
	}
	return &Guards{load: load, fence: fence, log: log, ttl: 2 * time.Second,
		Lookup: net.DefaultResolver.LookupNetIP, Dialer: &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}}
}

// Policy is the policy in force: the stored one, read again after the TTL.
// A store that cannot be read keeps the last policy read, or the default.
func (g *Guards) Policy(ctx context.Context) Policy {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pol != nil && time.Since(g.at) < g.ttl {
		return *g.pol
	}
	p := Default()
	if g.load != nil {
		raw, err := g.load(ctx)
		if err == nil {
			p, err = Parse([]byte(raw))
		}
		if err != nil {
			g.log.Warn("outbound policy unreadable; keeping the last one read (or the default)", "err", err)
			if g.pol != nil {
				return *g.pol
			}
			return Default()
		}
	}
	g.pol, g.at = &p, time.Now()
	return p
}

// Forget drops the cached policy (after a change made by this process).
func (g *Guards) Forget() {
	g.mu.Lock()
	g.pol = nil
	g.mu.Unlock()
}

// For is the guard of one team's systems (0: the organisation's own
// outbound requests, such as alert webhooks, which only all-team rules allow).
func (g *Guards) For(team int64) connectors.Guard { return &guard{g: g, team: team} }

type guard struct {
	g    *Guards
	team int64
}

func (t *guard) refused(rule, target string, port int, ip netip.Addr) error {
	hint := ""
	switch rule {
	case connectors.RuleStore:
	case "sqlite-dir":
		hint = fmt.Sprintf("an org admin can allow its directory: duplex policy allow --sqlite-dir %s%s", filepath.Dir(target), t.teamFlag())
	default:
		if ip.IsValid() {
			hint = fmt.Sprintf("an org admin can allow it: duplex policy allow --network %s --port %d%s", ip.Unmap(), port, t.teamFlag())
		}
	}
	return &connectors.RefusedError{Rule: rule, Target: target, Hint: hint}
}

func (t *guard) teamFlag() string {
	if t.team == 0 {
		return ""
	}
	return " --team " + strconv.FormatInt(t.team, 10)
}

// DialContext resolves addr and dials the first allowed address: the
// address checked is the address dialed.
func (t *guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default: // unix sockets reach local services whatever their address
		return nil, t.refused("unix-socket", network+":"+addr, 0, netip.Addr{})
	}
	host, portS, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	port, err := strconv.Atoi(portS)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port", addr)
	}
	pol := t.g.Policy(ctx)
	var ips []netip.Addr
	name := ""
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		name = host
		if ips, err = t.g.Lookup(ctx, ipNetwork(network), host); err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
	}
	var first error
	var errs []error
	for _, ip := range ips {
		if rule := pol.Decide(t.team, name, ip, port); rule != "" {
			if first == nil {
				first = t.refused(rule, net.JoinHostPort(ip.Unmap().String(), portS)+nameOf(name), port, ip)
			}
			continue
		}
		c, err := t.g.Dialer.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), portS))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if first == nil {
		first = fmt.Errorf("dial %s: no address", addr)
	}
	return nil, first
}

func nameOf(name string) string {
	if name == "" {
		return ""
	}
	return " (" + name + ")"
}

func ipNetwork(network string) string {
	switch network {
	case "tcp4", "udp4":
		return "ip4"
	case "tcp6", "udp6":
		return "ip6"
	}
	return "ip"
}

// CheckHost checks the literal and what it resolves to now; a name that
// does not resolve passes (the dial decides later).
func (t *guard) CheckHost(ctx context.Context, host string, port int) error {
	pol := t.g.Policy(ctx)
	host = strings.Trim(host, "[]")
	if ip, err := netip.ParseAddr(host); err == nil {
		if rule := pol.Decide(t.team, "", ip, port); rule != "" {
			return t.refused(rule, net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(port)), port, ip)
		}
		return nil
	}
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		ip := netip.MustParseAddr("127.0.0.1")
		if rule := pol.Decide(t.team, host, ip, port); rule != "" {
			return t.refused(rule, net.JoinHostPort(host, strconv.Itoa(port)), port, ip)
		}
	}
	ips, err := t.g.Lookup(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if rule := pol.Decide(t.team, host, ip, port); rule != "" {
			return t.refused(rule, net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(port))+nameOf(host), port, ip)
		}
	}
	return nil
}

// CheckSQLite refuses the store's files by inode and by real path, then
// any file outside the team's SQLite directories.
func (t *guard) CheckSQLite(path string) error {
	if path == "" || path == ":memory:" {
		return nil // a private temporary or memory database: no file to reach
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return t.refused("sqlite-dir", path, 0, netip.Addr{})
	}
	r := realPath(abs)
	if fi, err := os.Stat(abs); err == nil {
		for _, f := range t.g.fence.Files {
			if ff, err := os.Stat(f); err == nil && os.SameFile(fi, ff) {
				return t.refused(connectors.RuleStore, path, 0, netip.Addr{})
			}
		}
	}
	for _, f := range t.g.fence.Files {
		if realPath(f) == r {
			return t.refused(connectors.RuleStore, path, 0, netip.Addr{})
		}
	}
	if !t.g.Policy(context.Background()).SQLiteAllowed(t.team, r, realPath) {
		return t.refused("sqlite-dir", r, 0, netip.Addr{})
	}
	return nil
}

// realPath is path with every link followed; a missing file keeps its name
// under its real directory (SQLite would create it there).
func realPath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	dir, base := filepath.Split(abs)
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		return filepath.Join(r, base)
	}
	return filepath.Clean(abs)
}

// CheckDatabase refuses the store's own PostgreSQL server and database,
// whatever name or address reaches it.
func (t *guard) CheckDatabase(ctx context.Context, driver, host string, port int, database string) error {
	pg := t.g.fence.Postgres
	if pg == nil || !strings.HasPrefix(strings.ToLower(driver), "postgres") && driver != "pgx" {
		return nil
	}
	if port != pg.Port || database != pg.Database {
		return nil
	}
	if t.sameHost(ctx, host, pg.Host) {
		return t.refused(connectors.RuleStore, fmt.Sprintf("postgres %s:%d/%s", host, port, database), 0, netip.Addr{})
	}
	return nil
}

func (t *guard) sameHost(ctx context.Context, a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	if strings.HasPrefix(a, "/") || strings.HasPrefix(b, "/") {
		return false // a socket directory and a network host: not the same path
	}
	addrs := func(h string) []netip.Addr {
		if ip, err := netip.ParseAddr(h); err == nil {
			return []netip.Addr{ip.Unmap()}
		}
		ips, _ := t.g.Lookup(ctx, "ip", h)
		for i := range ips {
			ips[i] = ips[i].Unmap()
		}
		return ips
	}
	as, bs := addrs(a), addrs(b)
	for _, x := range as {
		for _, y := range bs {
			// Any two loopback addresses reach the same local server.
			if x == y || x.IsLoopback() && y.IsLoopback() || x.IsUnspecified() || y.IsUnspecified() {
				return true
			}
		}
	}
	return false
}
