// Package github is the connector for the issues of one GitHub repository,
// over GitHub's REST API (version 2022-11-28) with a token. Pull requests,
// which the issues endpoints also list, are left out. Comments are the
// issue comments. Changes are found by polling the issues list sorted by
// update time with conditional requests (ETag), and pushed by the
// repository's webhooks (events issues and issue_comment, signed with
// X-Hub-Signature-256). GitHub's rate limits are respected: a used-up or
// secondary limit returns a *connectors.RetryAfterError with GitHub's wait.
//
// Correlation: an issue Duplex creates carries its key in a hidden HTML
// comment at the end of its body, "<!-- duplex:key=KEY -->" (invisible on
// GitHub's pages); reads strip it, and FindCorrelated looks for it among the
// repository's newest issues.
package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
)

// DefaultURL is GitHub's REST API address.
const DefaultURL = "https://api.github.com"

// Settings is a GitHub system's non-secret configuration. The secrets are
// "token" (a fine-grained or classic personal access token, or an app
// token: sent as Authorization: Bearer) and "webhook_secret" (the secret
// set on the repository's webhook; without it every webhook is refused).
type Settings struct {
	// URL is the REST API base; default https://api.github.com (GitHub
	// Enterprise Server: https://HOST/api/v3).
	URL string `json:"url,omitempty" spec:"default=https://api.github.com"`
	// Owner is the account or organisation owning the repository whose
	// issues sync ("octocat" for github.com/octocat/Hello-World).
	Owner string `json:"owner" spec:"required"`
	// Repo is the repository's name ("Hello-World").
	Repo string `json:"repo" spec:"required"`
	// TimeoutMS bounds one request; default 30000.
	TimeoutMS int `json:"timeout_ms,omitempty" spec:"default=30000"`
}

// New opens a GitHub connector and checks the token against the repository
// (so a wrong token, repository or a repository without issues fails here).
func New(ctx context.Context, cfg connectors.Config) (connectors.Connector, error) {
	s, err := ParseSettings(cfg.Settings)
	if err != nil {
		return nil, err
	}
	token := strings.TrimSpace(cfg.Secrets["token"])
	if token == "" {
		return nil, fmt.Errorf("%w: github: the secret token is required", connectors.ErrBadConfig)
	}
	c := &conn{
		s:      s,
		secret: cfg.Secrets["webhook_secret"],
		repo:   "/repos/" + url.PathEscape(s.Owner) + "/" + url.PathEscape(s.Repo),
		etags:  map[string]string{},
		http: &httpx.Client{
			HTTP:    &http.Client{Transport: &transport{next: cfg.RoundTripper()}},
			Base:    s.URL,
			Header:  http.Header{"Authorization": {"Bearer " + token}},
			Timeout: time.Duration(s.TimeoutMS) * time.Millisecond,
		},
	}
	var r struct {
		FullName  string `json:"full_name"`
		HasIssues bool   `json:"has_issues"`
		HTMLURL   string `json:"html_url"`
	}
	if _, err := c.do(ctx, "", "GET", c.repo, nil, &r); err != nil {
		if errors.Is(err, connectors.ErrNotFound) {
			return nil, fmt.Errorf("%w: github %s: repository %s/%s not found, or the token cannot see it", connectors.ErrBadConfig, cfg.Name, s.Owner, s.Repo)
		}
		return nil, fmt.Errorf("github %s: check repository: %w", cfg.Name, err)
	}
	if !r.HasIssues {
		return nil, fmt.Errorf("%w: github %s: repository %s has issues turned off", connectors.ErrBadConfig, cfg.Name, r.FullName)
	}
	c.fullName = r.FullName
	if c.fullName == "" {
		c.fullName = s.Owner + "/" + s.Repo
	}
	return c, nil
}

type conn struct {
	s        Settings
	secret   string
	repo     string // "/repos/OWNER/REPO"
	fullName string // as GitHub spells it
	http     *httpx.Client

	mu         sync.Mutex
	blocked    time.Time         // no request before this (primary rate limit used up)
	etags      map[string]string // poll query and cursor → ETag of an answer that held nothing new
	milestones map[string]int64  // title → number, loaded on need, reloaded on a miss
}

type user struct {
	Login string `json:"login"`
}

// label is a name or a label object: GitHub's schema allows both.
type label struct{ Name string }

func (l *label) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		l.Name = s
		return nil
	}
	var o struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	l.Name = o.Name
	return nil
}

