package azuredevops_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	pat     = "adopat52charsxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	project = "Fabrikam-Fiber-TFVC"
)

// fake is the Azure DevOps work item tracking API of one project, built
// from the documented payloads in testdata/, that checks every request
// the connector sends.
type fake struct {
	t          *testing.T
	srv        *httptest.Server
	mu         sync.Mutex
	now        time.Time
	items      map[int64]map[string]any
	comments   map[int64][]map[string]any
	states     []string
	commentCap int
	nextID     int64
	nextCmt    int64
	requests   []string
	bodies     []any
	files      map[string][]byte // attachment GUID → bytes
	names      map[string]string // attachment GUID → file name
	intercept  func(w http.ResponseWriter, r *http.Request) bool
	itemTpl    map[string]any
	commentTpl map[string]any
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

func newFake(t *testing.T) *fake {
	f := &fake{
		t: t, now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		items: map[int64]map[string]any{}, comments: map[int64][]map[string]any{}, files: map[string][]byte{}, names: map[string]string{},
		commentCap: 200, nextID: 1, nextCmt: 100,
		itemTpl:    loadMap(t, "workitem.json"),
		commentTpl: loadMap(t, "comments.json")["comments"].([]any)[0].(map[string]any),
	}
	for _, s := range loadMap(t, "states.json")["value"].([]any) {
		f.states = append(f.states, s.(map[string]any)["name"].(string))
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// stamp returns the server clock as Azure DevOps writes it (milliseconds)
// and moves it on, so that every change has its own stamp.
func (f *fake) stamp() string {
	s := f.now.Format("2006-01-02T15:04:05.000Z")
	f.now = f.now.Add(300 * time.Millisecond)
	return s
}

// add stores a work item made from the documented one.
func (f *fake) add(title string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.create("Task", map[string]any{"System.Title": title})
}

func (f *fake) create(typ string, set map[string]any) int64 {
	id := f.nextID
	f.nextID++
	w := clone(f.itemTpl)
	w["id"], w["url"] = float64(id), fmt.Sprintf("https://dev.azure.com/fabrikam/_apis/wit/workItems/%d", id)
	fs := w["fields"].(map[string]any)
	fs["System.TeamProject"], fs["System.AreaPath"], fs["System.IterationPath"] = project, project, project
	fs["System.WorkItemType"] = typ
	st := f.stamp()
	fs["System.CreatedDate"], fs["System.ChangedDate"] = st, st
	for k, v := range set {
		fs[k] = v
	}
	f.items[id] = w
	return id
}

func (f *fake) touch(id int64) {
	w := f.items[id]
	w["rev"] = w["rev"].(float64) + 1
	w["fields"].(map[string]any)["System.ChangedDate"] = f.stamp()
}

func (f *fake) set(id int64, ref string, v any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items[id]["fields"].(map[string]any)[ref] = v
	f.touch(id)
}

func (f *fake) requestLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *fake) lastBody() any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[len(f.bodies)-1]
}

func (f *fake) writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8; api-version=7.1")
	w.WriteHeader(code)
	w.Write(b)
}

func (f *fake) writeFile(w http.ResponseWriter, code int, name string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(load(f.t, name))
}

func (f *fake) wantQuery(r *http.Request, want map[string]string) {
	q := r.URL.Query()
	if len(q) != len(want) {
		f.t.Errorf("%s %s: query %v, want %v", r.Method, r.URL, q, want)
	}
	for k, v := range want {
		if got := q.Get(k); got != v && v != "*" {
			f.t.Errorf("%s %s: %s=%q, want %q", r.Method, r.URL, k, got, v)
		}
	}
}

