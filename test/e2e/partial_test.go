package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
)

// developer makes a Redmine user with the Developer role in the rig's
// project, whose default workflow refuses some status moves, and returns
// its API key and a function granting it the Manager role too (whose
// workflow allows them).
func (r *rig) developer() (key string, promote func()) {
	r.t.Helper()
	login := fmt.Sprintf("dev%d", time.Now().UnixNano())
	var created struct {
		User struct {
			ID     int64  `json:"id"`
			APIKey string `json:"api_key"`
		} `json:"user"`
	}
	if err := r.rmAPI.Do(r.ctx, "POST", "/users.json", map[string]any{"user": map[string]any{"login": login, "firstname": "Dev",
		"lastname": "Eloper", "mail": login + "@example.com", "password": "secret-12345"}}, &created); err != nil || created.User.APIKey == "" {
		r.t.Fatalf("create user: %v (%+v)", err, created)
	}
	var roles struct {
		Roles []struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"roles"`
	}
	if err := r.rmAPI.Do(r.ctx, "GET", "/roles.json", nil, &roles); err != nil {
		r.t.Fatal(err)
	}
	ids := map[string]int64{}
	for _, x := range roles.Roles {
		ids[x.Name] = x.ID
	}
	if ids["Developer"] == 0 || ids["Manager"] == 0 {
		r.t.Skip("no Developer and Manager roles: Redmine's default data is not loaded")
	}
	var m struct {
		Membership struct {
			ID int64 `json:"id"`
		} `json:"membership"`
	}
	if err := r.rmAPI.Do(r.ctx, "POST", "/projects/"+r.project+"/memberships.json", map[string]any{"membership": map[string]any{
		"user_id": created.User.ID, "role_ids": []int64{ids["Developer"]}}}, &m); err != nil {
		r.t.Fatal(err)
	}
	return created.User.APIKey, func() {
		if err := r.rmAPI.Do(r.ctx, "PUT", "/memberships/"+strconv.FormatInt(m.Membership.ID, 10)+".json", map[string]any{"membership": map[string]any{
			"role_ids": []int64{ids["Developer"], ids["Manager"]}}}, nil); err != nil {
			r.t.Fatal(err)
		}
	}
}

// lastJournalFields names the attributes the issue's last journal changed.
func (r *rig) lastJournalFields(issueID string) []string {
	r.t.Helper()
	var out struct {
		Issue struct {
			Journals []struct {
				Details []struct {
					Name string `json:"name"`
				} `json:"details"`
			} `json:"journals"`
		} `json:"issue"`
	}
	if err := r.rmAPI.Do(r.ctx, "GET", "/issues/"+issueID+".json?include=journals", nil, &out); err != nil {
		r.t.Fatal(err)
	}
	js := out.Issue.Journals
	if len(js) == 0 {
		return nil
	}
	var names []string
	for _, d := range js[len(js)-1].Details {
		names = append(names, d.Name)
	}
	return names
}

// TestWorkflowRefusalRetry: Duplex writes to Redmine as a Developer, whose
// workflow refuses New → Rejected. An RT ticket renamed and rejected at
// once: Redmine saves the subject and refuses the status; the event fails
// naming both as fields (applied: subject; refused: status). An engineer
// renames the issue meanwhile and the user is made a Manager; the retry
// writes the status alone (the issue's last journal changes status_id
// only) and the engineer's subject stands.
func TestWorkflowRefusalRetry(t *testing.T) {
	var promote func()
	r := newRigParams(t, "", map[string]any{"rt_status_map": map[string]any{"rejected": "Rejected"}}, func(r *rig) {
		var key string
		key, promote = r.developer()
		// A key that is not an administrator's learns the custom fields
		// (the correlation field) from the project's issues.
		if _, err := r.rmDirect.Create(r.ctx, map[string]any{"subject": "seed"}); err != nil {
			t.Fatal(err)
		}
		sys, err := r.st.GetSystem(r.ctx, r.conn.SystemBID)
		if err != nil {
			t.Fatal(err)
		}
		if sys.Secrets, err = r.box.SealMap(map[string]string{"api_key": key}); err != nil {
			t.Fatal(err)
		}
		if err := r.st.UpdateSystem(r.ctx, &sys); err != nil {
			t.Fatal(err)
		}
	})
	tk := r.ticket("Invoice PDF blank", "since the upgrade", nil)
	r.cycle()
	issueID := r.twinOf(tk.ID)
	settle()
	r.cycle()
	settle()
	if _, err := r.rtDirect.Update(r.ctx, tk.ID, map[string]any{"subject": "Invoice PDF blank (not a bug)", "status": "rejected"}); err != nil {
		t.Fatal(err)
	}
	settle()
	r.run()
	evs, err := r.st.ListEvents(r.ctx, store.EventFilter{ConnectionID: r.conn.ID, Status: store.StatusFailed})
	if err != nil || len(evs) != 1 {
		t.Fatalf("failed events: %d, %v", len(evs), err)
	}
	ev := evs[0]
	var partial struct {
		TargetID string   `json:"target_id"`
		Applied  []string `json:"applied"`
		Refused  []string `json:"refused"`
	}
	if ev.Partial == nil || json.Unmarshal([]byte(*ev.Partial), &partial) != nil || partial.TargetID != issueID ||
		fmt.Sprint(partial.Applied) != "[subject]" || fmt.Sprint(partial.Refused) != "[status]" {
		t.Fatalf("event %d: partial %v, want subject applied and status refused (error %q)", ev.ID, ev.Partial, ev.LastError)
	}
	got := r.get(r.rmDirect, issueID)
	if got.Fields["subject"] != "Invoice PDF blank (not a bug)" || got.Fields["status"] != "New" {
		t.Fatalf("issue after the refusal: subject %v, status %v", got.Fields["subject"], got.Fields["status"])
	}
	settle()
	if _, err := r.rmDirect.Update(r.ctx, issueID, map[string]any{"subject": "Invoice PDF blank for EU customers"}); err != nil {
		t.Fatal(err)
	}
	promote()
	settle()
	if err := r.st.RetryEvent(r.ctx, ev.ID); err != nil {
		t.Fatal(err)
	}
	r.cycle()
	got = r.get(r.rmDirect, issueID)
	if got.Fields["status"] != "Rejected" || got.Fields["subject"] != "Invoice PDF blank for EU customers" {
		t.Fatalf("issue after the retry: subject %v, status %v", got.Fields["subject"], got.Fields["status"])
	}
	if f := fmt.Sprint(r.lastJournalFields(issueID)); f != "[status_id]" {
		t.Fatalf("the retry changed %s, want status_id only", f)
	}
}