type milestone struct {
	Number int64  `json:"number"`
	Title  string `json:"title"`
}

type issue struct {
	Number      int64           `json:"number"`
	Title       string          `json:"title"`
	Body        *string         `json:"body"`
	State       string          `json:"state"`
	StateReason *string         `json:"state_reason"`
	Labels      []label         `json:"labels"`
	Assignees   []user          `json:"assignees"`
	Milestone   *milestone      `json:"milestone"`
	User        *user           `json:"user"`
	Comments    int             `json:"comments"`
	HTMLURL     string          `json:"html_url"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	ClosedAt    *time.Time      `json:"closed_at"`
	PullRequest json.RawMessage `json:"pull_request"`
}

func (is issue) isPR() bool { return len(is.PullRequest) > 0 && string(is.PullRequest) != "null" }

type comment struct {
	ID        int64     `json:"id"`
	User      *user     `json:"user"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// schemaFields in the order Describe lists them.
var schemaFields = []connectors.FieldSpec{
	{Name: "title", Type: connectors.TypeString},
	{Name: "body", Type: connectors.TypeString, Description: "Markdown"},
	{Name: "state", Type: connectors.TypeString, Description: "open or closed"},
	{Name: "state_reason", Type: connectors.TypeString, Description: "completed, not_planned, duplicate or reopened (\"\" when none); written with state"},
	{Name: "labels", Type: connectors.TypeList, Description: "label names; writing replaces the set (GitHub creates unknown labels)"},
	{Name: "assignees", Type: connectors.TypeList, Description: "logins; writing replaces the set"},
	{Name: "milestone", Type: connectors.TypeString, Description: "milestone title; \"\" for none"},
	{Name: "author", Type: connectors.TypeString, ReadOnly: true, Description: "login of the issue's author"},
	{Name: "created_at", Type: connectors.TypeTime, ReadOnly: true},
	{Name: "closed_at", Type: connectors.TypeTime, ReadOnly: true},
}

var readOnly = map[string]bool{"author": true, "created_at": true, "closed_at": true}

var stateReasons = map[string]bool{"completed": true, "not_planned": true, "reopened": true, "duplicate": true}

// marker is the hidden correlation comment appended to a created issue's body.
func marker(key string) string { return "<!-- duplex:key=" + key + " -->" }

var reMarker = regexp.MustCompile(`(?:\r?\n){0,2}<!-- duplex:key=[^\r\n]*? -->\s*$`)

// cleanBody drops the correlation marker and GitHub's CRLF line ends (the
// web editor sends them), so what Duplex wrote reads back equal.
func cleanBody(s string) string {
	return strings.ReplaceAll(reMarker.ReplaceAllString(s, ""), "\r\n", "\n")
}

func (c *conn) entity(is issue, cs []comment) connectors.Entity {
	f := map[string]any{
		"title":        is.Title,
		"body":         "",
		"state":        is.State,
		"state_reason": "",
		"milestone":    "",
		"author":       "",
		"created_at":   is.CreatedAt.UTC().Format(time.RFC3339),
		"closed_at":    nil,
	}
	if is.Body != nil {
		f["body"] = cleanBody(*is.Body)
	}
	if is.StateReason != nil {
		f["state_reason"] = *is.StateReason
	}
	if is.Milestone != nil {
		f["milestone"] = is.Milestone.Title
	}
	if is.User != nil {
		f["author"] = is.User.Login
	}
	if is.ClosedAt != nil {
		f["closed_at"] = is.ClosedAt.UTC().Format(time.RFC3339)
	}
	labels := make([]string, 0, len(is.Labels))
	for _, l := range is.Labels {
		labels = append(labels, l.Name)
	}
	assignees := make([]string, 0, len(is.Assignees))
	for _, a := range is.Assignees {
		assignees = append(assignees, a.Login)
	}
	f["labels"], f["assignees"] = sortedList(labels), sortedList(assignees)
	id := strconv.FormatInt(is.Number, 10)
	e := connectors.Entity{ID: id, Key: "#" + id, URL: is.HTMLURL, Type: "issue", Fields: f, UpdatedAt: is.UpdatedAt.UTC()}
	for _, cm := range cs {
		e.Comments = append(e.Comments, toComment(cm))
	}
	return e
}

func toComment(cm comment) connectors.Comment {
	out := connectors.Comment{ID: strconv.FormatInt(cm.ID, 10), Body: strings.ReplaceAll(cm.Body, "\r\n", "\n"), CreatedAt: cm.CreatedAt.UTC()}
	if cm.User != nil {
		out.Author = cm.User.Login
	}
	return out
}

// sortedList is a list field: names sorted case-insensitively, as []any.
func sortedList(xs []string) []any {
	sort.SliceStable(xs, func(i, j int) bool { return strings.ToLower(xs[i]) < strings.ToLower(xs[j]) })
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

func parseID(id string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(id), "#"), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: github issue id must be a positive number, got %q", connectors.ErrNotFound, id)
	}
	return n, nil
}

