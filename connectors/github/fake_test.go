package github_test

import (
	"crypto/sha256"
	"encoding/hex"
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

// token is the secret the tests configure; the fake refuses anything else.
const token = "ghp_test_token"

// repoID is the documented repository's id; GitHub's Link headers point at
// /repositories/{id}/issues (see "Using pagination in the REST API").
const repoID = 1296269

// fake is a GitHub REST API for one repository, built from the documented
// payloads in testdata/, that checks every request the connector sends.
type fake struct {
	t            *testing.T
	srv          *httptest.Server
	owner, repo  string
	mu           sync.Mutex
	now          time.Time // the server's clock: Date header and stamps
	pageSize     int       // the server's page size cap (GitHub honours per_page; smaller forces Link pages)
	issues       map[int64]map[string]any
	comments     map[int64][]map[string]any
	milestones   []map[string]any
	assignable   map[string]bool
	nextNumber   int64
	nextComment  int64
	requests     []string         // "METHOD path?query"
	bodies       []map[string]any // decoded bodies of POST and PATCH requests
	notModified  int              // 304 answers given
	intercept    func(w http.ResponseWriter, r *http.Request) bool
	issueTpl     map[string]any
	commentTpl   map[string]any
	milestoneTpl map[string]any
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

// clone deep-copies a JSON value.
func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func newFake(t *testing.T, owner, repo string) *fake {
	f := &fake{
		t: t, owner: owner, repo: repo,
		now:        time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		pageSize:   100,
		issues:     map[int64]map[string]any{},
		comments:   map[int64][]map[string]any{},
		assignable: map[string]bool{"octocat": true, "hubot": true},
		nextNumber: 1, nextComment: 100,
		issueTpl:     loadMap(t, "issue.json"),
		commentTpl:   loadMap(t, "issue-comment.json"),
		milestoneTpl: loadMap(t, "milestone.json"),
	}
	v2 := clone(f.milestoneTpl)
	v2["number"], v2["title"], v2["id"], v2["state"] = 2.0, "v2.0", 1002605.0, "closed"
	f.milestones = []map[string]any{clone(f.milestoneTpl), v2}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// add stores an issue made from the documented one (without its
// pull_request key: the documented example is a pull request).
func (f *fake) add(title string, updated time.Time) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	is := clone(f.issueTpl)
	delete(is, "pull_request")
	n := f.nextNumber
	f.nextNumber++
	f.fill(is, n)
	is["title"], is["created_at"], is["updated_at"] = title, stamp(updated), stamp(updated)
	f.issues[n] = is
	return n
}

// addPR stores the documented item as is: a pull request.
func (f *fake) addPR(updated time.Time) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	is := clone(f.issueTpl)
	n := f.nextNumber
	f.nextNumber++
	f.fill(is, n)
	is["updated_at"] = stamp(updated)
	f.issues[n] = is
	return n
}

func (f *fake) fill(is map[string]any, n int64) {
	base := fmt.Sprintf("https://github.com/%s/%s/issues/%d", f.owner, f.repo, n)
	is["number"], is["id"], is["html_url"], is["comments"] = float64(n), float64(1000+n), base, 0.0
}

// edit changes an issue as a person would, stamped with the server clock.
func (f *fake) edit(n int64, k string, v any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.issues[n][k] = v
	f.issues[n]["updated_at"] = stamp(f.now)
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
	reIssue    = regexp.MustCompile(`^/issues/(\d+)$`)
	reComments = regexp.MustCompile(`^/issues/(\d+)/comments$`)
)

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	w.Header().Set("Date", f.now.Format(http.TimeFormat))
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", "4999")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(f.now.Add(time.Hour).Unix(), 10))
	// What GitHub's docs ask of a client.
	if got := r.Header.Get("Authorization"); got != "Bearer "+token {
		f.writeFile(w, http.StatusUnauthorized, "bad-credentials.json")
		return
	}
	if got := r.Header.Get("Accept"); got != "application/vnd.github+json" {
		f.t.Errorf("%s %s: Accept %q", r.Method, r.URL, got)
	}
	if got := r.Header.Get("X-GitHub-Api-Version"); got != "2022-11-28" {
		f.t.Errorf("%s %s: X-GitHub-Api-Version %q", r.Method, r.URL, got)
	}
	var body map[string]any
	if r.Method == "POST" || r.Method == "PATCH" {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			f.t.Errorf("%s %s: Content-Type %q", r.Method, r.URL, ct)
		}
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			f.t.Errorf("%s %s: body %q is not a JSON object: %v", r.Method, r.URL, raw, err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.bodies = append(f.bodies, body)
	}
	if f.intercept != nil && f.intercept(w, r) {
		return
	}
	base := "/repos/" + f.owner + "/" + f.repo
	p := r.URL.Path
	switch {
	case p == base && r.Method == "GET":
		repo := map[string]any{}
		_ = json.Unmarshal(load(f.t, "repository.json"), &repo)
		repo["full_name"], repo["name"] = f.owner+"/"+f.repo, f.repo
		f.writeJSON(w, 200, repo)
	case (p == base+"/issues" || p == fmt.Sprintf("/repositories/%d/issues", repoID)) && r.Method == "GET":
		f.list(w, r)
	case p == base+"/issues" && r.Method == "POST":
		f.create(w, body)
	case p == base+"/milestones" && r.Method == "GET":
		if r.URL.Query().Get("state") != "all" {
			f.t.Errorf("milestones asked without state=all: %s", r.URL)
		}
		f.writeJSON(w, 200, f.milestones)
	case strings.HasPrefix(p, base+"/issues/"):
		rest := strings.TrimPrefix(p, base)
		if m := reIssue.FindStringSubmatch(rest); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			is, ok := f.issues[n]
			if !ok {
				f.writeFile(w, 404, "not-found.json")
				return
			}
			switch r.Method {
			case "GET":
				f.writeJSON(w, 200, is)
			case "PATCH":
				f.patch(w, is, body)
			default:
				w.WriteHeader(http.StatusMethodNotAllowed)
			}
			return
		}
		if m := reComments.FindStringSubmatch(rest); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			is, ok := f.issues[n]
			if !ok {
				f.writeFile(w, 404, "not-found.json")
				return
			}
			if r.Method == "POST" {
				text, _ := body["body"].(string)
				if text == "" {
					f.writeJSON(w, 422, map[string]any{"message": "Validation Failed", "errors": []any{map[string]any{"resource": "IssueComment", "field": "body", "code": "missing_field"}}})
					return
				}
				c := clone(f.commentTpl)
				c["id"], c["body"], c["created_at"], c["updated_at"] = float64(f.nextComment), text, stamp(f.now), stamp(f.now)
				f.nextComment++
				f.comments[n] = append(f.comments[n], c)
				is["comments"] = float64(len(f.comments[n]))
				is["updated_at"] = stamp(f.now) // a comment bumps the issue
				f.writeJSON(w, 201, c)
				return
			}
			items := make([]any, len(f.comments[n]))
			for i, c := range f.comments[n] {
				items[i] = c
			}
			f.page(w, r, items, r.URL.Path)
			return
		}
		f.writeFile(w, 404, "not-found.json")
	default:
		f.writeFile(w, 404, "not-found.json")
	}
}

