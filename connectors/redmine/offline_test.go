package redmine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/redmine"
)

// TestOfflineFields: names of statuses, priorities and trackers resolve to
// the recorded ids, custom fields are read and written by name, and what
// Redmine refuses wraps ErrInvalid; all against the fake.
func TestOfflineFields(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	c := openFake(t, f)
	e, err := c.Create(ctx, map[string]any{"subject": "s", "status": "In Progress", "priority": "High", "tracker": "Feature", "RT ticket": "42"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"status": "In Progress", "priority": "High", "tracker": "Feature", "RT ticket": "42", "closed": false}
	for k, v := range want {
		if e.Fields[k] != v {
			t.Errorf("%s = %v, want %v", k, e.Fields[k], v)
		}
	}
	e, err = c.Update(ctx, e.ID, map[string]any{"status": "5", "closed": false})
	if err != nil || e.Fields["status"] != "Closed" || e.Fields["closed"] != true {
		t.Fatalf("close by status id: %v %v", e.Fields, err)
	}
	for _, bad := range []map[string]any{{"status": "Nope"}, {"subject": " "}, {"no_such_field": 1}, {"done_ratio": 140}, {"due_date": "tomorrow"}} {
		if _, err := c.Update(ctx, e.ID, bad); !errors.Is(err, connectors.ErrInvalid) {
			t.Errorf("update %v: %v, want ErrInvalid", bad, err)
		}
	}
	s, err := c.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fs := range s.Fields {
		names = append(names, fs.Name)
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "Duplex key") || !strings.Contains(got, "RT ticket") || !strings.Contains(got, "subject") {
		t.Fatalf("schema fields %s", got)
	}
	if err := c.(connectors.Deleter).Delete(ctx, "999"); err != nil {
		t.Fatalf("deleting what is gone: %v", err)
	}
	if _, err := c.(connectors.Attacher).OpenAttachment(ctx, e.ID, connectors.Attachment{ID: "x"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("attachment id x: %v", err)
	}
	if _, err := c.Get(ctx, "abc"); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("Get(abc): %v", err)
	}
}

// TestOfflineOpen: a wrong key, an unknown project and bad settings fail at
// open, naming what is wrong.
func TestOfflineOpen(t *testing.T) {
	f := newFake(t)
	open := func(settings map[string]any, key string) error {
		raw, _ := json.Marshal(settings)
		_, err := redmine.New(context.Background(), connectors.Config{Name: "x", Settings: raw, Secrets: map[string]string{"api_key": key}})
		return err
	}
	if err := open(map[string]any{"url": f.srv.URL, "project": f.ident}, "wrong"); err == nil {
		t.Fatal("a wrong key opened")
	}
	if err := open(map[string]any{"url": f.srv.URL, "project": "nope"}, fakeKey); !errors.Is(err, connectors.ErrBadConfig) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown project: %v", err)
	}
	if err := open(map[string]any{"url": f.srv.URL, "project": f.ident}, ""); !errors.Is(err, connectors.ErrBadConfig) {
		t.Fatalf("no key: %v", err)
	}
	for _, bad := range []map[string]any{{"url": "ftp://x", "project": "p"}, {"url": f.srv.URL}, {"url": f.srv.URL, "project": "p", "trackr": "Bug"}} {
		var se *connectors.SettingError
		if err := open(bad, fakeKey); !errors.As(err, &se) {
			t.Errorf("%v: %v, want a SettingError", bad, err)
		}
	}
	raw, _ := json.Marshal(map[string]any{"url": f.srv.URL, "project": f.ident, "tracker": "Support"})
	c, err := redmine.New(context.Background(), connectors.Config{Name: "x", Settings: raw, Secrets: map[string]string{"api_key": fakeKey}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Create(context.Background(), map[string]any{"subject": "tracked"})
	if err != nil || e.Fields["tracker"] != "Support" {
		t.Fatalf("tracker from settings: %v %v", e.Fields["tracker"], err)
	}
}

// A correlation key is a prefix of others (twin 1's of twins 10-19 and
// 100-199 of the same deployment), and Redmine's filter matches substrings:
// the look-up reads past a full page of longer keys to the exact one, and
// a legacy key (duplex:<connection>:<twin>) does not find a new one.
func TestCorrelationKeyAmongLongerOnes(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	cor := openFake(t, f).(connectors.Correlating)
	const key = "duplex:3f9a0c21b7e4:2:1"
	for i := 0; i < 105; i++ {
		if _, err := cor.CreateCorrelated(ctx, fmt.Sprintf("%s%d", key, i), map[string]any{"subject": "longer"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := cor.FindCorrelated(ctx, key); ok || err != nil {
		t.Fatalf("found %s before it was made: %v %v", key, ok, err)
	}
	e, err := cor.CreateCorrelated(ctx, key, map[string]any{"subject": "the one"})
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := cor.FindCorrelated(ctx, key)
	if err != nil || !ok || got.ID != e.ID {
		t.Fatalf("find %s: %q %v %v, want %s", key, got.ID, ok, err, e.ID)
	}
	if got, ok, err := cor.FindCorrelated(ctx, "duplex:2:1"); ok || err != nil {
		t.Fatalf("the legacy key found %q (%v %v)", got.ID, ok, err)
	}
}
