package servicenow_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/servicenow"
)

func open(t *testing.T, f *fake) connectors.Connector {
	t.Helper()
	c, err := servicenow.New(context.Background(), connectors.Config{
		Name:     "sn",
		Settings: json.RawMessage(`{"url": "` + f.srv.URL + `", "username": "` + user + `", "fields": ["u_customer"]}`),
		Secrets:  map[string]string{"password": password},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewRefusesBadSettingsAndCredentials(t *testing.T) {
	f := newFake(t)
	for name, tc := range map[string]struct {
		settings string
		secrets  map[string]string
		want     string
	}{
		"unknown key":    {`{"url": "` + f.srv.URL + `", "username": "u", "instance": "x"}`, map[string]string{"password": "p"}, `instance: unknown setting`},
		"bad table":      {`{"url": "` + f.srv.URL + `", "username": "u", "table": "incident^x"}`, map[string]string{"password": "p"}, "not a table name"},
		"bad field":      {`{"url": "` + f.srv.URL + `", "username": "u", "fields": ["a b"]}`, map[string]string{"password": "p"}, "not a column name"},
		"journal field":  {`{"url": "` + f.srv.URL + `", "username": "u", "fields": ["work_notes"]}`, map[string]string{"password": "p"}, "cannot be synced as a field"},
		"no credentials": {`{"url": "` + f.srv.URL + `", "username": "u"}`, nil, "secret password"},
		"no user":        {`{"url": "` + f.srv.URL + `"}`, map[string]string{"password": "p"}, "set username"},
		"wrong password": {`{"url": "` + f.srv.URL + `", "username": "` + user + `"}`, map[string]string{"password": "wrong-password-123"}, "User Not Authenticated"},
		"wrong secret":   {`{"url": "` + f.srv.URL + `", "client_id": "` + clientID + `"}`, map[string]string{"client_secret": "wrong-secret-123"}, "oauth token: HTTP 401"},
	} {
		_, err := servicenow.New(context.Background(), connectors.Config{Settings: json.RawMessage(tc.settings), Secrets: tc.secrets})
		if !errors.Is(err, connectors.ErrBadConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrBadConfig with %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "wrong-") {
			t.Errorf("%s: the secret shows in %v", name, err)
		}
		// What needs neither the secrets nor the server is refused when
		// the system is saved, by the pure parse, with the same words.
		if tc.secrets != nil && !strings.HasPrefix(name, "wrong") {
			if _, perr := servicenow.ParseSettings(json.RawMessage(tc.settings)); perr == nil || !strings.Contains(perr.Error(), tc.want) {
				t.Errorf("%s: ParseSettings gave %v, want it to refuse with %q", name, perr, tc.want)
			}
		}
	}
}

func TestOAuthClientCredentials(t *testing.T) {
	f := newFake(t)
	c, err := servicenow.New(context.Background(), connectors.Config{
		Settings: json.RawMessage(`{"url": "` + f.srv.URL + `", "client_id": "` + clientID + `", "fields": ["u_customer"]}`),
		Secrets:  map[string]string{"client_secret": secret},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := f.add("Printer")
	if _, err := c.Get(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if f.tokenN != 1 {
		t.Errorf("%d tokens fetched for three requests", f.tokenN)
	}
	// The instance forgets the token (revoked, expired early): one new
	// token, and the request goes through.
	f.mu.Lock()
	f.tokens = map[string]bool{}
	f.mu.Unlock()
	if _, err := c.Get(context.Background(), id); err != nil || f.tokenN != 2 {
		t.Errorf("after revocation: %v, %d tokens", err, f.tokenN)
	}
}

func TestGetMapsTheDocumentedIncident(t *testing.T) {
	f := newFake(t)
	id := f.seedDocumented()
	c := open(t, f)
	e, err := c.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"number": "INC0000002", "short_description": "Network file shares access issue",
		"description": "User can't get to any of his files on the file server.", "state": "On Hold",
		"priority": "1 - Critical", "impact": "1 - High", "urgency": "1 - High", "category": "Network",
		"assignment_group": "Network", "assigned_to": "Howard Johnson", "caller_id": "Fred Luddy",
		"u_customer": "", "correlation_id": "", "sys_created_on": "2015-11-02T21:10:32Z",
	}
	if !reflect.DeepEqual(e.Fields, want) {
		t.Errorf("fields\n got %v\nwant %v", e.Fields, want)
	}
	if e.Key != "INC0000002" || !e.UpdatedAt.Equal(time.Date(2016, 11, 13, 19, 21, 27, 0, time.UTC)) || e.UpdatedBy != "admin" {
		t.Errorf("entity %+v", e)
	}
	if len(e.Comments) != 2 || e.Comments[0].Private || e.Comments[0].Author != "beth.anglin" || !e.Comments[1].Private ||
		e.Comments[1].ID != "0b2ea8d1dbd3330047e1f7531d9619f8" {
		t.Errorf("comments %+v", e.Comments)
	}
	if _, err := c.Get(context.Background(), strings.Repeat("0", 32)); !errors.Is(err, connectors.ErrNotFound) || !strings.Contains(err.Error(), "No Record found") {
		t.Errorf("missing: %v", err)
	}
	if _, err := c.Get(context.Background(), "INC0000002"); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("not a sys_id: %v", err)
	}
}

func TestCreateCorrelatedChecksChoices(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	ctx := context.Background()
	e, err := c.(connectors.Correlating).CreateCorrelated(ctx, "duplex-k1", map[string]any{
		"short_description": "Build broken", "state": "2", "priority": "2 - High", "assignment_group": "Engineering",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"short_description": "Build broken", "state": "In Progress", "priority": "2 - High",
		"assignment_group": "Engineering", "correlation_id": "duplex-k1", "correlation_display": "Duplex"}
	if !reflect.DeepEqual(f.lastBody(), want) {
		t.Errorf("create body\n got %v\nwant %v", f.lastBody(), want)
	}
	if e.Fields["state"] != "In Progress" || e.Fields["correlation_id"] != "duplex-k1" || e.Key != "INC0010001" {
		t.Errorf("created %v", e.Fields)
	}
	got, ok, err := c.(connectors.Correlating).FindCorrelated(ctx, "duplex-k1")
	if err != nil || !ok || got.ID != e.ID {
		t.Errorf("find: %v %v", ok, err)
	}
	if _, ok, err := c.(connectors.Correlating).FindCorrelated(ctx, "duplex-k2"); ok || err != nil {
		t.Errorf("find k2: %v %v", ok, err)
	}
	n := len(f.requestLog())
	_, err = c.Update(ctx, e.ID, map[string]any{"state": "Done"})
	if !errors.Is(err, connectors.ErrInvalid) || !strings.Contains(err.Error(), `"Done" is not a choice of incident.state (its choices: New, In Progress, On Hold, Resolved, Closed, Canceled)`) {
		t.Errorf("unknown state: %v", err)
	}
	for field, v := range map[string]any{"number": "INC1", "correlation_id": "x", "close_notes": "x"} {
		if _, err := c.Update(ctx, e.ID, map[string]any{field: v}); !errors.Is(err, connectors.ErrInvalid) || !strings.Contains(err.Error(), field) {
			t.Errorf("update %s: %v", field, err)
		}
	}
	if len(f.requestLog()) != n {
		t.Errorf("refused updates sent %v", f.requestLog()[n:])
	}
	u, err := c.Update(ctx, e.ID, map[string]any{"state": "Resolved", "u_customer": "ACME"})
	if err != nil || u.Fields["state"] != "Resolved" || u.Fields["u_customer"] != "ACME" {
		t.Errorf("update: %v %v", err, u.Fields)
	}
	if !reflect.DeepEqual(f.lastBody(), map[string]any{"state": "Resolved", "u_customer": "ACME"}) {
		t.Errorf("update body %v", f.lastBody())
	}
}

func TestWorkNotesAndComments(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	ctx := context.Background()
	id := f.add("Printer")
	note, err := c.AddComment(ctx, id, connectors.Comment{Body: "Escalated to engineering", Private: true})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.lastBody(), map[string]any{"work_notes": "Escalated to engineering"}) || !note.Private || note.ID == "" {
		t.Errorf("work note %+v body %v", note, f.lastBody())
	}
	f.mu.Lock()
	f.now = f.now.Add(time.Second)
	f.mu.Unlock()
	pub, err := c.AddComment(ctx, id, connectors.Comment{Body: "We are on it"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.lastBody(), map[string]any{"comments": "We are on it"}) || pub.Private || pub.ID == note.ID {
		t.Errorf("comment %+v body %v", pub, f.lastBody())
	}
	e, err := c.Get(ctx, id)
	if err != nil || len(e.Comments) != 2 || e.Comments[0].ID != note.ID || e.Comments[1].ID != pub.ID {
		t.Errorf("journal %+v %v", e.Comments, err)
	}
}

func TestChangesPollSysUpdatedOn(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	ctx := context.Background()
	a, b, d := f.add("A"), f.add("B"), f.add("C") // one second: ties by sys_id
	f.mu.Lock()
	f.now = f.now.Add(5 * time.Second)
	f.mu.Unlock()
	p1, err := c.Changes(ctx, "", 2)
	if err != nil || len(p1.Entities) != 2 || !p1.More {
		t.Fatalf("page 1 %+v %v", p1, err)
	}
	p2, err := c.Changes(ctx, p1.Cursor, 2)
	if err != nil || len(p2.Entities) != 1 || p2.More {
		t.Fatalf("page 2 %+v %v", p2, err)
	}
	seen := map[string]bool{}
	for _, e := range append(p1.Entities, p2.Entities...) {
		seen[e.ID] = true
	}
	if !seen[a] || !seen[b] || !seen[d] {
		t.Errorf("taken %v", seen)
	}
	f.mu.Lock()
	f.write(a, map[string]any{"short_description": "A2"})
	f.now = f.now.Add(5 * time.Second)
	f.mu.Unlock()
	p3, err := c.Changes(ctx, p2.Cursor, 10)
	if err != nil || len(p3.Entities) != 1 || p3.Entities[0].Fields["short_description"] != "A2" {
		t.Fatalf("page 3 %+v %v", p3, err)
	}
	var queries []string
	for _, r := range f.requestLog() {
		if strings.HasPrefix(r, "GET /api/now/table/incident?") && strings.Contains(r, "sysparm_query") {
			queries = append(queries, r)
		}
	}
	if !strings.Contains(queries[0], "sysparm_query=ORDERBYsys_updated_on%5EORDERBYsys_id") ||
		!strings.Contains(queries[1], "sysparm_query=sys_updated_on%3E%3D2026-03-01+09%3A59%3A57%5EORDERBYsys_updated_on") {
		t.Errorf("queries %v", queries)
	}
}

func TestRateLimitAndRedaction(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	id := f.add("x")
	f.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/api/now/table/incident" {
			w.Header().Set("Retry-After", "12")
			w.Header().Set("X-RateLimit-Limit", "100")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		u, p, _ := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": "bad", "detail": "from " + u + ":" + p}, "status": "failure"})
		return true
	}
	_, err := c.Changes(context.Background(), "", 10)
	var ra *connectors.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 12*time.Second {
		t.Errorf("429: %v", err)
	}
	_, err = c.Get(context.Background(), id)
	if !errors.Is(err, connectors.ErrInvalid) || strings.Contains(err.Error(), password) {
		t.Errorf("echoed password: %v", err)
	}
}

func TestAttachments(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	ctx := context.Background()
	id := f.add("Printer")
	data := "screenshot bytes"
	att, err := c.(connectors.Attacher).AddAttachment(ctx, id, connectors.Attachment{Name: "Issue screenshot.png", Size: int64(len(data)), ContentType: "image/png"}, strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if att.Name != "Issue screenshot.png" || att.Size != int64(len(data)) || att.ContentType != "image/png" || len(att.ID) != 32 {
		t.Errorf("attachment %+v", att)
	}
	if !strings.Contains(strings.Join(f.requestLog(), "\n"), "POST /api/now/attachment/file?file_name=Issue+screenshot.png&table_name=incident&table_sys_id="+id) {
		t.Errorf("requests %v", f.requestLog())
	}
	e, err := c.Get(ctx, id)
	if err != nil || len(e.Attachments) != 1 || e.Attachments[0] != att {
		t.Fatalf("listed %+v (added %+v) %v", e.Attachments, att, err)
	}
	rc, err := c.(connectors.Attacher).OpenAttachment(ctx, id, att)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != data {
		t.Errorf("downloaded %q", got)
	}
	if _, err := c.(connectors.Attacher).OpenAttachment(ctx, id, connectors.Attachment{ID: strings.Repeat("a", 32)}); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
}
