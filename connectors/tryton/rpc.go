package tryton

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
)

// client speaks trytond's JSON-RPC: POST <url>/<database>/ with
// {"id","method","params"}; answers carry "result" or "error". A session
// ("Authorization: Session base64(login:user id:key)") comes from
// common.db.login with the password, or is given ready made.
type client struct {
	http     *http.Client
	endpoint string // <url>/<database>/
	timeout  time.Duration
	login    string
	password string // "" when the session was given: then it is never renewed

	mu      sync.Mutex
	session string // the Authorization header value
	seq     atomic.Int64
	calls   atomic.Int64 // requests sent, for the figures
}

// rpcError is an "error" answer: Tryton sends the exception's args, a
// UserError as ["UserError", [message, description, domain]], another
// server exception as [text, traceback].
type rpcError struct {
	Method  string
	Kind    string // "UserError", "ConcurrencyException", "" for others
	Message string
}

func (e *rpcError) Error() string {
	if e.Kind == "" {
		return fmt.Sprintf("tryton %s: %s", e.Method, e.Message)
	}
	return fmt.Sprintf("tryton %s: %s: %s", e.Method, e.Kind, e.Message)
}

// AccessError is a refusal by Tryton's access rights (model or record
// rules, a button the user may not press): the configured user lacks a
// right, which no retry fixes. It wraps ErrBadConfig.
type AccessError struct{ Err *rpcError }

func (e *AccessError) Error() string { return "access refused: " + e.Err.Error() }
func (e *AccessError) Unwrap() []error {
	return []error{connectors.ErrBadConfig, e.Err}
}

// classify maps a Tryton error to the connector contract. Tryton 6.0 sends
// AccessError and the validation errors alike as "UserError", so the
// message decides: access rules say "not allowed", a missing record "don't
// exist anymore"; every other UserError is a refusal of the data.
func classify(e *rpcError) error {
	msg := strings.ToLower(e.Message)
	switch {
	case e.Kind == "ConcurrencyException":
		return fmt.Errorf("%w: %w", connectors.ErrUnavailable, e)
	case strings.Contains(msg, "don't exist anymore"):
		return fmt.Errorf("%w: %w", connectors.ErrNotFound, e)
	case strings.Contains(msg, "not allowed"):
		return &AccessError{Err: e}
	case e.Kind == "UserError" || e.Kind == "UserWarning":
		return fmt.Errorf("%w: %w", connectors.ErrInvalid, e)
	}
	// A server exception (a bad field name in a domain, a wrong argument):
	// the request was wrong, retrying sends the same.
	return fmt.Errorf("%w: %w", connectors.ErrInvalid, e)
}

func parseRPCError(method string, raw json.RawMessage) *rpcError {
	var parts []json.RawMessage
	if json.Unmarshal(raw, &parts) != nil || len(parts) == 0 {
		return &rpcError{Method: method, Message: string(raw)}
	}
	var first string
	_ = json.Unmarshal(parts[0], &first)
	e := &rpcError{Method: method}
	switch first {
	case "UserError", "UserWarning", "ConcurrencyException", "LoginException":
		e.Kind = first
		if len(parts) > 1 {
			var args []any
			if json.Unmarshal(parts[1], &args) == nil {
				var texts []string
				for _, a := range args {
					if s, ok := a.(string); ok && s != "" {
						texts = append(texts, s)
					}
				}
				e.Message = strings.Join(texts, " - ")
			} else {
				var s string
				_ = json.Unmarshal(parts[1], &s)
				e.Message = s
			}
		}
	default:
		e.Message = first // the exception's text; the traceback stays out
	}
	if len(e.Message) > 500 {
		e.Message = e.Message[:500] + "…"
	}
	return e
}

