// Package alerts watches connections and systems for trouble (events
// failing, a paused connection with changes waiting, a queue falling behind,
// a system whose polls fail) and sends one notice to a webhook when trouble
// starts and one when it heals. Alert state lives in the store (the alerts
// table), so a restart sends nothing twice and, of several processes sharing
// a PostgreSQL store, only one sends each notice. It knows no HTTP server:
// cmd/duplex runs it beside the engine.
package alerts

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/duplexsync/duplex/engine/store"
)

// Formats of the webhook's body.
const (
	FormatJSON  = "json"  // Duplex's own JSON (event, alert, text)
	FormatSlack = "slack" // Slack incoming webhook: {"text": …}
	FormatTeams = "teams" // Microsoft Teams: a message with an Adaptive Card attachment
)

// Config is the alerting setup; zero fields take the defaults below.
type Config struct {
	// Webhook receives the notices; empty: alerts are kept and shown in the
	// app, and no notice is sent.
	Webhook string
	Format  string // json (default), slack or teams

	Interval         time.Duration // how often conditions are evaluated; 15s
	FailureCount     int           // failed events within FailureWindow that open an alert; 5
	FailureWindow    time.Duration // 15m
	QueueAge         time.Duration // the oldest queued event of an active connection; 15m
	UnreachableAfter time.Duration // a system's polls failing for this long; 2m

	MaxAttempts int           // tries per notice before giving up; 6
	Backoff     time.Duration // first retry delay, doubling up to 5m; 2s
	Timeout     time.Duration // per request; 10s
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Interval, 15*time.Second)
	def(&c.FailureWindow, 15*time.Minute)
	def(&c.QueueAge, 15*time.Minute)
	def(&c.UnreachableAfter, 2*time.Minute)
	def(&c.Backoff, 2*time.Second)
	def(&c.Timeout, 10*time.Second)
	if c.FailureCount <= 0 {
		c.FailureCount = 5
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 6
	}
	if c.Format == "" {
		c.Format = FormatJSON
	}
	return c
}

// Validate checks the format and the webhook's scheme.
func (c Config) Validate() error {
	switch c.Format {
	case "", FormatJSON, FormatSlack, FormatTeams:
	default:
		return fmt.Errorf("alert format must be json, slack or teams, got %q", c.Format)
	}
	if c.Webhook != "" && !strings.HasPrefix(c.Webhook, "https://") && !strings.HasPrefix(c.Webhook, "http://") {
		return fmt.Errorf("alert webhook must be an http(s) URL")
	}
	return nil
}

// Options wires an Evaluator.
type Options struct {
	Store   *store.Store
	Config  Config
	Logger  *slog.Logger
	Process string           // this process's id, for claims
	Client  *http.Client     // default: one with Config.Timeout
	Now     func() time.Time // default time.Now
}

// Evaluator opens and resolves alerts and sends their notices.
type Evaluator struct {
	st      *store.Alerts // the alerts aggregate only: it reads health and keeps alerts
	cfg     Config
	log     *slog.Logger
	process string
	client  *http.Client
	now     func() time.Time
}

// New builds an evaluator; Run starts it.
func New(o Options) *Evaluator {
	cfg := o.Config.withDefaults()
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if o.Now == nil {
		o.Now = func() time.Time { return time.Now().UTC() }
	}
	if o.Process == "" {
		o.Process = "alerts"
	}
	return &Evaluator{st: o.Store.Alerts(), cfg: cfg, log: o.Logger, process: o.Process, client: o.Client, now: o.Now}
}

// Config is the configuration in effect (defaults filled in).
func (e *Evaluator) Config() Config { return e.cfg }

