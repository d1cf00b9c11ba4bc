// Package conntest is the conformance suite every connector runs against
// its own fake (or real) system: the Connector contract, and each optional
// capability its Spec declares, so a spec cannot claim what the connector
// does not do and a connector cannot quietly break the contract.
package conntest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/connectors"
)

// Harness is what a connector's test gives the suite.
type Harness struct {
	Spec connectors.Spec
	// Open opens a connector to an empty system of its own (each subtest
	// calls it once; close it in t.Cleanup). With Correlation declared it
	// must be configured with its correlation setting.
	Open func(t *testing.T) connectors.Connector
	// Fields returns the fields of a new entity, distinct for each n; they
	// hold KeepField and, for Find, FindField.
	Fields func(n int) map[string]any
	// Update is the one field the update test writes, and its new value;
	// KeepField, another field of Fields, must keep its value.
	UpdateField string
	UpdateValue any
	KeepField   string
	// TieStamps gives the entities the same change stamp as the system
	// sees it (nil: the fake already stamps them alike, as with a fixed
	// clock).
	TieStamps func(t *testing.T, ids []string)
	// Settle moves the system's clock past the stamps just written, for
	// fakes whose clock stands still (pollwindow leaves the second the
	// server is in open, so it would hand those out again). nil: nothing.
	Settle func(t *testing.T)
	// MissingID is an id no entity has.
	MissingID string
	// FindField is a field FindBy searches exactly (Find).
	FindField string
	// Webhook builds a request naming entity id, signed or with a bad
	// signature (Webhooks).
	Webhook func(t *testing.T, id string, signed bool) (http.Header, []byte)
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Helper()
	t.Run("ChangesTieBreak", func(t *testing.T) { tieBreak(t, h) })
	t.Run("ChangesResume", func(t *testing.T) { resume(t, h) })
	t.Run("GetMissing", func(t *testing.T) { getMissing(t, h) })
	t.Run("UpdateOnlyGiven", func(t *testing.T) { updateOnlyGiven(t, h) })
	t.Run("Comments", func(t *testing.T) { comments(t, h) })
	t.Run("Capabilities", func(t *testing.T) { capabilities(t, h) })
	c := h.Spec.Capabilities
	if c.Correlation {
		t.Run("Correlation", func(t *testing.T) { correlation(t, h) })
	}
	if c.Find {
		t.Run("FindSkipsDeleted", func(t *testing.T) { findSkipsDeleted(t, h) })
	}
	if c.Attachments {
		t.Run("BrokenUpload", func(t *testing.T) { brokenUpload(t, h) })
	}
	if c.Webhooks {
		t.Run("Webhook", func(t *testing.T) { webhook(t, h) })
	}
	t.Run("Close", func(t *testing.T) {
		if err := h.Open(t).Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
}

func create(t *testing.T, c connectors.Connector, fields map[string]any) connectors.Entity {
	t.Helper()
	e, err := c.Create(context.Background(), fields)
	if err != nil {
		t.Fatalf("Create(%v): %v", fields, err)
	}
	if e.ID == "" {
		t.Fatalf("Create returned no id: %+v", e)
	}
	return e
}

// drain reads Changes from cursor until nothing more comes, counting each
// id; limit 1 puts every tie on a page boundary.
func drain(t *testing.T, h Harness, c connectors.Connector, cursor string) (map[string]int, string) {
	t.Helper()
	if h.Settle != nil {
		h.Settle(t)
	}
	seen := map[string]int{}
	for i := 0; i < 100; i++ {
		p, err := c.Changes(context.Background(), cursor, 1)
		if err != nil {
			t.Fatalf("Changes(%q): %v", cursor, err)
		}
		for _, e := range p.Entities {
			seen[e.ID]++
		}
		if p.Cursor != "" {
			cursor = p.Cursor
		}
		if len(p.Entities) == 0 && !p.More {
			return seen, cursor
		}
	}
	t.Fatalf("Changes never ran dry after 100 pages: %v", seen)
	return nil, ""
}

func tieBreak(t *testing.T, h Harness) {
	c := h.Open(t)
	var ids []string
	for n := 1; n <= 4; n++ {
		ids = append(ids, create(t, c, h.Fields(n)).ID)
	}
	if h.TieStamps != nil {
		h.TieStamps(t, ids)
	}
	seen, _ := drain(t, h, c, "")
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("entity %s seen %d times across pages of one (all share a stamp): %v", id, seen[id], seen)
		}
	}
}

