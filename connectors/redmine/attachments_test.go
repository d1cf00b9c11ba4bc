package redmine_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/internal/streamtest"
)

// A file goes up through the uploads API, is listed on the issue and comes
// back with the same bytes; an upload that breaks leaves nothing.
func TestAttachments(t *testing.T) {
	c := open(t, nil)
	ctx := context.Background()
	att, ok := c.(connectors.Attacher)
	if !ok {
		t.Fatal("the redmine connector is not an Attacher")
	}
	is, err := c.Create(ctx, map[string]any{"subject": "with files", "tracker": "Bug"})
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20
	meta := connectors.Attachment{Name: "trace 1.bin", Size: size, ContentType: "application/octet-stream"}
	got, err := att.AddAttachment(ctx, is.ID, meta, streamtest.Pattern(3, size))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == "" || got.Name != meta.Name || got.Size != size {
		t.Fatalf("added %+v", got)
	}
	// Broken halfway: an error, and no second file on the issue.
	_, err = att.AddAttachment(ctx, is.ID, connectors.Attachment{Name: "broken.bin", Size: size}, streamtest.Breaking(io.LimitReader(streamtest.Pattern(4, size), 300<<10)))
	if err == nil {
		t.Fatal("a broken upload succeeded")
	}
	t.Logf("broken upload: %v", err)
	e, err := c.Get(ctx, is.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Attachments) != 1 || e.Attachments[0] != got {
		t.Fatalf("listed %+v, want only %+v", e.Attachments, got)
	}
	rc, err := att.OpenAttachment(ctx, is.ID, got)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if s, want := streamtest.SHA256(rc), streamtest.SHA256(streamtest.Pattern(3, size)); s != want {
		t.Fatalf("downloaded sha256 %s, want %s", s, want)
	}
	if _, err := att.OpenAttachment(ctx, is.ID, connectors.Attachment{ID: "99999999"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}
}
