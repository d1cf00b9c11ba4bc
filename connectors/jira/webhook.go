package jira

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

// Webhook reads a delivery of a Jira Cloud admin webhook registered with a
// secret (System → WebHooks, or the REST API, with "Secret" set). Jira
// signs the raw body with HMAC-SHA256 keyed on that secret and sends
// "X-Hub-Signature: sha256=<hex>" (the WebSub method=signature form).
// X-Atlassian-Webhook-Identifier, the same on every retry of a delivery,
// is the delivery id. Issue events (jira:issue_created, jira:issue_updated)
// and comment events (comment_created, comment_updated) name the issue;
// other events, and issues of another project, name nothing.
func (c *conn) Webhook(header http.Header, body []byte) (connectors.Delivery, error) {
	if c.hookSecret == "" {
		return connectors.Delivery{}, fmt.Errorf("%w: jira %s: no webhook_secret configured, so no delivery can be verified", connectors.ErrSignature, c.name)
	}
	sig := strings.TrimSpace(header.Get("X-Hub-Signature"))
	if sig == "" {
		return connectors.Delivery{}, fmt.Errorf("%w: jira: no X-Hub-Signature header", connectors.ErrSignature)
	}
	method, hexSig, ok := strings.Cut(sig, "=")
	if !ok || !strings.EqualFold(method, "sha256") {
		return connectors.Delivery{}, fmt.Errorf("%w: jira: X-Hub-Signature must be sha256=<hex>", connectors.ErrSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return connectors.Delivery{}, fmt.Errorf("%w: jira: X-Hub-Signature is not hex", connectors.ErrSignature)
	}
	mac := hmac.New(sha256.New, []byte(c.hookSecret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return connectors.Delivery{}, fmt.Errorf("%w: jira: X-Hub-Signature does not match the body", connectors.ErrSignature)
	}
	var p struct {
		WebhookEvent string `json:"webhookEvent"`
		Issue        *struct {
			ID     string `json:"id"`
			Key    string `json:"key"`
			Fields struct {
				Project *struct {
					Key string `json:"key"`
				} `json:"project"`
			} `json:"fields"`
		} `json:"issue"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return connectors.Delivery{}, fmt.Errorf("%w: jira webhook: malformed JSON body: %w", connectors.ErrInvalid, err)
	}
	if p.WebhookEvent == "" {
		return connectors.Delivery{}, fmt.Errorf("%w: jira webhook: the body has no webhookEvent", connectors.ErrInvalid)
	}
	d := connectors.Delivery{ID: header.Get("X-Atlassian-Webhook-Identifier")}
	switch p.WebhookEvent {
	case "jira:issue_created", "jira:issue_updated", "comment_created", "comment_updated":
	default:
		return d, nil
	}
	if p.Issue == nil || p.Issue.Key == "" {
		return connectors.Delivery{}, fmt.Errorf("%w: jira webhook: %s without an issue key", connectors.ErrInvalid, p.WebhookEvent)
	}
	if pr := p.Issue.Fields.Project; pr != nil && pr.Key != "" && !strings.EqualFold(pr.Key, c.s.Project) {
		return d, nil // another project's issue
	}
	if pr := p.Issue.Fields.Project; (pr == nil || pr.Key == "") && !strings.HasPrefix(p.Issue.Key, c.s.Project+"-") {
		return d, nil
	}
	d.EntityIDs = []string{p.Issue.Key}
	return d, nil
}
