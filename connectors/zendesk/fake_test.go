package zendesk_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	agentEmail = "agent@example.com"
	apiToken   = "zd_test_api_token_6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv"
)

// change is one entry of the fake's change log, which the incremental
// export pages through.
type change struct {
	id int64
	at time.Time
}

// fake is the Zendesk Ticketing API of one account, built from the
// documented payloads in testdata/, that checks every request the connector
// sends.
type fake struct {
	t           *testing.T
	srv         *httptest.Server
	mu          sync.Mutex
	now         time.Time
	tickets     map[int64]map[string]any
	comments    map[int64][]map[string]any
	users       map[int64]map[string]any
	files       map[int64][]byte // attachment id → bytes
	uploads     map[string]map[string]any
	log         []change
	commentCap  int // the server's cap on page[size] for comments
	nextID      int64
	nextComment int64
	requests    []string
	bodies      []map[string]any
	intercept   func(w http.ResponseWriter, r *http.Request) bool
	ticketTpl   map[string]any
	commentTpl  map[string]any
	userTpl     map[string]any
}

func load(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadMap(t *testing.T, name string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(load(t, name), &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func newFake(t *testing.T) *fake {
	f := &fake{
		t: t, now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		tickets: map[int64]map[string]any{}, comments: map[int64][]map[string]any{},
		users: map[int64]map[string]any{}, files: map[int64][]byte{}, uploads: map[string]map[string]any{},
		commentCap: 100, nextID: 1, nextComment: 5000,
		ticketTpl:  loadMap(t, "ticket.json")["ticket"].(map[string]any),
		commentTpl: loadMap(t, "comments.json")["comments"].([]any)[0].(map[string]any),
		userTpl:    loadMap(t, "user.json")["user"].(map[string]any),
	}
	f.addUser(1, "Duplex Agent", agentEmail, "admin")
	f.addUser(235323, "Johnny Agent", "johnny@example.com", "agent")
	f.addUser(20978392, "Jane Customer", "jane@example.org", "end-user")
	f.addUser(123123, "Jane Customer Two", "jane2@example.org", "end-user")
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) addUser(id int64, name, email, role string) {
	u := clone(f.userTpl)
	u["id"], u["name"], u["email"], u["role"] = float64(id), name, email, role
	u["url"] = fmt.Sprintf("https://company.zendesk.com/api/v2/users/%d.json", id)
	f.users[id] = u
}

// seedDocumented stores the documented ticket 35436 with a description
// comment (carrying the documented attachment), the documented public
// comment and an internal note.
func (f *fake) seedDocumented() {
	f.mu.Lock()
	defer f.mu.Unlock()
	tk := clone(f.ticketTpl)
	f.tickets[35436] = tk
	first := clone(f.commentTpl)
	first["id"], first["body"], first["author_id"] = 1273.0, tk["description"], 20978392.0
	reply := clone(f.commentTpl)
	reply["attachments"] = []any{}
	note := clone(reply)
	note["id"], note["body"], note["public"], note["author_id"] = 1275.0, "Customer is on the enterprise plan", false, 235323.0
	note["created_at"] = "2009-07-21T08:00:00Z"
	f.comments[35436] = []map[string]any{first, reply, note}
	f.files[498483] = []byte("crash log bytes")
	f.log = append(f.log, change{35436, time.Date(2011, 5, 5, 10, 38, 52, 0, time.UTC)})
}

// add stores a new ticket as a person would create it, stamped now.
func (f *fake) add(subject string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.create(map[string]any{"subject": subject, "comment": map[string]any{"body": subject + " (description)", "public": true}}, 20978392)
}

// create makes a ticket from a create request's ticket object.
func (f *fake) create(in map[string]any, requester int64) int64 {
	id := f.nextID
	f.nextID++
	tk := clone(f.ticketTpl)
	cm := in["comment"].(map[string]any)
	tk["id"], tk["url"] = float64(id), fmt.Sprintf("https://company.zendesk.com/api/v2/tickets/%d.json", id)
	tk["description"], tk["status"], tk["priority"], tk["type"] = cm["body"], "new", nil, nil
	tk["external_id"], tk["assignee_id"], tk["group_id"], tk["tags"] = nil, nil, nil, []any{}
	tk["custom_fields"] = []any{map[string]any{"id": 27642.0, "value": nil}, map[string]any{"id": 27648.0, "value": nil}}
	tk["requester_id"], tk["created_at"] = float64(requester), stamp(f.now)
	f.tickets[id] = tk
	f.apply(id, in)
	f.addComment(id, cm, 1)
	return id
}

func (f *fake) addComment(id int64, cm map[string]any, author int64) map[string]any {
	c := clone(f.commentTpl)
	c["id"], c["body"], c["author_id"], c["created_at"] = float64(f.nextComment), cm["body"], float64(author), stamp(f.now)
	f.nextComment++
	c["public"] = cm["public"] != false
	c["attachments"] = []any{}
	for _, tok := range asList(cm["uploads"]) {
		if a, ok := f.uploads[tok.(string)]; ok {
			c["attachments"] = append(c["attachments"].([]any), a)
		}
	}
	f.comments[id] = append(f.comments[id], c)
	return c
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// apply writes a create or update request's fields to ticket id, as
// Zendesk does, and stamps it.
func (f *fake) apply(id int64, in map[string]any) {
	tk := f.tickets[id]
	for k, v := range in {
		switch k {
		case "subject", "status", "priority", "type", "tags", "external_id", "group_id", "assignee_id":
			tk[k] = v
		case "assignee_email":
			for uid, u := range f.users {
				if u["email"] == v {
					tk["assignee_id"] = float64(uid)
				}
			}
		case "custom_fields":
			for _, cv := range asList(v) {
				for _, have := range asList(tk["custom_fields"]) {
					if have.(map[string]any)["id"] == cv.(map[string]any)["id"] {
						have.(map[string]any)["value"] = cv.(map[string]any)["value"]
					}
				}
			}
		}
	}
	f.touch(id)
}

func (f *fake) touch(id int64) {
	f.tickets[id]["updated_at"] = stamp(f.now)
	f.log = append(f.log, change{id, f.now})
}

func (f *fake) setNow(t time.Time) {
	f.mu.Lock()
	f.now = t
	f.mu.Unlock()
}

func (f *fake) requestLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *fake) lastBody() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bodies) == 0 {
		return nil
	}
	return f.bodies[len(f.bodies)-1]
}

func (f *fake) writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Errorf("fake: %v", err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b)
}