// list answers GET .../issues as GitHub does: since filters on updated_at
// (at or after), sort and direction order, pull requests included.
func (f *fake) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("state") != "all" || q.Get("per_page") != "100" {
		f.t.Errorf("list without state=all&per_page=100: %s", r.URL)
	}
	var since time.Time
	if s := q.Get("since"); s != "" {
		var err error
		if since, err = time.Parse(time.RFC3339, s); err != nil {
			f.t.Errorf("since %q is not ISO 8601 YYYY-MM-DDTHH:MM:SSZ: %v", s, err)
		}
	}
	var all []map[string]any
	for _, is := range f.issues {
		up, _ := time.Parse(time.RFC3339, is["updated_at"].(string))
		if !since.IsZero() && up.Before(since) {
			continue
		}
		all = append(all, is)
	}
	key := func(is map[string]any) (string, float64) {
		if q.Get("sort") == "created" {
			return is["created_at"].(string), is["number"].(float64)
		}
		return is["updated_at"].(string), is["number"].(float64)
	}
	switch {
	case q.Get("sort") == "updated" && q.Get("direction") == "asc":
		sort.Slice(all, func(i, j int) bool {
			a, an := key(all[i])
			b, bn := key(all[j])
			return a < b || a == b && an < bn
		})
	case q.Get("sort") == "created" && q.Get("direction") == "desc":
		sort.Slice(all, func(i, j int) bool {
			a, an := key(all[i])
			b, bn := key(all[j])
			return a > b || a == b && an > bn
		})
	default:
		f.t.Errorf("unexpected list order: %s", r.URL)
	}
	items := make([]any, len(all))
	for i, is := range all {
		items[i] = is
	}
	f.page(w, r, items, fmt.Sprintf("/repositories/%d/issues", repoID))
}