// call sends one method and decodes its result into out. With a password
// it logs in first and once more when the session has expired (HTTP 401).
func (c *client) call(ctx context.Context, method string, params []any, out any) error {
	auth, err := c.auth(ctx, false)
	if err != nil {
		return err
	}
	err = c.post(ctx, auth, method, params, out)
	var se *httpx.StatusError
	if c.password != "" && errors.As(err, &se) && se.Code == http.StatusUnauthorized {
		if auth, err = c.auth(ctx, true); err != nil {
			return err
		}
		err = c.post(ctx, auth, method, params, out)
	}
	return err
}

func (c *client) auth(ctx context.Context, renew bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session != "" && !renew {
		return c.session, nil
	}
	if c.password == "" {
		return c.session, nil
	}
	var res []json.RawMessage
	err := c.post(ctx, "", "common.db.login", []any{c.login, map[string]any{"password": c.password}, "en"}, &res)
	if err != nil {
		var se *httpx.StatusError
		if errors.As(err, &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden) {
			return "", fmt.Errorf("%w: tryton login refused for user %q (wrong user or password)", connectors.ErrBadConfig, c.login)
		}
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return "", fmt.Errorf("%w: tryton: database not found: %w", connectors.ErrBadConfig, err)
		}
		return "", fmt.Errorf("tryton login: %w", err)
	}
	if len(res) != 2 {
		return "", fmt.Errorf("%w: tryton login: unexpected answer", connectors.ErrUnavailable)
	}
	var uid int64
	var key string
	if json.Unmarshal(res[0], &uid) != nil || json.Unmarshal(res[1], &key) != nil {
		return "", fmt.Errorf("%w: tryton login: unexpected answer", connectors.ErrUnavailable)
	}
	c.session = sessionHeader(c.login, uid, key)
	return c.session, nil
}

func sessionHeader(login string, uid int64, key string) string {
	return "Session " + base64.StdEncoding.EncodeToString([]byte(login+":"+strconv.FormatInt(uid, 10)+":"+key))
}

func (c *client) post(ctx context.Context, auth, method string, params []any, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"id": c.seq.Add(1), "method": method, "params": params})
	if err != nil {
		return fmt.Errorf("%w: encode %s: %w", connectors.ErrInvalid, method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", connectors.ErrBadConfig, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	c.calls.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("tryton %s: %w", method, err)
		}
		return fmt.Errorf("tryton %s: %w: %w", method, connectors.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, httpx.MaxBody))
	if err != nil {
		return fmt.Errorf("tryton %s: %w: %w", method, connectors.ErrUnavailable, err)
	}
	if resp.StatusCode >= 300 {
		return statusError(method, resp, data)
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return fmt.Errorf("tryton %s: %w: malformed answer: %w", method, connectors.ErrUnavailable, err)
	}
	if len(env.Error) > 0 && string(env.Error) != "null" {
		return classify(parseRPCError(method, env.Error))
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(env.Result))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("tryton %s: %w: unexpected result: %w", method, connectors.ErrUnavailable, err)
	}
	return nil
}

// statusError maps trytond's HTTP refusals: 401 a session it does not know
// (or a wrong login), 403 a method the model does not expose, 429 too many
// failed logins from this address, 404 an unknown database.
func statusError(method string, resp *http.Response, data []byte) error {
	msg := string(data)
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	base := &httpx.StatusError{Code: resp.StatusCode, Method: "POST", Path: method, Body: msg}
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		after := 60 * time.Second // trytond's login rate limit sends no Retry-After
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			after = time.Duration(s) * time.Second
		}
		return &connectors.RetryAfterError{After: after, Err: fmt.Errorf("%w: %w", connectors.ErrUnavailable, base)}
	case code == http.StatusUnauthorized:
		return fmt.Errorf("%w: session refused: %w", connectors.ErrBadConfig, base)
	case code == http.StatusForbidden:
		return fmt.Errorf("%w: access refused: %w", connectors.ErrBadConfig, base)
	case code == http.StatusNotFound:
		return fmt.Errorf("%w: %w", connectors.ErrBadConfig, base) // the database
	case code >= 500:
		return fmt.Errorf("%w: %w", connectors.ErrUnavailable, base)
	}
	return fmt.Errorf("%w: %w", connectors.ErrInvalid, base)
}
