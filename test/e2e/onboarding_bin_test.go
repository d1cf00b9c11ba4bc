package e2e

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
	"github.com/duplexsync/duplex/connectors/rt"
)

// buildDuplex builds cmd/duplex into the test's temporary folder, for a
// test that runs Duplex as people do: a separate process, configured
// through its API.
func buildDuplex(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "duplex")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/duplex").CombinedOutput(); err != nil {
		t.Fatalf("build duplex: %v\n%s", err, out)
	}
	return bin
}

// binServer is one `duplex demo` process the test started (its data folder
// holds only the demo's own databases besides the store).
type binServer struct {
	cmd   *exec.Cmd
	url   string
	token string
	done  chan struct{}
	log   string
}

func startBinary(t *testing.T, bin, dataDir string) *binServer {
	t.Helper()
	s := &binServer{done: make(chan struct{}), log: filepath.Join(dataDir, "duplex.log")}
	logf, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "demo", "--data", dataDir, "--addr", "127.0.0.1:0", "--poll", "500ms")
	s.cmd.Stderr = logf
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		_ = s.cmd.Wait()
		_ = logf.Close()
		close(s.done)
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	urlRe := regexp.MustCompile(`running: (http://\S+)`)
	tokenRe := regexp.MustCompile(`Authorization: Bearer (dpx_\S+)"`)
	deadline := time.After(60 * time.Second)
	for s.url == "" || s.token == "" {
		select {
		case line := <-lines:
			if m := urlRe.FindStringSubmatch(line); m != nil {
				s.url = m[1]
			}
			if m := tokenRe.FindStringSubmatch(line); m != nil {
				s.token = m[1]
			}
		case <-s.done:
			b, _ := os.ReadFile(s.log)
			t.Fatalf("duplex demo exited before it served:\n%s", b)
		case <-deadline:
			t.Fatal("duplex demo did not print its banner within 60 s")
		}
	}
	return s
}

