package outbound

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/duplexsync/duplex/connectors"
)

func policy(t *testing.T, raw string) Loader {
	t.Helper()
	if _, err := Parse([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	return func(context.Context) (string, error) { return raw, nil }
}

func rule(t *testing.T, err error) string {
	t.Helper()
	var re *connectors.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("want a refusal, got %v", err)
	}
	return re.Rule
}

func TestDefaultDecides(t *testing.T) {
	p := Default()
	for addr, want := range map[string]string{
		"127.0.0.1": "loopback", "::1": "loopback", "169.254.169.254": "metadata", "169.254.1.1": "link-local",
		"fe80::1": "link-local", "0.0.0.0": "unspecified", "::": "unspecified", "10.1.2.3": "private",
		"172.16.0.1": "private", "192.168.1.1": "private", "100.64.0.1": "private", "fd00::1": "private",
		"239.1.1.1": "multicast", "::ffff:127.0.0.1": "loopback", "8.8.8.8": "", "2001:4860::8888": "",
	} {
		if got := p.Decide(1, "", netip.MustParseAddr(addr), 443); got != want {
			t.Errorf("%s: got %q, want %q", addr, got, want)
		}
	}
}

func TestRules(t *testing.T) {
	p, err := Parse([]byte(`{"allow":[
		{"network":"127.0.0.1","ports":[8080]},
		{"network":"169.254.0.0/16"},
		{"network":"10.0.0.0/8","team_id":2},
		{"host":"*.corp.example"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		team int64
		host string
		ip   string
		port int
		want string
	}{
		{1, "", "127.0.0.1", 8080, ""},
		{1, "", "127.0.0.1", 8081, "loopback"},     // another port
		{1, "", "169.254.1.1", 80, ""},             // a network rule
		{1, "", "169.254.169.254", 80, "metadata"}, // but metadata needs its own /32
		{2, "", "10.9.9.9", 80, ""},
		{1, "", "10.9.9.9", 80, "private"}, // team 2's rule only
		{1, "jira.corp.example", "10.1.1.1", 443, ""},
		{1, "corp.example.evil", "10.1.1.1", 443, "private"},
		{1, "x.corp.example", "169.254.169.254", 80, "metadata"},
	}
	for _, c := range cases {
		if got := p.Decide(c.team, c.host, netip.MustParseAddr(c.ip), c.port); got != c.want {
			t.Errorf("%+v: got %q", c, got)
		}
	}
	only, _ := Parse([]byte(`{"only_listed":true,"allow":[{"host":"api.github.com"}]}`))
	if got := only.Decide(1, "example.com", netip.MustParseAddr("8.8.8.8"), 443); got != "not-listed" {
		t.Errorf("only_listed: got %q", got)
	}
	for _, bad := range []string{`{"allow":[{}]}`, `{"allow":[{"network":"x"}]}`, `{"allow":[{"sqlite_dir":"rel"}]}`,
		`{"allow":[{"host":"a","network":"10.0.0.0/8"}]}`, `{"allow":[{"host":"1.2.3.4"}]}`, `{"allow":[{"network":"1.2.3.4","ports":[0]}]}`, `{"x":1}`} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// TestDialChecksTheResolvedAddress: a name that resolves to loopback is
// refused at the dial whatever it resolved to before (rebinding), and the
// loopback server sees nothing; an allowed address is dialed.
func TestDialChecksTheResolvedAddress(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++; io.WriteString(w, "ok") }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())

	answer := "93.184.216.34" // public at save time...
	g := NewGuards(nil, Fence{}, nil)
	g.Lookup = func(context.Context, string, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr(answer)}, nil
	}
	gd := g.For(1)
	if err := gd.CheckHost(context.Background(), "rebind.example", port); err != nil {
		t.Fatalf("public at save: %v", err)
	}
	answer = "127.0.0.1" // ...loopback when it connects
	client := &http.Client{Transport: connectors.Config{Guard: gd}.RoundTripper()}
	_, err := client.Get("http://rebind.example:" + u.Port() + "/")
	if rule(t, err) != "loopback" || hits != 0 {
		t.Fatalf("rebinding: rule %v, %d hits", err, hits)
	}
	answer = "169.254.169.254"
	if _, err := client.Get("http://rebind.example:" + u.Port() + "/"); rule(t, err) != "metadata" {
		t.Fatal(err)
	}
	if err := gd.CheckHost(context.Background(), "169.254.169.254", 80); rule(t, err) != "metadata" {
		t.Fatal(err)
	}
	if err := gd.CheckHost(context.Background(), "localhost", port); rule(t, err) != "loopback" {
		t.Fatal(err)
	}

	// Allowed explicitly: it works.
	g2 := NewGuards(policy(t, `{"allow":[{"network":"127.0.0.1","ports":[`+u.Port()+`]}]}`), Fence{}, nil)
	client = &http.Client{Transport: connectors.Config{Guard: g2.For(1)}.RoundTripper()}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hits != 1 {
		t.Fatalf("allowed: %d hits", hits)
	}
	if _, err := g2.For(1).DialContext(context.Background(), "unix", "/run/x.sock"); rule(t, err) != "unix-socket" {
		t.Fatal(err)
	}
	// A DNS failure at save is not a refusal.
	g.Lookup = func(context.Context, string, string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host"}
	}
	if err := gd.CheckHost(context.Background(), "nowhere.example", 443); err != nil {
		t.Fatal(err)
	}
}

// TestStoreFence: the store's file, reached by any path, symlink or hard
// link, and its WAL, is refused even in an allowed directory; other files
// there are allowed; files elsewhere need a rule.
func TestStoreFence(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "duplex.db")
	must(t, os.WriteFile(db, []byte("store"), 0o600))
	must(t, os.WriteFile(db+"-wal", []byte("wal"), 0o600))
	other := t.TempDir()
	must(t, os.Symlink(db, filepath.Join(other, "link.db")))
	must(t, os.Link(db, filepath.Join(other, "hard.db")))
	must(t, os.Symlink(dir, filepath.Join(other, "dirlink")))
	raw := `{"allow":[{"sqlite_dir":"` + dir + `"},{"sqlite_dir":"` + other + `"}]}`
	g := NewGuards(policy(t, raw), StoreFence(db, ""), nil).For(2)
	for _, p := range []string{db, db + "-wal", db + "-shm", filepath.Join(dir, ".", "duplex.db"),
		filepath.Join(other, "link.db"), filepath.Join(other, "hard.db"), filepath.Join(other, "dirlink", "duplex.db"),
		filepath.Join(other, "dirlink", "duplex.db-shm")} {
		if got := rule(t, g.CheckSQLite(p)); got != connectors.RuleStore {
			t.Errorf("%s: rule %s", p, got)
		}
	}
	if err := g.CheckSQLite(filepath.Join(dir, "support.db")); err != nil {
		t.Errorf("a file beside the store in an allowed dir: %v", err)
	}
	if got := rule(t, g.CheckSQLite(filepath.Join(t.TempDir(), "x.db"))); got != "sqlite-dir" {
		t.Errorf("elsewhere: %s", got)
	}
	// The default policy allows no SQLite file at all.
	d := NewGuards(nil, Fence{}, nil).For(2)
	if got := rule(t, d.CheckSQLite(filepath.Join(other, "a.db"))); got != "sqlite-dir" {
		t.Errorf("default: %s", got)
	}
	if err := d.CheckSQLite(":memory:"); err != nil {
		t.Error(err)
	}
}

func TestPostgresFence(t *testing.T) {
	f := StoreFence("postgres://duplex@127.0.0.1:5432/duplex?sslmode=disable", "")
	g := NewGuards(nil, f, nil).For(2)
	ctx := context.Background()
	if got := rule(t, g.CheckDatabase(ctx, "postgres", "localhost", 5432, "duplex")); got != connectors.RuleStore {
		t.Fatal(got)
	}
	if err := g.CheckDatabase(ctx, "postgres", "127.0.0.1", 5432, "other"); err != nil {
		t.Fatal(err)
	}
	if err := g.CheckDatabase(ctx, "mysql", "127.0.0.1", 5432, "duplex"); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
