package tryton_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/conntest"
	"github.com/duplexsync/duplex/connectors/tryton"
)

func openFake(t *testing.T, f *fake, settings map[string]any, secrets map[string]string) (connectors.Connector, error) {
	t.Helper()
	s := map[string]any{"url": f.url, "database": fakeDB, "user": fakeUser}
	for k, v := range settings {
		s[k] = v
	}
	if secrets == nil {
		secrets = map[string]string{"password": fakePassword}
	}
	raw, _ := json.Marshal(s)
	c, err := tryton.New(context.Background(), connectors.Config{Name: "fake", Settings: raw, Secrets: secrets})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func mustOpen(t *testing.T, f *fake, settings map[string]any) connectors.Connector {
	t.Helper()
	c, err := openFake(t, f, settings, nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return c
}

// TestConformance runs the shared suite against the offline fake (parties).
func TestConformance(t *testing.T) {
	var f *fake
	conntest.Run(t, conntest.Harness{
		Spec: tryton.Spec(),
		Open: func(t *testing.T) connectors.Connector {
			f = newFake(t)
			return mustOpen(t, f, map[string]any{"correlation_scope": "conformance"})
		},
		Fields: func(n int) map[string]any {
			return map[string]any{"name": fmt.Sprintf("Customer %d", n), "city": "Lyon", "phone": "+33 1 00 00 00"}
		},
		UpdateField: "phone", UpdateValue: "+33 9 99 99 99", KeepField: "city",
		TieStamps: func(t *testing.T, ids []string) {
			f.stampAll("party.party", time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
		},
		MissingID: "424242",
		FindField: "name",
	})
}

// TestOfflineParty: flat fields become Tryton's x2many operations on the
// first address, contact mechanism of each type and identifier; an equal
// value writes nothing (no write_date moved, so no echo); what Tryton
// refuses maps to the contract's errors.
func TestOfflineParty(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	c := mustOpen(t, f, nil)
	e, err := c.Create(ctx, map[string]any{"name": "Acme", "street": "1 Main St", "city": "Springfield", "postal_code": "12345",
		"phone": "+1 555 0100", "email": "ap@acme.test", "identifier": "FR123"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "Acme", "street": "1 Main St", "city": "Springfield", "phone": "+1 555 0100", "email": "ap@acme.test",
		"identifier": "FR123", "address": "1 Main St\n12345 Springfield", "mobile": ""}
	for k, v := range want {
		if e.Fields[k] != v {
			t.Errorf("%s = %q, want %q", k, e.Fields[k], v)
		}
	}
	if e.Key != "Acme" || e.UpdatedAt.IsZero() {
		t.Errorf("key %q (want the rec_name), updated %v", e.Key, e.UpdatedAt)
	}
	if got := fmt.Sprint(e.Fields["contact_mechanisms"]); got != "[email: ap@acme.test phone: +1 555 0100]" {
		t.Errorf("contact_mechanisms %s", got)
	}
	// The phone changes in place, the e-mail goes, a mobile comes; the
	// address is written, not doubled.
	e, err = c.Update(ctx, e.ID, map[string]any{"phone": "+1 555 0199", "email": "", "mobile": "+1 555 0111", "city": "Shelbyville"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Fields["phone"] != "+1 555 0199" || e.Fields["email"] != "" || e.Fields["mobile"] != "+1 555 0111" || e.Fields["city"] != "Shelbyville" ||
		len(e.Fields["addresses"].([]any)) != 1 || e.Fields["street"] != "1 Main St" {
		t.Fatalf("after update: %v", e.Fields)
	}
	before, calls := e.UpdatedAt, f.calls
	e, err = c.Update(ctx, e.ID, map[string]any{"phone": "+1 555 0199", "name": "Acme"})
	if err != nil || !e.UpdatedAt.Equal(before) {
		t.Fatalf("an update to the same values wrote: %v %v → %v", err, before, e.UpdatedAt)
	}
	if f.calls-calls != 3 { // read, then Get (record and notes): no write
		t.Errorf("an unchanged update sent %d requests, want 3", f.calls-calls)
	}
	for _, bad := range []map[string]any{{"code": "x"}, {"no_such": 1}, {"active": "yes"}, {"name": []any{1}}} {
		if _, err := c.Update(ctx, e.ID, bad); !errors.Is(err, connectors.ErrInvalid) {
			t.Errorf("update %v: %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := c.Create(ctx, map[string]any{"name": "Bad", "email": "not an email"}); !errors.Is(err, connectors.ErrInvalid) || !strings.Contains(err.Error(), "not valid") {
		t.Errorf("Tryton's validation error: %v, want ErrInvalid with its message", err)
	}
	if _, err := c.Create(ctx, map[string]any{"city": "Nowhere"}); !errors.Is(err, connectors.ErrInvalid) {
		t.Errorf("a party without a name: %v", err)
	}
	if _, err := c.Update(ctx, "999", map[string]any{"name": "x"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("update of a missing party: %v", err)
	}
	if _, err := c.Get(ctx, "abc"); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("Get(abc): %v", err)
	}
	f.denyWrite = true
	_, err = c.Update(ctx, e.ID, map[string]any{"name": "Renamed"})
	var ae *tryton.AccessError
	if !errors.As(err, &ae) || !errors.Is(err, connectors.ErrBadConfig) {
		t.Errorf("access refused: %v, want an AccessError wrapping ErrBadConfig", err)
	}
	f.denyWrite = false
	// A party code taken by another process's overlapping create: tried
	// again, up to four creates in all.
	f.codeClashes = 2
	if clash, err := c.Create(ctx, map[string]any{"name": "After two clashes"}); err != nil || clash.Key != "After two clashes" || f.codeClashes != 0 {
		t.Errorf("create after two code clashes: %v %v (clashes left %d)", clash.Key, err, f.codeClashes)
	}
	f.codeClashes = 9
	if _, err := c.Create(ctx, map[string]any{"name": "Never"}); !errors.Is(err, connectors.ErrInvalid) || f.codeClashes != 5 {
		t.Errorf("create that always clashes: %v (clashes left %d, want 5)", err, f.codeClashes)
	}
	f.codeClashes = 0
	if _, err := c.(connectors.Finder).FindBy(ctx, "street", "x", 5); !errors.Is(err, connectors.ErrInvalid) {
		t.Errorf("FindBy street: %v", err)
	}
	if _, err := c.AddComment(ctx, "999", connectors.Comment{Body: "x"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Errorf("a note on a missing party: %v", err)
	}
}

// TestOfflineInvoices: customer invoices with Decimal totals, the amount to
// pay, the earliest due date, and a payment seen by the next poll.
func TestOfflineInvoices(t *testing.T) {
	ctx := context.Background()
	f := newFake(t)
	parties := mustOpen(t, f, nil)
	p, err := parties.Create(ctx, map[string]any{"name": "Globex"})
	if err != nil {
		t.Fatal(err)
	}
	c := mustOpen(t, f, map[string]any{"entity": "invoice"})
	id := f.addInvoice(mustInt(t, p.ID), "INV/0001", "120.50", "120.50", "2026-03-31")
	page, err := c.Changes(ctx, "", 10)
	if err != nil || len(page.Entities) != 1 {
		t.Fatalf("first poll: %v %v", page.Entities, err)
	}
	e := page.Entities[0]
	want := map[string]any{"number": "INV/0001", "state": "posted", "paid": false, "party": "Globex", "total_amount": 120.5,
		"amount_to_pay": 120.5, "due_date": "2026-03-31", "invoice_date": "2026-03-01", "currency": "USD"}
	for k, v := range want {
		if e.Fields[k] != v {
			t.Errorf("%s = %v, want %v", k, e.Fields[k], v)
		}
	}
	if e.Key != "INV/0001" {
		t.Errorf("key %q", e.Key)
	}
	quiet, err := c.Changes(ctx, page.Cursor, 10)
	if err != nil || len(quiet.Entities) != 0 || quiet.Cursor != "" {
		t.Fatalf("a quiet poll: %v cursor %q %v", quiet.Entities, quiet.Cursor, err)
	}
	f.setInvoice(id, "state", "paid")
	f.setInvoice(id, "amount_to_pay", "0")
	page, err = c.Changes(ctx, page.Cursor, 10)
	if err != nil || len(page.Entities) != 1 || page.Entities[0].Fields["paid"] != true || page.Entities[0].Fields["amount_to_pay"] != 0.0 {
		t.Fatalf("after payment: %+v %v", page.Entities, err)
	}
	// The party with its invoices: a payment (a write of the invoice, not of
	// the party) is a change of the party.
	withInv := mustOpen(t, f, map[string]any{"invoices": true})
	_, _, pcur := drainFake(t, withInv, "")
	f.addInvoice(mustInt(t, p.ID), "INV/0002", "80", "80", "2026-02-01")
	seen, got, pcur := drainFake(t, withInv, pcur)
	if seen[p.ID] != 1 || got[p.ID].Fields["amount_due"] != 80.0 || got[p.ID].Fields["overdue"] != 80.0 || got[p.ID].Fields["payment_state"] != "overdue" ||
		got[p.ID].Fields["open_invoices"] != 1.0 {
		t.Fatalf("party after a new invoice: %v %v", seen, got[p.ID].Fields)
	}
	f.setInvoice(id+1, "state", "paid")
	f.setInvoice(id+1, "amount_to_pay", "0")
	seen, got, pcur = drainFake(t, withInv, pcur)
	if seen[p.ID] != 1 || got[p.ID].Fields["amount_due"] != 0.0 || got[p.ID].Fields["payment_state"] != "paid" ||
		fmt.Sprint(got[p.ID].Fields["invoices"]) != "[INV/0001: paid, to pay 0.00 of 120.50 INV/0002: paid, to pay 0.00 of 80.00]" {
		t.Fatalf("party after the payment: %v %v", seen, got[p.ID].Fields)
	}
	if seen, _, _ = drainFake(t, withInv, pcur); len(seen) != 0 {
		t.Fatalf("a quiet poll with invoices: %v", seen)
	}
	// A note writes nothing on the party; it is a change of the party all the same.
	if _, err := parties.AddComment(ctx, p.ID, connectors.Comment{Body: "called"}); err != nil {
		t.Fatal(err)
	}
	if seen, got, _ = drainFake(t, withInv, pcur); seen[p.ID] != 1 || len(got[p.ID].Comments) != 1 {
		t.Fatalf("after a note: %v %+v", seen, got[p.ID].Comments)
	}
	if _, err := openFake(t, f, map[string]any{"invoices": true, "entity": "invoice"}, nil); !errors.Is(err, connectors.ErrBadConfig) {
		t.Fatalf("invoices on the invoice entity: %v", err)
	}
	if _, err := c.Update(ctx, page.Entities[0].ID, map[string]any{"total_amount": 1}); !errors.Is(err, connectors.ErrInvalid) {
		t.Errorf("writing a total: %v", err)
	}
	if _, err := c.AddComment(ctx, page.Entities[0].ID, connectors.Comment{Body: "reminder sent"}); err != nil {
		t.Fatal(err)
	}
	note, err := c.Get(ctx, page.Entities[0].ID)
	if err != nil || len(note.Comments) != 1 || note.Comments[0].Body != "reminder sent" || note.Comments[0].Author != "Administrator" {
		t.Fatalf("notes as comments: %+v %v", note.Comments, err)
	}
}

// TestOfflineOpen: a wrong password, a malformed session and bad settings
// fail at open, naming what is wrong; a given session is used as is, and a
// password session that expires is renewed once.
func TestOfflineOpen(t *testing.T) {
	f := newFake(t)
	if _, err := openFake(t, f, nil, map[string]string{"password": "wrong"}); !errors.Is(err, connectors.ErrBadConfig) || !strings.Contains(err.Error(), "wrong user or password") {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := openFake(t, f, nil, map[string]string{}); !errors.Is(err, connectors.ErrBadConfig) {
		t.Fatalf("no secret: %v", err)
	}
	if _, err := openFake(t, f, nil, map[string]string{"session": "nokey"}); !errors.Is(err, connectors.ErrBadConfig) {
		t.Fatalf("malformed session: %v", err)
	}
	if _, err := openFake(t, f, map[string]any{"database": "other"}, nil); !errors.Is(err, connectors.ErrBadConfig) {
		t.Fatalf("unknown database: %v", err)
	}
	logins := f.logins
	if _, err := openFake(t, f, nil, map[string]string{"session": "1:" + fakeSession}); err != nil || f.logins != logins {
		t.Fatalf("a given session: %v (logins %d → %d)", err, logins, f.logins)
	}
	for _, bad := range []map[string]any{{"url": "ftp://x"}, {"database": ""}, {"entity": "product"}, {"databse": "x"}, {"entity": "invoice", "correlation_scope": "prod"}} {
		var se *connectors.SettingError
		if _, err := openFake(t, f, bad, nil); !errors.As(err, &se) {
			t.Errorf("%v: %v, want a SettingError", bad, err)
		}
	}
	c := mustOpen(t, f, nil)
	f.session = "rotated" // the server forgot the session: one new login, then the call
	logins = f.logins
	if _, err := c.(connectors.Finder).FindBy(context.Background(), "name", "x", 1); err != nil || f.logins != logins+1 {
		t.Fatalf("after the session expired: %v (logins %d → %d)", err, logins, f.logins)
	}
	if s, err := c.Describe(context.Background()); err != nil || s.EntityType != "party" || !s.Comments {
		t.Fatalf("describe: %+v %v", s, err)
	}
}

func drainFake(t *testing.T, c connectors.Connector, cursor string) (map[string]int, map[string]connectors.Entity, string) {
	t.Helper()
	seen, last := map[string]int{}, map[string]connectors.Entity{}
	for i := 0; i < 100; i++ {
		p, err := c.Changes(context.Background(), cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entities {
			seen[e.ID]++
			last[e.ID] = e
		}
		if p.Cursor != "" {
			cursor = p.Cursor
		}
		if len(p.Entities) == 0 && !p.More {
			return seen, last, cursor
		}
	}
	t.Fatal("Changes never ran dry")
	return nil, nil, ""
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
