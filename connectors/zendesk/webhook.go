package zendesk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

// Webhook verifies a Zendesk webhook request and names the ticket it is
// about. Zendesk signs base64(HMAC-SHA256(secret, TIMESTAMP + BODY)) and
// sends it in X-Zendesk-Webhook-Signature with the timestamp in
// X-Zendesk-Webhook-Signature-Timestamp ("Verifying webhook
// authenticity"); the comparison is constant-time. Two bodies are read:
// an event-subscribed webhook's ({"type": "zen:event-type:ticket.…",
// "detail": {"id": "…"}}) and a trigger's, whose body the admin writes: it
// must hold {"ticket_id": "{{ticket.id}}"} (or a "ticket" object with an
// "id"). Other events name nothing.
func (c *conn) Webhook(header http.Header, body []byte) (connectors.Delivery, error) {
	if c.secret == "" {
		return connectors.Delivery{}, fmt.Errorf("%w: zendesk: no webhook_secret is configured for this system", connectors.ErrSignature)
	}
	sig := strings.TrimSpace(header.Get("X-Zendesk-Webhook-Signature"))
	ts := strings.TrimSpace(header.Get("X-Zendesk-Webhook-Signature-Timestamp"))
	if sig == "" || ts == "" {
		return connectors.Delivery{}, fmt.Errorf("%w: zendesk: no X-Zendesk-Webhook-Signature or X-Zendesk-Webhook-Signature-Timestamp header", connectors.ErrSignature)
	}
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return connectors.Delivery{}, fmt.Errorf("%w: zendesk: X-Zendesk-Webhook-Signature is not base64", connectors.ErrSignature)
	}
	mac := hmac.New(sha256.New, []byte(c.secret))
	mac.Write([]byte(ts))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return connectors.Delivery{}, fmt.Errorf("%w: zendesk: X-Zendesk-Webhook-Signature does not match the timestamp, the body and the webhook secret", connectors.ErrSignature)
	}
	// The invocation id is not signed: the engine dedupes by body hash too.
	d := connectors.Delivery{ID: strings.TrimSpace(header.Get("X-Zendesk-Webhook-Invocation-Id"))}
	var ev struct {
		Type     string            `json:"type"`
		Detail   *struct{ ID any } `json:"detail"`
		TicketID any               `json:"ticket_id"`
		Ticket   *struct{ ID any } `json:"ticket"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return d, fmt.Errorf("%w: zendesk webhook: malformed JSON body: %w", connectors.ErrInvalid, err)
	}
	var raw any
	switch {
	case ev.Type != "":
		if !strings.HasPrefix(ev.Type, "zen:event-type:ticket.") || ev.Detail == nil {
			return d, nil // a user, organization or other event
		}
		raw = ev.Detail.ID
	case ev.TicketID != nil:
		raw = ev.TicketID
	case ev.Ticket != nil:
		raw = ev.Ticket.ID
	default:
		return d, fmt.Errorf("%w: zendesk webhook: the body names no ticket (a trigger's webhook body needs {\"ticket_id\": \"{{ticket.id}}\"})", connectors.ErrInvalid)
	}
	id, err := parseID(connectors.Text(raw))
	if err != nil {
		return d, fmt.Errorf("%w: zendesk webhook: ticket id %v", connectors.ErrInvalid, raw)
	}
	d.EntityIDs = []string{strconv.FormatInt(id, 10)}
	return d, nil
}
