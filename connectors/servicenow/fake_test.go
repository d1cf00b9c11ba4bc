package servicenow_test

import (
	"crypto/md5"
	"encoding/hex"
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
	user     = "duplex.integration"
	password = "sn-password-0123456789"
	clientID = "ac0dd3408c1031006907010c2cc6ef6d"
	secret   = "sn-client-secret-0123456789"
	snTime   = "2006-01-02 15:04:05"
)

type cell = map[string]any

// fake is the Table API of one instance (incident, sys_journal_field,
// sys_choice, /oauth_token.do), built from the documented payloads in
// testdata/, that checks every request the connector sends.
type fake struct {
	t         *testing.T
	srv       *httptest.Server
	mu        sync.Mutex
	now       time.Time
	records   map[string]map[string]cell // sys_id → column → {value, display_value}
	journal   []map[string]any
	choices   []map[string]any
	tokens    map[string]bool // OAuth access tokens the fake accepts
	tokenN    int
	requests  []string
	bodies    []map[string]any
	intercept func(w http.ResponseWriter, r *http.Request) bool
	tpl       map[string]cell
	files     []map[string]any // sys_attachment rows
	fileData  map[string][]byte
}

func load(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newFake(t *testing.T) *fake {
	f := &fake{t: t, now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), records: map[string]map[string]cell{}, tokens: map[string]bool{}, fileData: map[string][]byte{}}
	var inc struct {
		Result map[string]cell `json:"result"`
	}
	if err := json.Unmarshal(load(t, "incident.json"), &inc); err != nil {
		t.Fatal(err)
	}
	f.tpl = inc.Result
	var ch struct {
		Result []map[string]any `json:"result"`
	}
	json.Unmarshal(load(t, "sys_choice.json"), &ch)
	f.choices = ch.Result
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func sysID(seed string) string {
	h := md5.Sum([]byte(seed))
	return hex.EncodeToString(h[:])
}

func cloneRec(r map[string]cell) map[string]cell {
	out := map[string]cell{}
	for k, v := range r {
		out[k] = cell{"value": v["value"], "display_value": v["display_value"]}
	}
	return out
}

// seedDocumented stores the documented incident and its journal.
func (f *fake) seedDocumented() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := cloneRec(f.tpl)
	id := r["sys_id"]["value"].(string)
	f.records[id] = r
	var j struct {
		Result []map[string]any `json:"result"`
	}
	json.Unmarshal(load(f.t, "journal.json"), &j)
	for _, e := range j.Result {
		e["element_id"], e["name"] = id, "incident"
		f.journal = append(f.journal, e)
	}
	return id
}

// add stores a new incident as a person would create it, stamped now.
func (f *fake) add(short string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.insert(map[string]any{"short_description": short})
}

func (f *fake) insert(body map[string]any) string {
	r := cloneRec(f.tpl)
	id := sysID(fmt.Sprint(len(f.records), body))
	r["sys_id"] = cell{"value": id, "display_value": id}
	num := fmt.Sprintf("INC%07d", 10001+len(f.records))
	r["number"] = cell{"value": num, "display_value": num}
	r["sys_created_on"] = cell{"value": f.now.Format(snTime), "display_value": f.now.Format(snTime)}
	r["correlation_id"] = cell{"value": "", "display_value": ""}
	r["state"] = cell{"value": "1", "display_value": "New"}
	f.records[id] = r
	f.write(id, body)
	return id
}

// write sets columns given as display values (sysparm_input_display_value)
// and stamps the record.
func (f *fake) write(id string, body map[string]any) {
	r := f.records[id]
	for k, v := range body {
		s := fmt.Sprint(v)
		val := s
		switch k {
		case "assigned_to", "assignment_group", "caller_id":
			val = sysID(s)
		case "work_notes", "comments":
			f.journal = append(f.journal, map[string]any{"sys_id": sysID(fmt.Sprint(len(f.journal), s)), "element": k, "value": s,
				"sys_created_on": f.now.Format(snTime), "sys_created_by": user, "element_id": id, "name": "incident"})
			continue
		}
		for _, ch := range f.choices {
			if ch["element"] == k && ch["label"] == s {
				val = ch["value"].(string)
			}
		}
		r[k] = cell{"value": val, "display_value": s}
	}
	r["sys_updated_on"] = cell{"value": f.now.Format(snTime), "display_value": f.now.Format(snTime)}
	r["sys_updated_by"] = cell{"value": user, "display_value": user}
}

