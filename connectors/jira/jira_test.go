package jira

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

func open(t *testing.T, f *fakeJira, settings map[string]any) *conn {
	t.Helper()
	if settings == nil {
		settings = map[string]any{}
	}
	settings["url"] = f.srv.URL
	if settings["project"] == nil {
		settings["project"] = "EX"
	}
	raw, _ := json.Marshal(settings)
	c, err := New(context.Background(), connectors.Config{Name: "jira", Settings: raw,
		Secrets: map[string]string{"email": testEmail, "api_token": testToken, "webhook_secret": "It's a Secret to Everybody"}})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*conn)
}

func TestNewChecksCredentialsAndProject(t *testing.T) {
	f := newFake(t)
	c := open(t, f, nil)
	if got := f.requests("GET", api+"/myself"); len(got) != 1 {
		t.Fatalf("myself requests: %+v", got)
	}
	if c.loc.String() != "Australia/Sydney" {
		t.Fatalf("time zone from /myself: %v", c.loc)
	}
	ctx := context.Background()
	for name, tc := range map[string]struct {
		settings string
		secrets  map[string]string
	}{
		"wrong token":     {fmt.Sprintf(`{"url":%q,"project":"EX"}`, f.srv.URL), map[string]string{"email": testEmail, "api_token": "nope"}},
		"missing project": {fmt.Sprintf(`{"url":%q,"project":"NOPE"}`, f.srv.URL), map[string]string{"email": testEmail, "api_token": testToken}},
		"no project":      {fmt.Sprintf(`{"url":%q}`, f.srv.URL), map[string]string{"email": testEmail, "api_token": testToken}},
		"no token":        {fmt.Sprintf(`{"url":%q,"project":"EX"}`, f.srv.URL), map[string]string{"email": testEmail}},
		"bad url":         {`{"url":"example.atlassian.net","project":"EX"}`, map[string]string{"email": testEmail, "api_token": testToken}},
		"bad json":        {`{"url":`, map[string]string{"email": testEmail, "api_token": testToken}},
	} {
		_, err := New(ctx, connectors.Config{Settings: json.RawMessage(tc.settings), Secrets: tc.secrets})
		if !errors.Is(err, connectors.ErrBadConfig) {
			t.Errorf("%s: want ErrBadConfig, got %v", name, err)
		}
	}
}

