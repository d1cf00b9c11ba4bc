package redmine_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeKey is the API key the fake accepts; anything else is 401.
const fakeKey = "fake-redmine-key"

// fake is an offline Redmine REST API for one project, answering with the
// payloads in testdata/ (recorded from a real Redmine by testdata/record.sh)
// and keeping issues, journals and attachments in memory. It is strict: an
// unknown route, a missing key or an unexpected filter fails the test.
type fake struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	now     time.Time // the server's clock; every write stamps it
	ident   string    // the project identifier
	projID  float64
	issues  map[int64]map[string]any
	nextID  int64
	nextSub int64 // journal and attachment ids
	uploads map[string][]byte
	files   map[int64][]byte
	tpl     map[string]any
}

func loadJSON(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func newFake(t *testing.T) *fake {
	p := loadJSON(t, "project.json")["project"].(map[string]any)
	tpl := loadJSON(t, "issue.json")["issue"].(map[string]any)
	f := &fake{t: t, now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), ident: p["identifier"].(string), projID: p["id"].(float64),
		issues: map[int64]map[string]any{}, nextID: 1, nextSub: 100, uploads: map[string][]byte{}, files: map[int64][]byte{}, tpl: tpl}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// stampAll gives every issue the same updated_on, as several writes within
// one second do on a real Redmine (whole-second stamps).
func (f *fake) stampAll(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, is := range f.issues {
		is["updated_on"] = at.UTC().Format(time.RFC3339)
	}
}

func (f *fake) reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fake) file(w http.ResponseWriter, name string) {
	f.reply(w, 200, loadJSON(f.t, name))
}

var (
	issuePath    = regexp.MustCompile(`^/issues/(\d+)\.json$`)
	downloadPath = regexp.MustCompile(`^/attachments/download/(\d+)(/.*)?$`)
)

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Redmine-Api-Key") != fakeKey {
		f.reply(w, 401, map[string]any{})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// The server's clock is a second past the stamps it wrote, so a poll
	// sees them as settled (pollwindow leaves the current second open).
	w.Header().Set("Date", f.now.Add(time.Second).Format(http.TimeFormat))
	p := r.URL.Path
	switch {
	case r.Method == "GET" && p == "/users/current.json":
		f.file(w, "users-current.json")
	case r.Method == "GET" && (p == "/projects/"+f.ident+".json" || p == fmt.Sprintf("/projects/%v.json", f.projID)):
		f.file(w, "project.json")
	case r.Method == "GET" && strings.HasPrefix(p, "/projects/"):
		f.reply(w, 404, map[string]any{})
	case r.Method == "GET" && p == "/issue_statuses.json":
		f.file(w, "issue_statuses.json")
	case r.Method == "GET" && p == "/enumerations/issue_priorities.json":
		f.file(w, "issue_priorities.json")
	case r.Method == "GET" && p == "/trackers.json":
		f.file(w, "trackers.json")
	case r.Method == "GET" && p == "/custom_fields.json":
		f.file(w, "custom_fields.json")
	case r.Method == "GET" && p == "/issues.json":
		f.list(w, r)
	case r.Method == "POST" && p == "/issues.json":
		f.create(w, r)
	case r.Method == "POST" && p == "/uploads.json":
		f.upload(w, r)
	case issuePath.MatchString(p):
		n, _ := strconv.ParseInt(issuePath.FindStringSubmatch(p)[1], 10, 64)
		is, ok := f.issues[n]
		if !ok {
			f.reply(w, 404, map[string]any{})
			return
		}
		switch r.Method {
		case "GET":
			f.reply(w, 200, map[string]any{"issue": is})
		case "PUT":
			f.update(w, r, is)
		case "DELETE":
			delete(f.issues, n)
			w.WriteHeader(204)
		default:
			f.t.Errorf("fake redmine: %s %s", r.Method, p)
			w.WriteHeader(405)
		}
	case r.Method == "GET" && downloadPath.MatchString(p):
		n, _ := strconv.ParseInt(downloadPath.FindStringSubmatch(p)[1], 10, 64)
		b, ok := f.files[n]
		if !ok {
			f.reply(w, 404, map[string]any{})
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(b)
	default:
		f.t.Errorf("fake redmine: unexpected %s %s", r.Method, r.URL)
		w.WriteHeader(404)
	}
}

