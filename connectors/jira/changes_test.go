package jira

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// TestChangesMinuteCursor: issues updated within one minute (JQL compares
// `updated` to the minute) are all delivered across small pages, an issue
// updated again in the same minute is delivered again, an update that
// becomes visible late (stamped before the newest one taken) is not lost,
// and a quiet poll delivers nothing.
func TestChangesMinuteCursor(t *testing.T) {
	f := newFake(t)
	f.pageCap = 2 // Jira may return fewer than maxResults: page with nextPageToken
	c := open(t, f, nil)
	ctx := context.Background()
	base := f.now.Truncate(time.Minute)
	for i := 2; i <= 6; i++ {
		f.seedIssue(fmt.Sprintf("EX-%d", i), fmt.Sprintf("s%d", i), base.Add(time.Duration(i)*time.Second))
	}
	var got []string
	drain := func(cur string) string {
		t.Helper()
		for i := 0; i < 20; i++ {
			p, err := c.Changes(ctx, cur, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Entities {
				got = append(got, e.ID+"/"+fmt.Sprint(e.Fields["summary"]))
			}
			if p.Cursor != "" {
				cur = p.Cursor
			}
			if !p.More {
				return cur
			}
		}
		t.Fatal("Changes never ran out of More")
		return ""
	}
	cur := drain("")
	if want := "EX-1/Main order flow broken,EX-2/s2,EX-3/s3,EX-4/s4,EX-5/s5,EX-6/s6"; strings.Join(got, ",") != want {
		t.Fatalf("first drain: %v, want %s", got, want)
	}
	searches := f.requests("POST", api+"/search/jql")
	if strings.Contains(searches[0].Body["jql"].(string), "updated >=") {
		t.Fatalf("first poll has a lower bound: %v", searches[0].Body["jql"])
	}
	paged := false
	for _, s := range searches {
		paged = paged || s.Body["nextPageToken"] != nil
	}
	if !paged {
		t.Fatalf("no search used nextPageToken: %+v", searches)
	}
	// Comments come with the entity: EX-1 has three.
	e1, _ := c.Get(ctx, "EX-1")
	if len(e1.Comments) != 3 {
		t.Fatalf("comments: %d", len(e1.Comments))
	}

	quiet := func() {
		t.Helper()
		p, err := c.Changes(ctx, cur, 10)
		if err != nil || len(p.Entities) != 0 || p.Cursor != "" || p.More {
			t.Fatalf("quiet poll: %d entities, cursor %q, more %v, %v", len(p.Entities), p.Cursor, p.More, err)
		}
	}
	quiet()

	// Same minute: EX-3 edited 30 s into it.
	got = nil
	f.reset()
	f.setField("EX-3", "summary", "s3 edited", base.Add(30*time.Second))
	cur = drain(cur)
	if strings.Join(got, ",") != "EX-3/s3 edited" {
		t.Fatalf("same-minute edit: %v", got)
	}
	// The window starts LookBack before the newest taken stamp, at minute
	// resolution, in the API user's time zone (myself.json: Sydney).
	syd, _ := time.LoadLocation("Australia/Sydney")
	wantJQL := `project = "EX" AND updated >= "` + base.Add(6*time.Second).Add(-LookBack).In(syd).Format("2006-01-02 15:04") + `" ORDER BY updated ASC, key ASC`
	if s := f.requests("POST", api+"/search/jql"); s[0].Body["jql"] != wantJQL {
		t.Fatalf("jql %q, want %q", s[0].Body["jql"], wantJQL)
	}

	// Late: an update stamped before the newest taken one shows up now.
	got = nil
	f.seedIssue("EX-7", "late", base.Add(-20*time.Second)) // the previous minute
	cur = drain(cur)
	if strings.Join(got, ",") != "EX-7/late" {
		t.Fatalf("late-visible update: %v", got)
	}
	quiet()

	// Much later: only the new change; old stamps leave the cursor.
	got = nil
	f.tick(10 * time.Minute)
	f.setField("EX-4", "summary", "s4 later", f.now)
	cur = drain(cur)
	if strings.Join(got, ",") != "EX-4/s4 later" {
		t.Fatalf("later edit: %v", got)
	}
	var cu cursor
	if err := json.Unmarshal([]byte(cur), &cu); err != nil {
		t.Fatal(err)
	}
	if _, ok := cu.Seen["EX-2"]; ok || len(cu.Seen) != 1 {
		t.Fatalf("cursor keeps stamps outside the window: %v", cu.Seen)
	}
	quiet()

	if _, err := c.Changes(ctx, "{not json", 10); err == nil {
		t.Fatal("a malformed cursor was accepted")
	}
}

func TestChangesExtraJQL(t *testing.T) {
	f := newFake(t)
	c := open(t, f, map[string]any{"jql": "labels = todev"})
	f.seedIssue("EX-2", "plain", f.now)
	f.seedIssue("EX-3", "tagged", f.now)
	f.setField("EX-3", "labels", []any{"todev"}, f.now)
	p, err := c.Changes(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entities) != 1 || p.Entities[0].ID != "EX-3" {
		t.Fatalf("entities: %+v", p.Entities)
	}
	if s := f.requests("POST", api+"/search/jql"); !strings.HasPrefix(s[0].Body["jql"].(string), `project = "EX" AND (labels = todev)`) {
		t.Fatalf("jql: %v", s[0].Body["jql"])
	}
	var _ connectors.Hooked = c
	var _ connectors.Correlating = c
	var _ connectors.Deleter = c
}
