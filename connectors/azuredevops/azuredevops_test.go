package azuredevops_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/azuredevops"
)

const hookPassword = "hook-password-for-tests-0123456789"

func open(t *testing.T, f *fake) connectors.Connector {
	t.Helper()
	c, err := azuredevops.New(context.Background(), connectors.Config{
		Name:     "ado",
		Settings: json.RawMessage(`{"url": "` + f.srv.URL + `", "project": "` + project + `", "hook_username": "duplex", "fields": ["Microsoft.VSTS.Common.Severity"]}`),
		Secrets:  map[string]string{"pat": pat, "hook_password": hookPassword},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestNewRefusesBadSettingsAndTokens(t *testing.T) {
	f := newFake(t)
	for name, tc := range map[string]struct{ settings, pat, want string }{
		"unknown key":      {`{"url": "` + f.srv.URL + `", "project": "P", "organisation": "x"}`, pat, `organisation: unknown setting`},
		"no project":       {`{"url": "` + f.srv.URL + `"}`, pat, "project: is required"},
		"bad field":        {`{"url": "` + f.srv.URL + `", "project": "P", "fields": ["Severity"]}`, pat, "reference names"},
		"no pat":           {`{"url": "` + f.srv.URL + `", "project": "P"}`, "", "pat is required"},
		"refused token":    {`{"url": "` + f.srv.URL + `", "project": "` + project + `"}`, "wrong-token-0123456789", "sign-in page"},
		"no project there": {`{"url": "` + f.srv.URL + `", "project": "Other"}`, pat, `project "Other" not found`},
	} {
		_, err := azuredevops.New(context.Background(), connectors.Config{Settings: json.RawMessage(tc.settings), Secrets: map[string]string{"pat": tc.pat}})
		if !errors.Is(err, connectors.ErrBadConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrBadConfig with %q", name, err, tc.want)
		}
		// What needs neither the token nor the server is refused when the
		// system is saved, by the pure parse, with the same words.
		if name == "unknown key" || name == "no project" || name == "bad field" {
			if _, perr := azuredevops.ParseSettings(json.RawMessage(tc.settings)); perr == nil || !strings.Contains(perr.Error(), tc.want) {
				t.Errorf("%s: ParseSettings gave %v, want it to refuse with %q", name, perr, tc.want)
			}
		}
	}
}

func TestGetMapsTheDocumentedWorkItem(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	f.mu.Lock()
	doc := clone(f.itemTpl)
	doc["fields"].(map[string]any)["System.TeamProject"] = project
	f.items[131489] = doc
	f.mu.Unlock()
	e, err := c.Get(context.Background(), "131489")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"title": "Sample task", "description": "", "state": "New", "reason": "New", "work_item_type": "Task",
		"assigned_to": "", "tags": []any{}, "area_path": "CustomProcessPrj", "iteration_path": "CustomProcessPrj",
		"priority": 2.0, "created_by": "fabrikamfiber4@hotmail.com", "created_at": "2017-10-06T01:04:51Z",
		"Microsoft.VSTS.Common.Severity": nil,
	}
	if !reflect.DeepEqual(e.Fields, want) {
		t.Errorf("fields\n got %v\nwant %v", e.Fields, want)
	}
	if e.Key != "#131489" || e.Type != "Task" || e.URL != f.srv.URL+"/"+project+"/_workitems/edit/131489" ||
		!e.UpdatedAt.Equal(time.Date(2017, 10, 6, 1, 4, 51, 570e6, time.UTC)) || e.UpdatedBy != "fabrikamfiber4@hotmail.com" {
		t.Errorf("entity %+v", e)
	}
	for _, r := range f.requestLog() {
		if strings.Contains(r, "/comments") {
			t.Errorf("comments read although System.CommentCount is 0: %s", r)
		}
	}
	if _, err := c.Get(context.Background(), "999"); !errors.Is(err, connectors.ErrNotFound) || !strings.Contains(err.Error(), "TF401232") {
		t.Errorf("missing: %v", err)
	}
	f.mu.Lock()
	doc["fields"].(map[string]any)["System.TeamProject"] = "Another"
	f.mu.Unlock()
	if _, err := c.Get(context.Background(), "131489"); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("another project's work item: %v", err)
	}
}

func TestCreateCorrelatedSendsJSONPatch(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	ctx := context.Background()
	e, err := c.(connectors.Correlating).CreateCorrelated(ctx, "k1", map[string]any{
		"title": "VPN", "work_item_type": "Bug", "description": "Line 1\na <b>", "tags": []any{"support"}, "priority": 1.0,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{ // in the order of Duplex's field names
		map[string]any{"op": "add", "path": "/fields/System.Description", "value": "Line 1<br>a &lt;b&gt;"},
		map[string]any{"op": "add", "path": "/fields/Microsoft.VSTS.Common.Priority", "value": 1.0},
		map[string]any{"op": "add", "path": "/fields/System.Tags", "value": "support; duplex:k1"},
		map[string]any{"op": "add", "path": "/fields/System.Title", "value": "VPN"},
	}
	if !reflect.DeepEqual(f.lastBody(), want) {
		t.Errorf("patch\n got %v\nwant %v", f.lastBody(), want)
	}
	if !strings.Contains(strings.Join(f.requestLog(), "\n"), "POST /"+project+"/_apis/wit/workitems/$Bug?$expand=relations&api-version=7.1") {
		t.Errorf("requests %v", f.requestLog())
	}
	if e.Type != "Bug" || !reflect.DeepEqual(e.Fields["tags"], []any{"support"}) || e.Fields["description"] != "Line 1\na <b>" {
		t.Errorf("created %+v", e)
	}
	got, ok, err := c.(connectors.Correlating).FindCorrelated(ctx, "k1")
	if err != nil || !ok || got.ID != e.ID {
		t.Errorf("find: %v %v %+v", ok, err, got)
	}
	if _, ok, err := c.(connectors.Correlating).FindCorrelated(ctx, "k2"); ok || err != nil {
		t.Errorf("find k2: %v %v", ok, err)
	}
	// Writing the tags keeps the correlation tag.
	if _, err := c.Update(ctx, e.ID, map[string]any{"tags": []any{"vpn"}}); err != nil {
		t.Fatal(err)
	}
	if want := []any{map[string]any{"op": "add", "path": "/fields/System.Tags", "value": "vpn; duplex:k1"}}; !reflect.DeepEqual(f.lastBody(), want) {
		t.Errorf("tags patch %v", f.lastBody())
	}
	if _, err := c.(connectors.Correlating).CreateCorrelated(ctx, "a;b", map[string]any{"title": "x"}); !errors.Is(err, connectors.ErrInvalid) {
		t.Errorf("key with ;: %v", err)
	}
}

func TestUpdateStateRefusalNamesTheStates(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	ctx := context.Background()
	id := f.add("Crash")
	n := len(f.requestLog())
	_, err := c.Update(ctx, itoa(id), map[string]any{"state": "Done"})
	if !errors.Is(err, connectors.ErrInvalid) || !strings.Contains(err.Error(), `"Done" is not a state of work item type Task (its states: New, Active, Resolved, Closed)`) {
		t.Errorf("refused state: %v", err)
	}
	patches := 0
	for _, r := range f.requestLog()[n:] {
		if strings.HasPrefix(r, "PATCH") {
			patches++
		}
	}
	if patches != 1 {
		t.Errorf("%d PATCH requests for one refused update", patches)
	}
	e, err := c.Update(ctx, itoa(id), map[string]any{"state": "Active", "assigned_to": "fabrikamfiber4@hotmail.com", "priority": nil, "Microsoft.VSTS.Common.Severity": "2 - High"})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{
		map[string]any{"op": "add", "path": "/fields/Microsoft.VSTS.Common.Severity", "value": "2 - High"},
		map[string]any{"op": "add", "path": "/fields/System.AssignedTo", "value": "fabrikamfiber4@hotmail.com"},
		map[string]any{"op": "remove", "path": "/fields/Microsoft.VSTS.Common.Priority"},
		map[string]any{"op": "add", "path": "/fields/System.State", "value": "Active"},
	}
	if !reflect.DeepEqual(f.lastBody(), want) {
		t.Errorf("patch\n got %v\nwant %v", f.lastBody(), want)
	}
	if e.Fields["state"] != "Active" || e.Fields["priority"] != nil || e.Fields["Microsoft.VSTS.Common.Severity"] != "2 - High" {
		t.Errorf("updated %v", e.Fields)
	}
	for field, v := range map[string]any{"work_item_type": "Bug", "created_by": "x", "System.History": "x"} {
		if _, err := c.Update(ctx, itoa(id), map[string]any{field: v}); !errors.Is(err, connectors.ErrInvalid) {
			t.Errorf("update %s: %v", field, err)
		}
	}
}

func TestCommentsHTMLAndPaging(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	ctx := context.Background()
	id := f.add("Crash")
	cm, err := c.AddComment(ctx, itoa(id), connectors.Comment{Body: "Fixed in <build> 12\nplease retest"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"text": "Fixed in &lt;build&gt; 12<br>please retest"}; !reflect.DeepEqual(f.lastBody(), want) {
		t.Errorf("comment body %v", f.lastBody())
	}
	if cm.ID != "100" || cm.Body != "Fixed in <build> 12\nplease retest" || cm.Author != "Duplex Sync" {
		t.Errorf("comment %+v", cm)
	}
	n := len(f.requestLog())
	if _, err := c.AddComment(ctx, itoa(id), connectors.Comment{Body: "internal", Private: true}); !errors.Is(err, connectors.ErrInvalid) || len(f.requestLog()) != n {
		t.Errorf("private comment: %v", err)
	}
	if _, err := c.AddComment(ctx, itoa(id), connectors.Comment{Body: "second"}); err != nil {
		t.Fatal(err)
	}
	f.commentCap = 1
	e, err := c.Get(ctx, itoa(id))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Comments) != 2 || e.Comments[0].Body != "Fixed in <build> 12\nplease retest" || e.Comments[1].Body != "second" {
		t.Errorf("comments %+v", e.Comments)
	}
	if !strings.Contains(strings.Join(f.requestLog(), "\n"), "continuationToken=1") {
		t.Errorf("no continuation: %v", f.requestLog())
	}
}

func TestChangesPollWIQLAndBatch(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	ctx := context.Background()
	a, b, d := f.add("A"), f.add("B"), f.add("C")
	// Work items stamped in the second the server is still in are handed
	// on but not recorded (pollwindow), so such a page asks for no more.
	early, err := c.Changes(ctx, "", 2)
	if err != nil || len(early.Entities) != 2 || early.More {
		t.Fatalf("page in the open second %+v %v", early, err)
	}
	f.mu.Lock()
	f.now = f.now.Add(10 * time.Second)
	f.mu.Unlock()
	p1, err := c.Changes(ctx, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Entities) != 2 || p1.Entities[0].ID != itoa(a) || p1.Entities[1].ID != itoa(b) || !p1.More {
		t.Fatalf("page 1 %+v", p1)
	}
	f.mu.Lock()
	f.now = f.now.Add(10 * time.Second) // the server's second moves on
	f.mu.Unlock()
	p2, err := c.Changes(ctx, p1.Cursor, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.Entities) != 1 || p2.Entities[0].ID != itoa(d) || p2.More {
		t.Fatalf("page 2 %+v", p2)
	}
	quiet, err := c.Changes(ctx, p2.Cursor, 2)
	if err != nil || len(quiet.Entities) != 0 {
		t.Fatalf("quiet %+v %v", quiet, err)
	}
	f.set(a, "System.Title", "A2")
	f.mu.Lock()
	f.now = f.now.Add(10 * time.Second)
	f.mu.Unlock()
	p3, err := c.Changes(ctx, p2.Cursor, 10)
	if err != nil || len(p3.Entities) != 1 || p3.Entities[0].Fields["title"] != "A2" {
		t.Fatalf("page 3 %+v %v", p3, err)
	}
	var wiql []any
	f.mu.Lock()
	for _, b := range f.bodies {
		if m, ok := b.(map[string]any); ok && m["query"] != nil {
			wiql = append(wiql, m["query"])
		}
	}
	f.mu.Unlock()
	if !strings.HasSuffix(wiql[0].(string), "= @project ORDER BY [System.ChangedDate] ASC, [System.Id] ASC") ||
		!strings.Contains(wiql[2].(string), "[System.ChangedDate] >= '2026-03-01T09:59:57Z'") {
		t.Errorf("queries %v", wiql)
	}
}

func TestRateLimitAndRedaction(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	f.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/wiql") {
			w.Header().Set("Retry-After", "30")
			w.Header().Set("X-RateLimit-Resource", "ATCPU")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		json.NewEncoder(w).Encode(map[string]any{"message": "bad request from " + r.Header.Get("Authorization") + " token " + pat, "typeKey": "X"})
		return true
	}
	_, err := c.Changes(context.Background(), "", 10)
	var ra *connectors.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 30*time.Second {
		t.Errorf("429: %v", err)
	}
	_, err = c.Get(context.Background(), "1")
	if !errors.Is(err, connectors.ErrInvalid) || strings.Contains(err.Error(), pat) || strings.Contains(err.Error(), "OmFkb3") {
		t.Errorf("echoed credentials: %v", err)
	}
}

func TestServiceHooks(t *testing.T) {
	f := newFake(t)
	c := open(t, f).(connectors.Hooked)
	h := func(user, pass string) http.Header {
		r, _ := http.NewRequest("POST", "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header
	}
	for name, tc := range map[string]struct {
		file string
		want []string
	}{
		"updated":   {"hook_workitem_updated.json", []string{"5"}},
		"commented": {"hook_workitem_commented.json", []string{"5"}},
	} {
		d, err := c.Webhook(h("duplex", hookPassword), load(t, tc.file))
		if err != nil || !reflect.DeepEqual(d.EntityIDs, tc.want) || d.ID == "" {
			t.Errorf("%s: %+v %v", name, d, err)
		}
	}
	body := load(t, "hook_workitem_updated.json")
	for name, hdr := range map[string]http.Header{
		"wrong password": h("duplex", "nope"), "wrong user": h("someone", hookPassword), "none": {},
	} {
		if _, err := c.Webhook(hdr, body); !errors.Is(err, connectors.ErrSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
	other := strings.Replace(string(body), "eb6e4656-77fc-42a1-9181-4c6d8e9da5d1", "00000000-77fc-42a1-9181-4c6d8e9da5d1", 1)
	if d, err := c.Webhook(h("duplex", hookPassword), []byte(other)); err != nil || len(d.EntityIDs) != 0 {
		t.Errorf("other project: %+v %v", d, err)
	}
	push := `{"id": "x", "eventType": "git.push", "resource": {}}`
	if d, err := c.Webhook(h("duplex", hookPassword), []byte(push)); err != nil || len(d.EntityIDs) != 0 {
		t.Errorf("git.push: %+v %v", d, err)
	}
	if _, err := c.Webhook(h("duplex", hookPassword), []byte("{")); !errors.Is(err, connectors.ErrInvalid) {
		t.Errorf("malformed: %v", err)
	}
}

func TestAttachmentsUploadLinkAndDownload(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	ctx := context.Background()
	id := f.add("Crash")
	data := []byte("stack trace\n")
	att, err := c.(connectors.Attacher).AddAttachment(ctx, itoa(id), connectors.Attachment{Name: "trace 1.txt", Size: int64(len(data))}, strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if att.Name != "trace 1.txt" || att.Size != int64(len(data)) || len(att.ID) != 36 {
		t.Errorf("attachment %+v", att)
	}
	link := []any{map[string]any{"op": "add", "path": "/relations/-", "value": map[string]any{"rel": "AttachedFile",
		"url": "https://dev.azure.com/fabrikam/_apis/wit/attachments/" + att.ID + "?fileName=trace 1.txt", "attributes": map[string]any{"comment": "Added by Duplex"}}}}
	if !reflect.DeepEqual(f.lastBody(), link) {
		t.Errorf("link patch %v", f.lastBody())
	}
	if !strings.Contains(strings.Join(f.requestLog(), "\n"), "POST /"+project+"/_apis/wit/attachments?fileName=trace+1.txt&api-version=7.1") {
		t.Errorf("requests %v", f.requestLog())
	}
	e, err := c.Get(ctx, itoa(id))
	if err != nil || len(e.Attachments) != 1 || e.Attachments[0].ID != att.ID {
		t.Fatalf("listed %+v %v", e.Attachments, err)
	}
	rc, err := c.(connectors.Attacher).OpenAttachment(ctx, itoa(id), e.Attachments[0])
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != string(data) {
		t.Errorf("downloaded %q", got)
	}
	if _, err := c.(connectors.Attacher).OpenAttachment(ctx, itoa(id), connectors.Attachment{ID: "6b2266bf-a155-4582-a475-ca4da6819399"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := c.(connectors.Attacher).OpenAttachment(ctx, itoa(id), connectors.Attachment{ID: "../x"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("bad id: %v", err)
	}
}