func (f *fake) writeFile(w http.ResponseWriter, code int, name string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(load(f.t, name))
}

var (
	reTicket     = regexp.MustCompile(`^/api/v2/tickets/(\d+)\.json$`)
	reComments   = regexp.MustCompile(`^/api/v2/tickets/(\d+)/comments\.json$`)
	reAttachment = regexp.MustCompile(`^/api/v2/attachments/(\d+)\.json$`)
	reFile       = regexp.MustCompile(`^/attachments/token/(\d+)/$`)
)

// wantQuery fails the test unless the request's query has exactly keys.
func (f *fake) wantQuery(r *http.Request, keys ...string) {
	var got []string
	for k := range r.URL.Query() {
		got = append(got, k)
	}
	sort.Strings(got)
	sort.Strings(keys)
	if strings.Join(got, ",") != strings.Join(keys, ",") {
		f.t.Errorf("%s %s: query keys %v, want %v", r.Method, r.URL, got, keys)
	}
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	if f.intercept != nil && f.intercept(w, r) {
		return
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(agentEmail+"/token:"+apiToken))
	if r.Header.Get("Authorization") != want {
		f.writeFile(w, http.StatusUnauthorized, "unauthorized.json")
		return
	}
	if reFile.MatchString(r.URL.Path) {
		f.serveFile(w, r)
		return
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		f.t.Errorf("%s %s: Accept %q", r.Method, r.URL, got)
	}
	if r.Method == "POST" && r.URL.Path == "/api/v2/uploads.json" {
		f.serveUpload(w, r)
		return
	}
	var body map[string]any
	if r.Method == "POST" || r.Method == "PUT" {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			f.t.Errorf("%s %s: Content-Type %q", r.Method, r.URL, ct)
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			f.t.Errorf("%s %s: body: %v", r.Method, r.URL, err)
		}
		f.bodies = append(f.bodies, body)
		if len(body) != 1 || body["ticket"] == nil {
			f.t.Errorf("%s %s: body must be {\"ticket\": {...}}, got %v", r.Method, r.URL, body)
		}
	} else if r.ContentLength > 0 {
		f.t.Errorf("%s %s: unexpected body", r.Method, r.URL)
	}
	f.route(w, r, body)
}

