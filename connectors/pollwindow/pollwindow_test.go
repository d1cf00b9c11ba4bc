package pollwindow

import (
	"net/http"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	var c Cursor
	if !c.Since().IsZero() {
		t.Fatal("a new cursor polls from the start")
	}
	// The server's clock is in t0+5s: items at t0 and t0+4s are closed
	// seconds and recorded; the one at t0+5s is in the open second.
	n := c.Advance(t0.Add(5*time.Second + 300*time.Millisecond))
	n.Take("1", t0)
	n.Take("2", t0.Add(4*time.Second))
	n.Take("3", t0.Add(5*time.Second))
	enc, err := n.Encode()
	if err != nil {
		t.Fatal(err)
	}
	c, err = Parse(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !c.T.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("T = %v", c.T)
	}
	if got := c.Since(); !got.Equal(t0.Add(5*time.Second - LookBack)) {
		t.Fatalf("Since = %v", got)
	}
	if _, ok := c.Seen["1"]; ok {
		t.Error("item 1 is older than the window: pruned, not remembered")
	}
	if !c.Taken("2", t0.Add(4*time.Second)) {
		t.Error("item 2 was taken in a closed second")
	}
	if c.Taken("2", t0.Add(5*time.Second)) {
		t.Error("item 2 updated again is a new change")
	}
	if c.Taken("3", t0.Add(5*time.Second)) {
		t.Error("item 3 was in the open second: it must be read again")
	}
	// Unknown server clock: everything taken is recorded.
	n = c.Advance(time.Time{})
	n.Take("4", t0.Add(6*time.Second))
	enc, _ = n.Encode()
	c, _ = Parse(enc)
	if !c.Taken("4", t0.Add(6*time.Second)) || !c.Taken("2", t0.Add(4*time.Second)) {
		t.Errorf("cursor %+v", c)
	}
	if _, err := Parse("{"); err == nil {
		t.Error("a broken cursor must be an error")
	}
}

func TestServerNow(t *testing.T) {
	h := http.Header{"Date": {"Wed, 02 Dec 2026 10:00:05 GMT"}}
	if got := ServerNow(h); !got.Equal(time.Date(2026, 12, 2, 10, 0, 5, 0, time.UTC)) {
		t.Fatalf("ServerNow = %v", got)
	}
	if !ServerNow(http.Header{"Date": {"yesterday"}}).IsZero() || !ServerNow(nil).IsZero() {
		t.Fatal("no usable Date header means unknown")
	}
}

// TestBeforeWindow: Redmine lists items stamped in the second before the
// asked bound (it queries "> T - 1 s" on fractional times). The cursor has
// forgotten them; they must not come back as new on every poll.
func TestBeforeWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	var c Cursor
	if c.Taken("1", t0) {
		t.Fatal("from the start nothing is taken")
	}
	n := c.Advance(t0.Add(10 * time.Second))
	n.Take("1", t0)
	n.Take("2", t0.Add(5*time.Second))
	enc, _ := n.Encode()
	c, _ = Parse(enc)
	// The window starts at t0+2s: item 1 (t0) was pruned from Seen.
	if _, ok := c.Seen["1"]; ok {
		t.Fatalf("item 1 should be pruned: %v", c.Seen)
	}
	for i, poll := range []time.Time{t0.Add(time.Second), t0} {
		if !c.Taken("1", poll) {
			t.Errorf("poll %d: an item stamped before the window (%v < %v) was taken as new", i, poll, c.Since())
		}
	}
	if c.Taken("3", c.Since()) {
		t.Error("an unseen item stamped at the window's first second is new")
	}
	if !c.Taken("2", t0.Add(5*time.Second)) || c.Taken("2", t0.Add(6*time.Second)) {
		t.Error("items in the window follow Seen")
	}
}
