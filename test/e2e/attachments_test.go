package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/streamtest"
)

func (r *rig) fileSum(c connectors.Connector, entity string, a connectors.Attachment) string {
	r.t.Helper()
	rc, err := c.(connectors.Attacher).OpenAttachment(r.ctx, entity, a)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		r.t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (r *rig) attach(c connectors.Connector, entity, name string, seed uint32, size int64) string {
	r.t.Helper()
	if _, err := c.(connectors.Attacher).AddAttachment(r.ctx, entity, connectors.Attachment{Name: name, Size: size, ContentType: "application/octet-stream"}, streamtest.Pattern(seed, size)); err != nil {
		r.t.Fatal(err)
	}
	h := sha256.New()
	_, _ = io.Copy(h, streamtest.Pattern(seed, size))
	return hex.EncodeToString(h.Sum(nil))
}

// TestAttachmentsRoundTrip: with both outgoing scripts sending their files,
// a file on the RT ticket reaches the Redmine issue and one added on the
// issue comes back to the ticket, each once, with the same bytes; further
// cycles copy nothing (the twin links the copies; neither system lists a
// hash, so a file not linked is known by name and size).
func TestAttachmentsRoundTrip(t *testing.T) {
	r := newRig(t, "")
	cur, err := r.st.CurrentScripts(r.ctx, r.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, side := range []store.Side{store.SideA, store.SideB} {
		src := cur[side][store.KindOutgoing].Source + "\nreplica.attachments = entity.attachments;\n"
		if _, err := r.st.SaveScript(r.ctx, r.conn.ID, side, store.KindOutgoing, src, "e2e"); err != nil {
			t.Fatal(err)
		}
	}
	tk := r.ticket("Crash on upload", "see the trace", nil)
	trace := r.attach(r.rtDirect, tk.ID, "trace.bin", 1, 600<<10)
	for i := 0; i < 3; i++ {
		r.cycle()
		settle()
	}
	issue := r.twinOf(tk.ID)
	is := r.get(r.rmDirect, issue)
	if len(is.Attachments) != 1 || is.Attachments[0].Name != "trace.bin" || r.fileSum(r.rmDirect, issue, is.Attachments[0]) != trace {
		t.Fatalf("Redmine issue files: %+v", is.Attachments)
	}
	patch := r.attach(r.rmDirect, issue, "fix.patch", 2, 90<<10)
	settle()
	for i := 0; i < 3; i++ {
		r.cycle()
		settle()
	}
	got := r.get(r.rtDirect, tk.ID)
	byName := map[string]connectors.Attachment{}
	for _, a := range got.Attachments {
		if _, dup := byName[a.Name]; dup {
			t.Fatalf("RT ticket has %s twice: %+v", a.Name, got.Attachments)
		}
		byName[a.Name] = a
	}
	if len(got.Attachments) != 2 || r.fileSum(r.rtDirect, tk.ID, byName["fix.patch"]) != patch {
		t.Fatalf("RT ticket files: %+v", got.Attachments)
	}
	if is := r.get(r.rmDirect, issue); len(is.Attachments) != 2 {
		t.Fatalf("Redmine issue files: %+v", is.Attachments)
	}
	for _, c := range r.get(r.rtDirect, tk.ID).Comments {
		if c.Body == "" {
			t.Fatalf("an attachment made an empty comment: %+v", c)
		}
	}
	t.Logf("e2e: attachments: trace.bin RT → Redmine, fix.patch Redmine → RT, once each, same SHA-256")
}