func (f *fake) requestLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *fake) lastBody() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[len(f.bodies)-1]
}

func (f *fake) writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(code)
	w.Write(b)
}

func (f *fake) writeFile(w http.ResponseWriter, code int, name string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(code)
	w.Write(load(f.t, name))
}

func (f *fake) wantQuery(r *http.Request, want map[string]string) {
	q := r.URL.Query()
	if len(q) != len(want) {
		f.t.Errorf("%s %s: query keys %d, want %v", r.Method, r.URL, len(q), want)
	}
	for k, v := range want {
		if got := q.Get(k); got != v && v != "*" {
			f.t.Errorf("%s %s: %s=%q, want %q", r.Method, r.URL, k, got, v)
		}
	}
}

var (
	reRecord  = regexp.MustCompile(`^/api/now/table/incident/([0-9a-f]{32})$`)
	rePoll    = regexp.MustCompile(`^(?:sys_updated_on>=(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\^)?(?:active=true\^)?ORDERBYsys_updated_on\^ORDERBYsys_id$`)
	reCorr    = regexp.MustCompile(`^correlation_id=([^^=]*)\^ORDERBYsys_created_on$`)
	reJAll    = regexp.MustCompile(`^element_id=([0-9a-f]{32})\^name=incident\^elementINcomments,work_notes\^ORDERBYsys_created_on$`)
	reJOne    = regexp.MustCompile(`^element_id=([0-9a-f]{32})\^name=incident\^element=(comments|work_notes)\^ORDERBYDESCsys_created_on$`)
	reFiles   = regexp.MustCompile(`^table_name=incident\^table_sys_id=([0-9a-f]{32})\^ORDERBYsys_created_on$`)
	reFile    = regexp.MustCompile(`^/api/now/attachment/([0-9a-f]{32})/file$`)
	reChoices = regexp.MustCompile(`^name=incident\^elementIN([a-z_,]+)\^inactive=false\^ORDERBYelement\^ORDERBYsequence$`)
)

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	w.Header().Set("Date", f.now.Format(http.TimeFormat))
	if f.intercept != nil && f.intercept(w, r) {
		return
	}
	if r.URL.Path == "/oauth_token.do" {
		f.serveToken(w, r)
		return
	}
	auth := r.Header.Get("Authorization")
	u, p, basic := r.BasicAuth()
	tok, bearer := strings.CutPrefix(auth, "Bearer ")
	if !(basic && u == user && p == password) && !(bearer && f.tokens[tok]) {
		f.writeFile(w, 401, "unauthorized.json")
		return
	}
	wantAccept := "application/json"
	if reFile.MatchString(r.URL.Path) {
		wantAccept = "*/*"
	}
	if got := r.Header.Get("Accept"); got != wantAccept {
		f.t.Errorf("%s %s: Accept %q", r.Method, r.URL, got)
	}
	if r.Method == "POST" && r.URL.Path == "/api/now/attachment/file" {
		f.serveUpload(w, r)
		return
	}
	var body map[string]any
	if r.Method == "POST" || r.Method == "PATCH" {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			f.t.Errorf("%s %s: Content-Type %q", r.Method, r.URL, ct)
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			f.t.Errorf("%s %s: body: %v", r.Method, r.URL, err)
		}
		f.bodies = append(f.bodies, body)
	}
	f.route(w, r, body)
}

