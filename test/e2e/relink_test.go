package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/connectors"
)

// TestReEscalationUnlink: with on_unmatch "unlink", clearing Escalation
// unlinks the pair; escalating the ticket again links it with the issue it
// had (updated, with the reply written meanwhile), never a second issue,
// and the ticket's Engineering URL keeps pointing to it.
func TestReEscalationUnlink(t *testing.T) {
	r := newRig(t, "")
	if err := r.st.SetOptions(r.ctx, r.conn.ID, `{"sync_back_on_create":true,"on_unmatch":"unlink"}`); err != nil {
		t.Fatal(err)
	}
	tk := r.ticket("Queue stuck", "jobs pile up", nil)
	r.cycle()
	issueID := r.twinOf(tk.ID)
	settle()
	r.cycle() // the Engineering URL comes back
	url := fmt.Sprint(r.get(r.rtDirect, tk.ID).Fields["Engineering URL"])
	if !strings.HasSuffix(url, "/issues/"+issueID) {
		t.Fatalf("Engineering URL %q, issue %s", url, issueID)
	}
	settle()
	if _, err := r.rtDirect.Update(r.ctx, tk.ID, map[string]any{"Escalation": ""}); err != nil {
		t.Fatal(err)
	}
	settle()
	r.cycle()
	if r.linked(tk.ID) {
		t.Fatal("the ticket is still linked after Escalation was cleared")
	}
	if _, err := r.rtDirect.Update(r.ctx, tk.ID, map[string]any{"Escalation": "todev", "subject": "Queue stuck again"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.rtDirect.AddComment(r.ctx, tk.ID, connectors.Comment{Body: "back after the weekend"}); err != nil {
		t.Fatal(err)
	}
	settle()
	r.cycle()
	settle()
	r.cycle()
	issues := r.issues()
	if len(issues) != 1 || issues[0].ID != issueID || r.twinOf(tk.ID) != issueID {
		t.Fatalf("after unlink and re-escalation: %d issues, want only %s", len(issues), issueID)
	}
	got := r.get(r.rmDirect, issueID)
	if got.Fields["subject"] != "Queue stuck again" {
		t.Fatalf("the issue was not updated: subject %v", got.Fields["subject"])
	}
	if notes := bodies(got.Comments); len(notes) != 1 || notes[0] != "[RT] root: back after the weekend" {
		t.Fatalf("notes on the issue: %q", notes)
	}
	if u := fmt.Sprint(r.get(r.rtDirect, tk.ID).Fields["Engineering URL"]); u != url {
		t.Fatalf("Engineering URL moved from %q to %q", url, u)
	}
}

// linked reports whether an RT ticket has a pair.
func (r *rig) linked(rtID string) bool {
	r.t.Helper()
	twins, err := r.st.ListTwins(r.ctx, r.conn.ID, 1000, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, tw := range twins {
		if tw.AID != nil && *tw.AID == rtID {
			return true
		}
	}
	return false
}
