package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ErrRefused is wrapped by every refusal of the outbound policy or of the
// store fence (a *RefusedError says which rule): the system may not reach
// that address, file or database. It is not retried.
var ErrRefused = errors.New("refused by the outbound policy")

// RuleStore is the fence that no policy lifts: the store's own database
// (its SQLite file, WAL, shared memory and key file, or its PostgreSQL
// server and database) is never a system.
const RuleStore = "store"

// RefusedError names the rule that refused a target.
type RefusedError struct {
	Rule   string // "store", "loopback", "link-local", "metadata", "private", "sqlite-dir", ...
	Target string // the address, host or path refused
	Hint   string // how an org admin allows it, when they can
}

func (e *RefusedError) Error() string {
	msg := fmt.Sprintf("%v (rule %s): %s", ErrRefused, e.Rule, e.Target)
	if e.Rule == RuleStore {
		msg = "the store's own database cannot be a system (rule store): " + e.Target
	}
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// DialFunc dials a network address, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Guard is the outbound policy of one system's team as a connector applies
// it. The engine passes it in Config.Guard; a nil Guard means no policy
// (tests and tools that build connectors themselves).
type Guard interface {
	// DialContext resolves addr itself and dials only addresses the
	// policy allows, so a name that resolves differently later (DNS
	// rebinding) cannot reach a refused address.
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	// CheckHost checks a host name or IP literal and what it resolves to
	// now, for a settings check; a name that does not resolve is not
	// refused (the dial checks again).
	CheckHost(ctx context.Context, host string, port int) error
	// CheckSQLite checks the file a SQLite DSN opens, following links.
	CheckSQLite(path string) error
	// CheckDatabase refuses the store's own database server and database.
	CheckDatabase(ctx context.Context, driver, host string, port int, database string) error
}

// Checker checks the targets a configuration would reach against
// cfg.Guard without connecting; a refusal wraps ErrRefused.
type Checker func(ctx context.Context, cfg Config) error

// CheckURLSetting is the Checker of the connectors whose settings name
// their system with a top-level "url" (redmine, rt, jira, github, http).
func CheckURLSetting(ctx context.Context, cfg Config) error {
	if cfg.Guard == nil {
		return nil
	}
	var s struct {
		URL string `json:"url"`
	}
	if len(cfg.Settings) > 0 {
		if err := json.Unmarshal(cfg.Settings, &s); err != nil {
			return nil // the factory reports bad settings in its own words
		}
	}
	if s.URL == "" {
		return nil
	}
	return CheckURL(ctx, cfg.Guard, s.URL)
}

// CheckURL checks an http(s) URL's host and port against g.
func CheckURL(ctx context.Context, g Guard, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil // not a URL the client could dial; the factory says why
	}
	port := 80
	if strings.EqualFold(u.Scheme, "https") {
		port = 443
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err == nil {
			port = n
		}
	}
	return g.CheckHost(ctx, u.Hostname(), port)
}

// guardedTransport is http.DefaultTransport with its dials through dial.
func guardedTransport(dial DialFunc) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = dial
	return t
}