// readParams are the query parameters of every record read.
func readParams(extra map[string]string) map[string]string {
	m := map[string]string{"sysparm_display_value": "all", "sysparm_exclude_reference_link": "true",
		"sysparm_fields": "number,short_description,description,state,priority,impact,urgency,category,assignment_group,assigned_to,caller_id,u_customer,correlation_id,sys_created_on,sys_id,sys_updated_on,sys_updated_by"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func (f *fake) route(w http.ResponseWriter, r *http.Request, body map[string]any) {
	p, q := r.URL.Path, r.URL.Query()
	switch {
	case r.Method == "GET" && p == "/api/now/table/nosuchtable":
		f.writeFile(w, 400, "invalid_table.json")
	case r.Method == "GET" && p == "/api/now/table/incident" && q.Get("sysparm_fields") == "sys_id":
		f.wantQuery(r, map[string]string{"sysparm_limit": "1", "sysparm_fields": "sys_id"})
		f.writeJSON(w, 200, map[string]any{"result": []any{}})
	case r.Method == "GET" && p == "/api/now/table/sys_choice":
		f.wantQuery(r, map[string]string{"sysparm_query": "*", "sysparm_fields": "element,value,label,sequence", "sysparm_limit": "10000"})
		if !reChoices.MatchString(q.Get("sysparm_query")) {
			f.t.Errorf("choice query %q", q.Get("sysparm_query"))
		}
		f.writeFile(w, 200, "sys_choice.json")
	case r.Method == "GET" && p == "/api/now/attachment":
		f.wantQuery(r, map[string]string{"sysparm_query": "*", "sysparm_limit": "1000"})
		m := reFiles.FindStringSubmatch(q.Get("sysparm_query"))
		if m == nil {
			f.t.Errorf("attachment query %q", q.Get("sysparm_query"))
			return
		}
		out := []any{}
		for _, a := range f.files {
			if a["table_sys_id"] == m[1] {
				out = append(out, a)
			}
		}
		f.writeJSON(w, 200, map[string]any{"result": out})
	case r.Method == "GET" && reFile.MatchString(p):
		f.wantQuery(r, map[string]string{})
		data, ok := f.fileData[reFile.FindStringSubmatch(p)[1]]
		if !ok {
			f.writeFile(w, 404, "not_found.json")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(data)
	case r.Method == "GET" && p == "/api/now/table/sys_journal_field":
		f.serveJournal(w, r)
	case r.Method == "GET" && p == "/api/now/table/incident":
		f.wantQuery(r, readParams(map[string]string{"sysparm_query": "*", "sysparm_limit": "*"}))
		f.serveList(w, q.Get("sysparm_query"), q.Get("sysparm_limit"))
	case r.Method == "POST" && p == "/api/now/table/incident":
		f.wantQuery(r, readParams(map[string]string{"sysparm_input_display_value": "true"}))
		id := f.insert(body)
		f.writeJSON(w, 201, map[string]any{"result": f.records[id]})
	case reRecord.MatchString(p):
		id := reRecord.FindStringSubmatch(p)[1]
		rec, ok := f.records[id]
		if !ok {
			f.writeFile(w, 404, "not_found.json")
			return
		}
		switch r.Method {
		case "GET":
			f.wantQuery(r, readParams(nil))
		case "PATCH":
			if _, note := body["work_notes"]; note {
				f.wantQuery(r, map[string]string{"sysparm_fields": "sys_id"})
			} else if _, cm := body["comments"]; cm {
				f.wantQuery(r, map[string]string{"sysparm_fields": "sys_id"})
			} else {
				f.wantQuery(r, readParams(map[string]string{"sysparm_input_display_value": "true"}))
			}
			f.write(id, body)
		default:
			f.t.Errorf("unexpected %s %s", r.Method, p)
		}
		f.writeJSON(w, 200, map[string]any{"result": rec})
	default:
		f.t.Errorf("fake: unexpected %s %s", r.Method, r.URL)
		f.writeFile(w, 404, "not_found.json")
	}
}

func (f *fake) serveList(w http.ResponseWriter, query, limit string) {
	n, err := strconv.Atoi(limit)
	if err != nil || n < 1 {
		f.t.Errorf("sysparm_limit %q", limit)
	}
	var keep func(map[string]cell) bool
	if m := rePoll.FindStringSubmatch(query); m != nil {
		keep = func(r map[string]cell) bool { return m[1] == "" || r["sys_updated_on"]["value"].(string) >= m[1] }
	} else if m := reCorr.FindStringSubmatch(query); m != nil {
		keep = func(r map[string]cell) bool { return r["correlation_id"]["value"] == m[1] }
	} else {
		f.t.Errorf("unexpected sysparm_query %q", query)
		f.writeJSON(w, 200, map[string]any{"result": []any{}})
		return
	}
	var ids []string
	for id, r := range f.records {
		if keep(r) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := f.records[ids[i]]["sys_updated_on"]["value"].(string), f.records[ids[j]]["sys_updated_on"]["value"].(string)
		if a != b {
			return a < b
		}
		return ids[i] < ids[j]
	})
	out := []any{}
	for _, id := range ids {
		if len(out) < n {
			out = append(out, f.records[id])
		}
	}
	f.writeJSON(w, 200, map[string]any{"result": out})
}

func (f *fake) serveJournal(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query := q.Get("sysparm_query")
	var id, element string
	desc := false
	if m := reJAll.FindStringSubmatch(query); m != nil {
		id = m[1]
		f.wantQuery(r, map[string]string{"sysparm_query": "*", "sysparm_fields": "sys_id,element,value,sys_created_on,sys_created_by", "sysparm_limit": "10000"})
	} else if m := reJOne.FindStringSubmatch(query); m != nil {
		id, element, desc = m[1], m[2], true
		f.wantQuery(r, map[string]string{"sysparm_query": "*", "sysparm_fields": "sys_id,element,value,sys_created_on,sys_created_by", "sysparm_limit": "5"})
	} else {
		f.t.Errorf("unexpected journal query %q", query)
	}
	var out []map[string]any
	for _, e := range f.journal {
		if e["element_id"] == id && (element == "" || e["element"] == element) {
			c := map[string]any{}
			for _, k := range []string{"sys_id", "element", "value", "sys_created_on", "sys_created_by"} {
				c[k] = e[k]
			}
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		less := out[i]["sys_created_on"].(string) < out[j]["sys_created_on"].(string)
		if desc {
			return out[i]["sys_created_on"].(string) > out[j]["sys_created_on"].(string)
		}
		return less
	})
	if lim, _ := strconv.Atoi(q.Get("sysparm_limit")); lim > 0 && len(out) > lim {
		out = out[:lim]
	}
	f.writeJSON(w, 200, map[string]any{"result": out})
}

func (f *fake) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != "POST" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		f.t.Errorf("token request %s %q", r.Method, r.Header.Get("Content-Type"))
	}
	r.ParseForm()
	if len(r.PostForm) != 3 || r.PostForm.Get("grant_type") != "client_credentials" {
		f.t.Errorf("token form %v", r.PostForm)
	}
	if r.PostForm.Get("client_id") != clientID || r.PostForm.Get("client_secret") != secret {
		f.writeJSON(w, 401, map[string]any{"error": "access_denied", "error_description": "access_denied"})
		return
	}
	var doc map[string]any
	json.Unmarshal(load(f.t, "oauth_token.json"), &doc)
	f.tokenN++
	tok := fmt.Sprintf("%s-%d", doc["access_token"], f.tokenN)
	doc["access_token"] = tok
	f.tokens[tok] = true
	f.writeJSON(w, 200, doc)
}

