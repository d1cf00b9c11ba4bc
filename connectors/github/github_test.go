package github_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/github"
)

const hookSecret = "It's a Secret to Everybody"

func open(t *testing.T, f *fake) connectors.Connector {
	t.Helper()
	c, err := openErr(f.srv.URL, f.owner, f.repo, token)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func openErr(u, owner, repo, tok string) (connectors.Connector, error) {
	raw, _ := json.Marshal(map[string]any{"url": u, "owner": owner, "repo": repo, "timeout_ms": 5000})
	return github.New(context.Background(), connectors.Config{Name: "gh", Settings: raw,
		Secrets: map[string]string{"token": tok, "webhook_secret": hookSecret}})
}

func list(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestConfig(t *testing.T) {
	f := newFake(t, "octocat", "Hello-World")
	for name, tc := range map[string]struct{ owner, repo, token string }{
		"no owner":        {"", "Hello-World", token},
		"no token":        {"octocat", "Hello-World", ""},
		"unknown repo":    {"octocat", "Nope", token},
		"bad credentials": {"octocat", "Hello-World", "ghp_wrong"},
	} {
		_, err := openErr(f.srv.URL, tc.owner, tc.repo, tc.token)
		if !errors.Is(err, connectors.ErrBadConfig) {
			t.Errorf("%s: want ErrBadConfig, got %v", name, err)
		}
	}
	if _, err := openErr("ftp://x", "octocat", "Hello-World", token); !errors.Is(err, connectors.ErrBadConfig) {
		t.Errorf("bad url: %v", err)
	}
	c := open(t, f)
	s, err := c.Describe(context.Background())
	if err != nil || s.EntityType != "issue" || !s.Comments {
		t.Fatalf("describe: %+v %v", s, err)
	}
	types := map[string]connectors.FieldType{}
	for _, fs := range s.Fields {
		types[fs.Name] = fs.Type
	}
	want := map[string]connectors.FieldType{"title": "string", "body": "string", "state": "string", "state_reason": "string",
		"labels": "list", "assignees": "list", "milestone": "string", "author": "string", "created_at": "time", "closed_at": "time"}
	if !reflect.DeepEqual(types, want) {
		t.Fatalf("schema %v, want %v", types, want)
	}
}

// TestGetDocumentedIssue reads the documented issue and comment and checks
// the flat fields; the documented list item itself is a pull request, which
// is not an issue here.
func TestGetDocumentedIssue(t *testing.T) {
	ctx := context.Background()
	f := newFake(t, "octocat", "Hello-World")
	c := open(t, f)
	n := f.add("Found a bug", f.now)
	f.mu.Lock()
	cm := clone(f.commentTpl)
	f.comments[n] = []map[string]any{cm}
	f.issues[n]["comments"] = 1.0
	f.mu.Unlock()

	e, err := c.Get(ctx, strconv.FormatInt(n, 10))
	if err != nil {
		t.Fatal(err)
	}
	fl := e.Fields
	if fl["title"] != "Found a bug" || fl["body"] != "I'm having a problem with this." || fl["state"] != "open" || fl["state_reason"] != "" ||
		fl["milestone"] != "v1.0" || fl["author"] != "octocat" || fl["closed_at"] != nil {
		t.Fatalf("fields: %v", fl)
	}
	if !reflect.DeepEqual(list(fl["labels"]), []string{"bug"}) || !reflect.DeepEqual(list(fl["assignees"]), []string{"octocat"}) {
		t.Fatalf("labels/assignees: %v %v", fl["labels"], fl["assignees"])
	}
	if e.Key != "#"+e.ID || !strings.HasSuffix(e.URL, "/issues/"+e.ID) || e.UpdatedAt.IsZero() {
		t.Fatalf("id/key/url: %+v", e)
	}
	if len(e.Comments) != 1 || e.Comments[0].ID != "1" || e.Comments[0].Body != "Me too" || e.Comments[0].Author != "octocat" ||
		!e.Comments[0].CreatedAt.Equal(time.Date(2011, 4, 14, 16, 0, 49, 0, time.UTC)) {
		t.Fatalf("comments: %+v", e.Comments)
	}

	pr := f.addPR(f.now)
	if _, err := c.Get(ctx, strconv.FormatInt(pr, 10)); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("pull request read as an issue: %v", err)
	}
	_, err = c.Get(ctx, "999")
	if !errors.Is(err, connectors.ErrNotFound) || !strings.Contains(err.Error(), "Not Found") {
		t.Fatalf("missing issue: %v", err)
	}
	if _, err := c.Get(ctx, "abc"); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("bad id: %v", err)
	}
}

