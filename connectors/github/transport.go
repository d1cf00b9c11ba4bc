package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
)

// apiVersion is the REST API version the connector is written against
// (header X-GitHub-Api-Version).
const apiVersion = "2022-11-28"

// call carries one request's extras through httpx, which knows nothing of
// GitHub: the If-None-Match to send, and the status, headers and (for
// errors) body of the answer. httpx maps 403 to ErrBadConfig and 304 to
// ErrInvalid; with the status at hand the connector tells a rate limit from
// a missing permission, and "not modified" from a failure.
type call struct {
	ifNoneMatch string
	status      int
	header      http.Header
	body        []byte // error answers only
}

type callKey struct{}

// transport sets GitHub's media type and API version (httpx sends plain
// application/json), the conditional request header, and records the
// answer in the request's call.
type transport struct{ next http.RoundTripper }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ci, _ := req.Context().Value(callKey{}).(*call)
	r := req.Clone(req.Context())
	r.Header.Set("Accept", "application/vnd.github+json")
	r.Header.Set("X-GitHub-Api-Version", apiVersion)
	if ci != nil && ci.ifNoneMatch != "" {
		r.Header.Set("If-None-Match", ci.ifNoneMatch)
	}
	resp, err := t.next.RoundTrip(r)
	if err != nil || ci == nil {
		return resp, err
	}
	ci.status, ci.header = resp.StatusCode, resp.Header
	if resp.StatusCode >= 400 {
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, httpx.MaxBody))
		resp.Body.Close()
		if rerr != nil {
			return nil, rerr
		}
		ci.body = b
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return resp, nil
}

// do sends one request through httpx. A 304 answer to a conditional request
// is no error (the call says so); a rate-limited answer becomes a
// *connectors.RetryAfterError with GitHub's wait.
func (c *conn) do(ctx context.Context, etag, method, path string, body, out any) (*call, error) {
	if until := c.blockedUntil(); !until.IsZero() {
		if wait := time.Until(until); wait > 0 {
			return nil, &connectors.RetryAfterError{After: wait, Err: fmt.Errorf("%w: github %s %s: the API rate limit is used up until %s (not sent)",
				connectors.ErrUnavailable, method, path, until.UTC().Format(time.RFC3339))}
		}
	}
	ci := &call{ifNoneMatch: etag}
	_, err := c.http.DoHeader(context.WithValue(ctx, callKey{}, ci), method, path, body, out)
	c.noteRate(ci)
	if ci.status == http.StatusNotModified && etag != "" {
		return ci, nil
	}
	if err == nil {
		return ci, nil
	}
	if rl := c.rateLimited(method, path, ci, err); rl != nil {
		return ci, rl
	}
	if errors.Is(err, connectors.ErrInvalid) {
		if msg := ghMessage(ci.body); msg != "" {
			return ci, fmt.Errorf("%w: github %s %s: HTTP %d: %s", connectors.ErrInvalid, method, path, ci.status, msg)
		}
	}
	return ci, err
}

// noteRate remembers a used-up primary rate limit (X-RateLimit-Remaining 0)
// so that no request is sent before X-RateLimit-Reset.
func (c *conn) noteRate(ci *call) {
	if ci.header == nil || ci.header.Get("X-RateLimit-Remaining") != "0" {
		return
	}
	if wait, ok := resetWait(ci.header); ok && wait > 0 {
		c.mu.Lock()
		c.blocked = time.Now().Add(wait)
		c.mu.Unlock()
	}
}

func (c *conn) blockedUntil() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blocked
}

// resetWait is how long until X-RateLimit-Reset (UTC epoch seconds),
// measured against the answer's Date so that a skewed local clock does not
// shorten or stretch the wait.
func resetWait(h http.Header) (time.Duration, bool) {
	reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil {
		return 0, false
	}
	now := time.Now()
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		now = d
	}
	return time.Unix(reset, 0).Sub(now), true
}

// secondaryWait is GitHub's advice when a secondary rate limit answer
// carries neither Retry-After nor a used-up primary limit.
const secondaryWait = time.Minute

