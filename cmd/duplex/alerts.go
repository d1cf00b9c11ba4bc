package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/alerts"
)

// alertConfig reads the alerting setup from the environment
// (docs/operations.md#alerts); unset variables take the defaults.
func alertConfig(getenv func(string) string) (alerts.Config, error) {
	c := alerts.Config{Webhook: getenv("DUPLEX_ALERT_WEBHOOK"), Format: getenv("DUPLEX_ALERT_FORMAT")}
	for name, d := range map[string]*time.Duration{
		"DUPLEX_ALERT_INTERVAL":          &c.Interval,
		"DUPLEX_ALERT_FAILURE_WINDOW":    &c.FailureWindow,
		"DUPLEX_ALERT_QUEUE_AGE":         &c.QueueAge,
		"DUPLEX_ALERT_UNREACHABLE_AFTER": &c.UnreachableAfter,
	} {
		if v := getenv(name); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				return c, fmt.Errorf("%s must be a positive duration such as 15m, got %q", name, v)
			}
			*d = x
		}
	}
	for name, n := range map[string]*int{
		"DUPLEX_ALERT_FAILURES":     &c.FailureCount,
		"DUPLEX_ALERT_MAX_ATTEMPTS": &c.MaxAttempts,
	} {
		if v := getenv(name); v != "" {
			x, err := strconv.Atoi(v)
			if err != nil || x <= 0 {
				return c, fmt.Errorf("%s must be a positive integer, got %q", name, v)
			}
			*n = x
		}
	}
	return c, c.Validate()
}

// newAlerts builds the evaluator; its webhook requests go through base, the
// connectors' transport (the system roots plus --ca-file), so a receiver
// with a private CA works as a system with one does.
func newAlerts(st *store.Store, logger *slog.Logger, process string, base http.RoundTripper) (*alerts.Evaluator, error) {
	cfg, err := alertConfig(os.Getenv)
	if err != nil {
		return nil, err
	}
	// Each request is bounded by the evaluator (Config.Timeout).
	client := &http.Client{Transport: base}
	return alerts.New(alerts.Options{Store: st, Config: cfg, Logger: logger, Process: process, Client: client}), nil
}