// drain polls until no page is ready, returning the entities in order.
func drain(t *testing.T, c connectors.Connector, cur string, limit int) ([]connectors.Entity, string) {
	t.Helper()
	var all []connectors.Entity
	for i := 0; i < 20; i++ {
		p, err := c.Changes(context.Background(), cur, limit)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Entities...)
		if p.Cursor != "" {
			cur = p.Cursor
		}
		if !p.More {
			return all, cur
		}
	}
	t.Fatal("Changes never ran out of pages")
	return nil, ""
}

func titles(es []connectors.Entity) []string {
	var out []string
	for _, e := range es {
		out = append(out, "#"+e.ID+" "+e.Fields["title"].(string))
	}
	return out
}

// TestChangesPagination: the server pages by 2 and links the next page at
// /repositories/{id}/issues as GitHub does; every issue comes once, in
// update order, pull requests never, and comments come with their issue.
func TestChangesPagination(t *testing.T) {
	ctx := context.Background()
	f := newFake(t, "octocat", "Hello-World")
	f.pageSize = 2
	c := open(t, f)
	t0 := f.now.Add(-time.Hour)
	var want []string
	for i := 0; i < 5; i++ {
		if i == 2 {
			f.addPR(t0.Add(time.Duration(i) * time.Minute))
		}
		n := f.add(fmt.Sprintf("issue %d", i), t0.Add(time.Duration(i)*time.Minute))
		want = append(want, fmt.Sprintf("#%d issue %d", n, i))
	}
	if _, err := c.AddComment(ctx, "1", connectors.Comment{Body: "first!"}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.comments[1] = append(f.comments[1], clone(f.commentTpl), clone(f.commentTpl)) // three comments: two pages
	f.issues[1]["comments"] = 3.0
	f.mu.Unlock()
	f.requests = nil

	got, cur := drain(t, c, "", 100)
	// Issue 1 was commented on "now", so it comes last.
	wantOrder := append(append([]string(nil), want[1:]...), want[0])
	if !reflect.DeepEqual(titles(got), wantOrder) {
		t.Fatalf("got %v, want %v", titles(got), wantOrder)
	}
	last := got[len(got)-1]
	if len(last.Comments) != 3 || last.Comments[0].Body != "first!" || last.Comments[2].Body != "Me too" {
		t.Fatalf("comments of #1 across two pages: %+v", last.Comments)
	}
	log := f.requestLog()
	first, _ := url.Parse(strings.TrimPrefix(log[0], "GET "))
	if first.Path != "/repos/octocat/Hello-World/issues" || first.Query().Encode() != "direction=asc&per_page=100&sort=updated&state=all" {
		t.Fatalf("first list request: %s", log[0])
	}
	var followed []string
	for _, r := range log {
		if strings.Contains(r, "&page=") || strings.Contains(r, "?page=") {
			followed = append(followed, r)
		}
	}
	want2 := []string{
		fmt.Sprintf("GET /repositories/%d/issues?direction=asc&page=2&per_page=100&sort=updated&state=all", repoID),
		fmt.Sprintf("GET /repositories/%d/issues?direction=asc&page=3&per_page=100&sort=updated&state=all", repoID),
		"GET /repos/octocat/Hello-World/issues/1/comments?page=2&per_page=100",
	}
	if !reflect.DeepEqual(followed, want2) { // 6 items by 2 (one a PR), 3 comments by 2
		t.Fatalf("pages followed by Link: %v, want %v", followed, want2)
	}

	// Small limits: ties across page ends, nothing lost or doubled.
	var seen []string
	cur2 := ""
	for i := 0; i < 10; i++ {
		p, err := c.Changes(ctx, cur2, 2)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, titles(p.Entities)...)
		if p.Cursor != "" {
			cur2 = p.Cursor
		}
		if !p.More {
			break
		}
	}
	if !reflect.DeepEqual(seen, wantOrder) {
		t.Fatalf("limit 2: got %v, want %v", seen, wantOrder)
	}
	// #1 was commented in the server's current second: it is read again
	// once that second is over, then polls are quiet and ask with since.
	f.setNow(f.now.Add(5 * time.Second))
	again, cur := drain(t, c, cur, 100)
	if len(again) != 1 || again[0].ID != "1" {
		t.Fatalf("after the second closed: %v", titles(again))
	}
	p, err := c.Changes(ctx, cur, 100)
	if err != nil || len(p.Entities) != 0 {
		t.Fatalf("after drain: %v %v", titles(p.Entities), err)
	}
	log = f.requestLog()
	lastReq, _ := url.Parse(strings.TrimPrefix(log[len(log)-1], "GET "))
	if lastReq.Query().Get("since") == "" {
		t.Fatalf("poll with a cursor sent no since: %s", log[len(log)-1])
	}
}

