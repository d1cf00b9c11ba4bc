package alerts_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/alerts"
	"github.com/duplexsync/duplex/internal/testdb"
)

// receiver is a local webhook receiver (loopback only) that records every
// request and answers with the statuses it is given, then 200.
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	bodies   [][]byte // every request, in order
	ok       [][]byte // the ones answered 2xx
	statuses []int    // answers to give, first first
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.bodies = append(r.bodies, b)
		code := http.StatusOK
		if len(r.statuses) > 0 {
			code, r.statuses = r.statuses[0], r.statuses[1:]
		}
		if req.Header.Get("Content-Type") != "application/json" {
			code = http.StatusUnsupportedMediaType
		}
		if code < 300 {
			r.ok = append(r.ok, b)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// delivered returns the JSON notices answered 2xx.
func (r *receiver) delivered(t *testing.T) []alerts.Notice {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]alerts.Notice, 0, len(r.ok))
	for _, b := range r.ok {
		var n alerts.Notice
		if err := json.Unmarshal(b, &n); err != nil {
			t.Fatalf("notice %s: %v", b, err)
		}
		out = append(out, n)
	}
	return out
}

func (r *receiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// fixture is a store with one connection (and its two systems) and a twin
// to hang events on.
type fixture struct {
	st   *store.Store
	conn store.Connection
	sa   store.System
	twin store.Twin
}

func newFixture(t *testing.T, st *store.Store, active bool) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{st: st, sa: store.System{Name: "support", Kind: "sql"}}
	sb := store.System{Name: "dev", Kind: "sql"}
	for _, s := range []*store.System{&f.sa, &sb} {
		if err := st.CreateSystem(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	f.conn = store.Connection{Name: "escalation", SystemAID: f.sa.ID, SystemBID: sb.ID, Active: active}
	if err := st.CreateConnection(ctx, &f.conn, nil, "test"); err != nil {
		t.Fatal(err)
	}
	aid := "1"
	f.twin = store.Twin{ConnectionID: f.conn.ID, AID: &aid, CommentLinks: "{}"}
	if err := st.DB().Create(&f.twin).Error; err != nil {
		t.Fatal(err)
	}
	return f
}

// events adds n events in a status, created at created (zero: now).
func (f *fixture) events(t *testing.T, n int, status string, created time.Time) {
	t.Helper()
	evs := make([]store.SyncEvent, n)
	for i := range evs {
		evs[i] = store.SyncEvent{ConnectionID: f.conn.ID, TwinID: f.twin.ID, Direction: store.AToB, SourceID: "1",
			Replica: "{}", Status: status, LastError: "redmine: 422 subject is too long", CreatedAt: created}
	}
	if err := f.st.InsertEvents(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func evaluator(st *store.Store, url, format, process string) *alerts.Evaluator {
	return alerts.New(alerts.Options{Store: st, Process: process, Logger: slog.New(slog.DiscardHandler),
		Config: alerts.Config{Webhook: url, Format: format, FailureCount: 3, FailureWindow: time.Minute,
			QueueAge: 10 * time.Minute, UnreachableAfter: time.Minute, Backoff: time.Millisecond, MaxAttempts: 3,
			Timeout: 2 * time.Second}})
}

func tick(t *testing.T, e *alerts.Evaluator, n int) {
	t.Helper()
	for range n {
		if err := e.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func backends(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { fn(t, b.Open(t)) })
	}
}

// Failures over the threshold open one alert, however many more fail; the
// recovery is one notice too.
func TestFailuresAlertOnceAndRecover(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		rcv := newReceiver(t)
		f := newFixture(t, st, true)
		e := evaluator(st, rcv.srv.URL, alerts.FormatJSON, "p1")

		f.events(t, 2, store.StatusFailed, time.Time{})
		tick(t, e, 2)
		if n := rcv.requests(); n != 0 {
			t.Fatalf("below the threshold: %d notices", n)
		}
		f.events(t, 1, store.StatusFailed, time.Time{})
		tick(t, e, 1)
		f.events(t, 10, store.StatusFailed, time.Time{})
		tick(t, e, 3)
		got := rcv.delivered(t)
		if len(got) != 1 || got[0].Event != "alert.opened" || got[0].Alert.Kind != store.AlertFailures ||
			got[0].Alert.ConnectionID == nil || *got[0].Alert.ConnectionID != f.conn.ID || got[0].Alert.Name != "escalation" {
			t.Fatalf("want one opening notice of the connection's failures, got %+v", got)
		}
		if got[0].Text == "" || got[0].Alert.Detail == "" {
			t.Fatalf("notice without text or detail: %+v", got[0])
		}
		open, _ := st.Alerts().ListAlerts(ctx, store.AlertFilter{State: store.AlertOpen})
		if len(open) != 1 || open[0].NotifiedAt == nil || open[0].Pending != "" {
			t.Fatalf("open alerts: %+v", open)
		}
		// The open alert's detail follows the count (it opened at 3), with
		// no further notice.
		if !strings.HasPrefix(open[0].Detail, "13 events failed") {
			t.Fatalf("open alert's detail: %q", open[0].Detail)
		}

		// Heal: every failed event is skipped (or retried and applied).
		if err := st.DB().Model(&store.SyncEvent{}).Where("status = ?", store.StatusFailed).
			Update("status", store.StatusSkipped).Error; err != nil {
			t.Fatal(err)
		}
		tick(t, e, 3)
		got = rcv.delivered(t)
		if len(got) != 2 || got[1].Event != "alert.resolved" || got[1].Alert.ID != got[0].Alert.ID ||
			got[1].Alert.State != store.AlertResolved || got[1].Alert.ResolvedAt == nil {
			t.Fatalf("want one recovery notice after the opening, got %+v", got)
		}
		if n := rcv.requests(); n != 2 {
			t.Fatalf("%d requests, want 2", n)
		}
	})
}

func TestPausedConnection(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		rcv := newReceiver(t)
		f := newFixture(t, st, false)
		e := evaluator(st, rcv.srv.URL, alerts.FormatJSON, "p1")
		tick(t, e, 1)
		if n := rcv.requests(); n != 0 {
			t.Fatalf("a paused connection with nothing waiting: %d notices", n)
		}
		// Old enough for the queue-age alert too: a paused queue is the
		// paused alert only.
		f.events(t, 2, store.StatusQueued, time.Now().Add(-time.Hour))
		tick(t, e, 2)
		got := rcv.delivered(t)
		if len(got) != 1 || got[0].Alert.Kind != store.AlertPaused {
			t.Fatalf("want one paused alert, got %+v", got)
		}
		if err := st.SetActive(ctx, f.conn.ID, true); err != nil {
			t.Fatal(err)
		}
		if err := st.DB().Model(&store.SyncEvent{}).Where("1 = 1").Update("status", store.StatusDone).Error; err != nil {
			t.Fatal(err)
		}
		tick(t, e, 1)
		got = rcv.delivered(t)
		if len(got) != 2 || got[1].Event != "alert.resolved" || got[1].Alert.Kind != store.AlertPaused {
			t.Fatalf("want the paused alert resolved, got %+v", got)
		}
	})
}