// Get reads one issue with its comments. A pull request is not found.
func (c *conn) Get(ctx context.Context, id string) (connectors.Entity, error) {
	n, err := parseID(id)
	if err != nil {
		return connectors.Entity{}, err
	}
	is, err := c.getIssue(ctx, n)
	if err != nil {
		return connectors.Entity{}, err
	}
	return c.withComments(ctx, is)
}

func (c *conn) getIssue(ctx context.Context, n int64) (issue, error) {
	var is issue
	if _, err := c.do(ctx, "", "GET", fmt.Sprintf("%s/issues/%d", c.repo, n), nil, &is); err != nil {
		return issue{}, fmt.Errorf("github get issue %d: %w", n, err)
	}
	if is.isPR() {
		return issue{}, fmt.Errorf("%w: github: #%d is a pull request, not an issue", connectors.ErrNotFound, n)
	}
	return is, nil
}

// withComments reads the issue's comments (none asked for when its count
// is 0) and builds the entity.
func (c *conn) withComments(ctx context.Context, is issue) (connectors.Entity, error) {
	var cs []comment
	if is.Comments > 0 {
		var err error
		cs, err = getAll[comment](ctx, c, fmt.Sprintf("%s/issues/%d/comments?per_page=100", c.repo, is.Number), 100)
		if err != nil {
			return connectors.Entity{}, fmt.Errorf("github comments of issue %d: %w", is.Number, err)
		}
	}
	return c.entity(is, cs), nil
}

// Create opens an issue. GitHub opens every new issue; a "closed" state is
// applied by a second request.
func (c *conn) Create(ctx context.Context, fields map[string]any) (connectors.Entity, error) {
	return c.create(ctx, "", fields)
}

// CreateCorrelated is Create with key hidden at the end of the body.
func (c *conn) CreateCorrelated(ctx context.Context, key string, fields map[string]any) (connectors.Entity, error) {
	if key == "" || strings.Contains(key, "--") || strings.ContainsAny(key, "<>\r\n") {
		return connectors.Entity{}, fmt.Errorf("%w: github: correlation key %q cannot go in an HTML comment", connectors.ErrInvalid, key)
	}
	return c.create(ctx, key, fields)
}

// correlationScan is how many of the newest issues FindCorrelated reads:
// the engine asks right after a crash between a create and its
// bookkeeping, so the issue is among the newest.
const correlationScan = 300

// FindCorrelated looks for the key's marker in the bodies of the
// repository's newest issues (the list, unlike search, sees an issue at once).
func (c *conn) FindCorrelated(ctx context.Context, key string) (connectors.Entity, bool, error) {
	mark := marker(key)
	path := c.repo + "/issues?state=all&sort=created&direction=desc&per_page=100"
	for seen := 0; path != "" && seen < correlationScan; {
		var items []issue
		ci, err := c.do(ctx, "", "GET", path, nil, &items)
		if err != nil {
			return connectors.Entity{}, false, fmt.Errorf("github find correlated: %w", err)
		}
		for _, is := range items {
			if !is.isPR() && is.Body != nil && strings.Contains(*is.Body, mark) {
				e, err := c.withComments(ctx, is)
				return e, err == nil, err
			}
		}
		seen += len(items)
		path = ""
		if next := nextLink(ci.header); next != "" && len(items) > 0 {
			if path, err = c.relPath(next); err != nil {
				return connectors.Entity{}, false, err
			}
		}
	}
	return connectors.Entity{}, false, nil
}

