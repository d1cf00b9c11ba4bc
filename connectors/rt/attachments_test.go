package rt_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
	"github.com/duplexsync/duplex/connectors/redmine"
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

func download(t *testing.T, c connectors.Connector, entity string, a connectors.Attachment) string {
	t.Helper()
	rc, err := c.(connectors.Attacher).OpenAttachment(context.Background(), entity, a)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatalf("download %s: %v", a.Name, err)
	}
	if n != a.Size {
		t.Fatalf("downloaded %d bytes of %s, listed as %d", n, a.Name, a.Size)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Files go on a ticket as a comment without text, are listed with their
// size, come back with the same bytes, and are no comment; an upload that
// breaks leaves nothing. With over 2 MiB of files the messages' text is
// read by a query that leaves the files out.
func TestAttachments(t *testing.T) {
	c := open(t, nil)
	ctx := context.Background()
	att, ok := c.(connectors.Attacher)
	if !ok {
		t.Fatal("the rt connector is not an Attacher")
	}
	tk, err := c.Create(ctx, map[string]any{"subject": "with files", "description": "first message"})
	if err != nil {
		t.Fatal(err)
	}
	const size = 3 << 20
	meta := connectors.Attachment{Name: "core dump.bin", Size: size, ContentType: "application/octet-stream"}
	got, err := att.AddAttachment(ctx, tk.ID, meta, &pattern{x: 3, size: size})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == "" || got.Name != meta.Name || got.Size != size {
		t.Fatalf("added %+v", got)
	}
	_, err = att.AddAttachment(ctx, tk.ID, connectors.Attachment{Name: "broken.bin", Size: size}, breaking{io.LimitReader(&pattern{x: 4, size: size}, 300<<10)})
	if err == nil {
		t.Fatal("a broken upload succeeded")
	}
	t.Logf("broken upload: %v", err)
	if _, err := c.AddComment(ctx, tk.ID, connectors.Comment{Body: "after the file", Private: true}); err != nil {
		t.Fatal(err)
	}
	e, err := c.Get(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Attachments) != 1 || e.Attachments[0].ID != got.ID || e.Attachments[0].Size != size {
		t.Fatalf("listed %+v, want only %+v", e.Attachments, got)
	}
	if len(e.Comments) != 1 || e.Comments[0].Body != "after the file" || e.Fields["description"] != "first message" {
		t.Fatalf("comments %+v, description %q", e.Comments, e.Fields["description"])
	}
	if s, want := download(t, c, tk.ID, got), sum(&pattern{x: 3, size: size}); s != want {
		t.Fatalf("downloaded sha256 %s, want %s", s, want)
	}
}

// A file crosses from Redmine to RT and back with its bytes and name, each
// hop streamed from one connector into the other.
func TestAttachmentRoundTripWithRedmine(t *testing.T) {
	server(t)
	ru, rk := os.Getenv("DUPLEX_TEST_REDMINE_URL"), os.Getenv("DUPLEX_TEST_REDMINE_KEY")
	if ru == "" || rk == "" {
		t.Skip("DUPLEX_TEST_REDMINE_URL/KEY not set: run test/e2e/peers/redmine.sh install start, or make test-e2e")
	}
	ctx := context.Background()
	rtc := open(t, nil)
	ident := fmt.Sprintf("rt%d", time.Now().UnixNano())
	rc := &httpx.Client{Base: ru, Header: http.Header{"X-Redmine-Api-Key": {rk}}}
	if err := rc.Do(ctx, "POST", "/projects.json", map[string]any{"project": map[string]any{"name": ident, "identifier": ident,
		"tracker_ids": []int{1, 2, 3}, "enabled_module_names": []string{"issue_tracking"}}}, nil); err != nil {
		t.Fatalf("create project: %v", err)
	}
	raw, _ := json.Marshal(map[string]any{"url": ru, "project": ident})
	rm, err := redmine.New(ctx, connectors.Config{Name: "rm", Settings: raw, Secrets: map[string]string{"api_key": rk}})
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()

	const size = 700 << 10
	want := sum(&pattern{x: 11, size: size})
	issue, err := rm.Create(ctx, map[string]any{"subject": "round trip", "tracker": "Bug"})
	if err != nil {
		t.Fatal(err)
	}
	orig, err := rm.(connectors.Attacher).AddAttachment(ctx, issue.ID, connectors.Attachment{Name: "scan.pdf", Size: size, ContentType: "application/pdf"}, &pattern{x: 11, size: size})
	if err != nil {
		t.Fatal(err)
	}
	hop := func(from, to connectors.Connector, fromID, toID string, a connectors.Attachment) connectors.Attachment {
		t.Helper()
		r, err := from.(connectors.Attacher).OpenAttachment(ctx, fromID, a)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got, err := to.(connectors.Attacher).AddAttachment(ctx, toID, connectors.Attachment{Name: a.Name, Size: a.Size, ContentType: a.ContentType}, r)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	tk, err := rtc.Create(ctx, map[string]any{"subject": "round trip"})
	if err != nil {
		t.Fatal(err)
	}
	onRT := hop(rm, rtc, issue.ID, tk.ID, orig)
	if onRT.Name != "scan.pdf" || onRT.Size != size || onRT.ContentType != "application/pdf" {
		t.Fatalf("on RT: %+v", onRT)
	}
	if got := download(t, rtc, tk.ID, onRT); got != want {
		t.Fatalf("RT has sha256 %s, want %s", got, want)
	}
	back, err := rm.Create(ctx, map[string]any{"subject": "round trip back", "tracker": "Bug"})
	if err != nil {
		t.Fatal(err)
	}
	onRM := hop(rtc, rm, tk.ID, back.ID, onRT)
	if got := download(t, rm, back.ID, onRM); got != want || onRM.Name != "scan.pdf" {
		t.Fatalf("back on Redmine: %+v sha256 %s, want %s", onRM, got, want)
	}
}
