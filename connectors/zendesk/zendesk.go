// Package zendesk is the connector for Zendesk Support tickets, over the
// Ticketing REST API (/api/v2) with an agent's API token (Basic
// "EMAIL/token:TOKEN") or an OAuth access token (Bearer). Comments are the
// ticket's comments after the first one (which Zendesk makes the
// description); a comment with public false is an internal note. Changes are
// found with the cursor-based incremental ticket export and pushed by
// Zendesk webhooks (signed with X-Zendesk-Webhook-Signature). Rate limits:
// Zendesk answers 429 with Retry-After, which becomes a
// *connectors.RetryAfterError.
//
// Correlation: a ticket Duplex creates carries its key in external_id, and
// FindCorrelated lists tickets by external_id.
package zendesk

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
)

// Settings is a Zendesk system's non-secret configuration. The secrets are
// "api_token" (with Email: sent as Basic EMAIL/token:API_TOKEN) or
// "oauth_token" (sent as Bearer), and "webhook_secret" (the signing secret
// of the Zendesk webhook; without it every webhook is refused).
type Settings struct {
	// URL is the account's address, https://SUBDOMAIN.zendesk.com.
	URL string `json:"url" spec:"required"`
	// Email is the agent the API token belongs to; required with api_token.
	Email string `json:"email,omitempty"`
	// StartTime is where the first poll starts (RFC 3339); default: the
	// beginning of the account. Zendesk exports tickets updated at or after it.
	StartTime string `json:"start_time,omitempty"`
	// TimeoutMS bounds one request; default 30000.
	TimeoutMS int `json:"timeout_ms,omitempty"`
}

// decodeSettings reads settings strictly: an unknown key is refused by name.
func decodeSettings(raw json.RawMessage) (Settings, error) {
	var s Settings
	if err := Spec().DecodeSettings(raw, &s); err != nil {
		return s, err
	}
	return s, nil
}

// New opens a Zendesk connector and checks the credentials with
// GET /api/v2/users/me.json (an anonymous answer means they were refused).
func New(ctx context.Context, cfg connectors.Config) (connectors.Connector, error) {
	s, err := ParseSettings(cfg.Settings)
	if err != nil {
		return nil, err
	}
	var start int64
	if s.StartTime != "" {
		t, _ := time.Parse(time.RFC3339, s.StartTime) // checked by ParseSettings
		start = t.Unix()
	}
	h := http.Header{}
	var secrets []string
	switch tok, oauth := strings.TrimSpace(cfg.Secrets["api_token"]), strings.TrimSpace(cfg.Secrets["oauth_token"]); {
	case oauth != "":
		h.Set("Authorization", "Bearer "+oauth)
		secrets = []string{oauth}
	case tok != "" && strings.TrimSpace(s.Email) != "":
		enc := base64.StdEncoding.EncodeToString([]byte(strings.TrimSpace(s.Email) + "/token:" + tok))
		h.Set("Authorization", "Basic "+enc)
		secrets = []string{enc, tok}
	default:
		return nil, fmt.Errorf("%w: zendesk: the secret api_token (with the setting email) or the secret oauth_token is required", connectors.ErrBadConfig)
	}
	c := &conn{
		s: s, start: start, secret: cfg.Secrets["webhook_secret"], secrets: secrets,
		users: map[int64]user{},
		http: &httpx.Client{HTTP: cfg.HTTPClient(), Base: s.URL + "/api/v2", Header: h,
			Timeout: time.Duration(s.TimeoutMS) * time.Millisecond},
	}
	var me struct {
		User user `json:"user"`
	}
	if err := c.do(ctx, "GET", "/users/me.json", nil, &me); err != nil {
		return nil, fmt.Errorf("zendesk %s: check credentials: %w", cfg.Name, err)
	}
	if me.User.ID == 0 || me.User.Role == "end-user" {
		return nil, fmt.Errorf("%w: zendesk %s: the credentials were not accepted as an agent's (Zendesk answered as %q)", connectors.ErrBadConfig, cfg.Name, me.User.Role)
	}
	return c, nil
}

type conn struct {
	s       Settings
	start   int64 // first poll's start_time (Unix seconds)
	secret  string
	secrets []string // credential strings never to show in an error
	http    *httpx.Client

	mu      sync.Mutex
	blocked time.Time      // no request before this (rate limit used up)
	users   map[int64]user // id → user, filled on need
	fields  []ticketField  // custom ticket fields, loaded on need
}

type user struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	Role  string `json:"role"`
}

type customValue struct {
	ID    int64 `json:"id"`
	Value any   `json:"value"`
}

type ticket struct {
	ID           int64         `json:"id"`
	URL          string        `json:"url"`
	ExternalID   *string       `json:"external_id"`
	Type         *string       `json:"type"`
	Subject      string        `json:"subject"`
	Description  string        `json:"description"`
	Priority     *string       `json:"priority"`
	Status       string        `json:"status"`
	RequesterID  *int64        `json:"requester_id"`
	AssigneeID   *int64        `json:"assignee_id"`
	GroupID      *int64        `json:"group_id"`
	Tags         []string      `json:"tags"`
	CustomFields []customValue `json:"custom_fields"`
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
}