func TestOldQueue(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		rcv := newReceiver(t)
		f := newFixture(t, st, true)
		e := evaluator(st, rcv.srv.URL, alerts.FormatJSON, "p1")
		f.events(t, 1, store.StatusQueued, time.Now().Add(-5*time.Minute))
		tick(t, e, 1)
		if n := rcv.requests(); n != 0 {
			t.Fatalf("a queue younger than the threshold: %d notices", n)
		}
		f.events(t, 1, store.StatusQueued, time.Now().Add(-30*time.Minute))
		tick(t, e, 2)
		got := rcv.delivered(t)
		if len(got) != 1 || got[0].Alert.Kind != store.AlertQueueAge {
			t.Fatalf("want one queue-age alert, got %+v", got)
		}
	})
}

func TestUnreachableSystem(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		rcv := newReceiver(t)
		f := newFixture(t, st, true)
		e := evaluator(st, rcv.srv.URL, alerts.FormatJSON, "p1")
		if err := st.RecordPollFailure(ctx, f.sa.ID, "dial tcp: connection refused", time.Now().Add(-10*time.Second)); err != nil {
			t.Fatal(err)
		}
		tick(t, e, 1)
		if n := rcv.requests(); n != 0 {
			t.Fatalf("failing for less than the threshold: %d notices", n)
		}
		// The run of failures started earlier (failing_since stays at the first).
		if err := st.DB().Exec("UPDATE poll_status SET failing_since = ?", time.Now().Add(-5*time.Minute).UTC()).Error; err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := st.RecordPollFailure(ctx, f.sa.ID, "dial tcp: connection refused", time.Now()); err != nil {
				t.Fatal(err)
			}
			tick(t, e, 1)
		}
		got := rcv.delivered(t)
		if len(got) != 1 || got[0].Alert.Kind != store.AlertUnreachable || got[0].Alert.SystemID == nil || *got[0].Alert.SystemID != f.sa.ID {
			t.Fatalf("want one unreachable alert, got %+v", got)
		}
		if err := st.RecordPollOK(ctx, f.sa.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		tick(t, e, 2)
		if got = rcv.delivered(t); len(got) != 2 || got[1].Event != "alert.resolved" {
			t.Fatalf("want the recovery, got %+v", got)
		}
	})
}