// TestSameSecond: GitHub stamps updated_at to the second. Issues sharing a
// second are all delivered across small pages, and an edit within the
// second a poll already saw (the server's clock still in it) is delivered
// by a later poll; once the second is over, polls are quiet.
func TestSameSecond(t *testing.T) {
	f := newFake(t, "octocat", "Hello-World")
	c := open(t, f)
	t0 := f.now
	a, b, d := f.add("a", t0), f.add("b", t0), f.add("c", t0)

	// The server's second t0 is still open: those issues are not recorded
	// as taken, and a page of only them does not say More (no busy loop).
	p, err := c.Changes(context.Background(), "", 2)
	if err != nil || len(p.Entities) != 2 || p.More {
		t.Fatalf("poll in the open second: %v more=%v %v", titles(p.Entities), p.More, err)
	}
	cur := p.Cursor
	f.edit(a, "title", "a edited in the same second")
	f.setNow(t0.Add(1 * time.Second))
	got, cur := drain(t, c, cur, 2)
	if len(got) != 3 {
		t.Fatalf("after the second closed: %v", titles(got))
	}
	found := false
	for _, e := range got {
		found = found || (e.ID == strconv.FormatInt(a, 10) && e.Fields["title"] == "a edited in the same second")
	}
	if !found {
		t.Fatalf("same-second edit lost: %v", titles(got))
	}

	// A second already closed when polled: ties across pages, once each.
	f2 := newFake(t, "octocat", "Hello-World")
	c2 := open(t, f2)
	ts := f2.now.Add(-10 * time.Second)
	for i := 0; i < 5; i++ {
		f2.add(fmt.Sprintf("tie %d", i), ts)
	}
	got, cur2 := drain(t, c2, "", 2)
	if len(got) != 5 {
		t.Fatalf("ties across pages: %v", titles(got))
	}
	p, err = c2.Changes(context.Background(), cur2, 2)
	if err != nil || len(p.Entities) != 0 {
		t.Fatalf("quiet poll after ties: %v %v", titles(p.Entities), err)
	}

	f.setNow(t0.Add(5 * time.Second))
	_, cur = drain(t, c, cur, 2)
	p, err = c.Changes(context.Background(), cur, 2)
	if err != nil || len(p.Entities) != 0 {
		t.Fatalf("quiet poll: %v %v", titles(p.Entities), err)
	}
	_, _ = b, d
}

// TestETag: a poll that found nothing new remembers the ETag; the next poll
// with the same cursor sends If-None-Match and takes GitHub's 304 as
// "nothing new"; a change makes GitHub answer 200 again and is delivered.
func TestETag(t *testing.T) {
	f := newFake(t, "octocat", "Hello-World")
	c := open(t, f)
	n := f.add("x", f.now.Add(-time.Minute))
	_, cur := drain(t, c, "", 10)
	f.setNow(f.now.Add(10 * time.Second))

	p, err := c.Changes(context.Background(), cur, 10) // quiet: 200, ETag remembered
	if err != nil || len(p.Entities) != 0 || f.notModified != 0 {
		t.Fatalf("quiet poll: %v %v (304s: %d)", titles(p.Entities), err, f.notModified)
	}
	before := len(f.requestLog())
	p, err = c.Changes(context.Background(), cur, 10)
	if err != nil || len(p.Entities) != 0 || p.Cursor != "" || p.More {
		t.Fatalf("304 poll: %+v %v", p, err)
	}
	if f.notModified != 1 || len(f.requestLog()) != before+1 {
		t.Fatalf("want one conditional request answered 304, got %d 304s, %d requests", f.notModified, len(f.requestLog())-before)
	}

	f.edit(n, "title", "x changed")
	p, err = c.Changes(context.Background(), cur, 10)
	if err != nil || len(p.Entities) != 1 || p.Entities[0].Fields["title"] != "x changed" {
		t.Fatalf("change after 304: %v %v", titles(p.Entities), err)
	}
	if f.notModified != 1 {
		t.Fatalf("a changed answer counted as 304")
	}
	// A new cursor starts without If-None-Match (the ETag is per cursor).
	f.mu.Lock()
	f.requests = nil
	f.mu.Unlock()
	var sawINM bool
	f.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		sawINM = sawINM || r.Header.Get("If-None-Match") != ""
		return false
	}
	if _, err := c.Changes(context.Background(), p.Cursor, 10); err != nil {
		t.Fatal(err)
	}
	if sawINM {
		t.Fatal("If-None-Match sent for a cursor whose answer was never seen")
	}
}

