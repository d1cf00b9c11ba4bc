// Package tryton is the connector for a Tryton ERP (6.0 and later) over its
// JSON-RPC API: the parties (name, addresses, contact mechanisms,
// identifiers) or the customer invoices (number, state, totals, amount to
// pay, due date) of one database, as one system each. Tryton's notes
// (ir.note) on a record are its comments. Changes are found by polling
// write_date and create_date, which Tryton keeps to the microsecond: see
// changes.go for the cursor.
package tryton

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// Kind is the connector kind's name.
const Kind = "tryton"

// The entities one system syncs.
const (
	EntityParty   = "party"
	EntityInvoice = "invoice"
)

// Settings is a Tryton system's non-secret configuration. The password is
// the secret "password"; a ready session the secret "session".
type Settings struct {
	// URL is the address of trytond, for example https://erp.example.com (the
	// JSON-RPC endpoint is URL/database/).
	URL string `json:"url" spec:"required"`
	// Database is the Tryton database's name.
	Database string `json:"database" spec:"required"`
	// User is the login Duplex signs in as.
	User string `json:"user" spec:"required"`
	// Entity is what this system syncs: party (parties) or invoice
	// (customer invoices). Default party.
	Entity string `json:"entity,omitempty" spec:"default=party,enum=party|invoice"`
	// Invoices adds, to each party, what its customer invoices say
	// (amount_due, overdue, open_invoices, payment_state, invoices), and
	// makes a change of an invoice (a payment) a change of its party.
	// Needs the account_invoice module. Default false.
	Invoices bool `json:"invoices,omitempty"`
	// CorrelationScope, when set, makes the parties Duplex creates carry an
	// untyped identifier "Duplex key <scope> <key>", so a create interrupted
	// by a crash is found again instead of repeated. Duplex's keys carry its
	// store's deployment id; those of twins made before Duplex had one do
	// not, so give each Duplex deployment that writes into this Tryton
	// database its own scope (for example prod). Optional; parties only.
	CorrelationScope string `json:"correlation_scope,omitempty"`
	// TimeoutMS bounds one request; default 30000.
	TimeoutMS int `json:"timeout_ms,omitempty" spec:"default=30000"`
}

// New opens a Tryton connector: it signs in (so a wrong password or
// database fails here) and checks that the user may read the entity's model.
func New(ctx context.Context, cfg connectors.Config) (connectors.Connector, error) {
	s, err := ParseSettings(cfg.Settings)
	if err != nil {
		return nil, err
	}
	password, session := cfg.Secrets["password"], strings.TrimSpace(cfg.Secrets["session"])
	if password == "" && session == "" {
		return nil, fmt.Errorf("%w: tryton: the secret password (or session) is required", connectors.ErrBadConfig)
	}
	c := &conn{s: s, rpc: &client{
		http:     cfg.HTTPClient(),
		endpoint: s.URL + "/" + url.PathEscape(s.Database) + "/",
		timeout:  time.Duration(s.TimeoutMS) * time.Millisecond,
		login:    s.User,
		password: password,
	}}
	if c.rpc.timeout <= 0 {
		c.rpc.timeout = 30 * time.Second
	}
	if password == "" {
		// A session made by common.db.login: "<user id>:<key>". Tryton
		// 6.0's JSON-RPC takes no other key (application keys serve only
		// the routes of the modules that declare them).
		uid, key, ok := strings.Cut(session, ":")
		n, err := strconv.ParseInt(uid, 10, 64)
		if !ok || err != nil || key == "" {
			return nil, &connectors.SecretError{Kind: Kind, Name: "session", Msg: `must be "<user id>:<session key>" as common.db.login returns it`}
		}
		c.rpc.session = sessionHeader(s.User, n, key)
	}
	if s.Entity == EntityInvoice {
		c.m = invoiceModel
	} else {
		c.m = partyModel
	}
	if s.Invoices && s.Entity != EntityParty {
		return nil, &connectors.SettingError{Kind: Kind, Field: "invoices", Msg: "applies to parties (entity party) only"}
	}
	var prefs map[string]any
	if err := c.rpc.call(ctx, "model.res.user.get_preferences", []any{true, map[string]any{}}, &prefs); err != nil {
		return nil, fmt.Errorf("tryton %s: sign in: %w", cfg.Name, err)
	}
	c.prefs = map[string]any{}
	for _, k := range []string{"company", "language", "company_filter"} {
		if v, ok := prefs[k]; ok && v != nil {
			c.prefs[k] = v
		}
	}
	var n int64
	if err := c.rpc.call(ctx, "model."+c.m.name+".search_count", []any{c.m.base(), c.ctx()}, &n); err != nil {
		return nil, fmt.Errorf("tryton %s: sign in and read %s: %w", cfg.Name, c.m.name, err)
	}
	return c, nil
}

