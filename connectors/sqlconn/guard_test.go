package sqlconn

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/duplexsync/duplex/connectors"
)

// fakeGuard records what the connector asks and refuses what refuse says.
type fakeGuard struct {
	mu                           sync.Mutex
	dials, hosts, files, servers []string
	refuse                       func(kind, what string) bool
}

func (g *fakeGuard) check(list *[]string, kind, what string) error {
	g.mu.Lock()
	*list = append(*list, what)
	g.mu.Unlock()
	if g.refuse != nil && g.refuse(kind, what) {
		return &connectors.RefusedError{Rule: "test-" + kind, Target: what}
	}
	return nil
}

func (g *fakeGuard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := g.check(&g.dials, "dial", addr); err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (g *fakeGuard) CheckHost(_ context.Context, host string, _ int) error {
	return g.check(&g.hosts, "host", host)
}

func (g *fakeGuard) CheckSQLite(path string) error { return g.check(&g.files, "file", path) }

func (g *fakeGuard) CheckDatabase(_ context.Context, driver, host string, _ int, db string) error {
	return g.check(&g.servers, "db", driver+" "+host+" "+db)
}

// TestGuard: every backend's connections go through the guard: a refusal
// at the settings check or at the dial fails New with the named rule, and
// an allowing guard sees the database's address dialed and works.
func TestGuard(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b)
			settings, _ := json.Marshal(testSettings(b, "", f.items, f.comments))
			open := func(g *fakeGuard) (connectors.Connector, error) {
				return New(context.Background(), connectors.Config{Name: "guarded", Settings: settings,
					Secrets: map[string]string{"dsn": f.dsn}, Guard: g})
			}
			// Allowed: the guard was asked, and (on a server) it dialed.
			g := &fakeGuard{}
			c, err := open(g)
			if err != nil {
				t.Fatalf("allowed: %v", err)
			}
			if _, err := c.Changes(context.Background(), "", 10); err != nil {
				t.Fatal(err)
			}
			_ = c.Close()
			if b.driver == "sqlite" {
				if len(g.files) < 2 { // the DSN's path, then what SQLite opened
					t.Fatalf("files checked: %v", g.files)
				}
			} else if len(g.dials) == 0 || len(g.servers) == 0 || len(g.hosts) == 0 {
				t.Fatalf("dials %v, servers %v, hosts %v", g.dials, g.servers, g.hosts)
			}
			if err := Check(context.Background(), connectors.Config{Settings: settings, Secrets: map[string]string{"dsn": f.dsn},
				Guard: &fakeGuard{refuse: func(string, string) bool { return true }}}); !errors.Is(err, connectors.ErrRefused) {
				t.Fatalf("Check: %v", err)
			}
			// Refused at each step it takes.
			for _, kind := range []string{"file", "db", "host", "dial"} {
				g := &fakeGuard{refuse: func(k, _ string) bool { return k == kind }}
				_, err := open(g)
				var re *connectors.RefusedError
				relevant := (b.driver == "sqlite") == (kind == "file")
				if relevant && (!errors.As(err, &re) || re.Rule != "test-"+kind) {
					t.Errorf("refuse %s: %v", kind, err)
				}
				if !relevant && err != nil {
					t.Errorf("refuse %s (unused here): %v", kind, err)
				}
			}
		})
	}
}

// TestGuardSQLiteRefusedBeforeOpen: a refused SQLite path is not created
// (nor read): the check comes before the driver opens anything.
func TestGuardSQLiteRefusedBeforeOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "never.db")
	settings, _ := json.Marshal(Settings{Driver: "sqlite", DSN: "file:" + path + "?_busy_timeout=1", Table: "t", Fields: []Field{{Name: "x"}}})
	g := &fakeGuard{refuse: func(string, string) bool { return true }}
	if _, err := New(context.Background(), connectors.Config{Settings: settings, Guard: g}); !errors.Is(err, connectors.ErrRefused) {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the refused file exists: %v", err)
	}
	if len(g.files) != 1 || g.files[0] != path {
		t.Fatalf("checked %v, want the file: URI's path", g.files)
	}
}

// TestGuardSockets: a database reached over a unix socket is refused when
// the settings are checked (the dial would refuse it too).
func TestGuardSockets(t *testing.T) {
	for driver, dsn := range map[string]string{
		"postgres": "host=/var/run/postgresql dbname=app user=app",
		"mysql":    "app@unix(/run/mysqld/mysqld.sock)/app",
	} {
		settings, _ := json.Marshal(Settings{Driver: driver, DSN: dsn, Table: "t", Fields: []Field{{Name: "x"}}})
		err := Check(context.Background(), connectors.Config{Settings: settings, Guard: &fakeGuard{}})
		var re *connectors.RefusedError
		if !errors.As(err, &re) || re.Rule != "unix-socket" {
			t.Errorf("%s: %v", driver, err)
		}
	}
}
