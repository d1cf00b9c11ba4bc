package azuredevops

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

// validGUID: attachment ids are GUIDs (36 characters, hex and dashes).
func validGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if r != '-' {
				return false
			}
		} else if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

// OpenAttachment streams an attached file (GET _apis/wit/attachments/ID).
func (c *conn) OpenAttachment(ctx context.Context, entityID string, att connectors.Attachment) (io.ReadCloser, error) {
	if !validGUID(att.ID) {
		return nil, fmt.Errorf("%w: azuredevops attachment id must be a GUID, got %q", connectors.ErrNotFound, att.ID)
	}
	p := fmt.Sprintf("%s/wit/attachments/%s?download=true&api-version=%s", c.proj, att.ID, apiVersion)
	rc, _, err := c.http.Open(ctx, p, http.Header{"Accept": {"application/octet-stream"}})
	if err != nil {
		return nil, fmt.Errorf("azuredevops download attachment %s of work item %s: %w", att.ID, entityID, c.redact(adoError(err)))
	}
	return rc, nil
}

// AddAttachment uploads the file (POST _apis/wit/attachments, streamed)
// and links it to the work item with an AttachedFile relation. An upload
// that breaks is never linked, so a retry leaves no duplicate on the work
// item (Azure DevOps keeps unlinked uploads out of sight).
func (c *conn) AddAttachment(ctx context.Context, entityID string, meta connectors.Attachment, r io.Reader) (connectors.Attachment, error) {
	n, err := parseID(entityID)
	if err != nil {
		return connectors.Attachment{}, err
	}
	if strings.TrimSpace(meta.Name) == "" {
		return connectors.Attachment{}, fmt.Errorf("%w: azuredevops: an attachment needs a file name", connectors.ErrInvalid)
	}
	var up struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	}
	p := fmt.Sprintf("%s/wit/attachments?fileName=%s&api-version=%s", c.proj, url.QueryEscape(meta.Name), apiVersion)
	if err := c.http.Send(ctx, "POST", p, "application/octet-stream", r, meta.Size, &up); err != nil {
		return connectors.Attachment{}, fmt.Errorf("azuredevops upload %q for work item %d: %w", meta.Name, n, c.redact(adoError(err)))
	}
	if up.URL == "" {
		return connectors.Attachment{}, fmt.Errorf("%w: azuredevops: the upload of %q answered no url", connectors.ErrUnavailable, meta.Name)
	}
	ops := []patchOp{{Op: "add", Path: "/relations/-", Value: map[string]any{"rel": "AttachedFile", "url": up.URL,
		"attributes": map[string]any{"comment": "Added by Duplex"}}}}
	var w workItem
	if err := c.send(ctx, "PATCH", fmt.Sprintf("%s/wit/workitems/%d?$expand=relations&api-version=%s", c.proj, n, apiVersion), ops, &w); err != nil {
		return connectors.Attachment{}, fmt.Errorf("azuredevops attach %q to work item %d: %w", meta.Name, n, err)
	}
	for _, a := range c.entity(w, nil).Attachments {
		if strings.EqualFold(a.ID, up.ID) {
			return a, nil
		}
	}
	return connectors.Attachment{}, fmt.Errorf("%w: azuredevops: the file %q linked to work item %d is not among its relations (%s)", connectors.ErrUnavailable, meta.Name, n, strconv.Itoa(len(w.Relations)))
}
