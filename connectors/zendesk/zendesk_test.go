package zendesk_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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
	"github.com/duplexsync/duplex/connectors/zendesk"
)

const webhookSecret = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="

func open(t *testing.T, f *fake) connectors.Connector {
	t.Helper()
	c, err := zendesk.New(context.Background(), connectors.Config{
		Name:     "zd",
		Settings: json.RawMessage(`{"url": "` + f.srv.URL + `", "email": "` + agentEmail + `"}`),
		Secrets:  map[string]string{"api_token": apiToken, "webhook_secret": webhookSecret},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewRefusesBadSettingsAndCredentials(t *testing.T) {
	f := newFake(t)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		settings string
		secrets  map[string]string
		want     string
	}{
		"unknown key": {`{"url": "` + f.srv.URL + `", "email": "a@b", "subdomain": "x"}`, map[string]string{"api_token": "x"}, `subdomain: unknown setting`},
		"no url":      {`{"email": "a@b"}`, map[string]string{"api_token": "x"}, "url: is required"},
		"no token":    {`{"url": "` + f.srv.URL + `", "email": "a@b"}`, nil, "api_token"},
		"bad start":   {`{"url": "` + f.srv.URL + `", "email": "a@b", "start_time": "yesterday"}`, map[string]string{"api_token": "x"}, "start_time"},
		"wrong token": {`{"url": "` + f.srv.URL + `", "email": "` + agentEmail + `"}`, map[string]string{"api_token": "wrong-token-value"}, "HTTP 401"},
		"path in url": {`{"url": "` + f.srv.URL + `/api/v2", "email": "a@b"}`, map[string]string{"api_token": "x"}, "url: must be"},
	} {
		_, err := zendesk.New(ctx, connectors.Config{Name: "zd", Settings: json.RawMessage(tc.settings), Secrets: tc.secrets})
		if !errors.Is(err, connectors.ErrBadConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrBadConfig mentioning %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "wrong-token-value") {
			t.Errorf("%s: the token shows in %v", name, err)
		}
		// What needs neither the secrets nor the server is refused when
		// the system is saved, by the pure parse, with the same words.
		if tc.secrets != nil && name != "wrong token" {
			if _, perr := zendesk.ParseSettings(json.RawMessage(tc.settings)); perr == nil || !strings.Contains(perr.Error(), tc.want) {
				t.Errorf("%s: ParseSettings gave %v, want it to refuse with %q", name, perr, tc.want)
			}
		}
	}
}

func TestGetMapsTheDocumentedTicket(t *testing.T) {
	f := newFake(t)
	f.seedDocumented()
	c := open(t, f)
	e, err := c.Get(context.Background(), "35436")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"subject": "Help, my printer is on fire!", "description": "The fire is very colorful.",
		"status": "open", "priority": "high", "ticket_type": "incident", "tags": []any{"enterprise", "other_tag"},
		"assignee": "johnny@example.com", "requester": "jane@example.org", "group_id": 98738.0,
		"external_id": "ahg35h3jh", "created_at": "2009-07-20T22:55:29Z", "Seats": 745.0, "Escalation": "yes",
	}
	if !reflect.DeepEqual(e.Fields, want) {
		t.Errorf("fields\n got %v\nwant %v", e.Fields, want)
	}
	if e.ID != "35436" || e.Key != "#35436" || e.URL != f.srv.URL+"/agent/tickets/35436" || !e.UpdatedAt.Equal(time.Date(2011, 5, 5, 10, 38, 52, 0, time.UTC)) {
		t.Errorf("entity %+v", e)
	}
	// The first comment is the description; the public reply and the
	// internal note follow.
	if len(e.Comments) != 2 || e.Comments[0].ID != "1274" || e.Comments[0].Body != "Thanks for your help!" || e.Comments[0].Private ||
		e.Comments[0].Author != "Jane Customer Two" || e.Comments[1].ID != "1275" || !e.Comments[1].Private || e.Comments[1].Author != "Johnny Agent" {
		t.Errorf("comments %+v", e.Comments)
	}
	if len(e.Attachments) != 1 || e.Attachments[0] != (connectors.Attachment{ID: "498483", Name: "crash.log", Size: 2532, ContentType: "text/plain", CreatedAt: time.Date(2009, 7, 20, 22, 55, 29, 0, time.UTC)}) {
		t.Errorf("attachments %+v", e.Attachments)
	}
	if _, err := c.Get(context.Background(), "999"); !errors.Is(err, connectors.ErrNotFound) || !strings.Contains(err.Error(), "RecordNotFound") {
		t.Errorf("missing ticket: %v", err)
	}
	// Users are asked for once and then remembered.
	n := 0
	for _, r := range f.requestLog() {
		if strings.Contains(r, "show_many") {
			n++
		}
	}
	if _, err := c.Get(context.Background(), "35436"); err != nil || n != 1 {
		t.Errorf("show_many asked %d times before the second read (%v)", n, err)
	}
	for _, r := range f.requestLog()[len(f.requestLog())-2:] {
		if strings.Contains(r, "show_many") {
			t.Errorf("users asked again: %s", r)
		}
	}
}

func TestCreateCorrelatedAndFind(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	ctx := context.Background()
	e, err := c.(connectors.Correlating).CreateCorrelated(ctx, "duplex-k1", map[string]any{
		"subject": "VPN down", "description": "It fails at login", "priority": "high",
		"tags": []any{"todev", "vpn"}, "Escalation": "yes", "assignee": "johnny@example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	wantBody := map[string]any{"ticket": map[string]any{
		"subject": "VPN down", "priority": "high", "tags": []any{"todev", "vpn"},
		"assignee_email": "johnny@example.com", "external_id": "duplex-k1",
		"comment":       map[string]any{"body": "It fails at login", "public": true},
		"custom_fields": []any{map[string]any{"id": 27648.0, "value": "yes"}},
	}}
	if got := f.bodies[0]; !reflect.DeepEqual(got, wantBody) {
		t.Errorf("create body\n got %v\nwant %v", got, wantBody)
	}
	if e.Fields["external_id"] != "duplex-k1" || e.Fields["assignee"] != "johnny@example.com" || e.Fields["description"] != "It fails at login" || len(e.Comments) != 0 {
		t.Errorf("created %+v", e)
	}
	got, ok, err := c.(connectors.Correlating).FindCorrelated(ctx, "duplex-k1")
	if err != nil || !ok || got.ID != e.ID {
		t.Errorf("find: %v %v %+v", ok, err, got)
	}
	if _, ok, err := c.(connectors.Correlating).FindCorrelated(ctx, "duplex-other"); ok || err != nil {
		t.Errorf("find other: %v %v", ok, err)
	}
	if !strings.Contains(strings.Join(f.requestLog(), "\n"), "GET /api/v2/tickets.json?external_id=duplex-k1") {
		t.Errorf("requests %v", f.requestLog())
	}
	if _, err := c.Create(ctx, map[string]any{"description": "no subject"}); !errors.Is(err, connectors.ErrInvalid) {
		t.Errorf("create without subject: %v", err)
	}
}

func TestUpdateSendsOnlyTheFieldsAndRefusesWhatZendeskCannotTake(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	ctx := context.Background()
	id := f.add("Printer")
	e, err := c.Update(ctx, itoa(id), map[string]any{"status": "pending", "ticket_type": "", "Seats": "12"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"ticket": map[string]any{"status": "pending", "type": nil, "custom_fields": []any{map[string]any{"id": 27642.0, "value": 12.0}}}}
	if !reflect.DeepEqual(f.lastBody(), want) {
		t.Errorf("update body\n got %v\nwant %v", f.lastBody(), want)
	}
	if e.Fields["status"] != "pending" || e.Fields["Seats"] != 12.0 {
		t.Errorf("updated %v", e.Fields)
	}
	for field, v := range map[string]any{"description": "new text", "external_id": "x", "Retired field": "x", "nonsense": 1.0} {
		n := len(f.requestLog())
		_, err := c.Update(ctx, itoa(id), map[string]any{field: v})
		if !errors.Is(err, connectors.ErrInvalid) || !strings.Contains(err.Error(), field) {
			t.Errorf("update %s: %v", field, err)
		}
		for _, r := range f.requestLog()[n:] {
			if strings.HasPrefix(r, "PUT") {
				t.Errorf("update %s sent %s", field, r)
			}
		}
	}
	f.mu.Lock()
	f.tickets[id]["status"] = "closed"
	f.mu.Unlock()
	_, err = c.Update(ctx, itoa(id), map[string]any{"status": "open"})
	if !errors.Is(err, connectors.ErrInvalid) || !strings.Contains(err.Error(), "Status: closed prevents ticket update") {
		t.Errorf("closed ticket: %v", err)
	}
}

func TestCommentsPublicAndInternal(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	ctx := context.Background()
	id := f.add("Printer")
	f.setNow(f.now.Add(time.Minute))
	pub, err := c.AddComment(ctx, itoa(id), connectors.Comment{Body: "We are on it"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (map[string]any{"ticket": map[string]any{"comment": map[string]any{"body": "We are on it", "public": true}}}); !reflect.DeepEqual(f.lastBody(), want) {
		t.Errorf("reply body %v", f.lastBody())
	}
	note, err := c.AddComment(ctx, itoa(id), connectors.Comment{Body: "suspect the driver", Private: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := (map[string]any{"ticket": map[string]any{"comment": map[string]any{"body": "suspect the driver", "public": false}}}); !reflect.DeepEqual(f.lastBody(), want) {
		t.Errorf("note body %v", f.lastBody())
	}
	if pub.ID == "" || pub.ID == note.ID || pub.Private || !note.Private {
		t.Errorf("added %+v %+v", pub, note)
	}
	f.commentCap = 1 // one comment a page: the connector must follow the cursor
	e, err := c.Get(ctx, itoa(id))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Comments) != 2 || e.Comments[0].ID != pub.ID || e.Comments[1].ID != note.ID || !e.Comments[1].Private || e.Comments[0].Author != "Duplex Agent" {
		t.Errorf("comments %+v", e.Comments)
	}
	if !strings.Contains(strings.Join(f.requestLog(), "\n"), "page%5Bafter%5D=") {
		t.Errorf("no page[after] request: %v", f.requestLog())
	}
	if _, err := c.AddComment(ctx, itoa(id), connectors.Comment{Body: " "}); !errors.Is(err, connectors.ErrInvalid) {
		t.Errorf("empty comment: %v", err)
	}
}

func TestChangesFollowTheExportCursor(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	ctx := context.Background()
	a, b, d := f.add("A"), f.add("B"), f.add("C")
	p1, err := c.Changes(ctx, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Entities) != 2 || p1.Entities[0].ID != itoa(a) || p1.Entities[1].ID != itoa(b) || !p1.More || p1.Cursor == "" {
		t.Fatalf("page 1 %+v", p1)
	}
	p2, err := c.Changes(ctx, p1.Cursor, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.Entities) != 1 || p2.Entities[0].ID != itoa(d) || p2.More {
		t.Fatalf("page 2 %+v", p2)
	}
	quiet, err := c.Changes(ctx, p2.Cursor, 2)
	if err != nil || len(quiet.Entities) != 0 || quiet.More || quiet.Cursor != p2.Cursor {
		t.Fatalf("quiet poll %+v %v", quiet, err)
	}
	f.setNow(f.now.Add(time.Minute))
	f.mu.Lock()
	f.tickets[a]["status"] = "deleted"
	f.touch(a)
	f.tickets[b]["subject"] = "B2"
	f.touch(b)
	f.mu.Unlock()
	p3, err := c.Changes(ctx, quiet.Cursor, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(p3.Entities) != 2 || !p3.Entities[0].Deleted || p3.Entities[1].Fields["subject"] != "B2" {
		t.Fatalf("page 3 %+v", p3)
	}
	log := f.requestLog()
	var exports []string
	for _, r := range log {
		if strings.Contains(r, "/incremental/") {
			exports = append(exports, r)
		}
	}
	if exports[0] != "GET /api/v2/incremental/tickets/cursor.json?per_page=2&start_time=0" || !strings.Contains(exports[1], "cursor=") {
		t.Errorf("export requests %v", exports)
	}
	for _, r := range log {
		if strings.Contains(r, "/tickets/"+itoa(a)+"/comments") && strings.Contains(r, "deleted") {
			t.Errorf("comments of a deleted ticket read: %s", r)
		}
	}
	if _, err := c.Changes(ctx, "not a cursor", 2); !errors.Is(err, connectors.ErrBadConfig) {
		t.Errorf("bad cursor: %v", err)
	}
}

func TestRateLimitAndRedaction(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	f.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/incremental/") {
			w.Header().Set("Retry-After", "93")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte("Rate limited for 93 seconds"))
			return true
		}
		// A server that echoes the request's credentials in its error.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(422)
		json.NewEncoder(w).Encode(map[string]any{"error": "RecordInvalid", "description": "bad: " + r.Header.Get("Authorization"),
			"details": map[string]any{"base": []any{map[string]any{"description": "token " + apiToken}}}})
		return true
	}
	_, err := c.Changes(context.Background(), "", 10)
	var ra *connectors.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 93*time.Second || !errors.Is(err, connectors.ErrUnavailable) {
		t.Errorf("429: %v", err)
	}
	_, err = c.Get(context.Background(), "1")
	if !errors.Is(err, connectors.ErrInvalid) || strings.Contains(err.Error(), apiToken) || strings.Contains(err.Error(), "Basic ") && !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("echoed credentials: %v", err)
	}
	enc := base64.StdEncoding.EncodeToString([]byte(agentEmail + "/token:" + apiToken))
	if strings.Contains(err.Error(), enc) {
		t.Errorf("the Basic credential shows: %v", err)
	}
}

func sign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + string(body)))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestWebhookSignatureAndBodies(t *testing.T) {
	f := newFake(t)
	c := open(t, f).(connectors.Hooked)
	ev := load(t, "webhook_ticket_status_changed.json")
	ts := "2025-01-08T10:12:08Z"
	h := http.Header{}
	h.Set("X-Zendesk-Webhook-Signature", sign(webhookSecret, ts, ev))
	h.Set("X-Zendesk-Webhook-Signature-Timestamp", ts)
	h.Set("X-Zendesk-Webhook-Invocation-Id", "8350205582")
	d, err := c.Webhook(h, ev)
	if err != nil || !reflect.DeepEqual(d.EntityIDs, []string{"5158"}) || d.ID != "8350205582" || d.IDSigned {
		t.Errorf("event webhook: %+v %v", d, err)
	}
	for name, mut := range map[string]func(http.Header, []byte) (http.Header, []byte){
		"tampered body": func(h http.Header, b []byte) (http.Header, []byte) {
			return h, bytes.Replace(b, []byte("5158"), []byte("5159"), 1)
		},
		"other stamp": func(h http.Header, b []byte) (http.Header, []byte) {
			h.Set("X-Zendesk-Webhook-Signature-Timestamp", "2025-01-08T10:12:09Z")
			return h, b
		},
		"no signature": func(h http.Header, b []byte) (http.Header, []byte) { h.Del("X-Zendesk-Webhook-Signature"); return h, b },
		"no timestamp": func(h http.Header, b []byte) (http.Header, []byte) {
			h.Del("X-Zendesk-Webhook-Signature-Timestamp")
			return h, b
		},
		"other secret": func(h http.Header, b []byte) (http.Header, []byte) {
			h.Set("X-Zendesk-Webhook-Signature", sign("other", ts, b))
			return h, b
		},
		"not base64": func(h http.Header, b []byte) (http.Header, []byte) {
			h.Set("X-Zendesk-Webhook-Signature", "%%%")
			return h, b
		},
	} {
		hh, bb := mut(h.Clone(), append([]byte(nil), ev...))
		if _, err := c.Webhook(hh, bb); !errors.Is(err, connectors.ErrSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
	signed := func(body string) http.Header {
		hh := http.Header{}
		hh.Set("X-Zendesk-Webhook-Signature", sign(webhookSecret, ts, []byte(body)))
		hh.Set("X-Zendesk-Webhook-Signature-Timestamp", ts)
		return hh
	}
	user := load(t, "webhook_user_created.json")
	if d, err := c.Webhook(signed(string(user)), user); err != nil || len(d.EntityIDs) != 0 {
		t.Errorf("user event: %+v %v", d, err)
	}
	for body, want := range map[string]string{`{"ticket_id": "35436"}`: "35436", `{"ticket_id": 12}`: "12", `{"ticket": {"id": 7, "status": "open"}}`: "7"} {
		if d, err := c.Webhook(signed(body), []byte(body)); err != nil || !reflect.DeepEqual(d.EntityIDs, []string{want}) {
			t.Errorf("trigger body %s: %+v %v", body, d, err)
		}
	}
	for _, body := range []string{`{"subject": "no id"}`, `not json`, `{"ticket_id": "abc"}`} {
		if _, err := c.Webhook(signed(body), []byte(body)); !errors.Is(err, connectors.ErrInvalid) {
			t.Errorf("body %s: %v", body, err)
		}
	}
	noSecret, err := zendesk.New(context.Background(), connectors.Config{Settings: json.RawMessage(`{"url": "` + f.srv.URL + `", "email": "` + agentEmail + `"}`), Secrets: map[string]string{"api_token": apiToken}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noSecret.(connectors.Hooked).Webhook(h, ev); !errors.Is(err, connectors.ErrSignature) {
		t.Errorf("no secret configured: %v", err)
	}
}

func TestAttachmentsUploadAndDownload(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	ctx := context.Background()
	id := f.add("Printer")
	data := []byte("log line 1\nlog line 2\n")
	att, err := c.(connectors.Attacher).AddAttachment(ctx, itoa(id), connectors.Attachment{Name: "printer log.txt", Size: int64(len(data)), ContentType: "text/plain"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if att.Name != "printer log.txt" || att.Size != int64(len(data)) || att.ID == "" {
		t.Errorf("attachment %+v", att)
	}
	log := strings.Join(f.requestLog(), "\n")
	if !strings.Contains(log, "POST /api/v2/uploads.json?filename=printer+log.txt") {
		t.Errorf("requests %s", log)
	}
	want := map[string]any{"ticket": map[string]any{"comment": map[string]any{"body": "Attached printer log.txt", "public": false, "uploads": []any{"tok" + att.ID}}}}
	if !reflect.DeepEqual(f.lastBody(), want) {
		t.Errorf("attach body %v", f.lastBody())
	}
	e, err := c.Get(ctx, itoa(id))
	if err != nil || len(e.Attachments) != 1 || e.Attachments[0].ID != att.ID {
		t.Fatalf("after attach: %+v %v", e.Attachments, err)
	}
	rc, err := c.(connectors.Attacher).OpenAttachment(ctx, itoa(id), e.Attachments[0])
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Errorf("downloaded %q", got)
	}
	if _, err := c.(connectors.Attacher).OpenAttachment(ctx, itoa(id), connectors.Attachment{ID: "42"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("missing attachment: %v", err)
	}
}

func TestDescribeListsCustomFieldsByTitle(t *testing.T) {
	f := newFake(t)
	s, err := open(t, f).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]connectors.FieldType{}
	for _, fs := range s.Fields {
		types[fs.Name] = fs.Type
	}
	if types["Seats"] != connectors.TypeNumber || types["Escalation"] != connectors.TypeString || types["tags"] != connectors.TypeList {
		t.Errorf("fields %v", types)
	}
	if _, ok := types["Retired field"]; ok {
		t.Error("an inactive custom field is listed")
	}
	if _, ok := types["Subject"]; ok {
		t.Error("a system field is listed as custom")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestRateLimitHeadersStopRequestsUntilTheReset(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	id := f.add("Printer")
	// A 429 without Retry-After (some of Zendesk's limits send none) waits
	// for ratelimit-reset.
	f.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Ratelimit-Limit", "700")
		w.Header().Set("Ratelimit-Remaining", "0")
		w.Header().Set("Ratelimit-Reset", "41")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte("You have exceeded the rate limit"))
		return true
	}
	_, err := c.Get(context.Background(), itoa(id))
	var ra *connectors.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 41*time.Second {
		t.Fatalf("429 without Retry-After: %v", err)
	}
	// The limit is used up: nothing is sent until the reset.
	f.intercept = nil
	n := len(f.requestLog())
	_, err = c.Get(context.Background(), itoa(id))
	if !errors.As(err, &ra) || ra.After <= 0 || ra.After > 41*time.Second || !strings.Contains(err.Error(), "not sent") {
		t.Errorf("while blocked: %v", err)
	}
	if len(f.requestLog()) != n {
		t.Errorf("a request was sent while the limit was used up: %v", f.requestLog()[n:])
	}
}

func TestRateLimitRemainingOnASuccessBlocksTheNextRequest(t *testing.T) {
	f := newFake(t)
	c := open(t, f)
	id := f.add("Printer")
	f.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Ratelimit-Remaining", "0")
		w.Header().Set("Ratelimit-Reset", "30")
		return false // answered normally, with the last request of the minute
	}
	if _, err := c.Get(context.Background(), itoa(id)); err == nil {
		// Get makes several requests: the second one already finds the limit used up.
		t.Fatal("a Get of several requests went through a used-up limit")
	}
	var ra *connectors.RetryAfterError
	_, err := c.Get(context.Background(), itoa(id))
	if !errors.As(err, &ra) || ra.After > 30*time.Second {
		t.Errorf("after the last request of the minute: %v", err)
	}
}