// list filters as Redmine does for the parameters the connector sends.
func (f *fake) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("project_id") != fmt.Sprint(f.projID) || q.Get("status_id") != "*" && q.Get("op[status_id]") != "*" {
		f.t.Errorf("fake redmine: list without the project and every status: %s", r.URL.RawQuery)
	}
	var since time.Time
	if v := q.Get("updated_on"); v != "" {
		var err error
		if since, err = time.Parse(time.RFC3339, strings.TrimPrefix(v, ">=")); err != nil || !strings.HasPrefix(v, ">=") {
			f.t.Errorf("fake redmine: updated_on=%q", v)
		}
	}
	var out []map[string]any
	for _, is := range f.issues {
		if !since.IsZero() {
			if u, _ := time.Parse(time.RFC3339, is["updated_on"].(string)); u.Before(since) {
				continue
			}
		}
		if !f.matches(is, q) {
			continue
		}
		listed := map[string]any{}
		for k, v := range is {
			if k != "journals" && k != "attachments" { // a list carries neither
				listed[k] = v
			}
		}
		out = append(out, listed)
	}
	sort.Slice(out, func(i, j int) bool {
		if q.Get("sort") == "updated_on,id" && out[i]["updated_on"] != out[j]["updated_on"] {
			return out[i]["updated_on"].(string) < out[j]["updated_on"].(string)
		}
		return out[i]["id"].(float64) < out[j]["id"].(float64)
	})
	total := len(out)
	offset, _ := strconv.Atoi(q.Get("offset"))
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 || limit > 100 {
		limit = 25
	}
	out = out[min(offset, total):min(offset+limit, total)]
	f.reply(w, 200, map[string]any{"issues": out, "total_count": total, "offset": offset, "limit": limit})
}