// api makes one request that must answer 2xx; out (optional) gets the JSON.
func (s *binServer) api(t *testing.T, method, path string, in, out any) {
	t.Helper()
	b, _ := json.Marshal(in)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// TestOnboardingThroughTheBinary: the same template as people run it: the
// duplex binary, the systems and the connection made through the API from
// the gallery's template, HR's application writing its database with plain
// SQL (the schema's triggers stamp updated_at), IT working in RT.
func TestOnboardingThroughTheBinary(t *testing.T) {
	rtURL, rtToken, rtSecrets := rtPeer(t)
	ctx := context.Background()
	rtAPI := &httpx.Client{Base: rtURL + "/REST/2.0", Header: http.Header{"Authorization": {"token " + rtToken}}}
	queue := newQueue(t, rtAPI)
	hrDir, hrDSN, hrSettings := newHR(t)
	it, err := rt.New(ctx, connectors.Config{Name: "it-agent", Settings: jsonOf(map[string]any{"url": rtURL, "queue": queue}), Secrets: rtSecrets})
	if err != nil {
		t.Fatal(err)
	}
	hrApp, err := sql.Open("sqlite3", hrDSN+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer hrApp.Close()

	// The store first, with the outbound policy an org admin would set:
	// RT on loopback and the HR database's folder.
	bin := buildDuplex(t)
	data := t.TempDir()
	policy := jsonOf(map[string]any{"allow": []map[string]any{{"network": "127.0.0.1"}, {"network": "::1"}, {"sqlite_dir": hrDir}}})
	set := exec.Command(bin, "policy", "set", "--data", data, "-")
	set.Stdin = bytes.NewReader(policy)
	if out, err := set.CombinedOutput(); err != nil {
		t.Fatalf("duplex policy set: %v\n%s", err, out)
	}
	s := startBinary(t, bin, data)

	var templates []struct {
		Name   string   `json:"name"`
		KindsA []string `json:"kinds_a"`
		KindsB []string `json:"kinds_b"`
	}
	s.api(t, "GET", "/api/templates", nil, &templates)
	found := false
	for _, tpl := range templates {
		found = found || (tpl.Name == "hr-it-onboarding" && fmt.Sprint(tpl.KindsA, tpl.KindsB) == "[sql] [rt]")
	}
	if !found {
		t.Fatalf("hr-it-onboarding (sql/rt) is not offered: %+v", templates)
	}
	var hrSys, itSys struct {
		ID int64 `json:"id"`
	}
	s.api(t, "POST", "/api/systems", map[string]any{"name": "hr", "kind": "sql", "settings": hrSettings}, &hrSys)
	s.api(t, "POST", "/api/systems", map[string]any{"name": "it", "kind": "rt",
		"settings": map[string]any{"url": rtURL, "queue": queue, "correlation_field": "Duplex key"}, "secrets": rtSecrets}, &itSys)
	s.api(t, "POST", "/api/connections", map[string]any{"name": "onboarding", "system_a_id": hrSys.ID, "system_b_id": itSys.ID,
		"template": "hr-it-onboarding", "active": true}, nil)

	wait := func(what string, ok func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > 90*time.Second {
				b, _ := os.ReadFile(s.log)
				t.Fatalf("%s: not there after 90 s; duplex log:\n%s", what, tailOf(string(b), 20))
			}
			time.Sleep(200 * time.Millisecond)
		}
		return time.Since(start)
	}
	tickets := func() []connectors.Entity {
		p, err := it.Changes(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		return p.Entities
	}
	employee := func() (status, notes string) {
		var st, n sql.NullString
		if err := hrApp.QueryRowContext(ctx, "SELECT onboarding_status, notes FROM employees WHERE email = 'rui.sato@example.com'").Scan(&st, &n); err != nil {
			t.Fatal(err)
		}
		return st.String, n.String
	}

	// HR hires someone.
	if _, err := hrApp.ExecContext(ctx, `INSERT INTO employees (name, email, start_date, role, manager, equipment)
		VALUES ('Rui Sato', 'rui.sato@example.com', '2027-05-03', 'support', 'eli.park@example.com', 'laptop, headset')`); err != nil {
		t.Fatal(err)
	}
	created := wait("the onboarding ticket", func() bool { return len(tickets()) > 0 })
	tk := tickets()[0]
	if tk.Fields["subject"] != "Onboarding: Rui Sato (support), starts 2027-05-03" ||
		!strings.Contains(fmt.Sprint(tk.Fields["description"]), "[ ] Helpdesk agent seat") {
		t.Fatalf("ticket: %q", tk.Fields)
	}
	wait("the ticket's status in HR", func() bool { st, _ := employee(); return st == "requested" })

	// HR's application moves the start date without touching updated_at:
	// the schema's trigger stamps it, so Duplex sees the change.
	if _, err := hrApp.ExecContext(ctx, `UPDATE employees SET start_date = '2027-05-10' WHERE email = 'rui.sato@example.com'`); err != nil {
		t.Fatal(err)
	}
	moved := wait("the moved start date in RT", func() bool {
		return r0(t, it, tk.ID).Fields["subject"] == "Onboarding: Rui Sato (support), starts 2027-05-10"
	})
	// IT replies and resolves.
	if _, err := it.AddComment(ctx, tk.ID, connectors.Comment{Body: "Seat and headset ready."}); err != nil {
		t.Fatal(err)
	}
	if _, err := it.AddComment(ctx, tk.ID, connectors.Comment{Body: "internal: used the last spare headset", Private: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := it.Update(ctx, tk.ID, map[string]any{"status": "resolved"}); err != nil {
		t.Fatal(err)
	}
	back := wait("IT's reply and status in HR", func() bool {
		st, n := employee()
		return st == "done" && strings.HasSuffix(n, ": Seat and headset ready.")
	})
	if _, n := employee(); strings.Contains(n, "spare headset") {
		t.Fatalf("a private RT comment reached HR: %q", n)
	}
	if n := len(tickets()); n != 1 {
		t.Fatalf("%d tickets, want 1", n)
	}
	t.Logf("e2e: onboarding through the binary (poll 500 ms): new hire → ticket %.1f s, moved start date → RT %.1f s, reply and resolve → HR %.1f s",
		created.Seconds(), moved.Seconds(), back.Seconds())
}

func r0(t *testing.T, c connectors.Connector, id string) connectors.Entity {
	t.Helper()
	e, err := c.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func tailOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
