package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// TestDemo runs `duplex demo` as the README describes and then does what its
// printed instructions say: escalate ticket 3 with the printed sqlite3
// command, resolve it on the engineering side, and watch both arrive.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)),
			[]string{"--data", dir, "--addr", "127.0.0.1:0", "--poll", "200ms"}, pw)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo exited with %v", err)
		}
	})

	// Read the banner: the URL and the commands a user would copy.
	var url string
	var commands []string
	sc := bufio.NewScanner(pr)
	deadline := time.After(20 * time.Second)
	lines := make(chan string)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	urlRe := regexp.MustCompile(`running: (http://\S+)`)
	tokenRe := regexp.MustCompile(`Authorization: Bearer (dpx_\S+)"`)
	var token string
	for url == "" || len(commands) < 2 || token == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("demo stopped before printing its instructions")
			}
			if m := urlRe.FindStringSubmatch(line); m != nil {
				url = m[1]
			}
			if m := tokenRe.FindStringSubmatch(line); m != nil {
				token = m[1]
			}
			if s := strings.TrimSpace(line); strings.HasPrefix(s, "sqlite3 ") {
				commands = append(commands, s)
			}
		case <-deadline:
			t.Fatal("no instructions printed within 20 s")
		}
	}
	go func() { // keep draining so the demo never blocks on its output
		for range lines {
		}
	}()

	support := openDB(t, filepath.Join(dir, "support.db"))
	eng := openDB(t, filepath.Join(dir, "engineering.db"))
	waitFor(t, "ticket 1 (labelled todev) reaches engineering", func() bool {
		return count(t, eng, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'") == 1
	})

	run(t, commands[0]) // escalate ticket 3
	waitFor(t, "ticket 3 reaches engineering", func() bool {
		return count(t, eng, "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-3'") == 1
	})
	run(t, commands[1]) // resolve it there
	waitFor(t, "the resolution comes back to the ticket", func() bool {
		return count(t, support, "SELECT COUNT(*) FROM tickets WHERE id = 3 AND status = 'solved'") == 1
	})

	// The printed curl command's token works; without it the API refuses.
	if resp, err := http.Get(url + "/api/events"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("events without a token: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", url+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var evs []struct{ Status string }
	if err := json.NewDecoder(resp.Body).Decode(&evs); err != nil || len(evs) < 3 {
		t.Fatalf("events API: %v %+v", err, evs)
	}
	for _, ev := range evs {
		if ev.Status != "done" {
			t.Fatalf("event not done: %+v", evs)
		}
	}

	// The scripts ran in sandbox worker processes, not in the server.
	req, _ = http.NewRequest("GET", url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	mresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	body, _ := io.ReadAll(mresp.Body)
	m := regexp.MustCompile(`(?m)^duplex_script_workers_started_total (\d+)`).FindSubmatch(body)
	if mresp.StatusCode != http.StatusOK || m == nil || string(m[1]) == "0" {
		t.Fatalf("metrics %d: no script worker started: %s", mresp.StatusCode, m)
	}
}

// run executes a printed `sqlite3 FILE "SQL"` line: with the sqlite3 command
// when it is installed (as a user would), else through the driver.
func run(t *testing.T, line string) {
	t.Helper()
	m := regexp.MustCompile(`^sqlite3 (\S+) "(.*)"$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("unexpected command %q", line)
	}
	if path, err := exec.LookPath("sqlite3"); err == nil {
		if out, err := exec.Command(path, m[1], m[2]).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", line, err, out)
		}
		return
	}
	t.Logf("sqlite3 command not installed; running %q through the driver", m[2])
	db := openDB(t, m[1])
	if _, err := db.Exec(m[2]); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
}

func openDB(t *testing.T, path string) *sql.DB {
	db, err := sql.Open("sqlite3", path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func count(t *testing.T, db *sql.DB, q string) int {
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// waitFor polls cond for up to 10 s. The demo polls every 200 ms here, so a
// change normally lands within half a second; the margin is for a loaded CI.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestScriptTestCommand(t *testing.T) {
	var out strings.Builder
	if err := runScript(context.Background(), []string{"test", "../../scripts/support-escalation"}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "4 passed, 0 failed") {
		t.Fatalf("output:\n%s", out.String())
	}
	// A broken fixture fails the command and names the difference.
	dir := t.TempDir()
	tpl := filepath.Join(dir, "tpl")
	if err := os.MkdirAll(filepath.Join(tpl, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"template.json":      `{"title":"t"}`,
		"a.outgoing.js":      `replica.n = entity.n + 1;`,
		"b.incoming.js":      `entity.m = replica.n;`,
		"testdata/one.json":  `{"side":"a","entity":{"id":"1","fields":{"n":1}},"target":null,"want":{"patch":{"m":3}}}`,
		"testdata/good.json": `{"side":"a","entity":{"id":"1","fields":{"n":1}},"target":null,"want":{"patch":{"m":2}}}`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(tpl, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	err := runScript(context.Background(), []string{"test", tpl}, &out)
	if !errors.Is(err, errFixturesFailed) || !strings.Contains(out.String(), "patch.m = 2, want 3") || !strings.Contains(out.String(), "1 passed, 1 failed") {
		t.Fatalf("err %v, output:\n%s", err, out.String())
	}
}
