package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/plural"
)

// Attachments cross with the replica: the outgoing script lists the files
// that go (replica.attachments = entity.attachments.filter(...)), and when
// the event is applied the engine streams each one the target does not
// have yet from the source's OpenAttachment into the target's
// AddAttachment, never holding a file whole in memory.
//
// What the target already has is known two ways. The twin links each file
// copied to the one it became ("file:a:12" → "file:b:7", kept with the
// comment links), so a file is copied once and never copied back, even if
// the target renamed it. A file not linked counts as there when the target
// has one with the same SHA-256 (when both systems give one) or, failing
// that, the same name and size: a retry after the file arrived but before
// the link was recorded (a lost answer, a crash) links that one instead of
// adding it again. A transfer that breaks fails the event, which retries
// as usual; the connector contract (connectors.Attacher) says a half upload
// is never left visible, so the retry does not find a broken duplicate.

// DefaultAttachmentMaxBytes is the per-file limit of a connection that sets
// no attachment_max_bytes.
const DefaultAttachmentMaxBytes = 100 << 20

func (l Lifecycle) attachmentLimit() int64 {
	if l.AttachmentMaxBytes > 0 {
		return l.AttachmentMaxBytes
	}
	return DefaultAttachmentMaxBytes
}

// scriptAttachments is the list scripts see as entity.attachments.
func scriptAttachments(as []connectors.Attachment) []any {
	out := make([]any, len(as))
	for i, a := range as {
		m := map[string]any{"id": a.ID, "name": a.Name, "size": a.Size, "content_type": a.ContentType}
		if a.SHA256 != "" {
			m["sha256"] = a.SHA256
		}
		out[i] = m
	}
	return out
}

func attachmentIDs(as []connectors.Attachment) []string {
	if len(as) == 0 {
		return nil
	}
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	return ids
}

// replicaAttachments reads replica.attachments as the outgoing script left
// it: a list of objects with at least an id (the source's attachment id).
func replicaAttachments(replica map[string]any) ([]connectors.Attachment, error) {
	raw, ok := replica["attachments"]
	if !ok || raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: replica.attachments must be an array, got %T", connectors.ErrInvalid, raw)
	}
	out := make([]connectors.Attachment, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: replica.attachments[%d] must be an object, got %T", connectors.ErrInvalid, i, item)
		}
		a := connectors.Attachment{ID: str(m["id"]), Name: str(m["name"]), ContentType: str(m["content_type"]), SHA256: str(m["sha256"])}
		switch n := m["size"].(type) {
		case int64:
			a.Size = n
		case float64:
			a.Size = int64(n)
		}
		if a.ID == "" {
			return nil, fmt.Errorf("%w: replica.attachments[%d] has no id (copy entries of entity.attachments)", connectors.ErrInvalid, i)
		}
		out = append(out, a)
	}
	return out, nil
}

// sameFile says whether two attachments hold the same file: by SHA-256 when
// both systems give one, otherwise by name and size.
func sameFile(a, b connectors.Attachment) bool {
	if a.SHA256 != "" && b.SHA256 != "" {
		return strings.EqualFold(a.SHA256, b.SHA256)
	}
	return a.Name == b.Name && a.Size == b.Size
}

func fileRef(side store.Side, id string) string { return "file:" + string(side) + ":" + id }

// attachmentPlan is what an event's apply does with files: copy (source
// attachments, with the source's own metadata) and relink (files the
// target has already, found by content).
type attachmentPlan struct {
	src, dst connectors.Attacher
	srcID    string
	copy     []connectors.Attachment
	relink   map[string]string // source ref → target ref
	found    []string          // target ids relinked
	skipped  []string          // log lines
	limit    int64
	srcSide  store.Side
}

// planAttachments decides which files of the replica the target gets. It
// runs before anything is written, so a file over the connection's limit
// fails the event (ErrInvalid, with the file, its size and the limit) with
// nothing half done. It reads the source entity again only when something
// is to be copied, and takes the metadata from there, not from the script.
func (e *Engine) planAttachments(ctx context.Context, p *plan, ev *store.SyncEvent, twin *store.Twin,
	target *systemState, local connectors.Entity, replica map[string]any) (*attachmentPlan, error) {
	want, err := replicaAttachments(replica)
	if err != nil || len(want) == 0 {
		return nil, err
	}
	src := ev.Direction.Source()
	dst := src.Other()
	links := loadLinks(twin)
	linked := make(map[string]bool, 2*len(links))
	for k, v := range links {
		linked[k], linked[v] = true, true
	}
	ap := &attachmentPlan{relink: map[string]string{}, limit: p.options.attachmentLimit(), srcSide: src, srcID: ev.SourceID}
	taken := map[string]bool{} // target files already matched in this plan
	var todo []connectors.Attachment
	for _, a := range want {
		if linked[fileRef(src, a.ID)] {
			continue // copied before, one way or the other
		}
		todo = append(todo, a)
	}
	if len(todo) == 0 {
		return nil, nil
	}
	var ok bool
	if ap.dst, ok = target.conn.(connectors.Attacher); !ok {
		return nil, fmt.Errorf("%w: the replica carries %s but the %s connector cannot store attachments", connectors.ErrInvalid, plural.Of(int64(len(todo)), "attachment"), dst)
	}
	source, err := e.system(ctx, p.conn.SystemID(src))
	if err != nil {
		return nil, err
	}
	if ap.src, ok = source.conn.(connectors.Attacher); !ok {
		return nil, fmt.Errorf("%w: the replica carries attachments but the %s connector cannot read them", connectors.ErrInvalid, src)
	}
	ent, err := source.conn.Get(ctx, ev.SourceID)
	if err != nil {
		return nil, fmt.Errorf("read %s entity %s for its attachments: %w", src, ev.SourceID, err)
	}
	have := make(map[string]connectors.Attachment, len(ent.Attachments))
	for _, a := range ent.Attachments {
		have[a.ID] = a
	}
	for _, w := range todo {
		a, ok := have[w.ID]
		if !ok {
			ap.skipped = append(ap.skipped, fmt.Sprintf("attachment %s (%q) is no longer on %s entity %s: not copied", w.ID, w.Name, src, ev.SourceID))
			continue
		}
		if t, ok := findFile(local.Attachments, a, taken); ok {
			ap.relink[fileRef(src, a.ID)] = fileRef(dst, t.ID)
			ap.found = append(ap.found, t.ID)
			continue
		}
		if a.Size > ap.limit {
			return nil, fmt.Errorf("%w: attachment %q of %s entity %s is %d bytes, over this connection's limit of %d bytes (option attachment_max_bytes); leave it out in the outgoing script or raise the limit",
				connectors.ErrInvalid, a.Name, src, ev.SourceID, a.Size, ap.limit)
		}
		ap.copy = append(ap.copy, a)
	}
	return ap, nil
}

