package azuredevops

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

// Webhook checks a service hook request's basic authentication (the user
// name and password set on the subscription; the password compared in
// constant time) and names the work item it is about. Service hooks sign
// nothing: the password is the only proof, so it must be long and the hook
// URL https. Events workitem.created, .updated, .commented, .deleted and
// .restored name their work item (updated: resource.workItemId; the
// others: resource.id); other events and other projects' work items name
// nothing.
func (c *conn) Webhook(header http.Header, body []byte) (connectors.Delivery, error) {
	if c.hookPassword == "" {
		return connectors.Delivery{}, fmt.Errorf("%w: azuredevops: no hook_password is configured for this system", connectors.ErrSignature)
	}
	user, pass, ok := (&http.Request{Header: header}).BasicAuth()
	if !ok {
		return connectors.Delivery{}, fmt.Errorf("%w: azuredevops: the service hook request has no basic authentication", connectors.ErrSignature)
	}
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(c.hookPassword)) == 1
	userOK := c.s.HookUsername == "" || subtle.ConstantTimeCompare([]byte(user), []byte(c.s.HookUsername)) == 1
	if !passOK || !userOK {
		return connectors.Delivery{}, fmt.Errorf("%w: azuredevops: the service hook's user name or password does not match", connectors.ErrSignature)
	}
	var ev struct {
		ID        string `json:"id"`
		EventType string `json:"eventType"`
		Resource  struct {
			ID         json.Number `json:"id"`
			WorkItemID int64       `json:"workItemId"`
			Revision   *struct {
				ID int64 `json:"id"`
			} `json:"revision"`
		} `json:"resource"`
		ResourceContainers struct {
			Project struct {
				ID string `json:"id"`
			} `json:"project"`
		} `json:"resourceContainers"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return connectors.Delivery{}, fmt.Errorf("%w: azuredevops service hook: malformed JSON body: %w", connectors.ErrInvalid, err)
	}
	d := connectors.Delivery{ID: ev.ID}
	if !strings.HasPrefix(ev.EventType, "workitem.") {
		return d, nil
	}
	if p := ev.ResourceContainers.Project.ID; p != "" && c.projectID != "" && !strings.EqualFold(p, c.projectID) {
		return d, nil // another project's
	}
	var id int64
	switch {
	case ev.EventType == "workitem.updated" && ev.Resource.WorkItemID > 0:
		id = ev.Resource.WorkItemID
	case ev.EventType == "workitem.updated" && ev.Resource.Revision != nil:
		id = ev.Resource.Revision.ID
	case ev.EventType != "workitem.updated":
		id, _ = strconv.ParseInt(ev.Resource.ID.String(), 10, 64)
	}
	if id <= 0 {
		return d, fmt.Errorf("%w: azuredevops service hook: %s event without a work item id", connectors.ErrInvalid, ev.EventType)
	}
	d.EntityIDs = []string{strconv.FormatInt(id, 10)}
	return d, nil
}