func TestWriteRoundTrip(t *testing.T) {
	ctx := context.Background()
	f := newFake(t, "octocat", "Hello-World")
	c := open(t, f)
	e, err := c.Create(ctx, map[string]any{"title": "Printer on fire", "body": "smoke\nline 2", "labels": []any{"bug", "ui"},
		"assignees": []any{"octocat"}, "milestone": "V1.0", "author": "ignored", "state": "open"})
	if err != nil {
		t.Fatal(err)
	}
	sent := f.lastBody()
	if sent["milestone"] != 1.0 || !reflect.DeepEqual(sent["labels"], []any{"bug", "ui"}) || !reflect.DeepEqual(sent["assignees"], []any{"octocat"}) ||
		sent["title"] != "Printer on fire" || sent["body"] != "smoke\nline 2" {
		t.Fatalf("POST body: %v", sent)
	}
	if _, ok := sent["author"]; ok {
		t.Fatalf("read-only field sent: %v", sent)
	}
	fl := e.Fields
	if fl["title"] != "Printer on fire" || fl["milestone"] != "v1.0" || fl["state"] != "open" || !reflect.DeepEqual(list(fl["labels"]), []string{"bug", "ui"}) {
		t.Fatalf("created: %v", fl)
	}

	got, err := c.Update(ctx, e.ID, map[string]any{"state": "closed", "state_reason": "not_planned", "milestone": "v2.0", "labels": []any{}})
	if err != nil {
		t.Fatal(err)
	}
	sent = f.lastBody()
	if sent["state"] != "closed" || sent["state_reason"] != "not_planned" || sent["milestone"] != 2.0 || !reflect.DeepEqual(sent["labels"], []any{}) || sent["title"] != nil {
		t.Fatalf("PATCH body: %v", sent)
	}
	fl = got.Fields
	if fl["state"] != "closed" || fl["state_reason"] != "not_planned" || fl["closed_at"] == nil || fl["milestone"] != "v2.0" || len(fl["labels"].([]any)) != 0 || fl["title"] != "Printer on fire" {
		t.Fatalf("updated: %v", fl)
	}
	got, err = c.Update(ctx, e.ID, map[string]any{"milestone": "", "state": "open"})
	if err != nil || got.Fields["milestone"] != "" || got.Fields["state_reason"] != "reopened" {
		t.Fatalf("clear milestone/reopen: %v %v", got.Fields, err)
	}
	if v, ok := f.lastBody()["milestone"]; !ok || v != nil {
		t.Fatalf("milestone \"\" must be sent as null: %v", f.lastBody())
	}

	cm, err := c.AddComment(ctx, e.ID, connectors.Comment{Body: "on it"})
	if err != nil || cm.ID == "" || cm.Body != "on it" || cm.Author != "octocat" {
		t.Fatalf("comment: %+v %v", cm, err)
	}
	if f.lastBody()["body"] != "on it" || len(f.lastBody()) != 1 {
		t.Fatalf("comment body sent: %v", f.lastBody())
	}
	read, err := c.Get(ctx, e.ID)
	if err != nil || len(read.Comments) != 1 || read.Comments[0].ID != cm.ID {
		t.Fatalf("read back comments: %+v %v", read.Comments, err)
	}

	// Created closed: GitHub opens every new issue; a second request closes it.
	e2, err := c.Create(ctx, map[string]any{"title": "done already", "state": "closed"})
	if err != nil || e2.Fields["state"] != "closed" {
		t.Fatalf("create closed: %v %v", e2.Fields, err)
	}
}