func (f *fake) route(w http.ResponseWriter, r *http.Request, body map[string]any) {
	p := r.URL.Path
	switch {
	case r.Method == "GET" && p == "/api/v2/users/me.json":
		f.wantQuery(r)
		f.writeJSON(w, 200, map[string]any{"user": f.users[1]})
	case r.Method == "GET" && p == "/api/v2/users/show_many.json":
		f.wantQuery(r, "ids")
		var out []any
		for _, s := range strings.Split(r.URL.Query().Get("ids"), ",") {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				f.t.Errorf("show_many: id %q", s)
			}
			if u, ok := f.users[n]; ok {
				out = append(out, u)
			}
		}
		f.writeJSON(w, 200, map[string]any{"users": out, "next_page": nil, "previous_page": nil, "count": len(out)})
	case r.Method == "GET" && p == "/api/v2/ticket_fields.json":
		f.wantQuery(r)
		f.writeFile(w, 200, "ticket_fields.json")
	case r.Method == "GET" && p == "/api/v2/incremental/tickets/cursor.json":
		f.serveExport(w, r)
	case r.Method == "GET" && p == "/api/v2/tickets.json":
		f.wantQuery(r, "external_id")
		var out []any
		for _, id := range f.ids() {
			if f.tickets[id]["external_id"] == r.URL.Query().Get("external_id") {
				out = append(out, f.tickets[id])
			}
		}
		f.writeJSON(w, 200, map[string]any{"tickets": out, "next_page": nil, "previous_page": nil, "count": len(out)})
	case r.Method == "POST" && p == "/api/v2/tickets.json":
		f.wantQuery(r)
		in := body["ticket"].(map[string]any)
		if in["comment"] == nil {
			f.writeFile(w, 422, "record_invalid.json")
			return
		}
		id := f.create(in, 1)
		f.writeJSON(w, 201, map[string]any{"ticket": f.tickets[id], "audit": map[string]any{"events": []any{}}})
	case reTicket.MatchString(p):
		id, _ := strconv.ParseInt(reTicket.FindStringSubmatch(p)[1], 10, 64)
		f.wantQuery(r)
		f.serveTicket(w, r, id, body)
	case r.Method == "GET" && reComments.MatchString(p):
		id, _ := strconv.ParseInt(reComments.FindStringSubmatch(p)[1], 10, 64)
		f.serveComments(w, r, id)
	case r.Method == "GET" && reAttachment.MatchString(p):
		f.wantQuery(r)
		id, _ := strconv.ParseInt(reAttachment.FindStringSubmatch(p)[1], 10, 64)
		if _, ok := f.files[id]; !ok {
			f.writeFile(w, 404, "not_found.json")
			return
		}
		a := clone(f.commentTpl)["attachments"].([]any)[0].(map[string]any)
		a["id"], a["size"] = float64(id), float64(len(f.files[id]))
		a["content_url"] = fmt.Sprintf("%s/attachments/token/%d/", f.srv.URL, id)
		f.writeJSON(w, 200, map[string]any{"attachment": a})
	default:
		f.t.Errorf("fake: unexpected %s %s", r.Method, r.URL)
		f.writeFile(w, 404, "not_found.json")
	}
}