func (c *conn) create(ctx context.Context, key string, fields map[string]any) (connectors.Entity, error) {
	body, err := c.issueBody(ctx, fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	if t, _ := body["title"].(string); t == "" {
		return connectors.Entity{}, fmt.Errorf("%w: github: a new issue needs a title", connectors.ErrInvalid)
	}
	state, _ := body["state"].(string)
	reason, hasReason := body["state_reason"]
	delete(body, "state")
	delete(body, "state_reason")
	if key != "" {
		text, _ := body["body"].(string)
		if text != "" {
			text += "\n\n"
		}
		body["body"] = text + marker(key)
	}
	var is issue
	if _, err := c.do(ctx, "", "POST", c.repo+"/issues", body, &is); err != nil {
		return connectors.Entity{}, fmt.Errorf("github create issue: %w", err)
	}
	if state == "closed" {
		patch := map[string]any{"state": "closed"}
		if hasReason {
			patch["state_reason"] = reason
		}
		if _, err := c.do(ctx, "", "PATCH", fmt.Sprintf("%s/issues/%d", c.repo, is.Number), patch, &is); err != nil {
			return connectors.Entity{}, fmt.Errorf("github close new issue %d: %w", is.Number, err)
		}
		body["state"] = "closed"
	}
	// The answer is the issue as stored: it is the read-back.
	e := c.entity(is, nil)
	return e, kept(is.Number, body, is)
}

// Update changes the given fields with one PATCH; GitHub answers with the
// issue as stored, which is checked (GitHub silently drops labels and
// assignees the token's user may not set) and completed with the comments.
func (c *conn) Update(ctx context.Context, id string, fields map[string]any) (connectors.Entity, error) {
	n, err := parseID(id)
	if err != nil {
		return connectors.Entity{}, err
	}
	body, err := c.issueBody(ctx, fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	var is issue
	if len(body) == 0 {
		if is, err = c.getIssue(ctx, n); err != nil {
			return connectors.Entity{}, err
		}
	} else if _, err := c.do(ctx, "", "PATCH", fmt.Sprintf("%s/issues/%d", c.repo, n), body, &is); err != nil {
		return connectors.Entity{}, fmt.Errorf("github update issue %d: %w", n, err)
	}
	if is.isPR() {
		return connectors.Entity{}, fmt.Errorf("%w: github: #%d is a pull request, not an issue", connectors.ErrNotFound, n)
	}
	e, err := c.withComments(ctx, is)
	if err != nil {
		return connectors.Entity{}, err
	}
	return e, kept(n, body, is)
}

// kept checks that GitHub stored what was sent; GitHub drops labels and
// assignees without an error when the token's user lacks push access or
// the login cannot be assigned.
func kept(n int64, body map[string]any, is issue) error {
	var bad []string
	if want, ok := body["labels"].([]string); ok {
		got := make([]string, len(is.Labels))
		for i, l := range is.Labels {
			got[i] = l.Name
		}
		if !sameSet(want, got) {
			bad = append(bad, fmt.Sprintf("labels %q instead of %q (labels need push access)", got, want))
		}
	}
	if want, ok := body["assignees"].([]string); ok {
		got := make([]string, len(is.Assignees))
		for i, a := range is.Assignees {
			got[i] = a.Login
		}
		if !sameSet(want, got) {
			bad = append(bad, fmt.Sprintf("assignees %q instead of %q (only collaborators can be assigned, by a user with push access)", got, want))
		}
	}
	if want, ok := body["state"].(string); ok && want != is.State {
		bad = append(bad, fmt.Sprintf("state %q instead of %q", is.State, want))
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: github kept issue %d with %s (other fields were saved)", connectors.ErrInvalid, n, strings.Join(bad, "; "))
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[strings.ToLower(x)]++
	}
	for _, x := range b {
		m[strings.ToLower(x)]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

// issueBody maps engine fields to GitHub's issue JSON; a milestone title
// becomes its number.
func (c *conn) issueBody(ctx context.Context, fields map[string]any) (map[string]any, error) {
	body := map[string]any{}
	var unknown []string
	for k, v := range fields {
		switch k {
		case "title":
			s := strings.TrimSpace(connectors.Text(v))
			if s == "" {
				return nil, fmt.Errorf("%w: github: title cannot be empty", connectors.ErrInvalid)
			}
			body[k] = connectors.Text(v)
		case "body":
			body[k] = connectors.Text(v)
		case "state":
			s := strings.ToLower(strings.TrimSpace(connectors.Text(v)))
			if s != "open" && s != "closed" {
				return nil, fmt.Errorf("%w: github: state must be open or closed, got %q", connectors.ErrInvalid, connectors.Text(v))
			}
			body[k] = s
		case "state_reason":
			s := strings.ToLower(strings.TrimSpace(connectors.Text(v)))
			if s == "" {
				continue // GitHub sets one itself when the state changes
			}
			if !stateReasons[s] {
				return nil, fmt.Errorf("%w: github: state_reason must be completed, not_planned, duplicate or reopened, got %q", connectors.ErrInvalid, s)
			}
			body[k] = s
		case "labels", "assignees":
			list, err := stringList(v)
			if err != nil {
				return nil, fmt.Errorf("%w: github: %s: %w", connectors.ErrInvalid, k, err)
			}
			body[k] = list
		case "milestone":
			title := strings.TrimSpace(connectors.Text(v))
			if title == "" {
				body[k] = nil
				continue
			}
			num, err := c.milestoneNumber(ctx, title)
			if err != nil {
				return nil, err
			}
			body[k] = num
		default:
			if !readOnly[k] {
				unknown = append(unknown, k)
			}
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		names := make([]string, 0, len(fields))
		for _, f := range schemaFields {
			if !f.ReadOnly {
				names = append(names, f.Name)
			}
		}
		return nil, fmt.Errorf("%w: github: unknown issue field(s) %s (writable: %s)", connectors.ErrInvalid, strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	return body, nil
}

// stringList reads a list field: a list of strings, or one comma-separated string.
func stringList(v any) ([]string, error) {
	out := []string{}
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	switch x := v.(type) {
	case nil:
	case string:
		for _, s := range strings.Split(x, ",") {
			add(s)
		}
	case []string:
		for _, s := range x {
			add(s)
		}
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("list items must be strings, got %T", e)
			}
			add(s)
		}
	default:
		return nil, fmt.Errorf("want a list of names, got %T", v)
	}
	return out, nil
}

// milestoneNumber finds a milestone (open or closed) by title, case-
// insensitively, reloading the list once on a miss.
func (c *conn) milestoneNumber(ctx context.Context, title string) (int64, error) {
	for reload := false; ; reload = true {
		c.mu.Lock()
		ms := c.milestones
		c.mu.Unlock()
		if ms == nil || reload {
			list, err := getAll[milestone](ctx, c, c.repo+"/milestones?state=all&per_page=100", 50)
			if err != nil {
				return 0, fmt.Errorf("github list milestones: %w", err)
			}
			ms = make(map[string]int64, len(list))
			for _, m := range list {
				ms[strings.ToLower(m.Title)] = m.Number
			}
			c.mu.Lock()
			c.milestones = ms
			c.mu.Unlock()
		}
		if n, ok := ms[strings.ToLower(title)]; ok {
			return n, nil
		}
		if reload {
			known := make([]string, 0, len(ms))
			for _, m := range sortedKeys(ms) {
				known = append(known, strconv.Quote(m))
			}
			return 0, fmt.Errorf("%w: github: no milestone titled %q in %s (known: %s)", connectors.ErrInvalid, title, c.fullName, strings.Join(known, ", "))
		}
	}
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// AddComment posts a comment. GitHub has no private comments: Private is
// ignored, as the Comment contract says.
func (c *conn) AddComment(ctx context.Context, id string, cm connectors.Comment) (connectors.Comment, error) {
	n, err := parseID(id)
	if err != nil {
		return connectors.Comment{}, err
	}
	if strings.TrimSpace(cm.Body) == "" {
		return connectors.Comment{}, fmt.Errorf("%w: github: empty comment", connectors.ErrInvalid)
	}
	if cm.Private {
		// GitHub has no internal notes: posting one would publish it.
		return connectors.Comment{}, fmt.Errorf("%w: github has no private comments; the script should keep internal notes out (entity.comments.filter(c => !c.private))", connectors.ErrInvalid)
	}
	var out comment
	if _, err := c.do(ctx, "", "POST", fmt.Sprintf("%s/issues/%d/comments", c.repo, n), map[string]any{"body": cm.Body}, &out); err != nil {
		return connectors.Comment{}, fmt.Errorf("github comment on issue %d: %w", n, err)
	}
	if out.ID == 0 {
		return connectors.Comment{}, fmt.Errorf("%w: github: the comment added to issue %d came back without an id", connectors.ErrUnavailable, n)
	}
	return toComment(out), nil
}

// Describe lists the issue fields.
func (c *conn) Describe(ctx context.Context) (connectors.Schema, error) {
	return connectors.Schema{EntityType: "issue", Fields: append([]connectors.FieldSpec(nil), schemaFields...), Comments: true}, nil
}

// Close has nothing to release.
func (c *conn) Close() error { return nil }

var (
	_ connectors.Connector   = (*conn)(nil)
	_ connectors.Correlating = (*conn)(nil)
	_ connectors.Hooked      = (*conn)(nil)
)