var (
	proj       = "/" + project + "/_apis/wit"
	reItem     = regexp.MustCompile(`^` + proj + `/workitems/(\d+)$`)
	reCreate   = regexp.MustCompile(`^` + proj + `/workitems/\$([A-Za-z ]+)$`)
	reComments = regexp.MustCompile(`^` + proj + `/workItems/(\d+)/comments$`)
	reFile     = regexp.MustCompile(`^` + proj + `/attachments/([0-9a-f-]{36})$`)
	reStates   = regexp.MustCompile(`^` + proj + `/workitemtypes/([A-Za-z ]+)/states$`)
	// The queries the connector may send, and nothing else.
	rePoll = regexp.MustCompile(`^SELECT \[System\.Id\] FROM WorkItems WHERE \[System\.TeamProject\] = @project` +
		`(?: AND \[System\.ChangedDate\] >= '([0-9TZ:-]+)')?(?: AND \[System\.AreaPath\] UNDER '([^']*)')? ORDER BY \[System\.ChangedDate\] ASC, \[System\.Id\] ASC$`)
	reFind = regexp.MustCompile(`^SELECT \[System\.Id\] FROM WorkItems WHERE \[System\.TeamProject\] = @project AND \[System\.Tags\] CONTAINS '([^']*)' ORDER BY \[System\.Id\] ASC$`)
)

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	if f.intercept != nil && f.intercept(w, r) {
		return
	}
	if r.Header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(":"+pat)) {
		// What Azure DevOps does with a token it does not accept.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNonAuthoritativeInfo)
		w.Write([]byte("<html><head><title>Azure DevOps Services | Sign In</title></head></html>"))
		return
	}
	wantAccept := "application/json"
	if reFile.MatchString(r.URL.Path) {
		wantAccept = "application/octet-stream"
	}
	if got := r.Header.Get("Accept"); got != wantAccept {
		f.t.Errorf("%s %s: Accept %q", r.Method, r.URL, got)
	}
	if r.Method == "POST" && r.URL.Path == proj+"/attachments" {
		f.serveUpload(w, r)
		return
	}
	var body any
	if r.Method == "POST" || r.Method == "PATCH" {
		wantCT := "application/json"
		if reCreate.MatchString(r.URL.Path) || r.Method == "PATCH" {
			wantCT = "application/json-patch+json"
		}
		if ct := r.Header.Get("Content-Type"); ct != wantCT {
			f.t.Errorf("%s %s: Content-Type %q, want %q", r.Method, r.URL, ct, wantCT)
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			f.t.Errorf("%s %s: body: %v", r.Method, r.URL, err)
		}
		f.bodies = append(f.bodies, body)
	}
	f.route(w, r, body)
}