// ParseSettings is the strict, pure parse of a tryton system's settings.
func ParseSettings(raw json.RawMessage) (Settings, error) {
	var s Settings
	if err := Spec().DecodeSettings(raw, &s); err != nil {
		return s, err
	}
	var err error
	if s.URL, err = connectors.HTTPURL(Kind, "url", s.URL); err != nil {
		return s, err
	}
	for _, f := range []struct{ name, v string }{{"database", s.Database}, {"user", s.User}} {
		if strings.TrimSpace(f.v) == "" {
			return s, &connectors.SettingError{Kind: Kind, Field: f.name, Msg: "is required"}
		}
	}
	if s.Entity == "" {
		s.Entity = EntityParty
	}
	s.CorrelationScope = strings.TrimSpace(s.CorrelationScope)
	if s.CorrelationScope != "" && s.Entity != EntityParty {
		return s, &connectors.SettingError{Kind: Kind, Field: "correlation_scope", Msg: "applies to parties (entity party) only"}
	}
	if s.TimeoutMS == 0 {
		s.TimeoutMS = 30000
	}
	return s, nil
}

type conn struct {
	s   Settings
	rpc *client
	m   *model

	mu      sync.Mutex
	revenue int64 // the revenue account invoice lines get, found on first need
	// creating lets one create at a time through: trytond on SQLite hands
	// the same party code to two creates that overlap, and refuses the
	// second ("The code on party must be unique"), which the engine's
	// parallel workers did in a backfill.
	creating sync.Mutex
	prefs    map[string]any
}

// ctx is the context every call carries, as Tryton's own clients send it:
// the user's company and language from res.user.get_preferences. Without
// the company, defaults and company-dependent values (a party's receivable
// account) come out empty.
func (c *conn) ctx() map[string]any {
	out := make(map[string]any, len(c.prefs))
	for k, v := range c.prefs {
		out[k] = v
	}
	return out
}

// Calls is how many JSON-RPC requests the connector has sent, for the
// end-to-end figures (requests per change).
func Calls(c connectors.Connector) int64 {
	if x, ok := c.(*conn); ok {
		return x.rpc.calls.Load()
	}
	return 0
}

func (c *conn) Close() error { return nil }

func (c *conn) Describe(ctx context.Context) (connectors.Schema, error) {
	fields := c.m.fields
	if c.m == partyModel && c.s.Invoices {
		fields = append(append([]connectors.FieldSpec{}, fields...), partyInvoiceFields...)
	}
	return connectors.Schema{EntityType: c.s.Entity, Fields: fields, Comments: true}, nil
}

func (c *conn) recordURL(id int64) string {
	return fmt.Sprintf("%s/#%s/model/%s/%d", c.s.URL, url.PathEscape(c.s.Database), c.m.name, id)
}

func parseID(id string) (int64, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil && n > 0
}

func (c *conn) Get(ctx context.Context, id string) (connectors.Entity, error) {
	n, ok := parseID(id)
	if !ok {
		return connectors.Entity{}, fmt.Errorf("%w: tryton %s %q", connectors.ErrNotFound, c.m.name, id)
	}
	es, err := c.readEntities(ctx, append(c.m.all(), []any{"id", "=", n}), 1)
	if err != nil {
		return connectors.Entity{}, err
	}
	if len(es) == 0 {
		return connectors.Entity{}, fmt.Errorf("%w: tryton %s %d", connectors.ErrNotFound, c.m.name, n)
	}
	return es[0], nil
}

// readEntities reads the records of domain with everything the entity
// shows, and their notes, in two requests.
func (c *conn) readEntities(ctx context.Context, domain []any, limit int) ([]connectors.Entity, error) {
	var lim any
	if limit > 0 {
		lim = limit
	}
	var recs []map[string]any
	if err := c.rpc.call(ctx, "model."+c.m.name+".search_read", []any{domain, 0, lim, [][]string{{"id", "ASC"}}, c.m.read, c.ctx()}, &recs); err != nil {
		return nil, err
	}
	return c.entities(ctx, recs)
}

