package rt

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
)

// session logs in once through RT's web login and sends the session cookie
// with every REST2 request. RT checks a token or a password with a slow
// hash on every request (about 0.3 s each on the test machine); a session
// skips that. Used when the secrets hold user and password.
type session struct {
	base, user, pass string
	client           *http.Client
	mu               sync.Mutex
}

func newSession(base, user, pass string, timeout time.Duration, rt http.RoundTripper) (*session, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &session{base: base, user: user, pass: pass, client: &http.Client{
		Jar: jar, Timeout: timeout, Transport: rt,
		// The login may redirect to the home page: no need to load it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// login replaces the session cookie.
func (s *session) login(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	form := url.Values{"user": {s.user}, "pass": {s.pass}}
	req, err := http.NewRequestWithContext(ctx, "POST", s.base+"/NoAuth/Login.html", strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("%w: rt login: %w", connectors.ErrBadConfig, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("rt login: %w: %w", connectors.ErrUnavailable, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("%w: rt login: HTTP %d", connectors.ErrUnavailable, resp.StatusCode)
	}
	// RT answers 200 both to a good and to a refused login: whether the
	// session cookie opens REST2 is what tells.
	req, err = http.NewRequestWithContext(ctx, "GET", s.base+"/REST/2.0/queues/all?per_page=1", nil)
	if err != nil {
		return fmt.Errorf("%w: rt login: %w", connectors.ErrBadConfig, err)
	}
	resp, err = s.client.Do(req)
	if err != nil {
		return fmt.Errorf("rt login check: %w: %w", connectors.ErrUnavailable, err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: rt login refused for user %q (wrong user or password)", connectors.ErrBadConfig, s.user)
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: rt login check: HTTP %d", connectors.ErrUnavailable, resp.StatusCode)
	default:
		return fmt.Errorf("%w: rt login check: HTTP %d", connectors.ErrBadConfig, resp.StatusCode)
	}
}

// call sends one REST2 request. In session mode, reads carry the session
// cookie and a 401 (expired session) logs in again and repeats the read
// once; writes carry basic auth instead, because RT's cross-site request
// protection refuses cookie-authenticated writes whose Referer is not its
// own address (which a client behind a proxy cannot know).
func (c *conn) call(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	if c.sess != nil && method != http.MethodGet {
		return c.writer.DoHeader(ctx, method, path, body, out)
	}
	h, err := c.http.DoHeader(ctx, method, path, body, out)
	// A lost session shows as 401, or as RT's redirect to its login page.
	var se *httpx.StatusError
	lost := errors.Is(err, connectors.ErrBadConfig) || (errors.As(err, &se) && se.Code >= 300 && se.Code < 400)
	if c.sess == nil || !lost {
		return h, err
	}
	if lerr := c.sess.login(ctx); lerr != nil {
		return h, lerr
	}
	return c.http.DoHeader(ctx, method, path, body, out)
}