// Run evaluates every Interval and sends due notices every second (retries
// come due between evaluations) until ctx ends. It runs beside the engine:
// a slow or dead receiver delays only other notices, never syncing.
func (e *Evaluator) Run(ctx context.Context) {
	e.log.Info("alerts started", "webhook", e.cfg.Webhook != "", "format", e.cfg.Format, "interval", e.cfg.Interval)
	eval := time.NewTicker(e.cfg.Interval)
	defer eval.Stop()
	deliver := time.NewTicker(min(e.cfg.Interval, time.Second))
	defer deliver.Stop()
	for {
		if err := e.Evaluate(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("alerts: evaluate", "err", err)
		}
		for {
			if _, err := e.Deliver(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("alerts: deliver", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-deliver.C:
				continue
			case <-eval.C:
			}
			break
		}
	}
}

// Tick evaluates once and sends what is due: tests call it instead of Run.
func (e *Evaluator) Tick(ctx context.Context) error {
	if err := e.Evaluate(ctx); err != nil {
		return err
	}
	_, err := e.Deliver(ctx)
	return err
}

type key struct{ subject, kind string }

// condition is an alert that should be open now.
type condition struct {
	alert store.Alert
}

// Evaluate reads the store and opens the alerts whose condition holds and
// resolves the open ones whose condition no longer does. Every process may
// evaluate: the store's unique open alert per subject and kind decides.
func (e *Evaluator) Evaluate(ctx context.Context) error {
	now := e.now()
	conns, err := e.st.ConnectionHealths(ctx, now.Add(-e.cfg.FailureWindow))
	if err != nil {
		return err
	}
	systems, err := e.st.FailingSystems(ctx)
	if err != nil {
		return err
	}
	open, err := e.st.OpenAlerts(ctx)
	if err != nil {
		return err
	}
	isOpen := map[key]store.Alert{}
	for _, a := range open {
		isOpen[key{a.Subject, a.Kind}] = a
	}
	want := map[key]condition{}
	add := func(a store.Alert) {
		a.OpenedAt = now
		want[key{a.Subject, a.Kind}] = condition{alert: a}
	}
	for _, c := range conns {
		id := c.ID
		base := store.Alert{Subject: fmt.Sprintf("connection:%d", c.ID), ConnectionID: &id, TeamID: c.TeamID, Name: c.Name}
		// Failures open at FailureCount and stay open until none failed
		// within the window (no flapping around the threshold).
		_, failing := isOpen[key{base.Subject, store.AlertFailures}]
		if c.RecentFailed >= int64(e.cfg.FailureCount) || (failing && c.RecentFailed > 0) {
			a := base
			a.Kind = store.AlertFailures
			a.Detail = fmt.Sprintf("%d events failed in the last %s", c.RecentFailed, e.cfg.FailureWindow)
			if c.LastError != "" {
				a.Detail += "; last error: " + clip(c.LastError, 300)
			}
			add(a)
		}
		if c.PausedReason != "" { // quarantined: says why, and replaces "paused"
			a := base
			a.Kind = store.AlertQuarantined
			a.Detail = clip(c.PausedReason, 400)
			if c.Queued > 0 {
				a.Detail += fmt.Sprintf("; %d change(s) waiting to be applied", c.Queued)
			}
			add(a)
		} else if !c.Active && c.Queued > 0 {
			a := base
			a.Kind = store.AlertPaused
			a.Detail = fmt.Sprintf("%d change(s) waiting to be applied", c.Queued)
			add(a)
		}
		if c.Active && c.OldestQueued != nil && now.Sub(*c.OldestQueued) >= e.cfg.QueueAge {
			a := base
			a.Kind = store.AlertQueueAge
			a.Detail = fmt.Sprintf("the oldest of %d queued events has waited %s (threshold %s)",
				c.Queued, now.Sub(*c.OldestQueued).Round(time.Second), e.cfg.QueueAge)
			add(a)
		}
	}
	for _, s := range systems {
		if now.Sub(s.FailingSince) < e.cfg.UnreachableAfter {
			continue
		}
		id := s.ID
		add(store.Alert{Subject: fmt.Sprintf("system:%d", s.ID), SystemID: &id, TeamID: s.TeamID, Name: s.Name,
			Kind: store.AlertUnreachable, Detail: fmt.Sprintf("%d polls failed since %s; last error: %s",
				s.Failures, s.FailingSince.UTC().Format(time.RFC3339), clip(s.LastError, 300))})
	}
	for k, c := range want {
		if cur, ok := isOpen[k]; ok {
			// Still open: its detail follows the condition (a growing
			// failure count) without a new notice.
			if cur.Detail != c.alert.Detail {
				if err := e.st.SetAlertDetail(ctx, cur.ID, c.alert.Detail); err != nil {
					return err
				}
			}
			continue
		}
		a := c.alert
		opened, err := e.st.OpenAlert(ctx, &a)
		if err != nil {
			return err
		}
		if opened {
			e.log.Warn("alert opened", "alert", a.ID, "subject", a.Subject, "name", a.Name, "kind", a.Kind, "detail", a.Detail)
		}
	}
	for k, a := range isOpen {
		if _, ok := want[k]; ok {
			continue
		}
		resolved, err := e.st.ResolveAlert(ctx, a.ID, a.Detail, now)
		if err != nil {
			return err
		}
		if resolved {
			e.log.Info("alert resolved", "alert", a.ID, "subject", a.Subject, "name", a.Name, "kind", a.Kind)
		}
	}
	return nil
}

// claimLease bounds how long a process holds a notice it is sending; a
// process that dies meanwhile leaves it to another after this.
// (each notice of a batch may take up to Timeout).
func (e *Evaluator) claimLease() time.Duration { return batch*e.cfg.Timeout + 30*time.Second }

// batch is how many notices one Deliver call takes.
const batch = 5

// Deliver sends the notices that are due (each tried once per call; a
// failed one comes due again after its backoff) and returns how many were
// delivered.
func (e *Evaluator) Deliver(ctx context.Context) (int, error) {
	now := e.now()
	due, err := e.st.ClaimAlertNotices(ctx, e.process, now, e.claimLease(), batch)
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, a := range due {
		if ctx.Err() != nil {
			break
		}
		notice := a.Pending
		if e.cfg.Webhook == "" || (notice == store.AlertResolved && a.NotifiedAt == nil) {
			// No receiver, or a recovery of an alert nobody was told of.
			if err := e.st.DropAlertNotice(ctx, a.ID, notice); err != nil {
				return sent, err
			}
			continue
		}
		err := e.post(ctx, a, notice)
		if err == nil {
			if err := e.st.AlertNoticeSent(ctx, a.ID, notice, e.now()); err != nil {
				return sent, err
			}
			sent++
			e.log.Info("alert notice sent", "alert", a.ID, "notice", notice, "kind", a.Kind, "name", a.Name)
			continue
		}
		tries := a.Attempts + 1
		giveUp := tries >= e.cfg.MaxAttempts
		next := e.now().Add(backoff(e.cfg.Backoff, tries))
		e.log.Warn("alert notice failed", "alert", a.ID, "notice", notice, "attempt", tries, "give_up", giveUp, "err", err)
		if err := e.st.AlertNoticeFailed(ctx, a.ID, notice, clip(err.Error(), 500), next, giveUp); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// backoff is first doubled per earlier try, capped at five minutes.
func backoff(first time.Duration, tries int) time.Duration {
	d := first
	for i := 1; i < tries && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
