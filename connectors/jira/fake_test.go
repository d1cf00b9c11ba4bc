package jira

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

// fakeJira is a small Jira Cloud REST v3 served from the documented
// payloads in testdata/ (see testdata/README.md). It keeps issues and
// comments in memory, applies writes the way Jira does (ADF bodies,
// {"name"}/{"accountId"}/{"value"} references, transitions by id), and
// records every request so tests can check what the connector sent.
type fakeJira struct {
	t   *testing.T
	srv *httptest.Server

	mu          sync.Mutex
	now         time.Time
	issues      map[string]map[string]any // key → issue object
	comments    map[string][]map[string]any
	nextID      int
	nextComment int
	pageCap     int  // most issues one search page returns (Jira may return fewer than asked)
	serviceDesk bool // comments get jsdPublic (Jira Service Management)
	reqs        []record
	fail        func(r *http.Request) (int, http.Header, string, bool)
	users       []map[string]any
}

type record struct {
	Method, Path, Query string
	Body                map[string]any
}

const (
	testEmail = "mia@example.com"
	testToken = "api-token-1"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newFake(t *testing.T) *fakeJira {
	f := &fakeJira{t: t, issues: map[string]map[string]any{}, comments: map[string][]map[string]any{},
		nextID: 10100, nextComment: 10100, pageCap: 100,
		now: time.Date(2026, 3, 10, 4, 20, 5, 0, time.UTC)}
	var seed map[string]any
	must(t, json.Unmarshal(readTestdata(t, "issue_get.json"), &seed))
	f.issues["EX-1"] = seed
	var cms struct {
		Comments []map[string]any `json:"comments"`
	}
	must(t, json.Unmarshal(readTestdata(t, "comments.json"), &cms))
	f.comments["EX-1"] = cms.Comments
	must(t, json.Unmarshal(readTestdata(t, "user_search.json"), &f.users))
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-0700") }

// requests returns the recorded requests matching method and path prefix.
func (f *fakeJira) requests(method, prefix string) []record {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []record
	for _, r := range f.reqs {
		if r.Method == method && strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeJira) reset() {
	f.mu.Lock()
	f.reqs = nil
	f.mu.Unlock()
}

func (f *fakeJira) tick(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// seedIssue adds an issue stamped at updated, as another Jira user would.
func (f *fakeJira) seedIssue(key, summary string, updated time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.issues[key] = map[string]any{"id": strconv.Itoa(f.nextID), "key": key, "self": f.srv.URL + api + "/issue/" + strconv.Itoa(f.nextID),
		"fields": map[string]any{"summary": summary, "status": map[string]any{"id": "10000", "name": "To Do"},
			"project": map[string]any{"id": "10000", "key": "EX"}, "issuetype": map[string]any{"id": "10001", "name": "Task"},
			"labels": []any{}, "created": stamp(updated), "updated": stamp(updated)}}
}

func (f *fakeJira) setField(key, field string, v any, updated time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.issues[key]["fields"].(map[string]any)
	fl[field] = v
	fl["updated"] = stamp(updated)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	switch x := v.(type) {
	case []byte:
		w.Write(x)
	case string:
		io.WriteString(w, x)
	default:
		json.NewEncoder(w).Encode(x)
	}
}

func jiraError(w http.ResponseWriter, code int, msgs []string, errs map[string]string) {
	if msgs == nil {
		msgs = []string{}
	}
	if errs == nil {
		errs = map[string]string{}
	}
	writeJSON(w, code, map[string]any{"errorMessages": msgs, "errors": errs})
}

var (
	reIssuePath = regexp.MustCompile(`^/rest/api/3/issue/([A-Z]+-\d+)(/comment|/transitions|/comment/(\d+))?$`)
	rePollJQL   = regexp.MustCompile(`^project = "EX"( AND \((.*)\))?( AND updated >= "(\d{4}-\d\d-\d\d \d\d:\d\d)")? ORDER BY updated ASC, key ASC$`)
	reCorrJQL   = regexp.MustCompile(`^project = "EX" AND cf\[(\d+)\] ~ "\\"(.*)\\""$`)
)

func (f *fakeJira) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	rec := record{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &rec.Body); err != nil {
			f.t.Errorf("%s %s: body is not a JSON object: %s", r.Method, r.URL.Path, raw)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			f.t.Errorf("%s %s: Content-Type %q", r.Method, r.URL.Path, ct)
		}
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	fail := f.fail
	f.mu.Unlock()
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(testEmail+":"+testToken))
	if r.Header.Get("Authorization") != want {
		writeJSON(w, 401, readTestdata(f.t, "error_401.json"))
		return
	}
	if fail != nil {
		if code, h, body, ok := fail(r); ok {
			for k, v := range h {
				w.Header()[k] = v
			}
			writeJSON(w, code, body)
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p := r.URL.Path
	switch {
	case r.Method == "GET" && p == api+"/myself":
		writeJSON(w, 200, readTestdata(f.t, "myself.json"))
	case r.Method == "GET" && p == api+"/project/EX":
		writeJSON(w, 200, readTestdata(f.t, "project.json"))
	case r.Method == "GET" && strings.HasPrefix(p, api+"/project/"):
		jiraError(w, 404, []string{"No project could be found with key '" + strings.TrimPrefix(p, api+"/project/") + "'."}, nil)
	case r.Method == "GET" && p == api+"/field":
		writeJSON(w, 200, readTestdata(f.t, "field.json"))
	case r.Method == "GET" && p == api+"/user/search":
		q := strings.ToLower(r.URL.Query().Get("query"))
		var out []map[string]any
		for _, u := range f.users {
			if strings.Contains(strings.ToLower(u["displayName"].(string)), q) {
				out = append(out, u)
			}
		}
		if out == nil {
			out = []map[string]any{}
		}
		writeJSON(w, 200, out)
	case r.Method == "POST" && p == api+"/search/jql":
		f.search(w, rec.Body)
	case r.Method == "POST" && p == api+"/issue":
		f.create(w, rec.Body)
	default:
		m := reIssuePath.FindStringSubmatch(p)
		if m == nil {
			jiraError(w, 404, []string{"no such resource " + p}, nil)
			return
		}
		is, ok := f.issues[m[1]]
		if !ok {
			writeJSON(w, 404, readTestdata(f.t, "error_404.json"))
			return
		}
		switch {
		case m[2] == "" && r.Method == "GET":
			writeJSON(w, 200, is)
		case m[2] == "" && r.Method == "PUT":
			if f.applyFields(w, is["fields"].(map[string]any), rec.Body) {
				w.WriteHeader(204)
			}
		case m[2] == "" && r.Method == "DELETE":
			delete(f.issues, m[1])
			w.WriteHeader(204)
		case m[2] == "/comment" && r.Method == "GET":
			f.listComments(w, r, m[1])
		case m[2] == "/comment" && r.Method == "POST":
			f.addComment(w, m[1], rec.Body)
		case m[3] != "" && r.Method == "DELETE":
			cms := f.comments[m[1]]
			for i, c := range cms {
				if c["id"] == m[3] {
					f.comments[m[1]] = append(cms[:i], cms[i+1:]...)
					w.WriteHeader(204)
					return
				}
			}
			jiraError(w, 404, []string{"comment not found"}, nil)
		case m[2] == "/transitions" && r.Method == "GET":
			writeJSON(w, 200, map[string]any{"transitions": f.transitionsFrom(status(is))})
		case m[2] == "/transitions" && r.Method == "POST":
			id, _ := rec.Body["transition"].(map[string]any)["id"].(string)
			for _, tr := range f.transitionsFrom(status(is)) {
				if tr["id"] == id {
					fl := is["fields"].(map[string]any)
					fl["status"] = map[string]any{"name": tr["to"].(map[string]any)["name"], "id": tr["to"].(map[string]any)["id"]}
					fl["updated"] = stamp(f.now)
					w.WriteHeader(204)
					return
				}
			}
			jiraError(w, 400, []string{"Transition id '" + id + "' is not valid for this issue."}, nil)
		default:
			jiraError(w, 405, []string{"method not allowed"}, nil)
		}
	}
}

func status(is map[string]any) string {
	st, _ := is["fields"].(map[string]any)["status"].(map[string]any)
	s, _ := st["name"].(string)
	return s
}

// transitionsFrom is the fake's workflow. From "To Do" it serves the
// documented example (testdata/transitions.json) verbatim.
func (f *fakeJira) transitionsFrom(st string) []map[string]any {
	tr := func(id, name, to, toID string) map[string]any {
		return map[string]any{"id": id, "name": name, "hasScreen": false, "isAvailable": true,
			"to": map[string]any{"id": toID, "name": to, "statusCategory": map[string]any{"key": "indeterminate"}}}
	}
	switch st {
	case "To Do":
		var doc struct {
			Transitions []map[string]any `json:"transitions"`
		}
		must(f.t, json.Unmarshal(readTestdata(f.t, "transitions.json"), &doc))
		return doc.Transitions
	case "In Progress":
		return []map[string]any{tr("21", "Finish", "Done", "10002"), tr("31", "Stop work", "To Do", "10000")}
	default:
		return []map[string]any{tr("41", "Reopen", "To Do", "10000")}
	}
}

func (f *fakeJira) user(id string) (map[string]any, bool) {
	for _, u := range f.users {
		if u["accountId"] == id {
			return map[string]any{"accountId": id, "displayName": u["displayName"], "active": true}, true
		}
	}
	return nil, false
}

// applyFields writes a request's "fields" like Jira: false means an
// error answer was written.
func (f *fakeJira) applyFields(w http.ResponseWriter, fl map[string]any, body map[string]any) bool {
	in, ok := body["fields"].(map[string]any)
	if !ok {
		jiraError(w, 400, []string{"Request body must have fields"}, nil)
		return false
	}
	var defs []map[string]any
	must(f.t, json.Unmarshal(readTestdata(f.t, "field.json"), &defs))
	schema := map[string]map[string]any{}
	for _, d := range defs {
		schema[d["id"].(string)], _ = d["schema"].(map[string]any)
	}
	errs := map[string]string{}
	apply := map[string]any{}
	for k, v := range in {
		switch k {
		case "summary":
			if s, _ := v.(string); strings.TrimSpace(s) == "" {
				errs[k] = "You must specify a summary of the issue."
			}
		case "description":
			if v != nil {
				if d, ok := v.(map[string]any); !ok || d["type"] != "doc" || d["version"] != 1.0 {
					errs[k] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
				}
			}
		case "labels":
			if _, ok := v.([]any); !ok {
				errs[k] = "labels must be an array"
			}
		case "assignee", "reporter":
			if v == nil {
				break
			}
			u, ok := f.user(fmt.Sprint(v.(map[string]any)["accountId"]))
			if !ok {
				errs[k] = "Specify a valid value for " + k
				break
			}
			v = u
		case "priority", "issuetype", "project":
		default:
			sc, ok := schema[k]
			if !ok || !strings.HasPrefix(k, "customfield_") {
				errs[k] = "Field '" + k + "' cannot be set. It is not on the appropriate screen, or unknown."
				break
			}
			if sc["type"] == "number" {
				if _, ok := v.(float64); !ok && v != nil {
					errs[k] = "Operation value must be a number"
				}
			}
			if sc["type"] == "array" && sc["items"] == "user" {
				var users []any
				for _, e := range v.([]any) {
					u, ok := f.user(fmt.Sprint(e.(map[string]any)["accountId"]))
					if !ok {
						errs[k] = "user not found"
					}
					users = append(users, u)
				}
				v = users
			}
		}
		apply[k] = v
	}
	if len(errs) > 0 {
		jiraError(w, 400, nil, errs)
		return false
	}
	for k, v := range apply {
		fl[k] = v
	}
	fl["updated"] = stamp(f.now)
	return true
}

func (f *fakeJira) create(w http.ResponseWriter, body map[string]any) {
	in, _ := body["fields"].(map[string]any)
	if pr, _ := in["project"].(map[string]any); pr["key"] != "EX" {
		jiraError(w, 400, nil, map[string]string{"project": "valid project is required"})
		return
	}
	if _, ok := in["summary"]; !ok {
		jiraError(w, 400, nil, map[string]string{"summary": "You must specify a summary of the issue."})
		return
	}
	f.nextID++
	key := "EX-" + strconv.Itoa(len(f.issues)+1)
	for f.issues[key] != nil {
		key += "0"
	}
	fl := map[string]any{"status": map[string]any{"id": "10000", "name": "To Do"}, "labels": []any{},
		"created": stamp(f.now), "reporter": map[string]any{"accountId": "5b10a2844c20165700ede21g", "displayName": "Mia Krystof"}}
	if !f.applyFields(w, fl, body) {
		return
	}
	fl["project"] = map[string]any{"id": "10000", "key": "EX", "name": "Example"}
	if it, ok := fl["issuetype"].(map[string]any); ok {
		fl["issuetype"] = map[string]any{"id": "10001", "name": it["name"]}
	}
	id := strconv.Itoa(f.nextID)
	f.issues[key] = map[string]any{"id": id, "key": key, "self": f.srv.URL + api + "/issue/" + id, "fields": fl}
	// The documented answer (testdata/created.json) with this issue's id and key.
	var out map[string]any
	must(f.t, json.Unmarshal(readTestdata(f.t, "created.json"), &out))
	out["id"], out["key"], out["self"] = id, key, f.srv.URL+api+"/issue/"+id
	writeJSON(w, 201, out)
}

func (f *fakeJira) listComments(w http.ResponseWriter, r *http.Request, key string) {
	start, _ := strconv.Atoi(r.URL.Query().Get("startAt"))
	max, _ := strconv.Atoi(r.URL.Query().Get("maxResults"))
	if max <= 0 || max > 2 { // small pages: the connector must page
		max = 2
	}
	cms := f.comments[key]
	end := min(start+max, len(cms))
	if start > end {
		start = end
	}
	page := cms[start:end]
	if page == nil {
		page = []map[string]any{}
	}
	writeJSON(w, 200, map[string]any{"comments": page, "startAt": start, "maxResults": max, "total": len(cms)})
}

func (f *fakeJira) addComment(w http.ResponseWriter, key string, body map[string]any) {
	doc, ok := body["body"].(map[string]any)
	if !ok || doc["type"] != "doc" || doc["version"] != 1.0 {
		jiraError(w, 400, []string{"Comment body is not valid!"}, nil)
		return
	}
	f.nextComment++
	c := map[string]any{"id": strconv.Itoa(f.nextComment), "body": doc, "created": stamp(f.now), "updated": stamp(f.now),
		"author": map[string]any{"accountId": "5b10a2844c20165700ede21g", "displayName": "Mia Krystof"}}
	if v, ok := body["visibility"]; ok {
		c["visibility"] = v
	}
	if f.serviceDesk {
		internal := false
		if props, ok := body["properties"].([]any); ok {
			for _, p := range props {
				pm := p.(map[string]any)
				if pm["key"] == "sd.public.comment" {
					internal, _ = pm["value"].(map[string]any)["internal"].(bool)
				}
			}
		}
		c["jsdPublic"] = !internal
	}
	f.comments[key] = append(f.comments[key], c)
	f.issues[key]["fields"].(map[string]any)["updated"] = stamp(f.now)
	writeJSON(w, 201, c)
}

// search answers the poll's JQL (minute-resolution `updated`, read in the
// user's time zone as Jira does) and the correlation lookup, paging with
// nextPageToken.
func (f *fakeJira) search(w http.ResponseWriter, body map[string]any) {
	jql, _ := body["jql"].(string)
	loc, _ := time.LoadLocation("Australia/Sydney") // myself.json's timeZone
	var keys []string
	if m := reCorrJQL.FindStringSubmatch(jql); m != nil {
		for k, is := range f.issues {
			v, _ := is["fields"].(map[string]any)["customfield_"+m[1]].(string)
			if strings.Contains(v, m[2]) { // Jira's text search is not exact either
				keys = append(keys, k)
			}
		}
	} else if m := rePollJQL.FindStringSubmatch(jql); m != nil {
		var since time.Time
		if m[4] != "" {
			var err error
			if since, err = time.ParseInLocation("2006-01-02 15:04", m[4], loc); err != nil {
				jiraError(w, 400, []string{"Date value '" + m[4] + "' for field 'updated' is invalid."}, nil)
				return
			}
		}
		for k, is := range f.issues {
			if m[2] == "labels = todev" {
				labels, _ := is["fields"].(map[string]any)["labels"].([]any)
				if !containsAny(labels, "todev") {
					continue
				}
			} else if m[2] != "" {
				jiraError(w, 400, []string{"the fake knows no filter " + m[2]}, nil)
				return
			}
			up, _ := parseJiraTime(is["fields"].(map[string]any)["updated"].(string))
			if !up.Before(since) {
				keys = append(keys, k)
			}
		}
	} else {
		jiraError(w, 400, []string{"Error in the JQL Query: unexpected " + strconv.Quote(jql)}, nil)
		return
	}
	sort.Slice(keys, func(i, j int) bool {
		ui, _ := parseJiraTime(f.issues[keys[i]]["fields"].(map[string]any)["updated"].(string))
		uj, _ := parseJiraTime(f.issues[keys[j]]["fields"].(map[string]any)["updated"].(string))
		if !ui.Equal(uj) {
			return ui.Before(uj)
		}
		ni, _ := strconv.Atoi(strings.TrimPrefix(keys[i], "EX-"))
		nj, _ := strconv.Atoi(strings.TrimPrefix(keys[j], "EX-"))
		return ni < nj
	})
	start := 0
	if tok, ok := body["nextPageToken"].(string); ok {
		b, err := base64.StdEncoding.DecodeString(tok)
		if err != nil {
			jiraError(w, 400, []string{"bad nextPageToken"}, nil)
			return
		}
		start, _ = strconv.Atoi(string(b))
	}
	max := f.pageCap
	if mr, ok := body["maxResults"].(float64); ok && int(mr) < max {
		max = int(mr)
	}
	end := min(start+max, len(keys))
	out := map[string]any{"issues": []any{}, "isLast": end >= len(keys)}
	var issues []any
	for _, k := range keys[start:end] {
		issues = append(issues, f.issues[k])
	}
	if issues != nil {
		out["issues"] = issues
	}
	if end < len(keys) {
		out["nextPageToken"] = base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	writeJSON(w, 200, out)
}

func containsAny(l []any, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}
