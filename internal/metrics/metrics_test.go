package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/metrics"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
)

func TestScrape(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { scrape(t, b.Open(t)) })
	}
}

func scrape(t *testing.T, st *store.Store) {
	ctx := context.Background()
	a, bs := store.System{Name: "a", Kind: "sql"}, store.System{Name: "b", Kind: "sql"}
	_ = st.CreateSystem(ctx, &a)
	_ = st.CreateSystem(ctx, &bs)
	conn := store.Connection{Name: "desk-eng", SystemAID: a.ID, SystemBID: bs.ID}
	if err := st.CreateConnection(ctx, &conn, nil, "t"); err != nil {
		t.Fatal(err)
	}
	aid := "1"
	twin := store.Twin{ConnectionID: conn.ID, AID: &aid}
	if err := st.DB().Create(&twin).Error; err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-90 * time.Second).UTC()
	var evs []store.SyncEvent
	for i, status := range []string{store.StatusQueued, store.StatusQueued, store.StatusFailed, store.StatusConflict, store.StatusDone} {
		evs = append(evs, store.SyncEvent{ConnectionID: conn.ID, TwinID: twin.ID, Direction: store.AToB, SourceID: "1",
			Replica: "{}", Status: status, Attempts: i, NextAttemptAt: old, CreatedAt: old.Add(time.Duration(i) * time.Second)})
	}
	if err := st.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// Another team names its systems and connection the same (names are
	// unique per team).
	team := store.Team{Name: "other"}
	if err := st.DB().Create(&team).Error; err != nil {
		t.Fatal(err)
	}
	oa, ob := store.System{Name: "redmine", Kind: "sql", TeamID: team.ID}, store.System{Name: "b", Kind: "sql", TeamID: team.ID}
	_ = st.CreateSystem(ctx, &oa)
	_ = st.CreateSystem(ctx, &ob)
	other := store.Connection{Name: "desk-eng", SystemAID: oa.ID, SystemBID: ob.ID, TeamID: team.ID}
	if err := st.CreateConnection(ctx, &other, nil, "t"); err != nil {
		t.Fatal(err)
	}
	otwin := store.Twin{ConnectionID: other.ID, AID: &aid}
	if err := st.DB().Create(&otwin).Error; err != nil {
		t.Fatal(err)
	}
	if err := st.InsertEvents(ctx, []store.SyncEvent{{ConnectionID: other.ID, TwinID: otwin.ID, Direction: store.AToB, SourceID: "1",
		Replica: "{}", Status: store.StatusQueued, NextAttemptAt: old, CreatedAt: old}}); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(st)
	m.Counter("duplex_lease_takeovers_total", "test", func() float64 { return 3 })
	m.ObserveScript(scripting.KindOutgoing, 3*time.Millisecond, nil)
	m.ObserveScript(scripting.KindIncoming, time.Second, &scripting.Error{Kind: scripting.ErrorTimeout})
	m.ObserveScript(scripting.KindIncoming, time.Millisecond, errors.New("other"))

	limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer limited.Close()
	client := &http.Client{Transport: m.Transport(a.ID, "redmine", nil)}
	for i := 0; i < 2; i++ {
		resp, err := client.Get(limited.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if _, err := client.Get("http://127.0.0.1:1/"); err == nil { // nothing listens on port 1
		t.Fatal("expected a refused connection")
	}
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	if resp, err := (&http.Client{Transport: m.Transport(oa.ID, "redmine", nil)}).Get(ok.URL); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: HTTP %d: %s", rec.Code, body)
	}
	text := string(body)
	for _, want := range []string{
		fmt.Sprintf(`duplex_events{connection="desk-eng",connection_id="%d",status="queued"} 2`, conn.ID),
		fmt.Sprintf(`duplex_events{connection="desk-eng",connection_id="%d",status="failed"} 1`, conn.ID),
		fmt.Sprintf(`duplex_event_attempts{connection="desk-eng",connection_id="%d",status="failed"} 2`, conn.ID),
		fmt.Sprintf(`duplex_conflicts_open{connection="desk-eng",connection_id="%d"} 1`, conn.ID),
		// The other team's connection of the same name is its own series,
		// not a duplicate that would fail the scrape.
		fmt.Sprintf(`duplex_events{connection="desk-eng",connection_id="%d",status="queued"} 1`, other.ID),
		fmt.Sprintf(`duplex_connector_requests_total{code="429",method="GET",system="redmine",system_id="%d"} 2`, a.ID),
		fmt.Sprintf(`duplex_connector_requests_total{code="error",method="GET",system="redmine",system_id="%d"} 1`, a.ID),
		fmt.Sprintf(`duplex_connector_requests_total{code="200",method="GET",system="redmine",system_id="%d"} 1`, oa.ID),
		`duplex_script_run_seconds_count{kind="incoming",result="timeout"} 1`,
		`duplex_script_run_seconds_count{kind="incoming",result="error"} 1`,
		`duplex_script_run_seconds_count{kind="outgoing",result="ok"} 1`,
		`duplex_queue_scrape_error 0`,
		`duplex_lease_takeovers_total 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %s", want)
		}
	}
	// The oldest queued event is about 90 s old.
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, fmt.Sprintf(`duplex_queue_oldest_seconds{connection="desk-eng",connection_id="%d"}`, conn.ID)) {
			var v float64
			if _, err := fmtSscan(strings.Fields(line)[1], &v); err != nil || v < 85 || v > 600 {
				t.Errorf("oldest queued: %s", line)
			}
			return
		}
	}
	t.Errorf("no duplex_queue_oldest_seconds in\n%s", text)
}

func fmtSscan(s string, v *float64) (int, error) { return fmt.Sscan(s, v) }

// Peer links are counted per link: two links of the same name (in two
// teams) are two series, told apart by link_id; link_id 0 has no lag.
func TestPeerLinksPerLink(t *testing.T) {
	m := metrics.New(noQueue{})
	m.PeerLinks(func() []metrics.PeerLinkStat {
		return []metrics.PeerLinkStat{
			{LinkID: 0, Refused: 4},
			{LinkID: 1, Name: "escalation", Sent: 3, Received: 2, Retries: 1, Refused: 5, LastLagSeconds: 0.25},
			{LinkID: 2, Name: "escalation", Sent: 7},
		}
	})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`duplex_peer_refused_total{link="",link_id="0"} 4`,
		`duplex_peer_messages_sent_total{link="escalation",link_id="1"} 3`,
		`duplex_peer_messages_received_total{link="escalation",link_id="1"} 2`,
		`duplex_peer_retries_total{link="escalation",link_id="1"} 1`,
		`duplex_peer_refused_total{link="escalation",link_id="1"} 5`,
		`duplex_peer_last_lag_seconds{link="escalation",link_id="1"} 0.25`,
		`duplex_peer_messages_sent_total{link="escalation",link_id="2"} 7`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("no %s in:\n%s", want, body)
		}
	}
	if strings.Contains(body, `duplex_peer_last_lag_seconds{link="",link_id="0"}`) {
		t.Error("a lag for the refusals without a link")
	}
}

type noQueue struct{}

func (noQueue) QueueStats(context.Context) ([]store.QueueStat, error) { return nil, nil }