func TestGetReadsDocumentedIssue(t *testing.T) {
	f := newFake(t)
	c := open(t, f, nil)
	e, err := c.Get(context.Background(), "EX-1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"summary": "Main order flow broken", "description": "Main order flow broken", "status": "To Do",
		"priority": "Medium", "issuetype": "Task", "resolution": "", "project": "EX",
		"labels": []any{"checkout"}, "assignee": "Mia Krystof", "reporter": "Emma Richards",
		"Change reason": "Bug fix", "Approvers": []any{"Emma Richards"}, "Story points": 3.0,
		"Release notes": "I did some work here.", "Duplex key": nil,
		"created": "2021-01-17T12:34:00Z", "updated": "2021-01-18T23:45:00Z",
	}
	for k, v := range want {
		if !reflect.DeepEqual(e.Fields[k], v) {
			t.Errorf("field %s = %#v, want %#v", k, e.Fields[k], v)
		}
	}
	if e.ID != "EX-1" || e.URL != f.srv.URL+"/browse/EX-1" || !e.UpdatedAt.Equal(time.Date(2021, 1, 18, 23, 45, 0, 0, time.UTC)) {
		t.Fatalf("id/url/updated: %s %s %v", e.ID, e.URL, e.UpdatedAt)
	}
	// Three documented comments, read over two pages: role visibility and
	// jsdPublic:false are private, jsdPublic:true is not.
	if len(e.Comments) != 3 {
		t.Fatalf("comments: %+v", e.Comments)
	}
	if got := f.requests("GET", api+"/issue/EX-1/comment"); len(got) != 2 || !strings.Contains(got[1].Query, "startAt=2") {
		t.Fatalf("comment paging: %+v", got)
	}
	c0, c1, c2 := e.Comments[0], e.Comments[1], e.Comments[2]
	if c0.ID != "10000" || !c0.Private || c0.Author != "Mia Krystof" || !strings.HasPrefix(c0.Body, "Lorem ipsum") {
		t.Errorf("comment 0: %+v", c0)
	}
	if c1.Private || c1.Body != "Thanks, **looking now**" || c1.Author != "Emma Richards" {
		t.Errorf("comment 1: %+v", c1)
	}
	if !c2.Private || c2.ID != "10002" || !c2.CreatedAt.Equal(time.Date(2021, 1, 18, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("comment 2: %+v", c2)
	}
}

func TestCreateUpdateCommentRoundTrip(t *testing.T) {
	f := newFake(t)
	c := open(t, f, map[string]any{"issue_type": "Bug", "private_comment_role": "Administrators"})
	ctx := context.Background()
	desc := "Checkout fails:\n\n- on Safari\n- on Firefox\n  - only private mode\n\n```go\nfmt.Println(\"x\")\n\nreturn\n```\n\nSee logs\nattached below."
	e, err := c.Create(ctx, map[string]any{"summary": "Pay button dead", "description": desc, "priority": "High",
		"labels": []any{"todev", "web"}, "assignee": "Emma Richards", "Story points": 5.0, "Change reason": "Refactor",
		"Approvers": []any{"Mia Krystof"}, "status": "In Progress", "created": "ignored: read-only"})
	if err != nil {
		t.Fatal(err)
	}
	posts := f.requests("POST", api+"/issue")
	var create record
	for _, r := range posts {
		if r.Path == api+"/issue" {
			create = r
		}
	}
	fl, _ := create.Body["fields"].(map[string]any)
	if fl == nil {
		t.Fatalf("create request: %+v", posts)
	}
	if !reflect.DeepEqual(fl["project"], map[string]any{"key": "EX"}) || !reflect.DeepEqual(fl["issuetype"], map[string]any{"name": "Bug"}) ||
		!reflect.DeepEqual(fl["priority"], map[string]any{"name": "High"}) || !reflect.DeepEqual(fl["assignee"], map[string]any{"accountId": "5b10ac8d82e05b22cc7d4ef5"}) ||
		fl["customfield_10060"] != 5.0 || !reflect.DeepEqual(fl["customfield_10001"], map[string]any{"value": "Refactor"}) ||
		!reflect.DeepEqual(fl["customfield_10000"], []any{map[string]any{"accountId": "5b10a2844c20165700ede21g"}}) {
		t.Fatalf("create fields: %v", fl)
	}
	if _, ok := fl["status"]; ok {
		t.Fatalf("status sent as a field: %v", fl)
	}
	if _, ok := fl["created"]; ok {
		t.Fatalf("read-only field sent: %v", fl)
	}
	// The description went as ADF: paragraph, bullet list with a nested
	// list, code block with its language, paragraph with a hard break.
	doc := fl["description"].(map[string]any)
	var types []string
	for _, n := range doc["content"].([]any) {
		types = append(types, n.(map[string]any)["type"].(string))
	}
	if doc["type"] != "doc" || doc["version"] != 1.0 || strings.Join(types, ",") != "paragraph,bulletList,codeBlock,paragraph" {
		t.Fatalf("description ADF: %v", types)
	}
	code := doc["content"].([]any)[2].(map[string]any)
	if code["attrs"].(map[string]any)["language"] != "go" {
		t.Fatalf("code block: %v", code)
	}
	// Status through the transition reaching "In Progress" (id 11).
	tr := f.requests("POST", api+"/issue/"+e.ID+"/transitions")
	if len(tr) != 1 || !reflect.DeepEqual(tr[0].Body, map[string]any{"transition": map[string]any{"id": "11"}}) {
		t.Fatalf("transition: %+v", tr)
	}
	// Read back: what was written reads back equal.
	for k, v := range map[string]any{"summary": "Pay button dead", "description": desc, "priority": "High", "status": "In Progress",
		"labels": []any{"todev", "web"}, "assignee": "Emma Richards", "Story points": 5.0, "Change reason": "Refactor",
		"Approvers": []any{"Mia Krystof"}, "issuetype": "Bug", "reporter": "Mia Krystof"} {
		if !reflect.DeepEqual(e.Fields[k], v) {
			t.Errorf("created %s = %#v, want %#v", k, e.Fields[k], v)
		}
	}

	f.reset()
	f.tick(time.Minute)
	got, err := c.Update(ctx, e.ID, map[string]any{"summary": "Pay button dead on Safari", "labels": []any{"web"}, "Release notes": "Fixed.\nReally."})
	if err != nil {
		t.Fatal(err)
	}
	puts := f.requests("PUT", api+"/issue/"+e.ID)
	if len(puts) != 1 || len(puts[0].Body["fields"].(map[string]any)) != 3 {
		t.Fatalf("update sends only the given fields: %+v", puts)
	}
	if got.Fields["summary"] != "Pay button dead on Safari" || !reflect.DeepEqual(got.Fields["labels"], []any{"web"}) ||
		got.Fields["Release notes"] != "Fixed.\nReally." || got.Fields["priority"] != "High" {
		t.Fatalf("updated: %v", got.Fields)
	}
	if n := len(f.requests("POST", api+"/issue/"+e.ID+"/transitions")); n != 0 {
		t.Fatalf("no status given, yet %d transitions", n)
	}

	pub, err := c.AddComment(ctx, e.ID, connectors.Comment{Body: "We are on it:\n- step 1\n- step 2"})
	if err != nil || pub.ID == "" || pub.Private || pub.Body != "We are on it:\n- step 1\n- step 2" {
		t.Fatalf("public comment: %+v %v", pub, err)
	}
	priv, err := c.AddComment(ctx, e.ID, connectors.Comment{Body: "internal note", Private: true})
	if err != nil || !priv.Private || priv.ID == pub.ID {
		t.Fatalf("private comment: %+v %v", priv, err)
	}
	cms := f.requests("POST", api+"/issue/"+e.ID+"/comment")
	if len(cms) != 2 || cms[0].Body["visibility"] != nil ||
		!reflect.DeepEqual(cms[1].Body["visibility"], map[string]any{"type": "role", "value": "Administrators"}) {
		t.Fatalf("comment requests: %+v", cms)
	}
	read, err := c.Get(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Comments) != 2 || read.Comments[0].ID != pub.ID || read.Comments[1].ID != priv.ID || !read.Comments[1].Private || read.Comments[0].Private {
		t.Fatalf("comments read back: %+v", read.Comments)
	}
}

func TestPrivateCommentWithoutRole(t *testing.T) {
	f := newFake(t)
	c := open(t, f, nil)
	ctx := context.Background()
	// Not a service project: the internal property does nothing, so the
	// public comment Jira made is removed and the write refused.
	_, err := c.AddComment(ctx, "EX-1", connectors.Comment{Body: "secret", Private: true})
	if !errors.Is(err, connectors.ErrInvalid) || !strings.Contains(err.Error(), "private_comment_role") {
		t.Fatalf("want ErrInvalid naming private_comment_role, got %v", err)
	}
	if n := len(f.requests("DELETE", api+"/issue/EX-1/comment/")); n != 1 {
		t.Fatalf("the public copy was not deleted (%d deletes)", n)
	}
	e, _ := c.Get(ctx, "EX-1")
	for _, cm := range e.Comments {
		if cm.Body == "secret" {
			t.Fatalf("private text left public: %+v", cm)
		}
	}
	// A service project marks it internal (jsdPublic false).
	f.serviceDesk = true
	got, err := c.AddComment(ctx, "EX-1", connectors.Comment{Body: "secret", Private: true})
	if err != nil || !got.Private {
		t.Fatalf("service project: %+v %v", got, err)
	}
	req := f.requests("POST", api+"/issue/EX-1/comment")
	props, _ := req[len(req)-1].Body["properties"].([]any)
	if len(props) != 1 || props[0].(map[string]any)["key"] != "sd.public.comment" {
		t.Fatalf("properties: %v", req[len(req)-1].Body)
	}
}

func TestTransitionPickedByTargetStatus(t *testing.T) {
	f := newFake(t)
	c := open(t, f, nil)
	ctx := context.Background()
	// "Closed" is reached by the second documented transition, "QA Review" (711).
	e, err := c.Update(ctx, "EX-1", map[string]any{"status": "closed"})
	if err != nil {
		t.Fatal(err)
	}
	tr := f.requests("POST", api+"/issue/EX-1/transitions")
	if len(tr) != 1 || tr[0].Body["transition"].(map[string]any)["id"] != "711" || e.Fields["status"] != "Closed" {
		t.Fatalf("transition %+v, status %v", tr, e.Fields["status"])
	}
	// Already there: no transition.
	if _, err := c.Update(ctx, "EX-1", map[string]any{"status": "Closed"}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests("POST", api+"/issue/EX-1/transitions")); n != 1 {
		t.Fatalf("transitions after a no-op status: %d", n)
	}
	// No path: the error lists what can be reached.
	f.setField("EX-1", "status", map[string]any{"name": "In Progress"}, f.now)
	_, err = c.Update(ctx, "EX-1", map[string]any{"status": "Closed"})
	if !errors.Is(err, connectors.ErrInvalid) || !strings.Contains(err.Error(), `from "In Progress" to "Closed"; reachable: Done, To Do`) {
		t.Fatalf("no-path error: %v", err)
	}
	if n := len(f.requests("POST", api+"/issue/EX-1/transitions")); n != 1 {
		t.Fatalf("a transition was run for an unreachable status")
	}
	// A new issue whose status cannot be reached: created, returned with the error.
	e, err = c.Create(ctx, map[string]any{"summary": "new", "status": "Teleported"})
	if !errors.Is(err, connectors.ErrInvalid) || e.ID == "" || e.Fields["status"] != "To Do" || !strings.Contains(err.Error(), "reachable: Closed, In Progress") {
		t.Fatalf("create with unreachable status: %+v %v", e, err)
	}
	// Delete, and deleting again is not an error.
	if err := c.Delete(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, e.ID); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := c.Get(ctx, e.ID); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("deleted issue: %v", err)
	}
}

