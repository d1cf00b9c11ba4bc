// Package servicenow is the connector for the records of one ServiceNow
// table (incident by default) over the Table API, with basic
// authentication or OAuth client credentials. Fields are read with
// sysparm_display_value=all (choice labels and reference names, dates in
// UTC) and written with sysparm_input_display_value=true, so that states,
// priorities, groups and users are named as people see them; choice values
// are checked against sys_choice first, since ServiceNow stores an unknown
// choice without complaint. Comments are the journal: work notes
// (private) and additional comments (public). Changes are found by polling
// sys_updated_on (whole seconds, see pollwindow). ServiceNow has no signed
// webhooks of its own: polling is the only source of changes.
//
// Correlation: a record Duplex creates carries its key in correlation_id
// (and "Duplex" in correlation_display).
package servicenow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
)

// Settings is a ServiceNow system's non-secret configuration. The secrets
// are "password" (with Username: basic authentication) or "client_secret"
// (with ClientID: OAuth client credentials against /oauth_token.do).
type Settings struct {
	// URL is the instance's address, https://INSTANCE.service-now.com.
	URL string `json:"url" spec:"required"`
	// Table is the table whose records sync; default "incident".
	Table string `json:"table,omitempty"`
	// Fields are the columns synced besides the built-in ones (number,
	// short_description, description, state, priority, impact, urgency,
	// category, assignment_group, assigned_to, caller_id).
	Fields []string `json:"fields,omitempty"`
	// Query, when set, is an encoded query every polled record must also
	// match (for example "assignment_group.name=Engineering").
	Query string `json:"query,omitempty"`
	// Username is the basic authentication user.
	Username string `json:"username,omitempty"`
	// ClientID is the OAuth application's client id (client credentials).
	ClientID string `json:"client_id,omitempty"`
	// TimeoutMS bounds one request; default 30000.
	TimeoutMS int `json:"timeout_ms,omitempty"`
}

func decodeSettings(raw json.RawMessage) (Settings, error) {
	var s Settings
	if err := Spec().DecodeSettings(raw, &s); err != nil {
		return s, err
	}
	return s, nil
}

// builtinFields are synced on every table that has them.
var builtinFields = []string{"number", "short_description", "description", "state", "priority", "impact", "urgency",
	"category", "assignment_group", "assigned_to", "caller_id"}

// readOnlyFields are read but never written.
var readOnlyFields = map[string]bool{"number": true, "correlation_id": true, "sys_created_on": true, "sys_updated_on": true, "sys_id": true}

// New opens a ServiceNow connector, checks the credentials by reading one
// record of the table, and loads the table's choices.
func New(ctx context.Context, cfg connectors.Config) (connectors.Connector, error) {
	s, err := ParseSettings(cfg.Settings)
	if err != nil {
		return nil, err
	}
	c := &conn{s: s, http: &httpx.Client{HTTP: cfg.HTTPClient(), Base: s.URL, Timeout: time.Duration(s.TimeoutMS) * time.Millisecond}}
	switch pw, cs := cfg.Secrets["password"], cfg.Secrets["client_secret"]; {
	case s.ClientID != "" && cs != "":
		c.oauth = &oauth{id: s.ClientID, secret: cs}
		c.secrets = []string{cs}
	case s.Username != "" && pw != "":
		c.basicUser, c.basicPass = s.Username, pw
		c.secrets = []string{pw}
	default:
		return nil, fmt.Errorf("%w: servicenow: set username with the secret password, or client_id with the secret client_secret", connectors.ErrBadConfig)
	}
	var probe struct {
		Result []map[string]any `json:"result"`
	}
	if err := c.do(ctx, "GET", c.tablePath("")+"?sysparm_limit=1&sysparm_fields=sys_id", nil, &probe); err != nil {
		if errors.Is(err, connectors.ErrNotFound) {
			return nil, fmt.Errorf("%w: servicenow %s: table %q not found, or the user may not read it", connectors.ErrBadConfig, cfg.Name, s.Table)
		}
		return nil, fmt.Errorf("servicenow %s: check table: %w", cfg.Name, err)
	}
	if err := c.loadChoices(ctx); err != nil {
		return nil, fmt.Errorf("servicenow %s: %w", cfg.Name, err)
	}
	return c, nil
}

// validName: ServiceNow table and column names (no encoded-query syntax).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