type attachment struct {
	ID          int64  `json:"id"`
	FileName    string `json:"file_name"`
	ContentURL  string `json:"content_url"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

type comment struct {
	ID          int64        `json:"id"`
	Type        string       `json:"type"`
	AuthorID    int64        `json:"author_id"`
	Body        string       `json:"body"`
	PlainBody   string       `json:"plain_body"`
	Public      bool         `json:"public"`
	Attachments []attachment `json:"attachments"`
	CreatedAt   time.Time    `json:"created_at"`
}

// builtin fields in the order Describe lists them; custom fields follow.
var builtin = []connectors.FieldSpec{
	{Name: "subject", Type: connectors.TypeString},
	{Name: "description", Type: connectors.TypeString, Description: "the first comment; set on create only"},
	{Name: "status", Type: connectors.TypeString, Description: "new, open, pending, hold, solved or closed"},
	{Name: "priority", Type: connectors.TypeString, Description: "urgent, high, normal, low or \"\""},
	{Name: "ticket_type", Type: connectors.TypeString, Description: "Zendesk's type: problem, incident, question, task or \"\""},
	{Name: "tags", Type: connectors.TypeList, Description: "writing replaces the set"},
	{Name: "assignee", Type: connectors.TypeString, Description: "the assigned agent's email; \"\" for none"},
	{Name: "requester", Type: connectors.TypeString, Description: "the requester's email"},
	{Name: "group_id", Type: connectors.TypeNumber, Description: "the assigned group's id"},
	{Name: "external_id", Type: connectors.TypeString, ReadOnly: true, Description: "Duplex's correlation key on tickets it created"},
	{Name: "created_at", Type: connectors.TypeTime, ReadOnly: true},
}

var builtinNames = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range builtin {
		m[f.Name] = true
	}
	return m
}()

func parseID(id string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(id), "#"), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: zendesk ticket id must be a positive number, got %q", connectors.ErrNotFound, id)
	}
	return n, nil
}

// do sends one JSON request and turns Zendesk's error documents into
// readable messages, keeping the sentinel the status maps to.
func (c *conn) do(ctx context.Context, method, path string, body, out any) error {
	if wait := c.blockedFor(); wait > 0 {
		return &connectors.RetryAfterError{After: wait, Err: fmt.Errorf("%w: zendesk %s %s: the account's rate limit is used up for %v (not sent)",
			connectors.ErrUnavailable, method, path, wait.Round(time.Second))}
	}
	h, err := c.http.DoHeader(ctx, method, path, body, out)
	reset := c.noteRate(h)
	var se *httpx.StatusError
	var ra *connectors.RetryAfterError
	if errors.As(err, &se) && se.Code == http.StatusTooManyRequests && !errors.As(err, &ra) {
		// Some limits answer 429 without Retry-After: wait for the reset.
		if reset <= 0 {
			reset = time.Minute
		}
		err = &connectors.RetryAfterError{After: reset, Err: err}
	}
	return c.redact(zdError(err))
}

// noteRate reads the account-wide limit headers (ratelimit-remaining,
// ratelimit-reset in seconds, "Best practices for avoiding rate
// limiting"): once none remain, nothing is sent before the reset. It
// returns the reset wait (0 if not given).
func (c *conn) noteRate(h http.Header) time.Duration {
	if h == nil {
		return 0
	}
	secs, err := strconv.Atoi(strings.TrimSpace(h.Get("Ratelimit-Reset")))
	if err != nil || secs <= 0 {
		return 0
	}
	reset := time.Duration(secs) * time.Second
	if strings.TrimSpace(h.Get("Ratelimit-Remaining")) == "0" {
		c.mu.Lock()
		c.blocked = time.Now().Add(reset)
		c.mu.Unlock()
	}
	return reset
}

func (c *conn) blockedFor() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Until(c.blocked)
}

// redact hides the credentials in a message rebuilt from an answer's body
// (httpx redacts its own messages, not the body zdError reads again).
func (c *conn) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := msg
	for _, s := range c.secrets {
		red = strings.ReplaceAll(red, s, "[redacted]")
	}
	if red == msg {
		return err
	}
	return &redacted{msg: red, err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// zdError reads Zendesk's error document from an HTTP error:
// {"error": "RecordInvalid", "description": "...", "details": {"field":
// [{"description": "..."}]}} or {"error": {"title", "message"}}.
func zdError(err error) error {
	var se *httpx.StatusError
	if err == nil || !errors.As(err, &se) {
		return err
	}
	var doc struct {
		Error       json.RawMessage `json:"error"`
		Description string          `json:"description"`
		Details     map[string][]struct {
			Description string `json:"description"`
		} `json:"details"`
	}
	if json.Unmarshal([]byte(se.Body), &doc) != nil || len(doc.Error) == 0 {
		return err
	}
	var name string
	if json.Unmarshal(doc.Error, &name) != nil {
		var o struct{ Title, Message string }
		_ = json.Unmarshal(doc.Error, &o)
		name, doc.Description = o.Title, o.Message
	}
	msg := strings.TrimSpace(name + ": " + doc.Description)
	keys := make([]string, 0, len(doc.Details))
	for k := range doc.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, d := range doc.Details[k] {
			msg += "; " + d.Description
		}
	}
	sentinel := connectors.ErrInvalid
	for _, s := range []error{connectors.ErrNotFound, connectors.ErrBadConfig, connectors.ErrUnavailable} {
		if errors.Is(err, s) {
			sentinel = s
		}
	}
	var ra *connectors.RetryAfterError
	wrapped := fmt.Errorf("%w: zendesk %s %s: HTTP %d %s", sentinel, se.Method, se.Path, se.Code, msg)
	if errors.As(err, &ra) {
		return &connectors.RetryAfterError{After: ra.After, Err: wrapped}
	}
	return wrapped
}