func (c *conn) entities(ctx context.Context, recs []map[string]any) ([]connectors.Entity, error) {
	out := make([]connectors.Entity, 0, len(recs))
	if len(recs) == 0 {
		return out, nil
	}
	refs := make([]any, 0, len(recs))
	for _, r := range recs {
		refs = append(refs, fmt.Sprintf("%s,%d", c.m.name, intOf(r["id"])))
	}
	var notes []map[string]any
	if err := c.rpc.call(ctx, "model.ir.note.search_read", []any{[]any{[]any{"resource", "in", refs}}, 0, nil,
		[][]string{{"id", "ASC"}}, []string{"id", "message", "resource", "create_date", "create_uid.rec_name"}, c.ctx()}, &notes); err != nil {
		return nil, fmt.Errorf("tryton notes: %w", err)
	}
	byRes := map[string][]connectors.Comment{}
	for _, n := range notes {
		res := str(n["resource"])
		byRes[res] = append(byRes[res], connectors.Comment{
			ID: strconv.FormatInt(intOf(n["id"]), 10), Author: nested(n["create_uid."], "rec_name"),
			Body: str(n["message"]), CreatedAt: timeOf(n["create_date"]),
		})
	}
	var invoices map[int64][]map[string]any
	if c.m == partyModel && c.s.Invoices {
		ids := make([]int64, 0, len(recs))
		for _, r := range recs {
			ids = append(ids, intOf(r["id"]))
		}
		var invs []map[string]any
		if err := c.rpc.call(ctx, "model.account.invoice.search_read", []any{
			[]any{[]any{"type", "=", "out"}, []any{"party", "in", ids}, []any{"state", "in", []string{"posted", "paid"}}}, 0, nil,
			[][]string{{"id", "ASC"}}, []string{"id", "party", "number", "state", "total_amount", "amount_to_pay", "lines_to_pay.maturity_date", "write_date", "create_date"}, c.ctx()}, &invs); err != nil {
			return nil, fmt.Errorf("tryton invoices of parties: %w", err)
		}
		invoices = map[int64][]map[string]any{}
		for _, inv := range invs {
			invoices[intOf(inv["party"])] = append(invoices[intOf(inv["party"])], inv)
		}
	}
	for _, r := range recs {
		e := c.entity(r)
		e.Comments = byRes[fmt.Sprintf("%s,%d", c.m.name, intOf(r["id"]))]
		if invoices != nil {
			newest := invoiceSummary(e.Fields, invoices[intOf(r["id"])], time.Now().UTC().Format("2006-01-02"))
			if newest.After(e.UpdatedAt) {
				e.UpdatedAt = newest
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func (c *conn) entity(r map[string]any) connectors.Entity {
	id := intOf(r["id"])
	e := connectors.Entity{
		ID:        strconv.FormatInt(id, 10),
		Key:       str(r["rec_name"]),
		URL:       c.recordURL(id),
		Type:      c.s.Entity,
		Fields:    c.m.fromRecord(r),
		UpdatedAt: stamp(r),
		UpdatedBy: nested(r["write_uid."], "rec_name"),
		// Tryton retires a party by deactivating it (deleting one that has
		// moves or invoices is refused): that is its delete.
		Deleted: c.m == partyModel && !truthy(r["active"]),
	}
	if e.UpdatedBy == "" {
		e.UpdatedBy = nested(r["create_uid."], "rec_name")
	}
	return e
}

func (c *conn) Create(ctx context.Context, fields map[string]any) (connectors.Entity, error) {
	return c.create(ctx, "", fields)
}

// CreateCorrelated creates a party with an extra, untyped identifier whose
// code is keyPrefix+key, in the same create (one transaction: the party
// never exists without it). Tryton 6.0 has no custom fields and its
// identifier types are a fixed list, so an untyped identifier is the one
// place on a party that a user can see, that carries any text, and that
// search_read can find; the connector hides it from the identifier fields.
// Invoices have no such place (every text field is the user's): an invoice
// is created without a key, as Create does.
//
// Without the setting correlation_scope nothing is stored or found:
// writing into a party's identifiers is the operator's choice. The engine's
// keys carry its deployment id (engine/corrkey.go), but those of twins
// made before the id (duplex:<connection>:<twin>) repeat from one Duplex
// database to the next, and one found in a Tryton shared with another
// Duplex would pair a stranger's party: the scope tells them apart.
func (c *conn) CreateCorrelated(ctx context.Context, key string, fields map[string]any) (connectors.Entity, error) {
	if c.m != partyModel || c.s.CorrelationScope == "" {
		return c.Create(ctx, fields)
	}
	if strings.TrimSpace(key) == "" {
		return connectors.Entity{}, invalid("an empty correlation key")
	}
	return c.create(ctx, c.keyCode(key), fields)
}

// keyCode is the identifier code that carries key.
func (c *conn) keyCode(key string) string {
	return keyPrefix + c.s.CorrelationScope + " " + key
}

// FindCorrelated finds the party created with key, active or not (a party
// deactivated since still is the one created). Invoices are never found.
func (c *conn) FindCorrelated(ctx context.Context, key string) (connectors.Entity, bool, error) {
	if c.m != partyModel || c.s.CorrelationScope == "" || strings.TrimSpace(key) == "" {
		return connectors.Entity{}, false, nil
	}
	// Ids first: a create looks its key up before every create and almost
	// never finds it, so that costs one request, not the three of a read.
	var ids []int64
	if err := c.rpc.call(ctx, "model.party.party.search", []any{[]any{[]any{"identifiers.code", "=", c.keyCode(key)}, activeAny},
		0, 1, [][]string{{"id", "ASC"}}, c.ctx()}, &ids); err != nil {
		return connectors.Entity{}, false, fmt.Errorf("tryton find correlated party: %w", err)
	}
	if len(ids) == 0 {
		return connectors.Entity{}, false, nil
	}
	e, err := c.Get(ctx, strconv.FormatInt(ids[0], 10))
	if err != nil {
		return connectors.Entity{}, false, fmt.Errorf("tryton find correlated party: %w", err)
	}
	return e, true, nil
}

// create makes a record; with code (a party's keyCode) the party gets its
// key identifier in the same create.
func (c *conn) create(ctx context.Context, code string, fields map[string]any) (connectors.Entity, error) {
	vals, err := c.m.createValues(ctx, c, fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	if code != "" {
		ops, _ := vals["identifiers"].([]any)
		vals["identifiers"] = append(ops, []any{"create", []any{map[string]any{"code": code}}})
	}
	var ids []int64
	for attempt := 1; ; attempt++ {
		c.creating.Lock()
		err = c.rpc.call(ctx, "model."+c.m.name+".create", []any{[]any{vals}, c.ctx()}, &ids)
		c.creating.Unlock()
		// trytond on SQLite numbers a party inside the create's
		// transaction, so another process's overlapping create (a second
		// Duplex, a person in the client) can take the same code and this
		// one is refused and rolled back: nothing was stored, try again.
		if err == nil || attempt == createAttempts || !codeTaken(err) {
			break
		}
		select {
		case <-ctx.Done():
			return connectors.Entity{}, fmt.Errorf("tryton create %s: %w", c.m.name, ctx.Err())
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
	if err != nil {
		return connectors.Entity{}, fmt.Errorf("tryton create %s: %w", c.m.name, err)
	}
	if len(ids) != 1 {
		return connectors.Entity{}, fmt.Errorf("%w: tryton create %s: %d ids", connectors.ErrUnavailable, c.m.name, len(ids))
	}
	return c.Get(ctx, strconv.FormatInt(ids[0], 10))
}

func (c *conn) Update(ctx context.Context, id string, fields map[string]any) (connectors.Entity, error) {
	n, ok := parseID(id)
	if !ok {
		return connectors.Entity{}, fmt.Errorf("%w: tryton %s %q", connectors.ErrNotFound, c.m.name, id)
	}
	cur, err := c.readRaw(ctx, n)
	if err != nil {
		return connectors.Entity{}, err
	}
	vals, err := c.m.writeValues(cur, fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	if len(vals) > 0 {
		if err := c.rpc.call(ctx, "model."+c.m.name+".write", []any{[]int64{n}, vals, c.ctx()}, nil); err != nil {
			return connectors.Entity{}, fmt.Errorf("tryton write %s %d: %w", c.m.name, n, err)
		}
	}
	return c.Get(ctx, id)
}

// createAttempts bounds the creates tried when the party code was taken.
const createAttempts = 4

// codeTaken is trytond's refusal of a party whose sequence code another
// create took meanwhile (the message in English, the language Duplex's
// context asks for unless the user's preferences say otherwise).
func codeTaken(err error) bool {
	return errors.Is(err, connectors.ErrInvalid) && strings.Contains(err.Error(), "code on party must be unique")
}

// readRaw reads one record as Tryton answers, for an update to find the
// address, contact mechanism or identifier a flat field stands for.
func (c *conn) readRaw(ctx context.Context, id int64) (map[string]any, error) {
	var recs []map[string]any
	if err := c.rpc.call(ctx, "model."+c.m.name+".search_read", []any{append(c.m.all(), []any{"id", "=", id}), 0, 1, nil, c.m.read, c.ctx()}, &recs); err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: tryton %s %d", connectors.ErrNotFound, c.m.name, id)
	}
	return recs[0], nil
}

// AddComment adds a note (ir.note) to the record. Tryton's notes are all
// alike: an internal one is refused rather than shown to everyone.
func (c *conn) AddComment(ctx context.Context, id string, cm connectors.Comment) (connectors.Comment, error) {
	if cm.Private {
		return connectors.Comment{}, fmt.Errorf("%w: tryton notes have no private kind", connectors.ErrInvalid)
	}
	if strings.TrimSpace(cm.Body) == "" {
		return connectors.Comment{}, fmt.Errorf("%w: tryton: an empty note", connectors.ErrInvalid)
	}
	n, ok := parseID(id)
	if !ok {
		return connectors.Comment{}, fmt.Errorf("%w: tryton %s %q", connectors.ErrNotFound, c.m.name, id)
	}
	if _, err := c.readRaw(ctx, n); err != nil { // a note on nothing would be stored all the same
		return connectors.Comment{}, err
	}
	var ids []int64
	if err := c.rpc.call(ctx, "model.ir.note.create", []any{[]any{map[string]any{"resource": fmt.Sprintf("%s,%d", c.m.name, n), "message": cm.Body}}, c.ctx()}, &ids); err != nil {
		return connectors.Comment{}, fmt.Errorf("tryton add note: %w", err)
	}
	if len(ids) != 1 {
		return connectors.Comment{}, fmt.Errorf("%w: tryton add note: %d ids", connectors.ErrUnavailable, len(ids))
	}
	out := cm
	out.ID = strconv.FormatInt(ids[0], 10)
	return out, nil
}

// Delete retires a party the way Tryton does: active becomes false (it
// leaves every list and search, keeps its invoices and history, and can be
// reactivated). A party already inactive is left as it is. Customer
// invoices are not deleted through Duplex: Tryton cancels them (a posted
// one keeps its number and moves), which is finance's decision.
func (c *conn) Delete(ctx context.Context, id string) error {
	if c.m != partyModel {
		return fmt.Errorf("%w: tryton customer invoices are cancelled in Tryton, not deleted through Duplex", connectors.ErrInvalid)
	}
	n, ok := parseID(id)
	if !ok {
		return fmt.Errorf("%w: tryton %s %q", connectors.ErrNotFound, c.m.name, id)
	}
	cur, err := c.readRaw(ctx, n)
	if err != nil {
		return err
	}
	if !truthy(cur["active"]) {
		return nil
	}
	if err := c.rpc.call(ctx, "model.party.party.write", []any{[]int64{n}, map[string]any{"active": false}, c.ctx()}, nil); err != nil {
		return fmt.Errorf("tryton deactivate party %d: %w", n, err)
	}
	return nil
}

// FindBy looks records up by one field's exact value: name, code or
// rec_name of a party, number or reference of an invoice.
func (c *conn) FindBy(ctx context.Context, field, value string, limit int) ([]connectors.Entity, error) {
	if !c.m.findable[field] {
		return nil, fmt.Errorf("%w: tryton %s cannot be searched by %q", connectors.ErrInvalid, c.m.name, field)
	}
	if limit <= 0 {
		limit = 10
	}
	return c.readEntities(ctx, append(c.m.base(), []any{field, "=", value}), limit)
}
