package redmine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// attachment is a file as Redmine lists it (include=attachments). Redmine
// keeps a SHA-256 digest of each file but does not list it, so the engine
// knows a Redmine file by name and size.
type attachment struct {
	ID          int64     `json:"id"`
	Filename    string    `json:"filename"`
	Filesize    int64     `json:"filesize"`
	ContentType string    `json:"content_type"`
	CreatedOn   time.Time `json:"created_on"`
}

func (a attachment) public() connectors.Attachment {
	return connectors.Attachment{ID: strconv.FormatInt(a.ID, 10), Name: a.Filename, Size: a.Filesize,
		ContentType: a.ContentType, CreatedAt: a.CreatedOn.UTC()}
}

// OpenAttachment streams a file from /attachments/download/:id.
func (c *conn) OpenAttachment(ctx context.Context, entityID string, att connectors.Attachment) (io.ReadCloser, error) {
	id, err := strconv.ParseInt(att.ID, 10, 64)
	if err != nil || id <= 0 {
		return nil, fmt.Errorf("%w: redmine attachment id must be a positive number, got %q", connectors.ErrNotFound, att.ID)
	}
	rc, _, err := c.http.Open(ctx, fmt.Sprintf("/attachments/download/%d", id), nil)
	if err != nil {
		return nil, fmt.Errorf("redmine download attachment %d of issue %s: %w", id, entityID, err)
	}
	return rc, nil
}

// AddAttachment uploads the file (POST /uploads.json, the bytes streamed
// as application/octet-stream with their length) and attaches the upload
// to the issue with an update. An upload that breaks is never attached:
// Redmine drops unattached uploads, so a retry leaves no duplicate. The
// upload token ends with Redmine's SHA-256 of what it received, which is
// checked against what was sent.
func (c *conn) AddAttachment(ctx context.Context, entityID string, meta connectors.Attachment, r io.Reader) (connectors.Attachment, error) {
	n, err := parseID(entityID)
	if err != nil {
		return connectors.Attachment{}, err
	}
	if strings.TrimSpace(meta.Name) == "" {
		return connectors.Attachment{}, fmt.Errorf("%w: redmine: an attachment needs a file name", connectors.ErrInvalid)
	}
	h := sha256.New()
	var up struct {
		Upload struct {
			ID    int64  `json:"id"`
			Token string `json:"token"`
		} `json:"upload"`
	}
	path := "/uploads.json?filename=" + url.QueryEscape(meta.Name)
	if err := c.http.Send(ctx, "POST", path, "application/octet-stream", io.TeeReader(r, h), meta.Size, &up); err != nil {
		return connectors.Attachment{}, fmt.Errorf("redmine upload %q for issue %d: %w", meta.Name, n, redmineErrors(err))
	}
	if _, digest, ok := strings.Cut(up.Upload.Token, "."); ok && len(digest) == 64 && digest != hex.EncodeToString(h.Sum(nil)) {
		return connectors.Attachment{}, fmt.Errorf("%w: redmine: the upload of %q for issue %d arrived with another SHA-256 than was sent", connectors.ErrUnavailable, meta.Name, n)
	}
	ct := meta.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	body := map[string]any{"uploads": []any{map[string]any{"token": up.Upload.Token, "filename": meta.Name, "content_type": ct}}}
	if err := c.http.Do(ctx, "PUT", fmt.Sprintf("/issues/%d.json", n), map[string]any{"issue": body}, nil); err != nil {
		return connectors.Attachment{}, fmt.Errorf("redmine attach %q to issue %d: %w", meta.Name, n, redmineErrors(err))
	}
	got, err := c.getIssue(ctx, n)
	if err != nil {
		return connectors.Attachment{}, err
	}
	// The upload's id is the attachment's (Redmine 4.1 and later); older
	// versions: the newest file of that name.
	var found *attachment
	for i := range got.Attachments {
		a := &got.Attachments[i]
		if (up.Upload.ID != 0 && a.ID == up.Upload.ID) || (up.Upload.ID == 0 && a.Filename == meta.Name) {
			found = a
		}
	}
	if found == nil {
		return connectors.Attachment{}, fmt.Errorf("%w: redmine: the file %q attached to issue %d is not listed on it", connectors.ErrUnavailable, meta.Name, n)
	}
	return found.public(), nil
}
