// Package httpx is what every HTTP-based connector shares: a JSON request
// with a per-call timeout, and one mapping of HTTP outcomes to the
// connectors sentinels the engine acts on (retry, wait for Retry-After, fail).
package httpx

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// MaxBody bounds what is read from a response (and kept in an error).
const MaxBody = 8 << 20

// Client sends JSON requests to one system.
type Client struct {
	HTTP    *http.Client
	Base    string        // base URL, no trailing slash
	Timeout time.Duration // per request; default 30 s
	Header  http.Header   // added to every request (auth)
	Now     func() time.Time
}

// Do sends method path with body (JSON-encoded when not nil) and decodes a
// JSON answer into out (when not nil). Errors wrap connectors.ErrNotFound
// (404), ErrInvalid (other 4xx), ErrUnavailable (5xx, timeouts, dropped
// connections) and, for 429 and 503 with Retry-After, a
// *connectors.RetryAfterError.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	_, err := c.DoHeader(ctx, method, path, body, out)
	return err
}

// DoHeader is Do that also returns the answer's headers, for connectors that
// need the server's clock (Date) or paging headers.
func (c *Client) DoHeader(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%w: encode request: %w", connectors.ErrInvalid, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", connectors.ErrBadConfig, err)
	}
	for k, vs := range c.Header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	client := c.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, Redact(transportError(method, path, err), req)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return nil, Redact(transportError(method, path, err), req)
	}
	if err := c.statusError(method, path, resp, data); err != nil {
		return resp.Header, Redact(err, req)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return resp.Header, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.Header, fmt.Errorf("%s %s: %w: malformed JSON answer: %w", method, path, connectors.ErrUnavailable, err)
	}
	return resp.Header, nil
}

// transportError: a timeout, a refused or dropped connection or a cut
// answer is temporary. Only the caller's own cancellation is not.
// StatusError is an answer with an HTTP error status; it is wrapped in the
// connector error the status maps to, so a connector can still tell, say,
// a redirect to a login page from another refusal (errors.As).
type StatusError struct {
	Code         int
	Method, Path string
	Body         string // the start of the answer
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Code, e.Body)
}

func transportError(method, path string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return fmt.Errorf("%s %s: %w: %w", method, path, connectors.ErrUnavailable, err)
}

func (c *Client) statusError(method, path string, resp *http.Response, data []byte) error {
	code := resp.StatusCode
	if code < 300 {
		return nil
	}
	msg := string(data)
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	base := &StatusError{Code: code, Method: method, Path: path, Body: msg}
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if after, ok := c.retryAfter(resp.Header.Get("Retry-After")); ok {
			return &connectors.RetryAfterError{After: after, Err: fmt.Errorf("%w: %w", connectors.ErrUnavailable, base)}
		}
		return fmt.Errorf("%w: %w", connectors.ErrUnavailable, base)
	case code == http.StatusNotFound || code == http.StatusGone:
		return fmt.Errorf("%w: %w", connectors.ErrNotFound, base)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%w: %w", connectors.ErrBadConfig, base)
	case code == http.StatusRequestTimeout:
		return fmt.Errorf("%w: %w", connectors.ErrUnavailable, base)
	case code >= 500:
		return fmt.Errorf("%w: %w", connectors.ErrUnavailable, base)
	default:
		return fmt.Errorf("%w: %w", connectors.ErrInvalid, base)
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func (c *Client) retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		now := time.Now
		if c.Now != nil {
			now = c.Now
		}
		if d := t.Sub(now()); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

// Redact returns err with every credential the request carried (header
// values, URL password and query values) replaced by "[redacted]" in its
// message, keeping errors.Is and errors.As working. Errors reach the API,
// the event list and the log; a server that echoes its request into an
// error page must not put the token there.
func Redact(err error, req *http.Request) error {
	if err == nil || req == nil {
		return err
	}
	var secrets []string
	add := func(v string) {
		if len(v) >= 6 { // shorter values are more likely words than secrets
			secrets = append(secrets, v)
		}
	}
	for k, vs := range req.Header {
		switch k {
		case "Accept", "Content-Type", "User-Agent", "Accept-Encoding", "Content-Length":
			continue
		}
		for _, v := range vs {
			add(v)
			if scheme, cred, ok := strings.Cut(v, " "); ok {
				add(cred)
				if strings.EqualFold(scheme, "Basic") {
					if dec, err := base64.StdEncoding.DecodeString(cred); err == nil {
						if _, pw, ok := strings.Cut(string(dec), ":"); ok {
							add(pw)
						}
					}
				}
			}
		}
	}
	if req.URL != nil {
		if pw, ok := req.URL.User.Password(); ok {
			add(pw)
		}
		for name, vs := range req.URL.Query() {
			if !secretName(name) {
				continue // a filter or a cursor helps debugging and is no secret
			}
			for _, v := range vs {
				add(v)
			}
		}
	}
	msg := err.Error()
	red := msg
	// Longest first, so a value containing another is replaced whole.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, v := range secrets {
		red = strings.ReplaceAll(red, v, "[redacted]")
	}
	if red == msg {
		return err
	}
	return &redacted{msg: red, err: err}
}

func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"key", "token", "secret", "pass", "auth", "sig"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
