package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/duplexsync/duplex/engine/store"
)

// Notice is the generic JSON body (format json).
type Notice struct {
	// Event is "alert.opened" or "alert.resolved".
	Event string      `json:"event"`
	Alert NoticeAlert `json:"alert"`
	// Text is the one-line message the Slack and Teams bodies carry too.
	Text string `json:"text"`
}

// NoticeAlert is the alert as a notice describes it.
type NoticeAlert struct {
	ID           int64      `json:"id"`
	Kind         string     `json:"kind"`
	State        string     `json:"state"`
	Subject      string     `json:"subject"`
	ConnectionID *int64     `json:"connection_id,omitempty"`
	SystemID     *int64     `json:"system_id,omitempty"`
	TeamID       int64      `json:"team_id"`
	Name         string     `json:"name"`
	Detail       string     `json:"detail"`
	OpenedAt     time.Time  `json:"opened_at"`
	ResolvedAt   *time.Time `json:"resolved_at,omitempty"`
}

var kindTitle = map[string]string{
	store.AlertFailures:    "events are failing",
	store.AlertPaused:      "paused with changes waiting",
	store.AlertQueueAge:    "the queue is falling behind",
	store.AlertUnreachable: "unreachable (polls failing)",
	store.AlertQuarantined: "quarantined (its scripts keep hitting a limit)",
}

func what(a store.Alert) string {
	if a.SystemID != nil {
		return fmt.Sprintf("system %q", a.Name)
	}
	return fmt.Sprintf("connection %q", a.Name)
}

// Title is the notice's headline.
func Title(a store.Alert, notice string) string {
	if notice == store.AlertResolved {
		return fmt.Sprintf("Resolved: %s: %s", what(a), kindTitle[a.Kind])
	}
	return fmt.Sprintf("Duplex alert: %s: %s", what(a), kindTitle[a.Kind])
}

// Text is the headline with the detail (and, for a recovery, how long it lasted).
func Text(a store.Alert, notice string) string {
	t := Title(a, notice)
	if notice == store.AlertResolved && a.ResolvedAt != nil {
		return t + fmt.Sprintf(" (open %s)", a.ResolvedAt.Sub(a.OpenedAt).Round(time.Second))
	}
	return t + ": " + a.Detail
}

// Body renders a notice in a format.
func Body(format string, a store.Alert, notice string) ([]byte, error) {
	text := Text(a, notice)
	switch format {
	case FormatSlack:
		// Slack incoming webhooks: a JSON object with "text".
		return json.Marshal(map[string]string{"text": text})
	case FormatTeams:
		return json.Marshal(teamsCard(a, notice))
	}
	event := "alert.opened"
	if notice == store.AlertResolved {
		event = "alert.resolved"
	}
	return json.Marshal(Notice{Event: event, Text: text, Alert: NoticeAlert{
		ID: a.ID, Kind: a.Kind, State: a.State, Subject: a.Subject, ConnectionID: a.ConnectionID, SystemID: a.SystemID,
		TeamID: a.TeamID, Name: a.Name, Detail: a.Detail, OpenedAt: a.OpenedAt.UTC(), ResolvedAt: a.ResolvedAt}})
}

// teamsCard is the shape Microsoft documents for posting an Adaptive Card to
// a Teams incoming webhook or a Workflows "when a Teams webhook request is
// received" flow: a message whose one attachment is the card.
func teamsCard(a store.Alert, notice string) map[string]any {
	color := "Attention"
	if notice == store.AlertResolved {
		color = "Good"
	}
	facts := []map[string]string{
		{"title": "Kind", "value": a.Kind},
		{"title": "Subject", "value": a.Subject},
		{"title": "Opened", "value": a.OpenedAt.UTC().Format(time.RFC3339)},
	}
	if a.ResolvedAt != nil {
		facts = append(facts, map[string]string{"title": "Resolved", "value": a.ResolvedAt.UTC().Format(time.RFC3339)})
	}
	return map[string]any{
		"type": "message",
		"attachments": []any{map[string]any{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content": map[string]any{
				"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
				"type":    "AdaptiveCard",
				"version": "1.2",
				"body": []any{
					map[string]any{"type": "TextBlock", "text": Title(a, notice), "weight": "Bolder", "size": "Medium", "wrap": true, "color": color},
					map[string]any{"type": "TextBlock", "text": a.Detail, "wrap": true},
					map[string]any{"type": "FactSet", "facts": facts},
				},
			},
		}},
	}
}

// post sends one notice; any answer but 2xx is a failure.
func (e *Evaluator) post(ctx context.Context, a store.Alert, notice string) error {
	if notice == store.AlertResolved && a.ResolvedAt == nil {
		// Claimed rows are read before the claim; the alert is resolved.
		if cur, err := e.st.GetAlert(ctx, a.ID); err == nil {
			a = cur
		}
	}
	body, err := Body(e.cfg.Format, a, notice)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.Webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "duplex-alerts")
	resp, err := e.client.Do(req)
	if err != nil {
		// Not the *url.Error itself: a webhook URL often holds its secret
		// (Slack's and Teams' do), and the error is stored and shown.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("post to the alert webhook: %w", ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}
