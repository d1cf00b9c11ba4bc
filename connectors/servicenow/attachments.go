package servicenow

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
)

// attachment is a sys_attachment row as the Attachment API lists it.
type attachment struct {
	SysID        string `json:"sys_id"`
	FileName     string `json:"file_name"`
	SizeBytes    string `json:"size_bytes"`
	ContentType  string `json:"content_type"`
	SysCreatedOn string `json:"sys_created_on"`
}

func (a attachment) public() connectors.Attachment {
	size, _ := strconv.ParseInt(a.SizeBytes, 10, 64)
	t, _ := time.ParseInLocation(snTime, a.SysCreatedOn, time.UTC)
	return connectors.Attachment{ID: a.SysID, Name: a.FileName, Size: size, ContentType: a.ContentType, CreatedAt: t}
}

// attachments lists a record's files (GET /api/now/attachment).
func (c *conn) attachments(ctx context.Context, id string) ([]connectors.Attachment, error) {
	q := url.Values{
		"sysparm_query": {"table_name=" + c.s.Table + "^table_sys_id=" + id + "^ORDERBYsys_created_on"},
		"sysparm_limit": {"1000"},
	}
	var a struct {
		Result []attachment `json:"result"`
	}
	if err := c.do(ctx, "GET", "/api/now/attachment?"+q.Encode(), nil, &a); err != nil {
		return nil, fmt.Errorf("servicenow attachments of %s: %w", id, err)
	}
	out := make([]connectors.Attachment, 0, len(a.Result))
	for _, x := range a.Result {
		out = append(out, x.public())
	}
	return out, nil
}

// streamClient is the HTTP client with the credentials of one request, for
// file transfers (which are not retried on a refused OAuth token).
func (c *conn) streamClient(ctx context.Context) (*httpx.Client, error) {
	h, err := c.authHeader(ctx, false)
	if err != nil {
		return nil, err
	}
	cl := *c.http
	cl.Header = h
	return &cl, nil
}

// OpenAttachment streams a file (GET /api/now/attachment/{sys_id}/file).
func (c *conn) OpenAttachment(ctx context.Context, entityID string, att connectors.Attachment) (io.ReadCloser, error) {
	if !validID(att.ID) {
		return nil, fmt.Errorf("%w: servicenow attachment id must be a sys_id, got %q", connectors.ErrNotFound, att.ID)
	}
	cl, err := c.streamClient(ctx)
	if err != nil {
		return nil, err
	}
	rc, _, err := cl.Open(ctx, "/api/now/attachment/"+att.ID+"/file", http.Header{"Accept": {"*/*"}})
	if err != nil {
		return nil, fmt.Errorf("servicenow download attachment %s of %s: %w", att.ID, entityID, c.redact(snError(err)))
	}
	return rc, nil
}

// AddAttachment streams the file to POST /api/now/attachment/file, which
// attaches it to the record in one request: a body cut short fails the
// request, and ServiceNow stores nothing of it.
func (c *conn) AddAttachment(ctx context.Context, entityID string, meta connectors.Attachment, r io.Reader) (connectors.Attachment, error) {
	if !validID(entityID) {
		return connectors.Attachment{}, fmt.Errorf("%w: servicenow: %q is not a sys_id", connectors.ErrNotFound, entityID)
	}
	if strings.TrimSpace(meta.Name) == "" {
		return connectors.Attachment{}, fmt.Errorf("%w: servicenow: an attachment needs a file name", connectors.ErrInvalid)
	}
	ct := meta.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	cl, err := c.streamClient(ctx)
	if err != nil {
		return connectors.Attachment{}, err
	}
	q := url.Values{"table_name": {c.s.Table}, "table_sys_id": {entityID}, "file_name": {meta.Name}}
	var a struct {
		Result attachment `json:"result"`
	}
	if err := cl.Send(ctx, "POST", "/api/now/attachment/file?"+q.Encode(), ct, r, meta.Size, &a); err != nil {
		return connectors.Attachment{}, fmt.Errorf("servicenow attach %q to %s: %w", meta.Name, entityID, c.redact(snError(err)))
	}
	return a.Result.public(), nil
}
