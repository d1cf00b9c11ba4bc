package redmine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/duplexsync/duplex/connectors"
)

// pattern yields size bytes from seed, never held whole.
type pattern struct {
	x       uint32
	n, size int64
}

func (g *pattern) Read(p []byte) (int, error) {
	if g.n >= g.size {
		return 0, io.EOF
	}
	if rest := g.size - g.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	for i := range p {
		g.x = g.x*1664525 + 1013904223
		p[i] = byte(g.x >> 24)
	}
	g.n += int64(len(p))
	return len(p), nil
}

func sum(r io.Reader) string {
	h := sha256.New()
	_, _ = io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil))
}

type breaking struct{ r io.Reader }

func (b breaking) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset by peer")
	}
	return n, err
}

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
	got, err := att.AddAttachment(ctx, is.ID, meta, &pattern{x: 3, size: size})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == "" || got.Name != meta.Name || got.Size != size {
		t.Fatalf("added %+v", got)
	}
	// Broken halfway: an error, and no second file on the issue.
	_, err = att.AddAttachment(ctx, is.ID, connectors.Attachment{Name: "broken.bin", Size: size}, breaking{io.LimitReader(&pattern{x: 4, size: size}, 300<<10)})
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
	if s, want := sum(rc), sum(&pattern{x: 3, size: size}); s != want {
		t.Fatalf("downloaded sha256 %s, want %s", s, want)
	}
	if _, err := att.OpenAttachment(ctx, is.ID, connectors.Attachment{ID: "99999999"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}
}