func (f *fake) ids() []int64 {
	var ids []int64
	for id := range f.tickets {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func (f *fake) serveTicket(w http.ResponseWriter, r *http.Request, id int64, body map[string]any) {
	tk, ok := f.tickets[id]
	if !ok || tk["status"] == "deleted" {
		f.writeFile(w, 404, "not_found.json")
		return
	}
	switch r.Method {
	case "GET":
		f.writeJSON(w, 200, map[string]any{"ticket": tk})
	case "PUT":
		if tk["status"] == "closed" {
			f.writeFile(w, 422, "record_invalid.json")
			return
		}
		in := body["ticket"].(map[string]any)
		events := []any{}
		if cm, ok := in["comment"].(map[string]any); ok {
			c := f.addComment(id, cm, 1)
			ev := clone(c)
			delete(ev, "created_at") // audit events carry no stamp of their own
			events = append(events, ev)
		}
		f.apply(id, in)
		f.writeJSON(w, 200, map[string]any{"ticket": tk, "audit": map[string]any{"events": events}})
	default:
		f.t.Errorf("fake: unexpected %s %s", r.Method, r.URL)
	}
}

// serveComments pages with cursor pagination: page[size] (capped) and
// page[after] = the last comment id given.
func (f *fake) serveComments(w http.ResponseWriter, r *http.Request, id int64) {
	q := r.URL.Query()
	if q.Get("page[after]") != "" {
		f.wantQuery(r, "page[size]", "page[after]")
	} else {
		f.wantQuery(r, "page[size]")
	}
	size, err := strconv.Atoi(q.Get("page[size]"))
	if err != nil || size < 1 || size > 100 {
		f.t.Errorf("comments: page[size] %q", q.Get("page[size]"))
	}
	size = min(size, f.commentCap)
	all := f.comments[id]
	start := 0
	if after := q.Get("page[after]"); after != "" {
		for i, c := range all {
			if fmt.Sprint(int64(c["id"].(float64))) == after {
				start = i + 1
			}
		}
	}
	end := min(start+size, len(all))
	page := all[start:end]
	meta := map[string]any{"has_more": end < len(all), "after_cursor": nil, "before_cursor": nil}
	if end < len(all) {
		meta["after_cursor"] = fmt.Sprint(int64(page[len(page)-1]["id"].(float64)))
	}
	f.writeJSON(w, 200, map[string]any{"comments": page, "meta": meta, "links": map[string]any{"next": nil, "prev": nil}})
}

// serveExport is the cursor-based incremental ticket export over the
// change log: a cursor is a position in the log (opaque base64 to the
// client), a page holds each changed ticket once, as it is now.
func (f *fake) serveExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pos := 0
	if c := q.Get("cursor"); c != "" {
		f.wantQuery(r, "cursor", "per_page")
		b, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			f.writeFile(w, 422, "record_invalid.json")
			return
		}
		pos, _ = strconv.Atoi(string(b))
	} else {
		f.wantQuery(r, "start_time", "per_page")
		st, err := strconv.ParseInt(q.Get("start_time"), 10, 64)
		if err != nil {
			f.t.Errorf("export: start_time %q", q.Get("start_time"))
		}
		for pos < len(f.log) && f.log[pos].at.Unix() < st {
			pos++
		}
	}
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per < 1 || per > 1000 {
		f.t.Errorf("export: per_page %q", q.Get("per_page"))
	}
	var out []any
	seen := map[int64]bool{}
	for pos < len(f.log) && len(out) < per {
		id := f.log[pos].id
		pos++
		if !seen[id] {
			seen[id] = true
			out = append(out, f.tickets[id])
		}
	}
	doc := loadMap(f.t, "incremental_cursor.json")
	cur := base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(pos)))
	doc["after_cursor"], doc["after_url"] = cur, f.srv.URL+"/api/v2/incremental/tickets/cursor.json?cursor="+cur
	doc["end_of_stream"], doc["tickets"] = pos == len(f.log), out
	f.writeJSON(w, 200, doc)
}

func (f *fake) serveUpload(w http.ResponseWriter, r *http.Request) {
	f.wantQuery(r, "filename")
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client broke off: nothing is stored
	}
	if r.ContentLength != int64(len(data)) {
		f.t.Errorf("upload: Content-Length %d, body %d bytes", r.ContentLength, len(data))
	}
	doc := loadMap(f.t, "upload.json")
	up := doc["upload"].(map[string]any)
	a := up["attachment"].(map[string]any)
	id := int64(900000 + len(f.files))
	a["id"], a["file_name"], a["size"], a["content_type"] = float64(id), r.URL.Query().Get("filename"), float64(len(data)), r.Header.Get("Content-Type")
	up["attachments"] = []any{a}
	up["token"] = fmt.Sprintf("tok%d", id)
	f.files[id] = data
	f.uploads[up["token"].(string)] = a
	f.writeJSON(w, 201, doc)
}

func (f *fake) serveFile(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(reFile.FindStringSubmatch(r.URL.Path)[1], 10, 64)
	w.Header().Set("Content-Type", "text/plain")
	w.Write(f.files[id])
}