func TestWriteErrors(t *testing.T) {
	ctx := context.Background()
	f := newFake(t, "octocat", "Hello-World")
	c := open(t, f)
	e, err := c.Create(ctx, map[string]any{"title": "x"})
	if err != nil {
		t.Fatal(err)
	}
	before := len(f.requestLog())
	for name, fields := range map[string]map[string]any{
		"unknown field":     {"colour": "red"},
		"empty title":       {"title": " "},
		"bad state":         {"state": "resolved"},
		"bad state_reason":  {"state_reason": "wontfix"},
		"labels not a list": {"labels": 3.0},
	} {
		if _, err := c.Update(ctx, e.ID, fields); !errors.Is(err, connectors.ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
	if n := len(f.requestLog()); n != before {
		t.Fatalf("refused fields were sent: %v", f.requestLog()[before:])
	}
	// Unknown milestone: the list is read again, then the known titles are named.
	_, err = c.Update(ctx, e.ID, map[string]any{"milestone": "v9"})
	if !errors.Is(err, connectors.ErrInvalid) || !strings.Contains(err.Error(), `"v1.0"`) || !strings.Contains(err.Error(), `"v2.0"`) {
		t.Fatalf("unknown milestone: %v", err)
	}
	// GitHub drops an assignee it cannot assign without an error: caught by the read-back.
	_, err = c.Update(ctx, e.ID, map[string]any{"assignees": []any{"octocat", "stranger"}})
	if !errors.Is(err, connectors.ErrInvalid) || !strings.Contains(err.Error(), "stranger") {
		t.Fatalf("dropped assignee: %v", err)
	}
	// GitHub's 422: the error carries its message.
	f.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == "POST" {
			f.writeFile(w, 422, "validation-failed.json")
			return true
		}
		return false
	}
	_, err = c.Create(ctx, map[string]any{"title": "refused"})
	if !errors.Is(err, connectors.ErrInvalid) || !strings.Contains(err.Error(), "Validation Failed: Issue.title missing_field") {
		t.Fatalf("422: %v", err)
	}
	f.intercept = nil
	if _, err := c.Update(ctx, "4242", map[string]any{"title": "y"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	if _, err := c.AddComment(ctx, "4242", connectors.Comment{Body: "y"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("comment on missing: %v", err)
	}
}

// rateFake answers every request after the connector opened with status,
// headers and the file body.
func rateFake(t *testing.T, status int, file string, hdr map[string]string) (*fake, connectors.Connector) {
	f := newFake(t, "octocat", "Hello-World")
	c := open(t, f)
	f.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		f.writeFile(w, status, file)
		return true
	}
	return f, c
}

func TestRateLimits(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC) // the fakes' clock
	reset := strconv.FormatInt(now.Add(90*time.Second).Unix(), 10)
	for name, tc := range map[string]struct {
		status int
		file   string
		hdr    map[string]string
		want   time.Duration
	}{
		"primary 403":             {403, "rate-limit-exceeded.json", map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, 90 * time.Second},
		"primary 429":             {429, "rate-limit-exceeded.json", map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, 90 * time.Second},
		"secondary retry-after":   {403, "secondary-rate-limit.json", map[string]string{"Retry-After": "30"}, 30 * time.Second},
		"secondary without hints": {403, "secondary-rate-limit.json", nil, time.Minute},
		"429 without hints":       {429, "secondary-rate-limit.json", nil, time.Minute},
	} {
		f, c := rateFake(t, tc.status, tc.file, tc.hdr)
		_, err := c.Get(ctx, "1")
		var ra *connectors.RetryAfterError
		if !errors.As(err, &ra) || ra.After != tc.want || !errors.Is(err, connectors.ErrUnavailable) || errors.Is(err, connectors.ErrBadConfig) {
			t.Errorf("%s: want RetryAfterError after %v (ErrUnavailable, not ErrBadConfig), got %v", name, tc.want, err)
			continue
		}
		if !strings.Contains(err.Error(), "rate limit") {
			t.Errorf("%s: GitHub's message lost: %v", name, err)
		}
		// A used-up primary limit: nothing is sent before the reset.
		n := len(f.requestLog())
		_, err = c.Changes(ctx, "", 10)
		sent := len(f.requestLog()) - n
		if tc.hdr["X-RateLimit-Remaining"] == "0" {
			if !errors.As(err, &ra) || ra.After <= 80*time.Second || ra.After > 90*time.Second || sent != 0 {
				t.Errorf("%s: after the limit: %v, %d requests sent", name, err, sent)
			}
		} else if sent != 1 {
			t.Errorf("%s: a secondary limit blocked the next request (%d sent)", name, sent)
		}
	}
	// A 403 that is not a rate limit is a permission problem.
	_, c := rateFake(t, 403, "not-found.json", map[string]string{"X-RateLimit-Remaining": "4000"})
	_, err := c.Get(ctx, "1")
	var ra *connectors.RetryAfterError
	if errors.As(err, &ra) || !errors.Is(err, connectors.ErrBadConfig) {
		t.Fatalf("403 without a rate limit: %v", err)
	}
	// A successful answer that used the last request: the next one waits.
	f2 := newFake(t, "octocat", "Hello-World")
	c2 := open(t, f2)
	f2.add("x", f2.now)
	f2.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", reset)
		return false
	}
	if _, err := c2.Get(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	n := len(f2.requestLog())
	if _, err := c2.Get(ctx, "1"); !errors.As(err, &ra) || len(f2.requestLog()) != n {
		t.Fatalf("after the last request of the hour: %v (%d sent)", err, len(f2.requestLog())-n)
	}
}

func sign(body []byte) string {
	m := hmac.New(sha256.New, []byte(hookSecret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func hdr(event, sig, delivery string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", delivery)
	if sig != "" {
		h.Set("X-Hub-Signature-256", sig)
	}
	return h
}

func TestWebhook(t *testing.T) {
	f := newFake(t, "Codertocat", "Hello-World") // the repository of the documented payloads
	c := open(t, f).(connectors.Hooked)
	opened := load(t, "webhook-issues-opened.json")
	commented := load(t, "webhook-issue-comment-created.json")
	ping := load(t, "webhook-ping.json")

	// GitHub's documented test vector ("Validating webhook deliveries"): the
	// signature is accepted, the body ("Hello, World!") is no JSON.
	vec := hdr("issues", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "v")
	if _, err := c.Webhook(vec, []byte("Hello, World!")); !errors.Is(err, connectors.ErrInvalid) || errors.Is(err, connectors.ErrSignature) {
		t.Fatalf("documented vector: %v", err)
	}

	for name, tc := range map[string]struct {
		event string
		body  []byte
		ids   []string
	}{
		"issues opened":         {"issues", opened, []string{"1"}},
		"issue_comment created": {"issue_comment", commented, []string{"1"}},
		"ping":                  {"ping", ping, nil},
		"comment on a PR":       {"issue_comment", withPR(t, commented), nil},
		"issues event of a PR":  {"issues", withPR(t, opened), nil},
		"other event":           {"star", opened, nil},
	} {
		d, err := c.Webhook(hdr(tc.event, sign(tc.body), "72d3162e-cc78-11e3-81ab-4c9367dc0958"), tc.body)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if d.ID != "72d3162e-cc78-11e3-81ab-4c9367dc0958" || !reflect.DeepEqual(d.EntityIDs, tc.ids) {
			t.Errorf("%s: got %+v, want ids %v", name, d, tc.ids)
		}
	}

	tampered := append([]byte(nil), opened...)
	tampered[len(tampered)-3] = ' '
	for name, h := range map[string]http.Header{
		"missing":         hdr("issues", "", "d"),
		"wrong":           hdr("issues", sign(tampered), "d"),
		"sha1 only":       hdr("issues", "sha1="+strings.Repeat("0", 40), "d"),
		"not hex":         hdr("issues", "sha256=zz", "d"),
		"other secret":    hdr("issues", "sha256="+hex.EncodeToString(hmac.New(sha256.New, []byte("x")).Sum(nil)), "d"),
		"signed tampered": hdr("issues", sign(opened), "d"),
	} {
		body := opened
		if name == "signed tampered" {
			body = tampered
		}
		if _, err := c.Webhook(h, body); !errors.Is(err, connectors.ErrSignature) {
			t.Errorf("%s signature: want ErrSignature, got %v", name, err)
		}
	}

	bad := []byte(`{"action": "opened", "issue": {"number": 1`)
	if _, err := c.Webhook(hdr("issues", sign(bad), "d"), bad); !errors.Is(err, connectors.ErrInvalid) {
		t.Fatalf("malformed JSON: %v", err)
	}
	noIssue := []byte(`{"action": "opened"}`)
	if _, err := c.Webhook(hdr("issues", sign(noIssue), "d"), noIssue); !errors.Is(err, connectors.ErrInvalid) {
		t.Fatalf("issues event without issue: %v", err)
	}

	// Form-encoded deliveries carry the JSON in "payload"; the signature covers the raw body.
	form := []byte(url.Values{"payload": {string(opened)}}.Encode())
	h := hdr("issues", sign(form), "f")
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	if d, err := c.Webhook(h, form); err != nil || !reflect.DeepEqual(d.EntityIDs, []string{"1"}) {
		t.Fatalf("form delivery: %+v %v", d, err)
	}

	// A connector for another repository takes nothing from this one's events.
	other := open(t, newFake(t, "octocat", "Hello-World")).(connectors.Hooked)
	if d, err := other.Webhook(hdr("issues", sign(opened), "o"), opened); err != nil || len(d.EntityIDs) != 0 {
		t.Fatalf("other repository: %+v %v", d, err)
	}
	// Without a configured secret every delivery is refused.
	raw, _ := json.Marshal(map[string]any{"url": f.srv.URL, "owner": "Codertocat", "repo": "Hello-World"})
	nosecret, err := github.New(context.Background(), connectors.Config{Settings: raw, Secrets: map[string]string{"token": token}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nosecret.(connectors.Hooked).Webhook(hdr("issues", sign(opened), "n"), opened); !errors.Is(err, connectors.ErrSignature) {
		t.Fatalf("no secret: %v", err)
	}
}

// withPR adds the pull_request key GitHub puts on an issue that is a pull request.
func withPR(t *testing.T, body []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	m["issue"].(map[string]any)["pull_request"] = map[string]any{"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"}
	b, _ := json.Marshal(m)
	return b
}

func TestCorrelation(t *testing.T) {
	ctx := context.Background()
	f := newFake(t, "octocat", "Hello-World")
	c := open(t, f)
	cor := c.(connectors.Correlating)
	if _, ok, err := cor.FindCorrelated(ctx, "k-1"); ok || err != nil {
		t.Fatalf("before create: %v %v", ok, err)
	}
	e, err := cor.CreateCorrelated(ctx, "k-1", map[string]any{"title": "correlated", "body": "text"})
	if err != nil {
		t.Fatal(err)
	}
	if sent := f.lastBody()["body"]; sent != "text\n\n<!-- duplex:key=k-1 -->" {
		t.Fatalf("body sent: %q", sent)
	}
	if e.Fields["body"] != "text" {
		t.Fatalf("marker not stripped: %q", e.Fields["body"])
	}
	if _, err := cor.CreateCorrelated(ctx, "k-10", map[string]any{"title": "other"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		f.add(fmt.Sprintf("newer %d", i), f.now)
	}
	got, ok, err := cor.FindCorrelated(ctx, "k-1")
	if err != nil || !ok || got.ID != e.ID || got.Fields["body"] != "text" {
		t.Fatalf("find k-1: %v %v %v %v", got.ID, ok, err, got.Fields["body"])
	}
	if _, ok, _ := cor.FindCorrelated(ctx, "k-2"); ok {
		t.Fatal("found a key never used")
	}
	if _, err := cor.CreateCorrelated(ctx, "a-->b", map[string]any{"title": "x"}); !errors.Is(err, connectors.ErrInvalid) {
		t.Fatalf("key breaking the comment: %v", err)
	}
}

// TestPrivateCommentRefused: an internal note from another system must not
// become a public GitHub comment.
func TestPrivateCommentRefused(t *testing.T) {
	f := newFake(t, "octocat", "Hello-World")
	c := open(t, f)
	_, err := c.AddComment(context.Background(), "1", connectors.Comment{Body: "internal", Private: true})
	if !errors.Is(err, connectors.ErrInvalid) {
		t.Fatalf("want ErrInvalid, got %v", err)
	}
}