// Each format's body has the documented shape.
func TestFormats(t *testing.T) {
	st := testdb.SQLite(t)
	f := newFixture(t, st, false)
	f.events(t, 1, store.StatusQueued, time.Time{})
	for _, format := range []string{alerts.FormatJSON, alerts.FormatSlack, alerts.FormatTeams} {
		t.Run(format, func(t *testing.T) {
			// A fresh alert per format: resolve the last one first.
			_ = st.DB().Exec("DELETE FROM alerts").Error
			rcv := newReceiver(t)
			tick(t, evaluator(st, rcv.srv.URL, format, "p1"), 1)
			if len(rcv.ok) != 1 {
				t.Fatalf("%d notices", len(rcv.ok))
			}
			var body map[string]any
			if err := json.Unmarshal(rcv.ok[0], &body); err != nil {
				t.Fatal(err)
			}
			switch format {
			case alerts.FormatJSON:
				a, _ := body["alert"].(map[string]any)
				if body["event"] != "alert.opened" || a["kind"] != "paused" || a["state"] != "open" || body["text"] == "" {
					t.Fatalf("json body: %s", rcv.ok[0])
				}
			case alerts.FormatSlack:
				text, _ := body["text"].(string)
				if len(body) != 1 || text == "" {
					t.Fatalf("slack body: %s", rcv.ok[0])
				}
			case alerts.FormatTeams:
				att, _ := body["attachments"].([]any)
				if body["type"] != "message" || len(att) != 1 {
					t.Fatalf("teams body: %s", rcv.ok[0])
				}
				a := att[0].(map[string]any)
				card, _ := a["content"].(map[string]any)
				items, _ := card["body"].([]any)
				if a["contentType"] != "application/vnd.microsoft.card.adaptive" || card["type"] != "AdaptiveCard" ||
					card["version"] == nil || len(items) == 0 || items[0].(map[string]any)["type"] != "TextBlock" {
					t.Fatalf("teams card: %s", rcv.ok[0])
				}
			}
		})
	}
}

// A receiver answering 500 gets the notice again after the backoff, and it
// is delivered once.
func TestRetryAfterReceiverError(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		rcv := newReceiver(t, http.StatusInternalServerError)
		f := newFixture(t, st, false)
		f.events(t, 1, store.StatusQueued, time.Time{})
		e := evaluator(st, rcv.srv.URL, alerts.FormatJSON, "p1")
		tick(t, e, 1)
		open, _ := st.Alerts().ListAlerts(ctx, store.AlertFilter{})
		if rcv.requests() != 1 || len(open) != 1 || open[0].Attempts != 1 || open[0].LastError == "" || open[0].Pending != store.AlertOpen {
			t.Fatalf("after a 500: %d requests, alerts %+v", rcv.requests(), open)
		}
		time.Sleep(5 * time.Millisecond) // the backoff (1 ms in this config)
		for range 3 {
			if _, err := e.Deliver(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := rcv.delivered(t); rcv.requests() != 2 || len(got) != 1 || got[0].Event != "alert.opened" {
			t.Fatalf("want a retry delivered once: %d requests, delivered %+v", rcv.requests(), got)
		}
	})
}

// A receiver that stays down is tried MaxAttempts times, then given up.
func TestDeadReceiverGivesUp(t *testing.T) {
	st := testdb.SQLite(t)
	rcv := newReceiver(t, 503, 503, 503, 503, 503, 503, 503, 503)
	f := newFixture(t, st, false)
	f.events(t, 1, store.StatusQueued, time.Time{})
	e := evaluator(st, rcv.srv.URL, alerts.FormatJSON, "p1")
	for range 10 {
		tick(t, e, 1)
		time.Sleep(10 * time.Millisecond)
	}
	if n := rcv.requests(); n != 3 {
		t.Fatalf("%d requests to a dead receiver, want MaxAttempts=3", n)
	}
	open, _ := st.Alerts().ListAlerts(context.Background(), store.AlertFilter{})
	if len(open) != 1 || open[0].State != store.AlertOpen || open[0].Pending != "" || open[0].LastError == "" {
		t.Fatalf("the alert stays open, its notice given up: %+v", open)
	}
}

// A new evaluator on the same store (a restart) sends nothing again, and
// two processes evaluating together send one notice.
func TestRestartAndTwoProcesses(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		rcv := newReceiver(t)
		f := newFixture(t, st, false)
		f.events(t, 1, store.StatusQueued, time.Time{})
		var wg sync.WaitGroup
		for _, p := range []string{"p1", "p2", "p3"} {
			wg.Go(func() {
				e := evaluator(st, rcv.srv.URL, alerts.FormatJSON, p)
				for range 3 {
					if err := e.Tick(context.Background()); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if n := rcv.requests(); n != 1 {
			t.Fatalf("three processes sent %d notices, want 1", n)
		}
		tick(t, evaluator(st, rcv.srv.URL, alerts.FormatJSON, "p1-restarted"), 3)
		if n := rcv.requests(); n != 1 {
			t.Fatalf("after a restart: %d notices, want still 1", n)
		}
	})
}

// Without a webhook alerts are still kept (for the app), and nothing is owed.
func TestNoWebhook(t *testing.T) {
	st := testdb.SQLite(t)
	f := newFixture(t, st, false)
	f.events(t, 1, store.StatusQueued, time.Time{})
	tick(t, evaluator(st, "", "", "p1"), 2)
	open, _ := st.Alerts().ListAlerts(context.Background(), store.AlertFilter{State: store.AlertOpen})
	if len(open) != 1 || open[0].Pending != "" {
		t.Fatalf("%+v", open)
	}
}