func TestWriteErrors(t *testing.T) {
	f := newFake(t)
	c := open(t, f, nil)
	ctx := context.Background()
	f.reset()
	for name, fields := range map[string]map[string]any{
		"unknown field":    {"colour": "red"},
		"empty summary":    {"summary": " "},
		"label with space": {"labels": []any{"two words"}},
		"unknown assignee": {"assignee": "Nobody Atall"},
		"bad number":       {"Story points": "many"},
	} {
		_, err := c.Update(ctx, "EX-1", fields)
		if !errors.Is(err, connectors.ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
	if n := len(f.requests("PUT", api+"/issue/")); n != 0 {
		t.Fatalf("refused writes reached Jira: %d PUTs", n)
	}
	// An unknown name reloads the field list once (an admin may have added it).
	if n := len(f.requests("GET", api+"/field")); n != 2 {
		t.Fatalf("field list loaded %d times: want once, and once more for the unknown name", n)
	}
}

func TestHTTPErrors(t *testing.T) {
	f := newFake(t)
	c := open(t, f, nil)
	ctx := context.Background()
	if _, err := c.Get(ctx, "EX-999"); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("missing issue: %v", err)
	}
	if _, err := c.Get(ctx, "not a key"); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("malformed key: %v", err)
	}
	// Jira's 400 with errorMessages/errors: the message, custom fields named.
	f.fail = func(r *http.Request) (int, http.Header, string, bool) {
		if r.Method == "PUT" {
			return 400, nil, string(readTestdata(t, "error_400.json")), true
		}
		return 0, nil, "", false
	}
	_, err := c.Update(ctx, "EX-1", map[string]any{"summary": "x"})
	if !errors.Is(err, connectors.ErrInvalid) || !strings.Contains(err.Error(), "summary: You must specify a summary of the issue.") ||
		!strings.Contains(err.Error(), "Story points: Operation value must be a number") {
		t.Fatalf("400: %v", err)
	}
	// 429 with Retry-After.
	f.fail = func(r *http.Request) (int, http.Header, string, bool) {
		return 429, http.Header{"Retry-After": {"7"}}, `{"errorMessages":["Rate limit exceeded."]}`, true
	}
	_, err = c.Get(ctx, "EX-1")
	var ra *connectors.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 7*time.Second || !errors.Is(err, connectors.ErrUnavailable) {
		t.Fatalf("429: %v", err)
	}
	// 401 later (token revoked).
	f.fail = func(r *http.Request) (int, http.Header, string, bool) {
		return 401, nil, string(readTestdata(t, "error_401.json")), true
	}
	if _, err := c.Changes(ctx, "", 10); !errors.Is(err, connectors.ErrBadConfig) {
		t.Fatalf("401: %v", err)
	}
	f.fail = nil
	// The fake itself refuses a wrong token: proves the header is checked.
	c.http.Header.Set("Authorization", "Basic bm9wZTpub3Bl")
	if _, err := c.Get(ctx, "EX-1"); !errors.Is(err, connectors.ErrBadConfig) {
		t.Fatalf("wrong auth: %v", err)
	}
}

