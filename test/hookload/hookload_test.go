// Package hookload measures webhook latency: from a signed webhook received
// by the server to the change applied on the other system, with the engine
// running as in production and the generic HTTP connector on both sides
// (two item services on loopback). Bounded: a fixed number of changes at a
// fixed rate, then it stops.
package hookload

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpconn"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/itemsvc"
	"github.com/duplexsync/duplex/internal/testdb"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
	"github.com/duplexsync/duplex/server"
)

func TestWebhookLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("a load run; make figures runs it")
	}
	for _, rate := range []int{100, 1000} {
		t.Run(strconv.Itoa(rate), func(t *testing.T) { run(t, rate, 2*time.Second) })
	}
}

func run(t *testing.T, perSecond int, dur time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := testdb.SQLite(t)
	box, err := secret.LoadOrCreate(t.TempDir() + "/k")
	if err != nil {
		t.Fatal(err)
	}
	reg := connectors.NewRegistry()
	_ = reg.Register("http", httpconn.New)
	eng := engine.New(engine.Options{Store: st, Connectors: reg, Secrets: box, Runner: scripting.NewRunner(scripting.Options{})})
	defer eng.Close()
	lib, _ := scripts.Builtin()
	api := httptest.NewServer(server.New(server.Options{Store: st, Engine: eng, Secrets: box, Templates: lib}))
	defer api.Close()

	a, b := itemsvc.New(), itemsvc.New()
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	var lastArrival time.Time
	b.OnWrite = func(id string) {
		title, _ := b.Item(id)["title"].(string)
		mu.Lock()
		if t0, ok := sent[title]; ok {
			lat = append(lat, time.Since(t0))
			delete(sent, title)
		}
		lastArrival = time.Now()
		mu.Unlock()
	}
	var ids [2]int64
	for i, svc := range []*itemsvc.Service{a, b} {
		srv := httptest.NewServer(svc)
		defer srv.Close()
		sys := store.System{Name: fmt.Sprint(i), Kind: "http", PollIntervalMS: 60_000, // the safety net, slow
			Settings: fmt.Sprintf(`{"url":%q,"list_path":"/items?since={since}","get_path":"/items/{id}","create_path":"/items","update_path":"/items/{id}","sign_delivery_id":true}`, srv.URL)}
		if sys.Secrets, err = box.SealMap(map[string]string{"webhook_secret": "hush"}); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateSystem(ctx, &sys); err != nil {
			t.Fatal(err)
		}
		ids[i] = sys.ID
	}
	conn := store.Connection{Name: "load", SystemAID: ids[0], SystemBID: ids[1], Active: true}
	if err := st.CreateConnection(ctx, &conn, map[store.Side]map[store.ScriptKind]string{
		store.SideA: {store.KindTrigger: "true", store.KindOutgoing: "replica.title = entity.title;", store.KindIncoming: "entity.title = replica.title;"},
		store.SideB: {store.KindTrigger: "false", store.KindOutgoing: "replica.title = entity.title;", store.KindIncoming: "entity.title = replica.title;"},
	}, "load"); err != nil {
		t.Fatal(err)
	}
	go func() { _ = eng.Run(ctx) }()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	total := perSecond * int(dur/time.Second)
	interval := time.Second / time.Duration(perSecond)
	// Change i is item i/2+1: created by the even change, edited by the odd.
	for i := 0; i < total; i += 2 {
		a.Put("", map[string]any{"title": "seed"})
	}
	hookTimes := make([]time.Duration, total)
	start := time.Now()
	const senders = 8 // one request at a time each, so the offered rate is reached
	var wg sync.WaitGroup
	var failed error
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < total; i += senders {
				if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
					time.Sleep(d)
				}
				title := fmt.Sprintf("change %d", i)
				id := strconv.Itoa(i/2 + 1)
				a.Put(id, map[string]any{"title": title})
				body := []byte(`{"id":"` + id + `"}`)
				req, _ := http.NewRequest("POST", fmt.Sprintf("%s/hooks/%d", api.URL, ids[0]), bytes.NewReader(body))
				// The sender signs its delivery id: an id-only body about
				// the same item comes twice, and an unsigned id would make
				// the second a replay (engine.ReplayWindow).
				req.Header.Set("X-Signature-256", httpconn.SignDelivery([]byte("hush"), "d"+strconv.Itoa(i), body))
				req.Header.Set("X-Delivery-Id", "d"+strconv.Itoa(i))
				mu.Lock()
				sent[title] = time.Now()
				mu.Unlock()
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						err = fmt.Errorf("webhook %d: HTTP %d", i, resp.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					return
				}
				hookTimes[i] = time.Since(t0)
			}
		}(w)
	}
	wg.Wait()
	if failed != nil {
		t.Fatal(failed)
	}
	sendTime := time.Since(start)
	// Done when nothing arrived for a second (an edit queued behind a later
	// one of the same item is applied as that later state, so not every
	// title arrives), or at the deadline.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		quiet := !lastArrival.IsZero() && time.Since(lastArrival) > time.Second
		mu.Unlock()
		if quiet {
			break
		}
	}
	mu.Lock()
	got := append([]time.Duration(nil), lat...)
	skipped := len(sent)
	mu.Unlock()
	if len(got) == 0 {
		t.Fatal("nothing arrived")
	}
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	sort.Slice(hookTimes, func(i, j int) bool { return hookTimes[i] < hookTimes[j] })
	pct := func(d []time.Duration, p float64) time.Duration { return d[int(float64(len(d)-1)*p)] }
	line := fmt.Sprintf("hooks: %d/s offered (%.0f/s sent) for %v: webhook answer p50 %v p99 %v; applied on b: %d, superseded before applying: %d; latency p50 %v p99 %v max %v",
		perSecond, float64(total)/sendTime.Seconds(), dur, pct(hookTimes, .5).Round(time.Microsecond), pct(hookTimes, .99).Round(time.Microsecond),
		len(got), skipped, pct(got, .5).Round(100*time.Microsecond), pct(got, .99).Round(100*time.Microsecond), got[len(got)-1].Round(100*time.Microsecond))
	fmt.Println(line)
	t.Log(line)
	if b.Len() != total/2 {
		t.Errorf("b has %d items, want %d (one per created item, none twice)", b.Len(), total/2)
	}
}
