package e2e

import (
	"testing"

	"github.com/duplexsync/duplex/connectors"
)

// TestRTStatusToRedmine: with rt_status_map set, a support-side rejection
// in RT moves the Redmine issue; the status Redmine then sends back is the
// one RT has, so quiet cycles change nothing on either side.
func TestRTStatusToRedmine(t *testing.T) {
	r := newRigParams(t, "", map[string]any{"rt_status_map": map[string]any{"rejected": "Rejected"}}, nil)
	tk := r.ticket("Refund request", "customer wants a refund", nil)
	r.cycle()
	issueID := r.twinOf(tk.ID)
	settle()
	if _, err := r.rtDirect.Update(r.ctx, tk.ID, map[string]any{"status": "rejected"}); err != nil {
		t.Fatal(err)
	}
	settle()
	r.cycle()
	if got := r.get(r.rmDirect, issueID).Fields["status"]; got != "Rejected" {
		t.Fatalf("Redmine status after RT rejected it: %v", got)
	}
	settle()
	r.cycle()
	settle()
	journals, txs := r.journalCount(issueID), r.transactionCount(tk.ID)
	for i := 0; i < 3; i++ {
		r.cycle()
	}
	if j, x := r.journalCount(issueID), r.transactionCount(tk.ID); j != journals || x != txs {
		t.Fatalf("the maps undo each other: journals %d → %d, transactions %d → %d", journals, j, txs, x)
	}
	if got := r.get(r.rtDirect, tk.ID).Fields["status"]; got != "rejected" {
		t.Fatalf("RT status: %v", got)
	}
}

// TestReEscalation: with the template's default (on_unmatch "keep"),
// clearing Escalation leaves the issue linked; escalating the ticket again
// goes on with the same issue, never a second one.
func TestReEscalation(t *testing.T) {
	r := newRig(t, "")
	tk := r.ticket("Disk full", "on db-2", nil)
	r.cycle()
	issueID := r.twinOf(tk.ID)
	for _, esc := range []string{"", "todev"} {
		settle()
		if _, err := r.rtDirect.Update(r.ctx, tk.ID, map[string]any{"Escalation": esc}); err != nil {
			t.Fatal(err)
		}
		settle()
		r.cycle()
	}
	if _, err := r.rtDirect.AddComment(r.ctx, tk.ID, connectors.Comment{Body: "still full after re-escalation"}); err != nil {
		t.Fatal(err)
	}
	settle()
	r.cycle()
	issues := r.issues()
	if len(issues) != 1 || issues[0].ID != issueID {
		t.Fatalf("after de- and re-escalation: %d issues (first %s), want only %s", len(issues), issues[0].ID, issueID)
	}
	if got := bodies(r.get(r.rmDirect, issueID).Comments); len(got) != 1 || got[0] != "[RT] root: still full after re-escalation" {
		t.Fatalf("notes on the issue: %q", got)
	}
}
