package rt_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
	"github.com/duplexsync/duplex/connectors/redmine"
	"github.com/duplexsync/duplex/internal/streamtest"
)

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
	got, err := att.AddAttachment(ctx, tk.ID, meta, streamtest.Pattern(3, size))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == "" || got.Name != meta.Name || got.Size != size {
		t.Fatalf("added %+v", got)
	}
	_, err = att.AddAttachment(ctx, tk.ID, connectors.Attachment{Name: "broken.bin", Size: size}, streamtest.Breaking(io.LimitReader(streamtest.Pattern(4, size), 300<<10)))
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
	if s, want := download(t, c, tk.ID, got), streamtest.SHA256(streamtest.Pattern(3, size)); s != want {
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
	want := streamtest.SHA256(streamtest.Pattern(11, size))
	issue, err := rm.Create(ctx, map[string]any{"subject": "round trip", "tracker": "Bug"})
	if err != nil {
		t.Fatal(err)
	}
	orig, err := rm.(connectors.Attacher).AddAttachment(ctx, issue.ID, connectors.Attachment{Name: "scan.pdf", Size: size, ContentType: "application/pdf"}, streamtest.Pattern(11, size))
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
