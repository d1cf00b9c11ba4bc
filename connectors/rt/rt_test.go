package rt_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
	"github.com/duplexsync/duplex/connectors/rt"
	"github.com/duplexsync/duplex/internal/outbound"
)

// These tests run against a real Request Tracker (test/e2e/peers/rt.sh
// starts one on loopback); DUPLEX_TEST_RT_URL and DUPLEX_TEST_RT_TOKEN (a
// superuser's auth token) point at it. Each test makes its own queue.
func server(t *testing.T) (string, string) {
	t.Helper()
	u, k := os.Getenv("DUPLEX_TEST_RT_URL"), os.Getenv("DUPLEX_TEST_RT_TOKEN")
	if u == "" || k == "" {
		t.Skip("DUPLEX_TEST_RT_URL/TOKEN not set: run test/e2e/peers/rt.sh install start, or make test-e2e")
	}
	return u, k
}

// secrets logs in as root with a password (a session: fast) when
// DUPLEX_TEST_RT_PASSWORD is set, else uses the token.
func secrets(token string) map[string]string {
	if pw := os.Getenv("DUPLEX_TEST_RT_PASSWORD"); pw != "" {
		return map[string]string{"user": "root", "password": pw}
	}
	return map[string]string{"token": token}
}

func admin(u, k string) *httpx.Client {
	return &httpx.Client{Base: u + "/REST/2.0", Header: http.Header{"Authorization": {"token " + k}}}
}

func newQueue(t *testing.T, u, k string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	if err := admin(u, k).Do(context.Background(), "POST", "/queue", map[string]any{"Name": name}, nil); err != nil {
		t.Fatalf("create queue: %v", err)
	}
	return name
}

func open(t *testing.T, settings map[string]any) connectors.Connector {
	t.Helper()
	u, k := server(t)
	if settings == nil {
		settings = map[string]any{}
	}
	settings["url"] = u
	if settings["queue"] == nil {
		settings["queue"] = newQueue(t, u, k)
	}
	raw, _ := json.Marshal(settings)
	// The test server is on loopback, which the default policy refuses:
	// allowed explicitly, as a deployment would.
	guard := outbound.NewGuards(outbound.Fixed(outbound.LoopbackForTests), outbound.Fence{}, nil).For(1)
	c, err := rt.New(context.Background(), connectors.Config{Name: "rt", Settings: raw, Secrets: secrets(k), Guard: guard})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConfigErrors(t *testing.T) {
	u, k := server(t)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		settings string
		secrets  map[string]string
	}{
		"wrong token":    {fmt.Sprintf(`{"url":%q,"queue":"General"}`, u), map[string]string{"token": "1-14-00000000000000000000000000000000"}},
		"wrong password": {fmt.Sprintf(`{"url":%q,"queue":"General"}`, u), map[string]string{"user": "root", "password": "nope"}},
		"missing queue":  {fmt.Sprintf(`{"url":%q,"queue":"no such queue"}`, u), map[string]string{"token": k}},
		"no credentials": {fmt.Sprintf(`{"url":%q,"queue":"General"}`, u), nil},
		"bad url":        {`{"url":"rt.example","queue":"General"}`, map[string]string{"token": k}},
	} {
		_, err := rt.New(ctx, connectors.Config{Settings: json.RawMessage(tc.settings), Secrets: tc.secrets})
		if !errors.Is(err, connectors.ErrBadConfig) {
			t.Errorf("%s: want ErrBadConfig, got %v", name, err)
		}
	}
}

func TestTicketRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := open(t, nil)
	e, err := c.Create(ctx, map[string]any{"subject": "VPN down", "description": "Since 9am\nall users", "requestors": []any{"alice@example.com"}, "priority": 20.0, "Escalation": "todev"})
	if err != nil {
		t.Fatal(err)
	}
	f := e.Fields
	if f["subject"] != "VPN down" || f["description"] != "Since 9am\nall users" || f["status"] != "new" || f["priority"] != 20.0 || f["Escalation"] != "todev" || f["owner"] != "" {
		t.Fatalf("created: %v", f)
	}
	if rq, _ := f["requestors"].([]any); len(rq) != 1 || rq[0] != "alice@example.com" {
		t.Fatalf("requestors: %v", f["requestors"])
	}
	if f["resolved"] != "" || f["due"] != "" { // RT's 1970 "unset" dates
		t.Fatalf("unset dates: %q %q", f["resolved"], f["due"])
	}
	if len(e.Comments) != 0 {
		t.Fatalf("the first message is the description, not a comment: %+v", e.Comments)
	}
	got, err := c.Update(ctx, e.ID, map[string]any{"status": "open", "owner": "root", "Engineering URL": "http://rm/issues/1", "due": "2030-01-31"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Fields["status"] != "open" || got.Fields["owner"] != "root" || got.Fields["Engineering URL"] != "http://rm/issues/1" || !strings.HasPrefix(fmt.Sprint(got.Fields["due"]), "2030-01-31") {
		t.Fatalf("updated: %v", got.Fields)
	}
	pub, err := c.AddComment(ctx, e.ID, connectors.Comment{Body: "We are on it"})
	if err != nil || pub.Private || pub.ID == "" {
		t.Fatalf("correspond: %+v %v", pub, err)
	}
	priv, err := c.AddComment(ctx, e.ID, connectors.Comment{Body: "internal: looks like the router", Private: true})
	if err != nil || !priv.Private {
		t.Fatalf("comment: %+v %v", priv, err)
	}
	read, err := c.Get(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Autoreplies and status records are not comments.
	if len(read.Comments) != 2 || read.Comments[0].ID != pub.ID || read.Comments[0].Private || read.Comments[1].ID != priv.ID || !read.Comments[1].Private {
		t.Fatalf("comments: %+v", read.Comments)
	}
	if read.Comments[0].Body != "We are on it" || read.Comments[0].Author != "root" {
		t.Fatalf("comment text: %+v", read.Comments[0])
	}
}

func TestWriteErrors(t *testing.T) {
	ctx := context.Background()
	c := open(t, nil)
	e, err := c.Create(ctx, map[string]any{"subject": "x"})
	if err != nil {
		t.Fatal(err)
	}
	for name, fields := range map[string]map[string]any{
		"unknown status": {"status": "teleported"},
		"unknown owner":  {"owner": "no-such-user"},
		"unknown field":  {"colour": "red"},
		"empty subject":  {"subject": ""},
		"bad priority":   {"priority": "high"},
		"bad due":        {"due": "tomorrow"},
	} {
		_, err := c.Update(ctx, e.ID, fields)
		if !errors.Is(err, connectors.ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
	got, _ := c.Get(ctx, e.ID)
	if got.Fields["status"] != "new" || got.Fields["owner"] != "" || got.Fields["subject"] != "x" {
		t.Fatalf("after refused writes: %v", got.Fields)
	}
	// A refused status beside a subject: RT saves the subject, and the
	// error names both as fields (the engine records them on the event).
	got, err = c.Update(ctx, e.ID, map[string]any{"subject": "x2", "status": "teleported"})
	p, ok := connectors.Partial(err)
	if !ok || !errors.Is(err, connectors.ErrInvalid) || fmt.Sprint(p.Applied) != "[subject]" || fmt.Sprint(p.Refused) != "[status]" || got.Fields["subject"] != "x2" {
		t.Fatalf("a partly refused update: %v (%#v), subject %v", err, p, got.Fields["subject"])
	}
	if _, err := c.Get(ctx, "999999"); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("missing ticket: %v", err)
	}
}

// TestChangesIgnoreOwnNoise: RT's own transactions (autoreply records, the
// new→open move on a reply) bump LastUpdated; the ticket is delivered again
// but with identical content except the status RT moved.
func TestChanges(t *testing.T) {
	ctx := context.Background()
	c := open(t, nil)
	var ids []string
	for i := 0; i < 4; i++ {
		e, err := c.Create(ctx, map[string]any{"subject": fmt.Sprintf("t%d", i), "requestors": []any{"bob@example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	got := map[string]connectors.Entity{}
	cur := ""
	poll := func() int {
		n := 0
		for i := 0; i < 10; i++ {
			p, err := c.Changes(ctx, cur, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Entities {
				got[e.ID] = e
				n++
			}
			if p.Cursor != "" {
				cur = p.Cursor
			}
			if !p.More {
				break
			}
		}
		return n
	}
	poll()
	for _, id := range ids {
		if _, ok := got[id]; !ok {
			t.Fatalf("ticket %s not delivered", id)
		}
	}
	if _, err := c.AddComment(ctx, ids[1], connectors.Comment{Body: "reply"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	poll()
	if got[ids[1]].Fields["status"] != "open" || len(got[ids[1]].Comments) != 1 {
		t.Fatalf("after reply: %v %+v", got[ids[1]].Fields["status"], got[ids[1]].Comments)
	}
	time.Sleep(pollWindowPassed)
	poll()
	if n := poll(); n != 0 {
		t.Fatalf("quiet poll delivered %d tickets", n)
	}
	// Deleted tickets come as deletions.
	if err := c.(connectors.Deleter).Delete(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	poll()
	if !got[ids[2]].Deleted {
		t.Fatalf("deleted ticket: %+v", got[ids[2]])
	}
}

const pollWindowPassed = 1100 * time.Millisecond

func TestCorrelation(t *testing.T) {
	ctx := context.Background()
	c := open(t, map[string]any{"correlation_field": "Duplex key"})
	cor := c.(connectors.Correlating)
	if _, ok, err := cor.FindCorrelated(ctx, "k'1"); ok || err != nil {
		t.Fatalf("before: %v %v", ok, err)
	}
	e, err := cor.CreateCorrelated(ctx, "k'1", map[string]any{"subject": "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cor.CreateCorrelated(ctx, "k'10", map[string]any{"subject": "d"}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := cor.FindCorrelated(ctx, "k'1")
	if err != nil || !ok || got.ID != e.ID {
		t.Fatalf("find: %s %v %v", got.ID, ok, err)
	}
}

// TestTokenMode: with an auth token (no session) the same calls work.
func TestTokenMode(t *testing.T) {
	u, k := server(t)
	raw, _ := json.Marshal(map[string]any{"url": u, "queue": newQueue(t, u, k)})
	c, err := rt.New(context.Background(), connectors.Config{Settings: raw, Secrets: map[string]string{"token": k}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Create(context.Background(), map[string]any{"subject": "via token"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Update(context.Background(), e.ID, map[string]any{"status": "open"}); err != nil || got.Fields["status"] != "open" {
		t.Fatalf("update: %v %v", err, got.Fields)
	}
}

// TestFindBy: a custom field is matched exactly (RT's "=" ignores case and
// "LIKE" would find substrings), resolved tickets count and deleted ones do
// not, quotes and backslashes in the value are only text, limit is
// honoured, and the entities are what Get reads.
func TestFindBy(t *testing.T) {
	ctx := context.Background()
	c := open(t, nil)
	f, ok := c.(connectors.Finder)
	if !ok {
		t.Fatal("rt connector is no connectors.Finder")
	}
	odd := `O'Brien "q" \ a|b' OR 'x' = 'x`
	mk := func(subject, esc string) string {
		t.Helper()
		e, err := c.Create(ctx, map[string]any{"subject": subject, "Escalation": esc})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	a, b := mk("dup", "T-5"), mk("dup", "T-5")
	mk("dup 2", "xT-5y")
	mk("other", "t-5")
	quoted := mk("quoted", odd)
	gone := mk("gone", "T-5")
	if _, err := c.Update(ctx, b, map[string]any{"status": "resolved"}); err != nil {
		t.Fatal(err)
	}
	if err := c.(connectors.Deleter).Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddComment(ctx, a, connectors.Comment{Body: "a reply"}); err != nil {
		t.Fatal(err)
	}
	ids := func(es []connectors.Entity) []string {
		out := []string{}
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	for _, tc := range []struct {
		field, value string
		limit        int
		want         []string
	}{
		{"Escalation", "T-5", 10, []string{a, b}},
		{"Escalation", "T-5", 1, []string{a}},
		{"Escalation", odd, 10, []string{quoted}},
		{"Escalation", "T-", 10, []string{}},
		{"Escalation", "nothing", 10, []string{}},
		{"subject", "dup", 10, []string{a, b}},
		{"subject", "DUP", 10, []string{}},
	} {
		got, err := f.FindBy(ctx, tc.field, tc.value, tc.limit)
		if err != nil {
			t.Fatalf("%s = %q: %v", tc.field, tc.value, err)
		}
		if fmt.Sprint(ids(got)) != fmt.Sprint(tc.want) {
			t.Errorf("%s = %q limit %d: got %v, want %v", tc.field, tc.value, tc.limit, ids(got), tc.want)
		}
	}
	got, err := f.FindBy(ctx, "Escalation", "T-5", 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("find: %v %v", ids(got), err)
	}
	for _, e := range got {
		want, err := c.Get(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(e, want) {
			t.Errorf("found %s differs from Get:\n%+v\n%+v", e.ID, e, want)
		}
	}
	if len(got[0].Comments) != 1 || got[1].Fields["status"] != "resolved" {
		t.Errorf("found entities: %+v", got)
	}
	for _, field := range []string{"status", "colour", "cf_Escalation"} {
		if _, err := f.FindBy(ctx, field, "x", 10); !errors.Is(err, connectors.ErrInvalid) {
			t.Errorf("FindBy %q: want ErrInvalid, got %v", field, err)
		}
	}
}

// countingTransport counts the requests a connector sends.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestQuietPollOneRequest: once a poll has taken a queue's changes, a quiet
// poll costs one request (the transaction search; deletions included) and
// delivers nothing, within the poll window and after it.
func TestQuietPollOneRequest(t *testing.T) {
	ctx := context.Background()
	u, k := server(t)
	tr := &countingTransport{}
	raw, _ := json.Marshal(map[string]any{"url": u, "queue": newQueue(t, u, k)})
	c, err := rt.New(ctx, connectors.Config{Name: "rt", Settings: raw, Secrets: secrets(k), Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ids []string
	for i := 0; i < 3; i++ {
		e, err := c.Create(ctx, map[string]any{"subject": fmt.Sprint("q", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	if err := c.(connectors.Deleter).Delete(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the last second closes
	cur := ""
	deleted := false
	for i := 0; i < 20; i++ {
		p, err := c.Changes(ctx, cur, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entities {
			deleted = deleted || (e.ID == ids[0] && e.Deleted)
		}
		if p.Cursor != "" {
			cur = p.Cursor
		}
		if !p.More {
			break
		}
	}
	if !deleted {
		t.Fatal("the deleted ticket did not come as a deletion")
	}
	for i := 0; i < 5; i++ {
		before := tr.n.Load()
		p, err := c.Changes(ctx, cur, 100)
		if err != nil {
			t.Fatal(err)
		}
		if n := tr.n.Load() - before; len(p.Entities) != 0 || n != 1 {
			t.Fatalf("quiet poll %d: %d tickets delivered, %d requests; want 0 and 1", i, len(p.Entities), n)
		}
		time.Sleep(time.Second)
	}
}

// TestHTMLMessages: a ticket whose message is HTML only (RT's rich-text
// editor, a mail client) is read as the text a reader sees: no style sheet
// or script, links with their address, lists with bullets or numbers.
func TestHTMLMessages(t *testing.T) {
	ctx := context.Background()
	u, k := server(t)
	queue := newQueue(t, u, k)
	raw, _ := json.Marshal(map[string]any{"url": u, "queue": queue})
	c, err := rt.New(ctx, connectors.Config{Name: "rt", Settings: raw, Secrets: secrets(k)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, name := range []string{"outlook", "ckeditor"} {
		in, err := os.ReadFile("../../internal/htmltext/testdata/" + name + ".html")
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile("../../internal/htmltext/testdata/" + name + ".txt")
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			ID string `json:"id"`
		}
		if err := admin(u, k).Do(ctx, "POST", "/ticket", map[string]any{"Queue": queue, "Subject": name,
			"Content": string(in), "ContentType": "text/html"}, &out); err != nil {
			t.Fatal(err)
		}
		e, err := c.Get(ctx, out.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(e.Fields["description"]); got != strings.TrimSpace(string(want)) {
			t.Errorf("%s as RT stored it:\n--- got\n%s\n--- want\n%s", name, got, want)
		}
	}
}