func (f *fake) route(w http.ResponseWriter, r *http.Request, body any) {
	p := r.URL.Path
	v71 := map[string]string{"api-version": "7.1"}
	expand := map[string]string{"api-version": "7.1", "$expand": "relations"}
	switch {
	case r.Method == "GET" && p == "/_apis/projects/"+project:
		f.wantQuery(r, v71)
		f.writeFile(w, 200, "project.json")
	case r.Method == "GET" && strings.HasPrefix(p, "/_apis/projects/"):
		f.writeFile(w, 404, "not_found.json")
	case r.Method == "POST" && p == proj+"/wiql":
		f.wantQuery(r, map[string]string{"api-version": "7.1", "timePrecision": "true", "$top": "*"})
		f.serveWIQL(w, r, body)
	case r.Method == "POST" && p == proj+"/workitemsbatch":
		f.wantQuery(r, v71)
		m := body.(map[string]any)
		if len(m) != 3 || m["errorPolicy"] != "omit" || m["$expand"] != "relations" || len(m["ids"].([]any)) > 200 {
			f.t.Errorf("batch body %v", m)
		}
		var out []any
		for _, id := range m["ids"].([]any) {
			if it, ok := f.items[int64(id.(float64))]; ok {
				out = append(out, it)
			} else {
				out = append(out, nil)
			}
		}
		f.writeJSON(w, 200, map[string]any{"count": len(out), "value": out})
	case reItem.MatchString(p):
		f.wantQuery(r, expand)
		id, _ := strconv.ParseInt(reItem.FindStringSubmatch(p)[1], 10, 64)
		it, ok := f.items[id]
		if !ok {
			f.writeFile(w, 404, "not_found.json")
			return
		}
		if r.Method == "PATCH" {
			if !f.applyPatch(w, id, body) {
				return
			}
		} else if r.Method != "GET" {
			f.t.Errorf("unexpected %s %s", r.Method, p)
		}
		f.writeJSON(w, 200, it)
	case r.Method == "POST" && reCreate.MatchString(p):
		f.wantQuery(r, expand)
		id := f.create(reCreate.FindStringSubmatch(p)[1], map[string]any{"System.Title": ""})
		if !f.applyPatch(w, id, body) {
			delete(f.items, id)
			return
		}
		f.writeJSON(w, 200, f.items[id])
	case reComments.MatchString(p):
		id, _ := strconv.ParseInt(reComments.FindStringSubmatch(p)[1], 10, 64)
		f.serveComments(w, r, id, body)
	case r.Method == "GET" && reFile.MatchString(p):
		f.wantQuery(r, map[string]string{"api-version": "7.1", "download": "true"})
		data, ok := f.files[reFile.FindStringSubmatch(p)[1]]
		if !ok {
			f.writeFile(w, 404, "not_found.json")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(data)
	case r.Method == "GET" && reStates.MatchString(p):
		f.wantQuery(r, v71)
		f.writeFile(w, 200, "states.json")
	default:
		f.t.Errorf("fake: unexpected %s %s", r.Method, r.URL)
		f.writeFile(w, 404, "not_found.json")
	}
}

// applyPatch applies JSON Patch "add"/"remove" operations on /fields/*;
// a state the type does not have is a rule error, as Azure DevOps answers.
func (f *fake) applyPatch(w http.ResponseWriter, id int64, body any) bool {
	fs := f.items[id]["fields"].(map[string]any)
	ops, ok := body.([]any)
	if !ok || len(ops) == 0 {
		f.t.Errorf("patch body %v", body)
	}
	for _, o := range ops {
		op := o.(map[string]any)
		path, _ := op["path"].(string)
		if path == "/relations/-" && op["op"] == "add" {
			rel := clone(op["value"].(map[string]any)) // the logged body stays as sent
			u, _ := url.Parse(rel["url"].(string))
			guid := u.Path[strings.LastIndex(u.Path, "/")+1:]
			attrs := rel["attributes"].(map[string]any)
			attrs["name"], attrs["resourceSize"], attrs["resourceCreatedDate"] = f.names[guid], len(f.files[guid]), f.now.Format(time.RFC3339)
			rels, _ := f.items[id]["relations"].([]any)
			f.items[id]["relations"] = append(rels, rel)
			continue
		}
		ref, isField := strings.CutPrefix(path, "/fields/")
		if !isField {
			f.t.Errorf("patch path %q", path)
			continue
		}
		switch op["op"] {
		case "add", "replace":
			if ref == "System.State" && !contains(f.states, op["value"].(string)) {
				f.writeFile(w, 400, "rule_error.json")
				return false
			}
			fs[ref] = op["value"]
		case "remove":
			delete(fs, ref)
		default:
			f.t.Errorf("patch op %v", op)
		}
	}
	f.touch(id)
	return true
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func (f *fake) serveWIQL(w http.ResponseWriter, r *http.Request, body any) {
	m := body.(map[string]any)
	q, _ := m["query"].(string)
	if len(m) != 1 {
		f.t.Errorf("wiql body %v", m)
	}
	top, err := strconv.Atoi(r.URL.Query().Get("$top"))
	if err != nil || top < 1 || top > 20000 {
		f.t.Errorf("wiql $top %q", r.URL.Query().Get("$top"))
	}
	var ids []int64
	for id := range f.items {
		ids = append(ids, id)
	}
	changed := func(id int64) time.Time {
		t, _ := time.Parse(time.RFC3339Nano, f.items[id]["fields"].(map[string]any)["System.ChangedDate"].(string))
		return t
	}
	var keep func(id int64) bool
	if mm := rePoll.FindStringSubmatch(q); mm != nil {
		var since time.Time
		if mm[1] != "" {
			if since, err = time.Parse(time.RFC3339, mm[1]); err != nil {
				f.t.Errorf("wiql date %q", mm[1])
			}
		}
		keep = func(id int64) bool { return !changed(id).Before(since) }
		sort.Slice(ids, func(i, j int) bool {
			if !changed(ids[i]).Equal(changed(ids[j])) {
				return changed(ids[i]).Before(changed(ids[j]))
			}
			return ids[i] < ids[j]
		})
	} else if mm := reFind.FindStringSubmatch(q); mm != nil {
		keep = func(id int64) bool {
			for _, t := range strings.Split(fmt.Sprint(f.items[id]["fields"].(map[string]any)["System.Tags"]), ";") {
				if strings.TrimSpace(t) == mm[1] {
					return true
				}
			}
			return false
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	} else {
		f.t.Errorf("unexpected WIQL %q", q)
		f.writeFile(w, 400, "not_found.json")
		return
	}
	doc := loadMap(f.t, "wiql.json")
	var out []any
	for _, id := range ids {
		if keep(id) && len(out) < top {
			out = append(out, map[string]any{"id": id, "url": fmt.Sprintf("https://dev.azure.com/fabrikam/_apis/wit/workItems/%d", id)})
		}
	}
	doc["workItems"], doc["asOf"] = out, f.now.Format("2006-01-02T15:04:05.000Z")
	f.writeJSON(w, 200, doc)
}

func (f *fake) serveComments(w http.ResponseWriter, r *http.Request, id int64, body any) {
	if _, ok := f.items[id]; !ok {
		f.writeFile(w, 404, "not_found.json")
		return
	}
	if r.Method == "POST" {
		f.wantQuery(r, map[string]string{"api-version": "7.1-preview.4"})
		m := body.(map[string]any)
		if len(m) != 1 || m["text"] == nil {
			f.t.Errorf("comment body %v", m)
		}
		c := clone(f.commentTpl)
		c["workItemId"], c["commentId"], c["text"] = id, f.nextCmt, m["text"]
		c["createdBy"].(map[string]any)["displayName"] = "Duplex Sync"
		f.nextCmt++
		c["createdDate"] = f.stamp()
		f.comments[id] = append(f.comments[id], c)
		fs := f.items[id]["fields"].(map[string]any)
		fs["System.CommentCount"] = float64(len(f.comments[id]))
		f.touch(id)
		f.writeJSON(w, 200, c)
		return
	}
	q := r.URL.Query()
	want := map[string]string{"api-version": "7.1-preview.4", "$top": "200"}
	start := 0
	if tok := q.Get("continuationToken"); tok != "" {
		want["continuationToken"] = tok
		start, _ = strconv.Atoi(tok)
	}
	f.wantQuery(r, want)
	all := f.comments[id]
	end := min(start+f.commentCap, len(all))
	doc := map[string]any{"totalCount": len(all), "count": end - start, "comments": all[start:end]}
	if end < len(all) {
		doc["continuationToken"] = strconv.Itoa(end)
	}
	f.writeJSON(w, 200, doc)
}

// serveUpload stores an attachment upload and answers its id and url
// ("Attachments - Create": {"id", "url"}).
func (f *fake) serveUpload(w http.ResponseWriter, r *http.Request) {
	f.wantQuery(r, map[string]string{"api-version": "7.1", "fileName": "*"})
	if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
		f.t.Errorf("upload Content-Type %q", ct)
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client broke off: nothing is stored
	}
	if r.ContentLength != int64(len(data)) {
		f.t.Errorf("upload: Content-Length %d for %d bytes", r.ContentLength, len(data))
	}
	guid := fmt.Sprintf("6b2266bf-a155-4582-a475-ca4da68193%02x", len(f.files))
	f.files[guid], f.names[guid] = data, r.URL.Query().Get("fileName")
	f.writeJSON(w, 201, map[string]any{"id": guid, "url": "https://dev.azure.com/fabrikam/_apis/wit/attachments/" + guid + "?fileName=" + r.URL.Query().Get("fileName")})
}
