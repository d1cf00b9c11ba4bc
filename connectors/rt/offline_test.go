package rt_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/rt"
)

// TestOfflineFields: status, owner, priority and custom fields round-trip,
// what RT would refuse wraps ErrInvalid, and the schema lists the queue's
// custom fields; all against the fake.
func TestOfflineFields(t *testing.T) {
	ctx := context.Background()
	c := openFake(t, newFake(t))
	e, err := c.Create(ctx, map[string]any{"subject": "s", "description": "first message", "Engineering URL": "http://rm/1"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Fields["description"] != "first message" || e.Fields["Engineering URL"] != "http://rm/1" || e.Fields["status"] != "new" {
		t.Fatalf("created: %v", e.Fields)
	}
	e, err = c.Update(ctx, e.ID, map[string]any{"status": "Open", "owner": "root", "priority": 20.0})
	if err != nil || e.Fields["status"] != "open" || e.Fields["owner"] != "root" || e.Fields["priority"] != 20.0 {
		t.Fatalf("update: %v %v", e.Fields, err)
	}
	for _, bad := range []map[string]any{{"subject": " "}, {"status": ""}, {"priority": "high"}, {"no_such_field": 1}, {"due": "tomorrow"}} {
		if _, err := c.Update(ctx, e.ID, bad); !errors.Is(err, connectors.ErrInvalid) {
			t.Errorf("update %v: %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := c.AddComment(ctx, e.ID, connectors.Comment{Body: " "}); !errors.Is(err, connectors.ErrInvalid) {
		t.Errorf("empty comment: %v", err)
	}
	s, err := c.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fs := range s.Fields {
		names = append(names, fs.Name)
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "Escalation") || !strings.Contains(got, "subject") {
		t.Fatalf("schema fields %s", got)
	}
	if _, err := c.(connectors.Finder).FindBy(ctx, "no_such_field", "x", 5); !errors.Is(err, connectors.ErrInvalid) {
		t.Errorf("FindBy of an unknown field: %v", err)
	}
	if found, err := c.(connectors.Finder).FindBy(ctx, "Engineering URL", "http://rm/1", 5); err != nil || len(found) != 1 {
		t.Errorf("FindBy a custom field: %d %v", len(found), err)
	}
	if _, err := c.(connectors.Attacher).OpenAttachment(ctx, e.ID, connectors.Attachment{ID: "x"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("attachment id x: %v", err)
	}
	if _, err := c.Get(ctx, "abc"); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("Get(abc): %v", err)
	}
	if _, err := c.Changes(ctx, "not a cursor", 10); !errors.Is(err, connectors.ErrBadConfig) {
		t.Errorf("a broken cursor: %v", err)
	}
}

// TestOfflineOpen: a wrong token, an unknown queue, no credentials and bad
// settings fail at open.
func TestOfflineOpen(t *testing.T) {
	f := newFake(t)
	open := func(settings map[string]any, secrets map[string]string) error {
		raw, _ := json.Marshal(settings)
		_, err := rt.New(context.Background(), connectors.Config{Name: "x", Settings: raw, Secrets: secrets})
		return err
	}
	good := map[string]string{"token": fakeToken}
	if err := open(map[string]any{"url": f.srv.URL, "queue": "General"}, map[string]string{"token": "1-14-wrong"}); err == nil {
		t.Fatal("a wrong token opened")
	}
	if err := open(map[string]any{"url": f.srv.URL, "queue": "Nope"}, good); err == nil || !strings.Contains(err.Error(), "Nope") && !errors.Is(err, connectors.ErrBadConfig) {
		t.Fatalf("unknown queue: %v", err)
	}
	if err := open(map[string]any{"url": f.srv.URL, "queue": "General"}, nil); !errors.Is(err, connectors.ErrBadConfig) {
		t.Fatalf("no credentials: %v", err)
	}
	for _, bad := range []map[string]any{{"url": "rt.example", "queue": "General"}, {"url": f.srv.URL}, {"url": f.srv.URL, "queue": "General", "queu": "x"}} {
		var se *connectors.SettingError
		if err := open(bad, good); !errors.As(err, &se) {
			t.Errorf("%v: %v, want a SettingError", bad, err)
		}
	}
}

// Two deployments' keys for the same connection and twin, and the legacy
// key of before deployment ids, each find only their own ticket: RT's
// custom field condition is an equality (without case; the ids are
// lower-case hex), and the connector reads the key as an opaque string.
func TestCorrelationKeysOfTwoDeployments(t *testing.T) {
	ctx := context.Background()
	cor := openFake(t, newFake(t)).(connectors.Correlating)
	ids := map[string]string{}
	for _, key := range []string{"duplex:3f9a0c21b7e4:1:1", "duplex:0b5e77d2a913:1:1", "duplex:1:1"} {
		if _, ok, err := cor.FindCorrelated(ctx, key); ok || err != nil {
			t.Fatalf("%s found before it was made: %v %v", key, ok, err)
		}
		e, err := cor.CreateCorrelated(ctx, key, map[string]any{"subject": key})
		if err != nil {
			t.Fatal(err)
		}
		ids[key] = e.ID
	}
	for key, id := range ids {
		got, ok, err := cor.FindCorrelated(ctx, key)
		if err != nil || !ok || got.ID != id {
			t.Fatalf("find %s: %q %v %v, want %s", key, got.ID, ok, err, id)
		}
	}
}