// findFile finds a target file that holds a, not already matched.
func findFile(list []connectors.Attachment, a connectors.Attachment, taken map[string]bool) (connectors.Attachment, bool) {
	for _, t := range list {
		if !taken[t.ID] && sameFile(t, a) {
			taken[t.ID] = true
			return t, true
		}
	}
	return connectors.Attachment{}, false
}

// copyAttachments records the relinks and streams the files to copy onto
// target entity targetID, linking each as it lands. It returns the target
// ids now accounted for (relinked and added), also after a failure, so
// that what was done is saved with the twin and a retry skips it.
func (e *Engine) copyAttachments(ctx context.Context, ap *attachmentPlan, twin *store.Twin, targetID string, logs *[]string) (ids []string, added int, err error) {
	if ap == nil {
		return nil, 0, nil
	}
	*logs = append(*logs, ap.skipped...)
	links := loadLinks(twin)
	defer links.save(twin)
	for k, v := range ap.relink {
		links[k] = v
	}
	ids = append(ids, ap.found...)
	dst := ap.srcSide.Other()
	for _, a := range ap.copy {
		got, err := e.copyOne(ctx, ap, targetID, a)
		if err != nil {
			return ids, added, fmt.Errorf("attachment %q (%d bytes) from %s entity %s to %s entity %s: %w", a.Name, a.Size, ap.srcSide, ap.srcID, dst, targetID, err)
		}
		links[fileRef(ap.srcSide, a.ID)] = fileRef(dst, got.ID)
		ids = append(ids, got.ID)
		added++
	}
	return ids, added, nil
}

func (e *Engine) copyOne(ctx context.Context, ap *attachmentPlan, targetID string, a connectors.Attachment) (connectors.Attachment, error) {
	rc, err := ap.src.OpenAttachment(ctx, ap.srcID, a)
	if err != nil {
		return connectors.Attachment{}, fmt.Errorf("open: %w", err)
	}
	defer rc.Close()
	cr := &checkedReader{r: rc, size: a.Size, limit: ap.limit, sum: a.SHA256, h: sha256.New()}
	meta := connectors.Attachment{Name: a.Name, Size: a.Size, ContentType: a.ContentType, SHA256: a.SHA256}
	got, err := ap.dst.AddAttachment(ctx, targetID, meta, cr)
	if err == nil && !cr.done && a.Size > 0 {
		err = fmt.Errorf("%w: the target connector stopped reading after %d of %d bytes", connectors.ErrUnavailable, cr.n, a.Size)
	}
	if err != nil {
		if cr.err != nil && !errors.Is(err, cr.err) {
			err = fmt.Errorf("%w (reading the source: %w)", err, cr.err)
		}
		return got, err
	}
	return got, nil
}

// checkedReader passes the source's bytes through, counting and hashing
// them. It fails the read (instead of ending it) when the source gives
// more than the connection's limit, a length other than it announced, or
// bytes whose SHA-256 is not the one announced: the target connector then
// abandons the upload, so nothing wrong is stored.
type checkedReader struct {
	r     io.Reader
	n     int64
	size  int64 // announced
	limit int64
	sum   string // announced hex SHA-256, or ""
	h     hash.Hash
	done  bool  // all announced bytes read and verified
	err   error // the error it failed with, if any
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.h.Write(p[:n])
	switch {
	case c.n > c.limit:
		c.err = fmt.Errorf("%w: the source sent more than the limit of %d bytes", connectors.ErrInvalid, c.limit)
	case c.n > c.size:
		c.err = fmt.Errorf("%w: the source sent more than the %d bytes it announced", connectors.ErrUnavailable, c.size)
	case c.n == c.size && !c.done:
		if c.sum != "" && !strings.EqualFold(hex.EncodeToString(c.h.Sum(nil)), c.sum) {
			c.err = fmt.Errorf("%w: the bytes read do not have the SHA-256 the source announced", connectors.ErrUnavailable)
		} else {
			c.done = true
		}
	}
	switch {
	case c.err != nil:
		return n, c.err
	case err == io.EOF && !c.done:
		c.err = fmt.Errorf("%w: the source ended after %d of %d bytes", connectors.ErrUnavailable, c.n, c.size)
		return n, c.err
	case err != nil && err != io.EOF:
		c.err = fmt.Errorf("%w: reading the source: %w", connectors.ErrUnavailable, err)
		return n, c.err
	}
	return n, err
}

// linkedFile says whether the twin links attachment id of side (copied to
// or from it).
func linkedFile(links commentLinks, side store.Side, id string) bool {
	ref := fileRef(side, id)
	for k, v := range links {
		if k == ref || v == ref {
			return true
		}
	}
	return false
}