func TestCustomFieldsAndDescribe(t *testing.T) {
	f := newFake(t)
	c := open(t, f, nil)
	s, err := c.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]connectors.FieldType{}
	for _, fs := range s.Fields {
		types[fs.Name] = fs.Type
	}
	for name, typ := range map[string]connectors.FieldType{"summary": connectors.TypeString, "labels": connectors.TypeList,
		"Story points": connectors.TypeNumber, "Approvers": connectors.TypeList, "Change reason": connectors.TypeString, "Duplex key": connectors.TypeString} {
		if types[name] != typ {
			t.Errorf("schema %s: %q, want %q", name, types[name], typ)
		}
	}
	if _, ok := types["Description"]; ok {
		t.Errorf("system fields listed as custom: %v", types)
	}
}

func TestCorrelation(t *testing.T) {
	f := newFake(t)
	c := open(t, f, map[string]any{"correlation_field": "Duplex key"})
	ctx := context.Background()
	if _, ok, err := c.FindCorrelated(ctx, "k-1"); ok || err != nil {
		t.Fatalf("before create: %v %v", ok, err)
	}
	e, err := c.CreateCorrelated(ctx, "k-1", map[string]any{"summary": "correlated"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Fields["Duplex key"] != "k-1" {
		t.Fatalf("key not stored: %v", e.Fields)
	}
	// "k-1" must not find "k-10": Jira's text search is not an exact match.
	other, err := c.CreateCorrelated(ctx, "k-10", map[string]any{"summary": "other"})
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.FindCorrelated(ctx, "k-1")
	if err != nil || !ok || got.ID != e.ID {
		t.Fatalf("find k-1: %v %v %v", got.ID, ok, err)
	}
	got, ok, err = c.FindCorrelated(ctx, "k-10")
	if err != nil || !ok || got.ID != other.ID {
		t.Fatalf("find k-10: %v %v %v", got.ID, ok, err)
	}
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func TestWebhook(t *testing.T) {
	f := newFake(t)
	c := open(t, f, nil)
	secret := "It's a Secret to Everybody"
	issue := readTestdata(t, "webhook_issue_updated.json")
	comment := readTestdata(t, "webhook_comment_created.json")
	other := []byte(strings.Replace(string(issue), `"key":"EX"`, `"key":"OPS"`, 1))
	sprint := []byte(`{"timestamp":1611013500000,"webhookEvent":"sprint_started","sprint":{"id":1}}`)
	h := func(sig, id string) http.Header {
		hd := http.Header{}
		if sig != "" {
			hd.Set("X-Hub-Signature", sig)
		}
		if id != "" {
			hd.Set("X-Atlassian-Webhook-Identifier", id)
		}
		return hd
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		body   []byte
		ids    []string
		id     string
		err    error
	}{
		{"issue updated", h(sign(secret, issue), "d-1"), issue, []string{"EX-1"}, "d-1", nil},
		{"comment created", h(sign(secret, comment), ""), comment, []string{"EX-1"}, "", nil},
		{"another project", h(sign(secret, other), "d-2"), other, nil, "d-2", nil},
		{"other event", h(sign(secret, sprint), "d-3"), sprint, nil, "d-3", nil},
		{"missing signature", h("", "d-1"), issue, nil, "", connectors.ErrSignature},
		{"wrong secret", h(sign("guess", issue), "d-1"), issue, nil, "", connectors.ErrSignature},
		{"body changed", h(sign(secret, issue), "d-1"), append([]byte(" "), issue...), nil, "", connectors.ErrSignature},
		{"sha1 form", h("sha1="+strings.TrimPrefix(sign(secret, issue), "sha256="), "d-1"), issue, nil, "", connectors.ErrSignature},
		{"not hex", h("sha256=zz", "d-1"), issue, nil, "", connectors.ErrSignature},
		{"malformed json", h(sign(secret, []byte(`{"webhookEvent":`)), "d-4"), []byte(`{"webhookEvent":`), nil, "", connectors.ErrInvalid},
	} {
		d, err := c.Webhook(tc.header, tc.body)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: want %v, got %v", tc.name, tc.err, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(d.EntityIDs, tc.ids) || d.ID != tc.id {
			t.Errorf("%s: %+v %v", tc.name, d, err)
		}
	}
	// Without a configured secret nothing can be verified.
	c.hookSecret = ""
	if _, err := c.Webhook(h(sign("", issue), "d-1"), issue); !errors.Is(err, connectors.ErrSignature) {
		t.Errorf("no secret: %v", err)
	}
}
