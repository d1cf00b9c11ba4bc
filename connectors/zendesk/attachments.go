package zendesk

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

// OpenAttachment streams a file: its content_url is read from
// GET /attachments/{id}.json and must be on the account's own host (it
// redirects to Zendesk's file storage, which the client follows).
func (c *conn) OpenAttachment(ctx context.Context, entityID string, att connectors.Attachment) (io.ReadCloser, error) {
	id, err := strconv.ParseInt(att.ID, 10, 64)
	if err != nil || id <= 0 {
		return nil, fmt.Errorf("%w: zendesk attachment id must be a positive number, got %q", connectors.ErrNotFound, att.ID)
	}
	var a struct {
		Attachment attachment `json:"attachment"`
	}
	if err := c.do(ctx, "GET", fmt.Sprintf("/attachments/%d.json", id), nil, &a); err != nil {
		return nil, fmt.Errorf("zendesk attachment %d of ticket %s: %w", id, entityID, err)
	}
	rel, ok := strings.CutPrefix(a.Attachment.ContentURL, c.s.URL)
	if !ok || !strings.HasPrefix(rel, "/") {
		return nil, fmt.Errorf("%w: zendesk: attachment %d's content_url %q is not on %s", connectors.ErrUnavailable, id, a.Attachment.ContentURL, c.s.URL)
	}
	// httpx's base is /api/v2; the file address is relative to the account.
	dl := *c.http
	dl.Base = c.s.URL
	rc, _, err := dl.Open(ctx, rel, nil)
	if err != nil {
		return nil, fmt.Errorf("zendesk download attachment %d of ticket %s: %w", id, entityID, err)
	}
	return rc, nil
}

// AddAttachment uploads the file (POST /uploads.json, streamed) and adds it
// to the ticket with an internal note naming it. An upload that breaks is
// never attached: Zendesk drops unattached uploads after a while, so a
// retry leaves no duplicate.
func (c *conn) AddAttachment(ctx context.Context, entityID string, meta connectors.Attachment, r io.Reader) (connectors.Attachment, error) {
	n, err := parseID(entityID)
	if err != nil {
		return connectors.Attachment{}, err
	}
	if strings.TrimSpace(meta.Name) == "" {
		return connectors.Attachment{}, fmt.Errorf("%w: zendesk: an attachment needs a file name", connectors.ErrInvalid)
	}
	ct := meta.ContentType
	if ct == "" {
		ct = "application/binary"
	}
	var up struct {
		Upload struct {
			Token      string     `json:"token"`
			Attachment attachment `json:"attachment"`
		} `json:"upload"`
	}
	if err := c.http.Send(ctx, "POST", "/uploads.json?filename="+url.QueryEscape(meta.Name), ct, r, meta.Size, &up); err != nil {
		return connectors.Attachment{}, fmt.Errorf("zendesk upload %q for ticket %d: %w", meta.Name, n, c.redact(zdError(err)))
	}
	if up.Upload.Token == "" {
		return connectors.Attachment{}, fmt.Errorf("%w: zendesk: the upload of %q answered no token", connectors.ErrUnavailable, meta.Name)
	}
	body := map[string]any{"comment": map[string]any{"body": "Attached " + meta.Name, "public": false, "uploads": []string{up.Upload.Token}}}
	if err := c.do(ctx, "PUT", fmt.Sprintf("/tickets/%d.json", n), map[string]any{"ticket": body}, nil); err != nil {
		return connectors.Attachment{}, fmt.Errorf("zendesk attach %q to ticket %d: %w", meta.Name, n, err)
	}
	a := up.Upload.Attachment
	return connectors.Attachment{ID: strconv.FormatInt(a.ID, 10), Name: a.FileName, Size: a.Size, ContentType: a.ContentType}, nil
}