// page answers one page of items with GitHub's Link header (absolute
// addresses, rel next/last/first/prev) and a strong ETag of the body,
// honouring If-None-Match with 304.
func (f *fake) page(w http.ResponseWriter, r *http.Request, items []any, linkPath string) {
	q := r.URL.Query()
	size := f.pageSize
	if pp, err := strconv.Atoi(q.Get("per_page")); err == nil && pp < size {
		size = pp
	}
	pg := 1
	if s := q.Get("page"); s != "" {
		pg, _ = strconv.Atoi(s)
	}
	last := (len(items) + size - 1) / size
	if last == 0 {
		last = 1
	}
	lo, hi := (pg-1)*size, pg*size
	lo, hi = min(lo, len(items)), min(hi, len(items))
	link := func(n int, rel string) string {
		q2 := url.Values{}
		for k, v := range q {
			q2[k] = v
		}
		q2.Set("page", strconv.Itoa(n))
		return fmt.Sprintf(`<%s%s?%s>; rel="%s"`, f.srv.URL, linkPath, q2.Encode(), rel)
	}
	var links []string
	if pg > 1 {
		links = append(links, link(pg-1, "prev"))
	}
	if pg < last {
		links = append(links, link(pg+1, "next"), link(last, "last"))
	}
	if pg > 1 {
		links = append(links, link(1, "first"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	b, _ := json.Marshal(items[lo:hi])
	sum := sha256.Sum256(b)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		f.notModified++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(b)
}

func (f *fake) milestoneByNumber(v any) (map[string]any, bool) {
	for _, m := range f.milestones {
		if m["number"] == v {
			return m, true
		}
	}
	return nil, false
}

func invalid(field string) map[string]any {
	return map[string]any{"message": "Validation Failed", "errors": []any{map[string]any{"resource": "Issue", "field": field, "code": "invalid"}}}
}

// apply sets the writable fields as GitHub does; labels and assignees the
// repository does not allow are dropped silently (as GitHub documents for
// users without push access).
func (f *fake) apply(is, body map[string]any) (map[string]any, bool) {
	for k, v := range body {
		switch k {
		case "title", "body":
			is[k] = v
		case "labels":
			var ls []any
			for _, n := range v.([]any) {
				ls = append(ls, map[string]any{"name": n, "color": "ededed", "default": false})
			}
			is[k] = ls
		case "assignees":
			as := []any{}
			for _, n := range v.([]any) {
				if f.assignable[n.(string)] {
					as = append(as, map[string]any{"login": n, "type": "User"})
				}
			}
			is[k] = as
		case "milestone":
			if v == nil {
				is[k] = nil
				continue
			}
			m, ok := f.milestoneByNumber(v)
			if !ok {
				return invalid("milestone"), false
			}
			is[k] = m
		case "state":
			if v == "closed" && is["state"] != "closed" {
				is["closed_at"], is["state_reason"] = stamp(f.now), "completed"
			}
			if v == "open" && is["state"] == "closed" {
				is["closed_at"], is["state_reason"] = nil, "reopened"
			}
			is[k] = v
		case "state_reason":
		default:
			return invalid(k), false
		}
	}
	if r, ok := body["state_reason"]; ok {
		is["state_reason"] = r
	}
	is["updated_at"] = stamp(f.now)
	return nil, true
}

func (f *fake) create(w http.ResponseWriter, body map[string]any) {
	if t, _ := body["title"].(string); t == "" {
		f.writeFile(w, 422, "validation-failed.json")
		return
	}
	if _, ok := body["state"]; ok {
		f.writeJSON(w, 422, invalid("state")) // not a create parameter
		return
	}
	is := clone(f.issueTpl)
	delete(is, "pull_request")
	is["labels"], is["assignees"], is["milestone"], is["body"] = []any{}, []any{}, nil, nil
	n := f.nextNumber
	f.fill(is, n)
	is["created_at"] = stamp(f.now)
	if e, ok := f.apply(is, body); !ok {
		f.writeJSON(w, 422, e)
		return
	}
	f.nextNumber++
	f.issues[n] = is
	f.writeJSON(w, 201, is)
}

func (f *fake) patch(w http.ResponseWriter, is, body map[string]any) {
	next := clone(is)
	if e, ok := f.apply(next, body); !ok {
		f.writeJSON(w, 422, e)
		return
	}
	for k := range is {
		delete(is, k)
	}
	for k, v := range next {
		is[k] = v
	}
	f.writeJSON(w, 200, is)
}