// serveUpload is POST /api/now/attachment/file: the bytes as the body, the
// record and name in the query; the file is attached at once.
func (f *fake) serveUpload(w http.ResponseWriter, r *http.Request) {
	f.wantQuery(r, map[string]string{"table_name": "incident", "table_sys_id": "*", "file_name": "*"})
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client broke off: nothing is stored
	}
	if r.ContentLength != int64(len(data)) {
		f.t.Errorf("upload: Content-Length %d for %d bytes", r.ContentLength, len(data))
	}
	q := r.URL.Query()
	if _, ok := f.records[q.Get("table_sys_id")]; !ok {
		f.writeFile(w, 404, "not_found.json")
		return
	}
	var doc struct {
		Result map[string]any `json:"result"`
	}
	json.Unmarshal(load(f.t, "attachment.json"), &doc)
	a := doc.Result
	id := sysID(fmt.Sprint("file", len(f.files)))
	a["sys_id"], a["file_name"], a["size_bytes"] = id, q.Get("file_name"), strconv.Itoa(len(data))
	a["content_type"], a["table_sys_id"], a["sys_created_on"] = r.Header.Get("Content-Type"), q.Get("table_sys_id"), f.now.Format(snTime)
	a["download_link"] = f.srv.URL + "/api/now/attachment/" + id + "/file"
	f.files = append(f.files, a)
	f.fileData[id] = data
	f.writeJSON(w, 201, map[string]any{"result": a})
}
