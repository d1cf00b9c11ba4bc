package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

// Webhook verifies a delivery of the repository's webhook and names the
// issue it is about. GitHub signs the body with HMAC-SHA256 under the
// webhook's secret (X-Hub-Signature-256: sha256=HEX); the comparison is
// constant-time. Events "issues" and "issue_comment" name their issue;
// "ping" and every other event name nothing, and so does a comment on a
// pull request or an event of another repository (an organization hook).
// Both content types GitHub offers are read: application/json and
// application/x-www-form-urlencoded (the JSON in the field "payload").
func (c *conn) Webhook(header http.Header, body []byte) (connectors.Delivery, error) {
	if c.secret == "" {
		return connectors.Delivery{}, fmt.Errorf("%w: github: no webhook_secret is configured for this system", connectors.ErrSignature)
	}
	sig := strings.TrimSpace(header.Get("X-Hub-Signature-256"))
	if sig == "" {
		return connectors.Delivery{}, fmt.Errorf("%w: github: no X-Hub-Signature-256 header", connectors.ErrSignature)
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	got, err := hex.DecodeString(hexSig)
	if !ok || err != nil {
		return connectors.Delivery{}, fmt.Errorf("%w: github: X-Hub-Signature-256 is not sha256=<hex>", connectors.ErrSignature)
	}
	mac := hmac.New(sha256.New, []byte(c.secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return connectors.Delivery{}, fmt.Errorf("%w: github: X-Hub-Signature-256 does not match the body and the webhook secret", connectors.ErrSignature)
	}
	d := connectors.Delivery{ID: strings.TrimSpace(header.Get("X-GitHub-Delivery"))}
	payload := body
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return d, fmt.Errorf("%w: github webhook: malformed form body: %w", connectors.ErrInvalid, err)
		}
		payload = []byte(form.Get("payload"))
	}
	var ev struct {
		Issue *struct {
			Number      int64           `json:"number"`
			PullRequest json.RawMessage `json:"pull_request"`
		} `json:"issue"`
		Repository *struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return d, fmt.Errorf("%w: github webhook: malformed JSON body: %w", connectors.ErrInvalid, err)
	}
	event := header.Get("X-GitHub-Event")
	if event != "issues" && event != "issue_comment" {
		return d, nil // ping and events this connector does not sync
	}
	if ev.Issue == nil || ev.Issue.Number <= 0 {
		return d, fmt.Errorf("%w: github webhook: %s event without an issue number", connectors.ErrInvalid, event)
	}
	if ev.Repository != nil && ev.Repository.FullName != "" && !strings.EqualFold(ev.Repository.FullName, c.fullName) {
		return d, nil // another repository's
	}
	if len(ev.Issue.PullRequest) > 0 && string(ev.Issue.PullRequest) != "null" {
		return d, nil // a comment on a pull request
	}
	d.EntityIDs = []string{strconv.FormatInt(ev.Issue.Number, 10)}
	return d, nil
}