// matches applies cf_N=value (a substring, as Redmine's string filter) and
// the long form f[]/op[]/v[] for subject (~) and custom fields (=).
func (f *fake) matches(is map[string]any, q map[string][]string) bool {
	cf := func(id string) string {
		for _, c := range is["custom_fields"].([]any) {
			if m := c.(map[string]any); fmt.Sprint(m["id"]) == id && m["value"] != nil {
				return fmt.Sprint(m["value"])
			}
		}
		return ""
	}
	for k, v := range q {
		if id, ok := strings.CutPrefix(k, "cf_"); ok && !strings.Contains(cf(id), v[0]) {
			return false
		}
	}
	for _, filter := range q["f[]"] {
		if filter == "status_id" {
			continue
		}
		op, val := first(q["op["+filter+"]"]), first(q["v["+filter+"][]"])
		switch {
		case filter == "subject" && op == "~":
			if !strings.Contains(strings.ToLower(is["subject"].(string)), strings.ToLower(val)) {
				return false
			}
		case strings.HasPrefix(filter, "cf_") && op == "=":
			if cf(strings.TrimPrefix(filter, "cf_")) != val {
				return false
			}
		default:
			f.t.Errorf("fake redmine: filter %s %s", filter, op)
		}
	}
	return true
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func (f *fake) body(r *http.Request) map[string]any {
	var in struct {
		Issue map[string]any `json:"issue"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Issue == nil {
		f.t.Errorf("fake redmine: %s %s: body %v", r.Method, r.URL, err)
		return map[string]any{}
	}
	return in.Issue
}

func (f *fake) create(w http.ResponseWriter, r *http.Request) {
	in := f.body(r)
	if s, _ := in["subject"].(string); strings.TrimSpace(s) == "" {
		f.reply(w, 422, loadJSON(f.t, "error-422.json"))
		return
	}
	b, _ := json.Marshal(f.tpl)
	var is map[string]any
	_ = json.Unmarshal(b, &is)
	for _, c := range is["custom_fields"].([]any) {
		c.(map[string]any)["value"] = nil
	}
	is["id"], is["journals"], is["attachments"] = float64(f.nextID), []any{}, []any{}
	is["description"] = ""
	is["created_on"] = f.now.Format(time.RFC3339)
	f.nextID++
	f.apply(is, in)
	f.issues[int64(is["id"].(float64))] = is
	f.reply(w, 201, map[string]any{"issue": is})
}

func (f *fake) update(w http.ResponseWriter, r *http.Request, is map[string]any) {
	in := f.body(r)
	if s, ok := in["subject"].(string); ok && strings.TrimSpace(s) == "" {
		f.reply(w, 422, loadJSON(f.t, "error-422.json"))
		return
	}
	for _, u := range asList(in["uploads"]) {
		tok := u.(map[string]any)["token"].(string)
		data, ok := f.uploads[tok]
		if !ok {
			f.reply(w, 422, map[string]any{"errors": []string{"Attachment is invalid"}})
			return
		}
		id, _ := strconv.ParseInt(strings.Split(tok, ".")[0], 10, 64)
		f.files[id] = data
		is["attachments"] = append(is["attachments"].([]any), map[string]any{"id": float64(id),
			"filename": u.(map[string]any)["filename"], "filesize": float64(len(data)), "content_type": u.(map[string]any)["content_type"],
			"created_on": f.now.Format(time.RFC3339), "author": map[string]any{"id": 1.0, "name": "Redmine Admin"}})
	}
	if notes, ok := in["notes"].(string); ok && notes != "" {
		f.nextSub++
		is["journals"] = append(is["journals"].([]any), map[string]any{"id": float64(f.nextSub),
			"user": map[string]any{"id": 1.0, "name": "Redmine Admin"}, "notes": notes, "created_on": f.now.Format(time.RFC3339),
			"private_notes": in["private_notes"] == true, "details": []any{}})
	}
	f.apply(is, in)
	w.WriteHeader(204)
}

func asList(v any) []any { l, _ := v.([]any); return l }

// apply copies the writable keys the connector sends onto an issue.
func (f *fake) apply(is, in map[string]any) {
	for k, v := range in {
		switch k {
		case "subject", "description", "start_date", "due_date", "done_ratio":
			is[k] = v
		case "custom_fields":
			for _, c := range asList(v) {
				m := c.(map[string]any)
				for _, have := range is["custom_fields"].([]any) {
					if h := have.(map[string]any); fmt.Sprint(h["id"]) == fmt.Sprint(m["id"]) {
						h["value"] = m["value"]
					}
				}
			}
		case "status_id", "priority_id", "tracker_id":
			list := map[string]string{"status_id": "issue_statuses", "priority_id": "issue_priorities", "tracker_id": "trackers"}[k]
			file := map[string]string{"issue_statuses": "issue_statuses.json", "issue_priorities": "issue_priorities.json", "trackers": "trackers.json"}[list]
			for _, x := range loadJSON(f.t, file)[list].([]any) {
				if m := x.(map[string]any); fmt.Sprint(m["id"]) == fmt.Sprint(v) {
					is[strings.TrimSuffix(k, "_id")] = map[string]any{"id": m["id"], "name": m["name"]}
					if k == "status_id" {
						is["closed_on"] = nil
						if m["is_closed"] == true {
							is["closed_on"] = f.now.Format(time.RFC3339)
						}
					}
				}
			}
		case "project_id", "notes", "private_notes", "uploads":
		default:
			f.t.Errorf("fake redmine: the fake does not take %q", k)
		}
	}
	is["updated_on"] = f.now.Format(time.RFC3339)
}

// upload stores the bytes and answers a token ending in their SHA-256, as
// Redmine 4.1+ does; a body that breaks is never stored.
func (f *fake) upload(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Content-Type") != "application/octet-stream" || r.URL.Query().Get("filename") == "" {
		f.t.Errorf("fake redmine: upload %s %s", r.Header.Get("Content-Type"), r.URL)
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client broke off: nothing is kept
	}
	f.nextSub++
	sum := sha256.Sum256(data)
	tok := fmt.Sprintf("%d.%s", f.nextSub, hex.EncodeToString(sum[:]))
	f.uploads[tok] = data
	f.reply(w, 201, map[string]any{"upload": map[string]any{"id": float64(f.nextSub), "token": tok}})
}
