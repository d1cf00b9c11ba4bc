package main

import (
	"bufio"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startDemoIn runs `duplex demo` in dir and returns its URL, the token and
// the whole banner (up to the note when continues); stop ends it and waits.
func startDemoIn(t *testing.T, dir string, continues bool, flags ...string) (url, token, banner string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)),
			append([]string{"--data", dir, "--addr", "127.0.0.1:0", "--poll", "1s"}, flags...), pw)
		_ = pw.Close()
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		if err := <-done; err != nil {
			t.Errorf("demo exited with %v", err)
		}
	}
	t.Cleanup(stop)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var b strings.Builder
	deadline := time.After(30 * time.Second)
	urlRe := regexp.MustCompile(`running: (http://\S+)`)
	tokRe := regexp.MustCompile(`Bearer (dpx_\S+)"`)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo stopped early:\n%s", b.String())
			}
			b.WriteString(l + "\n")
			if m := urlRe.FindStringSubmatch(l); m != nil {
				url = m[1]
			}
			if m := tokRe.FindStringSubmatch(l); m != nil {
				token = m[1]
			}
			// The banner ends with the TOKEN line, or with the note after it.
			if url != "" && token != "" && strings.Contains(b.String(), "export TOKEN=") && (!continues || strings.Contains(l, "--reset --data")) {
				go func() {
					for range lines {
					}
				}()
				return url, token, b.String(), stop
			}
		case <-deadline:
			t.Fatalf("no URL and token within 30 s:\n%s", b.String())
		}
	}
}

func status(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A second demo in the same folder says that it continues the first and how
// to start fresh; each run's token works during its run only.
func TestDemoContinues(t *testing.T) {
	dir := t.TempDir()
	url, first, banner, stop := startDemoIn(t, dir, false)
	if strings.Contains(banner, "continues") {
		t.Fatalf("a new demo says it continues:\n%s", banner)
	}
	// The README's curl lines use $TOKEN: the banner prints the line that sets it.
	if !strings.Contains(banner, "\n  export TOKEN="+first+"\n") {
		t.Fatalf("the banner has no line that sets TOKEN:\n%s", banner)
	}
	if got := status(t, url, first); got != http.StatusOK {
		t.Fatalf("the first run's token during the run: %d", got)
	}
	stop()

	url, second, banner, stop2 := startDemoIn(t, dir, true)
	if !strings.Contains(banner, "This continues the demo in "+dir) || !strings.Contains(banner, "make run DEMO_FLAGS=--reset") ||
		!strings.Contains(banner, "duplex demo --reset --data "+dir) {
		t.Fatalf("the second run does not say it continues and how to start fresh:\n%s", banner)
	}
	if got := status(t, url, first); got != http.StatusUnauthorized {
		t.Fatalf("the first run's token after that run: %d, want 401", got)
	}
	if got := status(t, url, second); got != http.StatusOK {
		t.Fatalf("the second run's token: %d", got)
	}
	// An escalation made in the second run, then --reset: a new demo
	// without it, which does not say it continues.
	ticket := func(q string) string {
		// A connection of its own each time: one kept open would still read
		// the deleted file after --reset.
		db, err := sql.Open("sqlite3", filepath.Join(dir, "support.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var out string
		if err := db.QueryRow(q).Scan(&out); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return out
	}
	ticket("UPDATE tickets SET subject = 'kept?' WHERE id = 2 RETURNING subject")
	stop2()
	_, _, banner, _ = startDemoIn(t, dir, false, "--reset")
	if strings.Contains(banner, "continues") {
		t.Fatalf("a reset demo says it continues:\n%s", banner)
	}
	if subject := ticket("SELECT subject FROM tickets WHERE id = 2"); subject == "kept?" {
		t.Fatalf("after --reset ticket 2 is %q, want the demo's own", subject)
	}
}