func resume(t *testing.T, h Harness) {
	c := h.Open(t)
	first := create(t, c, h.Fields(1)).ID
	_, cursor := drain(t, h, c, "")
	if cursor == "" {
		t.Fatal("Changes gave no cursor after reading an entity")
	}
	second := create(t, c, h.Fields(2)).ID
	seen, _ := drain(t, h, c, cursor)
	if seen[second] != 1 || seen[first] != 0 {
		t.Fatalf("resuming from the cursor: want only %s once, got %v", second, seen)
	}
}

func getMissing(t *testing.T, h Harness) {
	c := h.Open(t)
	if _, err := c.Get(context.Background(), h.MissingID); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("Get(%q) = %v, want an error wrapping ErrNotFound", h.MissingID, err)
	}
}

func same(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func updateOnlyGiven(t *testing.T, h Harness) {
	c := h.Open(t)
	ctx := context.Background()
	fields := h.Fields(1)
	e := create(t, c, fields)
	if _, err := c.Update(ctx, e.ID, map[string]any{h.UpdateField: h.UpdateValue}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got, err := c.Get(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !same(got.Fields[h.UpdateField], h.UpdateValue) {
		t.Errorf("%s = %v after Update, want %v", h.UpdateField, got.Fields[h.UpdateField], h.UpdateValue)
	}
	if !same(got.Fields[h.KeepField], fields[h.KeepField]) {
		t.Errorf("%s = %v after an Update of %s only, want %v", h.KeepField, got.Fields[h.KeepField], h.UpdateField, fields[h.KeepField])
	}
}

func comments(t *testing.T, h Harness) {
	c := h.Open(t)
	ctx := context.Background()
	e := create(t, c, h.Fields(1))
	cm, err := c.AddComment(ctx, e.ID, connectors.Comment{Body: "public note"})
	if err != nil {
		t.Fatalf("AddComment: %v", err)
	}
	_, perr := c.AddComment(ctx, e.ID, connectors.Comment{Body: "internal note", Private: true})
	switch {
	case h.Spec.Capabilities.PrivateComments && perr != nil:
		t.Fatalf("private comment on a kind that declares them: %v", perr)
	case !h.Spec.Capabilities.PrivateComments && !errors.Is(perr, connectors.ErrInvalid):
		t.Fatalf("private comment on a kind without them = %v, want ErrInvalid", perr)
	}
	got, err := c.Get(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	var public, private int
	for _, x := range got.Comments {
		switch {
		case strings.Contains(x.Body, "public note") && !x.Private:
			public++
			if cm.ID != "" && x.ID != cm.ID {
				t.Errorf("comment id %q on Get, %q from AddComment", x.ID, cm.ID)
			}
		case strings.Contains(x.Body, "internal note"):
			private++
			if !x.Private {
				t.Errorf("private comment read back as public: %+v", x)
			}
		}
	}
	wantPrivate := 0
	if h.Spec.Capabilities.PrivateComments {
		wantPrivate = 1
	}
	if public != 1 || private != wantPrivate {
		t.Fatalf("comments read back: %d public, %d private (want 1, %d): %+v", public, private, wantPrivate, got.Comments)
	}
}

// capabilities: each declared capability is implemented; an optional
// interface implemented but not declared is a spec that under-reports.
func capabilities(t *testing.T, h Harness) {
	c := h.Open(t)
	caps := h.Spec.Capabilities
	for _, x := range []struct {
		name     string
		declared bool
		iface    reflect.Type
	}{
		{"webhooks", caps.Webhooks, reflect.TypeFor[connectors.Hooked]()},
		{"attachments", caps.Attachments, reflect.TypeFor[connectors.Attacher]()},
		{"correlation", caps.Correlation, reflect.TypeFor[connectors.Correlating]()},
		{"find", caps.Find, reflect.TypeFor[connectors.Finder]()},
		{"deletes", caps.Deletes, reflect.TypeFor[connectors.Deleter]()},
	} {
		if has := reflect.TypeOf(c).Implements(x.iface); has != x.declared {
			t.Errorf("%s: declared %v, implemented %v", x.name, x.declared, has)
		}
	}
}

func correlation(t *testing.T, h Harness) {
	c := h.Open(t).(connectors.Correlating)
	ctx := context.Background()
	e, err := c.CreateCorrelated(ctx, "dx-conntest-1", h.Fields(1))
	if err != nil {
		t.Fatalf("CreateCorrelated: %v", err)
	}
	for i := 0; i < 2; i++ { // finding twice finds the same one: a retry creates nothing
		got, ok, err := c.FindCorrelated(ctx, "dx-conntest-1")
		if err != nil || !ok || got.ID != e.ID {
			t.Fatalf("FindCorrelated: %v %v %v, want %s", got.ID, ok, err, e.ID)
		}
	}
	if _, ok, err := c.FindCorrelated(ctx, "dx-conntest-2"); err != nil || ok {
		t.Fatalf("FindCorrelated of a key never used: %v %v", ok, err)
	}
}

func findSkipsDeleted(t *testing.T, h Harness) {
	c := h.Open(t)
	ctx := context.Background()
	fields := h.Fields(1)
	a := create(t, c, fields)
	b := create(t, c, fields)
	value := fmt.Sprint(fields[h.FindField])
	f := c.(connectors.Finder)
	found, err := f.FindBy(ctx, h.FindField, value, 10)
	if err != nil || len(found) != 2 {
		t.Fatalf("FindBy(%s=%q) before the delete: %d found, %v", h.FindField, value, len(found), err)
	}
	d, ok := c.(connectors.Deleter)
	if !ok {
		return // nothing can be deleted through the connector
	}
	if err := d.Delete(ctx, a.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	found, err = f.FindBy(ctx, h.FindField, value, 10)
	if err != nil || len(found) != 1 || found[0].ID != b.ID {
		t.Fatalf("FindBy after deleting %s: %+v %v, want only %s", a.ID, found, err, b.ID)
	}
}

type brokenReader struct{ n int }

func (r *brokenReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("the source broke mid-file")
	}
	n := min(len(p), r.n)
	for i := range p[:n] {
		p[i] = 'x'
	}
	r.n -= n
	return n, nil
}

func brokenUpload(t *testing.T, h Harness) {
	c := h.Open(t)
	ctx := context.Background()
	e := create(t, c, h.Fields(1))
	a := c.(connectors.Attacher)
	meta := connectors.Attachment{Name: "half.txt", ContentType: "text/plain", Size: 4096}
	if _, err := a.AddAttachment(ctx, e.ID, meta, &brokenReader{n: 1000}); err == nil {
		t.Fatal("AddAttachment of a reader that fails succeeded")
	}
	got, err := c.Get(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Attachments) != 0 {
		t.Fatalf("a broken upload left %+v", got.Attachments)
	}
	meta = connectors.Attachment{Name: "whole.txt", ContentType: "text/plain", Size: 5}
	att, err := a.AddAttachment(ctx, e.ID, meta, strings.NewReader("hello"))
	if err != nil {
		t.Fatalf("AddAttachment: %v", err)
	}
	rc, err := a.OpenAttachment(ctx, e.ID, att)
	if err != nil {
		t.Fatalf("OpenAttachment: %v", err)
	}
	defer rc.Close()
	if b, err := io.ReadAll(rc); err != nil || string(b) != "hello" {
		t.Fatalf("attachment read back %q %v", b, err)
	}
}

func webhook(t *testing.T, h Harness) {
	c := h.Open(t)
	e := create(t, c, h.Fields(1))
	hk := c.(connectors.Hooked)
	hdr, body := h.Webhook(t, e.ID, false)
	if _, err := hk.Webhook(hdr, body); !errors.Is(err, connectors.ErrSignature) {
		t.Fatalf("bad signature: %v, want ErrSignature", err)
	}
	hdr, body = h.Webhook(t, e.ID, true)
	d, err := hk.Webhook(hdr, body)
	if err != nil {
		t.Fatalf("signed webhook: %v", err)
	}
	named := map[string]bool{}
	for _, id := range d.EntityIDs {
		named[id] = true
	}
	for _, carried := range d.Entities {
		named[carried.ID] = true
		got, err := c.Get(context.Background(), carried.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fmt.Sprint(carried.Fields), fmt.Sprint(got.Fields)) {
			t.Errorf("carried entity differs from Get:\n carried %v\n     get %v", carried.Fields, got.Fields)
		}
	}
	if !named[e.ID] {
		t.Fatalf("the delivery does not name %s: %+v", e.ID, d)
	}
}
