package servicenow

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// oauth holds an access token from the client credentials grant
// (POST /oauth_token.do), fetched on first use and again a minute before
// it expires or when the instance refuses it.
type oauth struct {
	id, secret string

	mu      sync.Mutex
	access  string
	expires time.Time
}

func (o *oauth) token(ctx context.Context, c *conn, refresh bool) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !refresh && o.access != "" && time.Now().Before(o.expires) {
		return o.access, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {o.id}, "client_secret": {o.secret}}.Encode()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", c.s.URL+"/oauth_token.do", strings.NewReader(form))
	if err != nil {
		return "", fmt.Errorf("%w: %w", connectors.ErrBadConfig, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	cl := c.http.HTTP
	if cl == nil {
		cl = http.DefaultClient
	}
	resp, err := cl.Do(req)
	if err != nil {
		return "", c.redact(fmt.Errorf("servicenow oauth token: %w: %w", connectors.ErrUnavailable, err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		sentinel := connectors.ErrBadConfig // a refused client id or secret
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			sentinel = connectors.ErrUnavailable
		}
		msg := string(data)
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return "", c.redact(fmt.Errorf("%w: servicenow oauth token: HTTP %d: %s", sentinel, resp.StatusCode, msg))
	}
	var t struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(data, &t); err != nil || t.AccessToken == "" {
		return "", fmt.Errorf("%w: servicenow oauth token: no access_token in the answer", connectors.ErrUnavailable)
	}
	o.access = t.AccessToken
	o.expires = time.Now().Add(time.Duration(max(t.ExpiresIn-60, 0)) * time.Second)
	c.addSecret(t.AccessToken)
	return o.access, nil
}