// rateLimited follows "Rate limits for the REST API" (Exceeding the rate
// limit): a 403 or 429 with Retry-After waits that many seconds; with
// X-RateLimit-Remaining 0 until X-RateLimit-Reset; a 429, or a 403 whose
// message speaks of a rate limit, at least a minute. Any other 403 is a
// permission problem and stays ErrBadConfig.
func (c *conn) rateLimited(method, path string, ci *call, err error) error {
	if ci.status != http.StatusForbidden && ci.status != http.StatusTooManyRequests {
		return nil
	}
	msg := ghMessage(ci.body)
	if msg == "" {
		msg = strings.TrimSpace(string(ci.body))
	}
	var wait time.Duration
	if s, perr := strconv.Atoi(strings.TrimSpace(ci.header.Get("Retry-After"))); perr == nil && s >= 0 {
		wait = time.Duration(s) * time.Second
	} else if ci.header.Get("X-RateLimit-Remaining") == "0" {
		w, ok := resetWait(ci.header)
		if !ok {
			w = secondaryWait
		}
		wait = w
	} else if ci.status == http.StatusTooManyRequests || strings.Contains(strings.ToLower(msg), "rate limit") {
		wait = secondaryWait
	} else {
		return nil
	}
	if wait < time.Second {
		wait = time.Second
	}
	return &connectors.RetryAfterError{After: wait, Err: fmt.Errorf("%w: github %s %s: HTTP %d rate limited: %s", connectors.ErrUnavailable, method, path, ci.status, msg)}
}

// ghMessage reads GitHub's error document: {"message": ..., "errors":
// [{"resource", "field", "code", "message"}]}, as a readable line.
func ghMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
		Errors  []struct {
			Resource string `json:"resource"`
			Field    string `json:"field"`
			Code     string `json:"code"`
			Message  string `json:"message"`
		} `json:"errors"`
	}
	if len(body) == 0 || json.Unmarshal(body, &e) != nil || e.Message == "" {
		return ""
	}
	var parts []string
	for _, x := range e.Errors {
		switch {
		case x.Message != "":
			parts = append(parts, x.Message)
		case x.Field != "":
			parts = append(parts, strings.TrimSpace(x.Resource+"."+x.Field+" "+x.Code))
		case x.Code != "":
			parts = append(parts, x.Code)
		}
	}
	if len(parts) == 0 {
		return e.Message
	}
	return e.Message + ": " + strings.Join(parts, "; ")
}

// nextLink returns the rel="next" address of a Link header ("" if none).
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			segs := strings.Split(part, ";")
			if len(segs) < 2 {
				continue
			}
			u := strings.TrimSpace(segs[0])
			if !strings.HasPrefix(u, "<") || !strings.HasSuffix(u, ">") {
				continue
			}
			for _, p := range segs[1:] {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if !ok || strings.TrimSpace(k) != "rel" {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if rel == "next" {
						return u[1 : len(u)-1]
					}
				}
			}
		}
	}
	return ""
}

// relPath turns a pagination link (absolute, as GitHub sends it) into a
// path under the API base.
func (c *conn) relPath(link string) (string, error) {
	if p, ok := strings.CutPrefix(link, c.s.URL); ok && (p == "" || p[0] == '/' || p[0] == '?') {
		return p, nil
	}
	if strings.HasPrefix(link, "/") {
		return link, nil
	}
	return "", fmt.Errorf("%w: github: pagination link %q is not under %s", connectors.ErrUnavailable, link, c.s.URL)
}

// getAll follows Link rel="next" from path and appends every page's items.
func getAll[T any](ctx context.Context, c *conn, path string, max int) ([]T, error) {
	var all []T
	for pages := 0; path != ""; pages++ {
		if pages == max {
			return all, fmt.Errorf("%w: github GET %s: more than %d pages", connectors.ErrUnavailable, path, max)
		}
		var items []T
		ci, err := c.do(ctx, "", "GET", path, nil, &items)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		path = ""
		if next := nextLink(ci.header); next != "" {
			if path, err = c.relPath(next); err != nil {
				return nil, err
			}
		}
	}
	return all, nil
}
