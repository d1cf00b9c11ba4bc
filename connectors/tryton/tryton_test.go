package tryton_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/tryton"
	"github.com/duplexsync/duplex/connectors/tryton/trytontest"
)

// These tests run against the real Tryton of test/e2e/peers/tryton.sh
// (TRYTON_URL and friends). The database is shared, so each test names its
// records uniquely and polls from a cursor taken just before it writes.

func openReal(t *testing.T, entity string) connectors.Connector {
	t.Helper()
	return openRealWith(t, map[string]any{"entity": entity})
}

func openRealWith(t *testing.T, settings map[string]any) connectors.Connector {
	t.Helper()
	e := trytontest.FromEnv(t)
	s := e.Settings("party")
	for k, v := range settings {
		s[k] = v
	}
	raw, _ := json.Marshal(s)
	c, err := tryton.New(context.Background(), connectors.Config{Name: "real", Settings: raw, Secrets: e.Secrets()})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// drainAll polls from cursor until nothing more comes; it returns what came
// (id → times seen) and the last cursor.
func drainAll(t *testing.T, c connectors.Connector, cursor string, limit int) (map[string]int, map[string]connectors.Entity, string) {
	t.Helper()
	seen, last := map[string]int{}, map[string]connectors.Entity{}
	for i := 0; i < 1000; i++ {
		p, err := c.Changes(context.Background(), cursor, limit)
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

func TestRealParty(t *testing.T) {
	ctx := context.Background()
	c := openReal(t, "party")
	cursor := tryton.CursorAt(time.Now())
	name := fmt.Sprintf("Real %d", time.Now().UnixNano())
	e, err := c.Create(ctx, map[string]any{"name": name, "street": "1 Quai", "city": "Lyon", "postal_code": "69001",
		"phone": "+33 4 00 00 00 00", "email": "ap@real.test", "identifier": "FR-1"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Key != name || e.Fields["city"] != "Lyon" || e.Fields["phone"] != "+33 4 00 00 00 00" || e.Fields["identifier"] != "FR-1" ||
		e.Fields["address"] == "" || e.UpdatedAt.IsZero() {
		t.Fatalf("created: key %q %v", e.Key, e.Fields)
	}
	e, err = c.Update(ctx, e.ID, map[string]any{"phone": "+33 4 11 11 11 11", "email": "", "street": "2 Quai"})
	if err != nil || e.Fields["phone"] != "+33 4 11 11 11 11" || e.Fields["email"] != "" || e.Fields["street"] != "2 Quai" ||
		e.Fields["city"] != "Lyon" || len(e.Fields["addresses"].([]any)) != 1 {
		t.Fatalf("updated: %v %v", e.Fields, err)
	}
	before := e.UpdatedAt
	if e, err = c.Update(ctx, e.ID, map[string]any{"phone": "+33 4 11 11 11 11"}); err != nil || !e.UpdatedAt.Equal(before) {
		t.Fatalf("an unchanged update moved write_date: %v → %v (%v)", before, e.UpdatedAt, err)
	}
	if _, err := c.AddComment(ctx, e.ID, connectors.Comment{Body: "called about the address"}); err != nil {
		t.Fatal(err)
	}
	seen, got, cursor := drainAll(t, c, cursor, 1)
	if seen[e.ID] != 1 || len(got[e.ID].Comments) != 1 || got[e.ID].Comments[0].Author == "" {
		t.Fatalf("poll after create+update: %v, comments %+v", seen, got[e.ID].Comments)
	}
	if again, _, _ := drainAll(t, c, cursor, 10); len(again) != 0 {
		t.Fatalf("a quiet poll found %v", again)
	}
	found, err := c.(connectors.Finder).FindBy(ctx, "name", name, 5)
	if err != nil || len(found) != 1 || found[0].ID != e.ID {
		t.Fatalf("FindBy name: %v %v", found, err)
	}
	if _, err := c.Get(ctx, "99999999"); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("Get of a missing party: %v", err)
	}
	if _, err := c.Update(ctx, "99999999", map[string]any{"name": "x"}); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("Update of a missing party: %v", err)
	}
}

func TestRealInvoice(t *testing.T) {
	ctx := context.Background()
	env := trytontest.FromEnv(t)
	admin, err := trytontest.Login(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	parties := openReal(t, "party")
	c := openReal(t, "invoice")
	cursor := tryton.CursorAt(time.Now())
	withInv := openRealWith(t, map[string]any{"invoices": true})
	pcur := tryton.CursorAt(time.Now())
	name := fmt.Sprintf("Invoiced %d", time.Now().UnixNano())
	p, err := parties.Create(ctx, map[string]any{"name": name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, map[string]any{"party_id": p.ID, "amount": 10}); !errors.Is(err, connectors.ErrInvalid) {
		t.Fatalf("an invoice for a party without an address: %v, want Tryton's refusal as ErrInvalid", err)
	}
	if _, err := parties.Update(ctx, p.ID, map[string]any{"street": "3 Rue"}); err != nil {
		t.Fatal(err)
	}
	inv, err := c.Create(ctx, map[string]any{"party": name, "amount": 250.5, "description": "consulting", "reference": "PO-7"})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Fields["state"] != "draft" || inv.Fields["total_amount"] != 250.5 || inv.Fields["party"] != name {
		t.Fatalf("draft: %v", inv.Fields)
	}
	id, _ := strconv.ParseInt(inv.ID, 10, 64)
	if err := admin.Post(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, got, cursor := drainAll(t, c, cursor, 10)
	e := got[inv.ID]
	if e.Fields["state"] != "posted" || e.Fields["amount_to_pay"] != 250.5 || e.Fields["due_date"] == "" || e.Fields["number"] == "" || !strings.HasPrefix(e.Key, e.Fields["number"].(string)) {
		t.Fatalf("posted: key %q %v", e.Key, e.Fields)
	}
	if _, err := c.Update(ctx, inv.ID, map[string]any{"comment": "too late"}); !errors.Is(err, connectors.ErrInvalid) {
		t.Fatalf("a comment on a posted invoice: %v, want Tryton's refusal", err)
	}
	if err := admin.Pay(ctx, id, "250.50"); err != nil {
		t.Fatal(err)
	}
	_, got, _ = drainAll(t, c, cursor, 10)
	if e := got[inv.ID]; e.Fields["state"] != "paid" || e.Fields["paid"] != true || e.Fields["amount_to_pay"] != 0.0 {
		t.Fatalf("paid: %v", e.Fields)
	}
	// The party saw its invoice posted then paid, though nothing wrote it.
	seen, pgot, _ := drainAll(t, withInv, pcur, 10)
	if pe := pgot[p.ID]; seen[p.ID] != 1 || pe.Fields["payment_state"] != "paid" || pe.Fields["amount_due"] != 0.0 || len(pe.Fields["invoices"].([]any)) != 1 {
		t.Fatalf("party with invoices: seen %v, %v", seen, pe.Fields)
	}
}

// TestRealSignIn: a wrong password fails at open; a session made by
// common.db.login serves as the key-like secret.
func TestRealSignIn(t *testing.T) {
	ctx := context.Background()
	e := trytontest.FromEnv(t)
	raw, _ := json.Marshal(e.Settings("party"))
	_, err := tryton.New(ctx, connectors.Config{Name: "x", Settings: raw, Secrets: map[string]string{"password": "wrong"}})
	if !errors.Is(err, connectors.ErrBadConfig) {
		t.Fatalf("wrong password: %v", err)
	}
	var login []any
	if err := (&trytontest.Client{}).WithEnv(e).Call(ctx, &login, "common.db.login", e.User, map[string]any{"password": e.Password}, "en"); err != nil || len(login) != 2 {
		t.Fatalf("login: %v %v", login, err)
	}
	c, err := tryton.New(ctx, connectors.Config{Name: "x", Settings: raw, Secrets: map[string]string{"session": fmt.Sprintf("%v:%v", login[0], login[1])}})
	if err != nil {
		t.Fatalf("open with a session: %v", err)
	}
	if _, err := c.(connectors.Finder).FindBy(ctx, "name", "nobody by this name", 1); err != nil {
		t.Fatalf("a read with the session: %v", err)
	}
	if _, err := tryton.New(ctx, connectors.Config{Name: "x", Settings: raw, Secrets: map[string]string{"session": fmt.Sprintf("%v:not-a-key", login[0])}}); !errors.Is(err, connectors.ErrBadConfig) {
		t.Fatalf("a session the server does not know: %v", err)
	}
}

// TestRealCorrelated: a party created with a key is found by it (active or
// not), the key's identifier stays out of the identifier fields and out of
// a write of identifier, and another key finds nothing.
func TestRealCorrelated(t *testing.T) {
	ctx := context.Background()
	// Without a scope nothing is stored or found.
	plainC := openReal(t, "party")
	if _, ok, err := plainC.(connectors.Correlating).FindCorrelated(ctx, "duplex:1:1"); ok || err != nil {
		t.Fatalf("without correlation_scope: found %v, %v", ok, err)
	}
	scope := fmt.Sprintf("test-%d", time.Now().UnixNano())
	c := openRealWith(t, map[string]any{"entity": "party", "correlation_scope": scope})
	cor := c.(connectors.Correlating)
	key := "duplex:1:1" // the same key under another scope is another party
	other, err := openRealWith(t, map[string]any{"entity": "party", "correlation_scope": scope + "-other"}).(connectors.Correlating).CreateCorrelated(ctx, key, map[string]any{"name": "Other scope " + scope})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := cor.FindCorrelated(ctx, key); ok || err != nil {
		t.Fatalf("before create: found %v, %v", ok, err)
	}
	name := fmt.Sprintf("Correlated %d", time.Now().UnixNano())
	e, err := cor.CreateCorrelated(ctx, key, map[string]any{"name": name, "identifier": "FR-9"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Fields["identifier"] != "FR-9" || fmt.Sprint(e.Fields["identifiers"]) != "[: FR-9]" {
		t.Fatalf("the key shows in the identifier fields: %v %v", e.Fields["identifier"], e.Fields["identifiers"])
	}
	if _, ok, err := cor.FindCorrelated(ctx, key+"0"); ok || err != nil { // a prefix is no match
		t.Fatalf("another key: found %v, %v", ok, err)
	}
	got, ok, err := cor.FindCorrelated(ctx, key)
	if err != nil || !ok || got.ID != e.ID || got.ID == other.ID {
		t.Fatalf("find: %v %v %v, want %s (not the other scope's %s)", got.ID, ok, err, e.ID, other.ID)
	}
	// Writing the identifier changes the user's, not the key's.
	if e, err = c.Update(ctx, e.ID, map[string]any{"identifier": "FR-10"}); err != nil || e.Fields["identifier"] != "FR-10" {
		t.Fatalf("update identifier: %v %v", e.Fields["identifier"], err)
	}
	if _, err = c.Update(ctx, e.ID, map[string]any{"identifier": ""}); err != nil {
		t.Fatal(err)
	}
	if got, ok, err = cor.FindCorrelated(ctx, key); err != nil || !ok || got.ID != e.ID || got.Fields["identifier"] != "" {
		t.Fatalf("after the user's identifier went: %v %v %v %v", got.ID, ok, err, got.Fields["identifier"])
	}
	// Without a key, no identifier is added.
	plain, err := c.Create(ctx, map[string]any{"name": name + " plain"})
	if err != nil || fmt.Sprint(plain.Fields["identifiers"]) != "[]" {
		t.Fatalf("plain create: %v %v", plain.Fields["identifiers"], err)
	}
}

// TestRealDeactivate: Delete deactivates a party; Get and Changes report it
// deleted (not gone), FindBy no longer finds it, FindCorrelated still does,
// a second Delete is a no-op, and writing active true brings it back.
// Invoices are not deleted.
func TestRealDeactivate(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("Retired %d", time.Now().UnixNano())
	c := openRealWith(t, map[string]any{"entity": "party", "correlation_scope": name})
	key := "duplex:" + name
	e, err := c.(connectors.Correlating).CreateCorrelated(ctx, key, map[string]any{"name": name})
	if err != nil {
		t.Fatal(err)
	}
	if e.Fields["active"] != true || e.Deleted { // trytond on SQLite reads the flag as 1/0
		t.Fatalf("a new party: active %v, deleted %v", e.Fields["active"], e.Deleted)
	}
	cursor := tryton.CursorAt(time.Now())
	d := c.(connectors.Deleter)
	if err := d.Delete(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, e.ID)
	if err != nil || !got.Deleted || got.Fields["active"] != false {
		t.Fatalf("Get after Delete: deleted %v active %v, %v", got.Deleted, got.Fields["active"], err)
	}
	_, last, _ := drainAll(t, c, cursor, 50)
	if ch, ok := last[e.ID]; !ok || !ch.Deleted {
		t.Fatalf("Changes after Delete: %+v (listed %v)", ch, ok)
	}
	if found, err := c.(connectors.Finder).FindBy(ctx, "name", name, 10); err != nil || len(found) != 0 {
		t.Fatalf("FindBy found the inactive party: %v %v", found, err)
	}
	if f, ok, err := c.(connectors.Correlating).FindCorrelated(ctx, key); err != nil || !ok || f.ID != e.ID || !f.Deleted {
		t.Fatalf("FindCorrelated of the inactive party: %v %v %v", f.ID, ok, err)
	}
	if err := d.Delete(ctx, e.ID); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if got, err = c.Update(ctx, e.ID, map[string]any{"active": true}); err != nil || got.Deleted {
		t.Fatalf("reactivate: deleted %v, %v", got.Deleted, err)
	}
	if err := d.Delete(ctx, "999999999"); !errors.Is(err, connectors.ErrNotFound) {
		t.Fatalf("Delete of a missing party: %v", err)
	}
	inv := openReal(t, "invoice")
	if err := inv.(connectors.Deleter).Delete(ctx, "1"); !errors.Is(err, connectors.ErrInvalid) {
		t.Fatalf("Delete of an invoice: %v", err)
	}
}