type conn struct {
	s                    Settings
	http                 *httpx.Client
	basicUser, basicPass string
	oauth                *oauth

	mu      sync.Mutex
	secrets []string            // credential strings never to show in an error
	choices map[string][]choice // column → its active choices
}

type choice struct {
	Element string `json:"element"`
	Value   string `json:"value"`
	Label   string `json:"label"`
}

func (c *conn) tablePath(sysID string) string {
	p := "/api/now/table/" + c.s.Table
	if sysID != "" {
		p += "/" + url.PathEscape(sysID)
	}
	return p
}

// fields lists the synced columns.
func (c *conn) fields() []string {
	out := append([]string(nil), builtinFields...)
	for _, f := range c.s.Fields {
		dup := false
		for _, b := range out {
			dup = dup || b == f
		}
		if !dup {
			out = append(out, f)
		}
	}
	return append(out, "correlation_id", "sys_created_on")
}

// do sends one JSON request with the credentials; an OAuth token refused
// with 401 is fetched again once.
func (c *conn) do(ctx context.Context, method, path string, body, out any) error {
	_, err := c.doHeader(ctx, method, path, body, out)
	return err
}

// doHeader is do that also returns the answer's headers.
func (c *conn) doHeader(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	for attempt := 0; ; attempt++ {
		h, err := c.authHeader(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		cl := *c.http
		cl.Header = h
		rh, err := cl.DoHeader(ctx, method, path, body, out)
		err = c.redact(snError(err))
		var se *httpx.StatusError
		if attempt == 0 && c.oauth != nil && errors.As(err, &se) && se.Code == http.StatusUnauthorized {
			continue
		}
		return rh, err
	}
}

func (c *conn) authHeader(ctx context.Context, refresh bool) (http.Header, error) {
	h := http.Header{}
	if c.oauth == nil {
		r := &http.Request{Header: h}
		r.SetBasicAuth(c.basicUser, c.basicPass)
		return h, nil
	}
	tok, err := c.oauth.token(ctx, c, refresh)
	if err != nil {
		return nil, err
	}
	h.Set("Authorization", "Bearer "+tok)
	return h, nil
}

// snError reads ServiceNow's error document
// ({"error": {"message", "detail"}, "status": "failure"}).
func snError(err error) error {
	var se *httpx.StatusError
	if err == nil || !errors.As(err, &se) {
		return err
	}
	var doc struct {
		Error struct {
			Message string `json:"message"`
			Detail  string `json:"detail"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(se.Body), &doc) != nil || doc.Error.Message == "" {
		return err
	}
	msg := doc.Error.Message
	if doc.Error.Detail != "" {
		msg += ": " + doc.Error.Detail
	}
	sentinel := connectors.ErrInvalid
	for _, s := range []error{connectors.ErrNotFound, connectors.ErrBadConfig, connectors.ErrUnavailable} {
		if errors.Is(err, s) {
			sentinel = s
		}
	}
	wrapped := fmt.Errorf("%w: servicenow %s %s: HTTP %d: %s", sentinel, se.Method, se.Path, se.Code, msg)
	var ra *connectors.RetryAfterError
	if errors.As(err, &ra) {
		return &connectors.RetryAfterError{After: ra.After, Err: wrapped}
	}
	return &snErr{msg: wrapped.Error(), errs: []error{wrapped, se}}
}

type snErr struct {
	msg  string
	errs []error
}

func (e *snErr) Error() string   { return e.msg }
func (e *snErr) Unwrap() []error { return e.errs }

// redact hides the credentials in a message rebuilt from an answer's body.
func (c *conn) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := msg
	c.mu.Lock()
	secrets := append([]string(nil), c.secrets...)
	c.mu.Unlock()
	for _, s := range secrets {
		if len(s) >= 4 {
			red = strings.ReplaceAll(red, s, "[redacted]")
		}
	}
	if red == msg {
		return err
	}
	return &snErr{msg: red, errs: []error{err}}
}

// addSecret adds a credential to hide from errors (an OAuth access token);
// the list keeps the configured secret and the newest tokens.
func (c *conn) addSecret(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.secrets) > 8 {
		c.secrets = append(c.secrets[:1:1], c.secrets[len(c.secrets)-4:]...)
	}
	c.secrets = append(c.secrets, s)
}

// Close has nothing to release.
func (c *conn) Close() error { return nil }
