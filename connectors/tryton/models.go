package tryton

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// model is what the connector knows of one Tryton model: the fields it
// reads in one search_read, how a record becomes flat fields, and how flat
// fields become Tryton values.
type model struct {
	name string
	base func() []any // the domain every search starts from
	// all is base with the retired records too (inactive parties), for
	// Changes and Get: a party deactivated in Tryton is reported deleted,
	// not silently gone.
	all      func() []any
	read     []string
	fields   []connectors.FieldSpec
	findable map[string]bool
}

// fromRecord turns a record read with m.read into flat fields.
func (m *model) fromRecord(r map[string]any) map[string]any {
	if m == invoiceModel {
		return invoiceFields(r)
	}
	return partyFields(r)
}

// writeValues turns flat fields into a write of the record cur.
func (m *model) writeValues(cur, fields map[string]any) (map[string]any, error) {
	if m == invoiceModel {
		return invoiceWrite(cur, fields)
	}
	return partyValues(cur, fields)
}

// createValues turns flat fields into a create.
func (m *model) createValues(ctx context.Context, c *conn, fields map[string]any) (map[string]any, error) {
	if m == invoiceModel {
		return invoiceCreate(ctx, c, fields)
	}
	return partyValues(nil, fields)
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: tryton: %s", connectors.ErrInvalid, fmt.Sprintf(format, a...))
}

// refuse names the fields a write cannot take: read-only or unknown.
func refuse(m *model, k string) error {
	for _, f := range append(append([]connectors.FieldSpec{}, m.fields...), partyInvoiceFields...) {
		if f.Name == k {
			return invalid("%s is read-only on %s", k, m.name)
		}
	}
	names := make([]string, 0, len(m.fields))
	for _, f := range m.fields {
		if !f.ReadOnly {
			names = append(names, f.Name)
		}
	}
	return invalid("unknown field %q on %s (writable: %s)", k, m.name, strings.Join(names, ", "))
}

func sortedFieldKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// --- parties ---

// mechanismFields are the contact mechanism types shown as flat fields:
// the first mechanism of each type.
var mechanismFields = []string{"phone", "mobile", "email", "website"}

// addressFields are the first address's fields shown flat.
var addressFields = []string{"street", "city", "postal_code"}

var partyModel = &model{
	name: "party.party",
	base: func() []any { return []any{} },
	all:  func() []any { return []any{activeAny} },
	read: []string{"id", "rec_name", "name", "code", "active", "create_date", "write_date", "create_uid.rec_name", "write_uid.rec_name",
		"addresses.street", "addresses.city", "addresses.postal_code", "addresses.full_address",
		"contact_mechanisms.type", "contact_mechanisms.value", "identifiers.type", "identifiers.code"},
	fields: []connectors.FieldSpec{
		{Name: "name", Type: connectors.TypeString},
		{Name: "code", Type: connectors.TypeString, Description: "the party's code (Tryton numbers it)", ReadOnly: true},
		{Name: "street", Type: connectors.TypeString, Description: "of the first address (created when missing)"},
		{Name: "city", Type: connectors.TypeString, Description: "of the first address"},
		{Name: "postal_code", Type: connectors.TypeString, Description: "of the first address"},
		{Name: "address", Type: connectors.TypeString, Description: "the first address as Tryton prints it", ReadOnly: true},
		{Name: "addresses", Type: connectors.TypeList, Description: "every address, one line each", ReadOnly: true},
		{Name: "phone", Type: connectors.TypeString, Description: "the first phone contact mechanism; \"\" deletes it"},
		{Name: "mobile", Type: connectors.TypeString, Description: "the first mobile"},
		{Name: "email", Type: connectors.TypeString, Description: "the first e-mail"},
		{Name: "website", Type: connectors.TypeString, Description: "the first website"},
		{Name: "contact_mechanisms", Type: connectors.TypeList, Description: "every contact mechanism as \"type: value\"", ReadOnly: true},
		{Name: "identifier", Type: connectors.TypeString, Description: "the code of the first identifier (a tax number, for example)"},
		{Name: "identifiers", Type: connectors.TypeList, Description: "every identifier as \"type: code\" (type empty when unset)", ReadOnly: true},
		{Name: "active", Type: connectors.TypeBool},
		{Name: "created_at", Type: connectors.TypeTime, ReadOnly: true},
	},
	findable: map[string]bool{"name": true, "code": true},
}

func partyFields(r map[string]any) map[string]any {
	f := map[string]any{
		"name": str(r["name"]), "code": str(r["code"]), "active": truthy(r["active"]),
		"created_at": timeOf(r["create_date"]).Format(time.RFC3339),
	}
	addrs := list(r["addresses."])
	var lines []any
	for _, a := range addrs {
		lines = append(lines, strings.Join(strings.Fields(strings.ReplaceAll(str(a["full_address"]), "\n", ", ")), " "))
	}
	f["addresses"] = nonNil(lines)
	for _, k := range addressFields {
		f[k] = ""
	}
	f["address"] = ""
	if len(addrs) > 0 {
		for _, k := range addressFields {
			f[k] = str(addrs[0][k])
		}
		f["address"] = str(addrs[0]["full_address"])
	}
	for _, k := range mechanismFields {
		f[k] = ""
	}
	var mechs []any
	for _, m := range list(r["contact_mechanisms."]) {
		t, v := str(m["type"]), str(m["value"])
		if cur, ok := f[t]; ok && cur == "" {
			f[t] = v
		}
		mechs = append(mechs, t+": "+v)
	}
	f["contact_mechanisms"] = nonNil(mechs)
	f["identifier"] = ""
	var ids []any
	for _, x := range list(r["identifiers."]) {
		if isKey(x) {
			continue
		}
		if len(ids) == 0 {
			f["identifier"] = str(x["code"])
		}
		ids = append(ids, str(x["type"])+": "+str(x["code"]))
	}
	f["identifiers"] = nonNil(ids)
	return f
}

func nonNil(xs []any) []any {
	if xs == nil {
		return []any{}
	}
	return xs
}

// partyValues turns flat fields into a write (cur is the record as read) or,
// with cur nil, a create. A value equal to the stored one writes nothing, so
// an echo of Tryton's own data does not move write_date.
func partyValues(cur map[string]any, fields map[string]any) (map[string]any, error) {
	var old map[string]any
	if cur != nil {
		old = partyFields(cur)
	}
	vals := map[string]any{}
	addr := map[string]any{}
	var mechOps, idOps []any
	for _, k := range sortedFieldKeys(fields) {
		v := fields[k]
		if old != nil && fmt.Sprint(old[k]) == fmt.Sprint(v) {
			continue
		}
		switch k {
		case "name":
			s, ok := text(v)
			if !ok {
				return nil, invalid("name must be text, not %T", v)
			}
			vals["name"] = strings.TrimSpace(s)
		case "active":
			b, ok := v.(bool)
			if !ok {
				return nil, invalid("active must be true or false, not %v", v)
			}
			vals["active"] = b
		case "street", "city", "postal_code":
			s, ok := text(v)
			if !ok {
				return nil, invalid("%s must be text, not %T", k, v)
			}
			addr[k] = s
		case "phone", "mobile", "email", "website":
			s, ok := text(v)
			if !ok {
				return nil, invalid("%s must be text, not %T", k, v)
			}
			s = strings.TrimSpace(s)
			id := firstOf(cur, "contact_mechanisms.", "type", k)
			switch {
			case id > 0 && s == "":
				mechOps = append(mechOps, []any{"delete", []int64{id}})
			case id > 0:
				mechOps = append(mechOps, []any{"write", []int64{id}, map[string]any{"value": s}})
			case s != "":
				mechOps = append(mechOps, []any{"create", []any{map[string]any{"type": k, "value": s}}})
			}
		case "identifier":
			s, ok := text(v)
			if !ok {
				return nil, invalid("identifier must be text, not %T", v)
			}
			s = strings.TrimSpace(s)
			id := firstOf(cur, "identifiers.", "", "")
			switch {
			case id > 0 && s == "":
				idOps = append(idOps, []any{"delete", []int64{id}})
			case id > 0:
				idOps = append(idOps, []any{"write", []int64{id}, map[string]any{"code": s}})
			case s != "":
				idOps = append(idOps, []any{"create", []any{map[string]any{"code": s}}})
			}
		default:
			return nil, refuse(partyModel, k)
		}
	}
	if len(addr) > 0 {
		if id := firstOf(cur, "addresses.", "", ""); id > 0 {
			vals["addresses"] = []any{[]any{"write", []int64{id}, addr}}
		} else {
			vals["addresses"] = []any{[]any{"create", []any{addr}}}
		}
	}
	if len(mechOps) > 0 {
		vals["contact_mechanisms"] = mechOps
	}
	if len(idOps) > 0 {
		vals["identifiers"] = idOps
	}
	if cur == nil {
		if _, ok := vals["name"]; !ok || vals["name"] == "" {
			return nil, invalid("a party needs a name")
		}
	}
	return vals, nil
}

// keyPrefix starts the code of the untyped identifier that carries a
// party's correlation key (CreateCorrelated); it reads as what it is in
// Tryton's identifier list.
const keyPrefix = "Duplex key "

// activeAny is a domain clause that takes inactive parties too (naming
// active in the domain turns Tryton's active test off).
var activeAny = []any{"active", "in", []bool{true, false}}

// isKey tells the correlation identifier from the user's own.
func isKey(x map[string]any) bool {
	return str(x["type"]) == "" && strings.HasPrefix(str(x["code"]), keyPrefix)
}

// firstOf is the id of the first related record (of a type, when typeField
// is set) in a record read with dotted fields; 0 when none or no record.
func firstOf(cur map[string]any, rel, typeField, want string) int64 {
	if cur == nil {
		return 0
	}
	for _, x := range list(cur[rel]) {
		if rel == "identifiers." && isKey(x) {
			continue // Duplex's own, never the user's first identifier
		}
		if typeField == "" || str(x[typeField]) == want {
			return intOf(x["id"])
		}
	}
	return 0
}

// partyInvoiceFields are the fields a party gets with the setting invoices.
var partyInvoiceFields = []connectors.FieldSpec{
	{Name: "amount_due", Type: connectors.TypeNumber, Description: "what the customer still owes on posted invoices", ReadOnly: true},
	{Name: "overdue", Type: connectors.TypeNumber, Description: "the part of amount_due past its due date", ReadOnly: true},
	{Name: "open_invoices", Type: connectors.TypeNumber, Description: "posted invoices not paid yet", ReadOnly: true},
	{Name: "payment_state", Type: connectors.TypeString, Description: "overdue, due, paid (every invoice paid) or \"\" (no invoice posted)", ReadOnly: true},
	{Name: "invoices", Type: connectors.TypeList, Description: "each posted or paid invoice as \"number: state, to pay X of Y, due D\"", ReadOnly: true},
}

// invoiceSummary adds the party's invoice fields to f from its posted and
// paid customer invoices, and returns the newest invoice stamp.
func invoiceSummary(f map[string]any, invs []map[string]any, today string) time.Time {
	var due, overdue float64
	open := 0
	var lines []any
	var newest time.Time
	for _, inv := range invs {
		if t := stamp(inv); t.After(newest) {
			newest = t
		}
		toPay, _ := number(inv["amount_to_pay"]).(float64)
		total, _ := number(inv["total_amount"]).(float64)
		dueDate := ""
		for _, l := range list(inv["lines_to_pay."]) {
			if d := dateOf(l["maturity_date"]); d != "" && (dueDate == "" || d < dueDate) {
				dueDate = d
			}
		}
		line := fmt.Sprintf("%s: %s, to pay %.2f of %.2f", str(inv["number"]), str(inv["state"]), toPay, total)
		if inv["state"] == "posted" {
			open++
			due += toPay
			if dueDate != "" && dueDate < today {
				overdue += toPay
			}
			if dueDate != "" {
				line += ", due " + dueDate
			}
		}
		lines = append(lines, line)
	}
	f["amount_due"] = round2(due)
	f["overdue"] = round2(overdue)
	f["open_invoices"] = float64(open)
	f["invoices"] = nonNil(lines)
	switch {
	case len(invs) == 0:
		f["payment_state"] = ""
	case overdue > 0:
		f["payment_state"] = "overdue"
	case open > 0:
		f["payment_state"] = "due"
	default:
		f["payment_state"] = "paid"
	}
	return newest
}

func round2(x float64) float64 { return float64(int64(x*100+0.5*sign(x))) / 100 }

func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}

// --- customer invoices ---

var invoiceModel = &model{
	name: "account.invoice",
	base: func() []any { return []any{[]any{"type", "=", "out"}} },
	all:  func() []any { return []any{[]any{"type", "=", "out"}} },
	read: []string{"id", "rec_name", "number", "reference", "description", "comment", "state", "invoice_date",
		"party", "party.rec_name", "currency.code", "total_amount", "untaxed_amount", "tax_amount", "amount_to_pay",
		"lines_to_pay.maturity_date", "create_date", "write_date", "create_uid.rec_name", "write_uid.rec_name"},
	fields: []connectors.FieldSpec{
		{Name: "number", Type: connectors.TypeString, Description: "given when the invoice is posted", ReadOnly: true},
		{Name: "reference", Type: connectors.TypeString},
		{Name: "description", Type: connectors.TypeString},
		{Name: "comment", Type: connectors.TypeString, Description: "Tryton refuses changes once the invoice is posted"},
		{Name: "state", Type: connectors.TypeString, Description: "draft, validated, posted, paid or cancelled (changed by Tryton's buttons)", ReadOnly: true},
		{Name: "paid", Type: connectors.TypeBool, Description: "state is paid", ReadOnly: true},
		{Name: "invoice_date", Type: connectors.TypeString, Description: "YYYY-MM-DD"},
		{Name: "due_date", Type: connectors.TypeString, Description: "the earliest maturity of what is left to pay, YYYY-MM-DD", ReadOnly: true},
		{Name: "party", Type: connectors.TypeString, Description: "the customer's name", ReadOnly: true},
		{Name: "party_id", Type: connectors.TypeNumber, Description: "the customer's party id; on create, or write party (a name) instead"},
		{Name: "currency", Type: connectors.TypeString, ReadOnly: true},
		{Name: "total_amount", Type: connectors.TypeNumber, ReadOnly: true},
		{Name: "untaxed_amount", Type: connectors.TypeNumber, ReadOnly: true},
		{Name: "tax_amount", Type: connectors.TypeNumber, ReadOnly: true},
		{Name: "amount_to_pay", Type: connectors.TypeNumber, Description: "what the customer still owes", ReadOnly: true},
		{Name: "amount", Type: connectors.TypeNumber, Description: "on create only: one line of this price on the first revenue account"},
		{Name: "created_at", Type: connectors.TypeTime, ReadOnly: true},
	},
	findable: map[string]bool{"number": true, "reference": true},
}

func invoiceFields(r map[string]any) map[string]any {
	f := map[string]any{
		"number": str(r["number"]), "reference": str(r["reference"]), "description": str(r["description"]),
		"comment": str(r["comment"]), "state": str(r["state"]), "paid": r["state"] == "paid",
		"invoice_date": dateOf(r["invoice_date"]), "party": nested(r["party."], "rec_name"), "party_id": float64(intOf(r["party"])),
		"currency": nested(r["currency."], "code"), "total_amount": number(r["total_amount"]),
		"untaxed_amount": number(r["untaxed_amount"]), "tax_amount": number(r["tax_amount"]),
		"amount_to_pay": number(r["amount_to_pay"]), "created_at": timeOf(r["create_date"]).Format(time.RFC3339),
	}
	due := ""
	for _, l := range list(r["lines_to_pay."]) {
		if d := dateOf(l["maturity_date"]); d != "" && (due == "" || d < due) {
			due = d
		}
	}
	f["due_date"] = due
	return f
}

func invoiceWrite(cur, fields map[string]any) (map[string]any, error) {
	old := invoiceFields(cur)
	vals := map[string]any{}
	for _, k := range sortedFieldKeys(fields) {
		v := fields[k]
		if fmt.Sprint(old[k]) == fmt.Sprint(v) {
			continue
		}
		switch k {
		case "reference", "description", "comment":
			s, ok := text(v)
			if !ok {
				return nil, invalid("%s must be text, not %T", k, v)
			}
			vals[k] = s
		case "invoice_date":
			s, _ := text(v)
			if s == "" {
				vals[k] = nil
				continue
			}
			d, err := wireDate(s)
			if err != nil {
				return nil, invalid("invoice_date: %v", err)
			}
			vals[k] = d
		default:
			return nil, refuse(invoiceModel, k)
		}
	}
	return vals, nil
}

// invoiceCreate makes a draft customer invoice: the party (by id, or by
// exact name), its receivable account, payment term and first address, the
// revenue journal, and with amount one line on the first revenue account.
func invoiceCreate(ctx context.Context, c *conn, fields map[string]any) (map[string]any, error) {
	vals := map[string]any{"type": "out"}
	var party int64
	var amount any
	for _, k := range sortedFieldKeys(fields) {
		v := fields[k]
		switch k {
		case "party_id":
			party = intOf(v)
			if s, ok := v.(string); ok { // an entity id, as the engine hands ids
				party, _ = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			}
		case "party":
			name, _ := text(v)
			var ids []int64
			if err := c.rpc.call(ctx, "model.party.party.search", []any{[]any{[]any{"name", "=", name}}, 0, 2, nil, c.ctx()}, &ids); err != nil {
				return nil, err
			}
			if len(ids) != 1 {
				return nil, invalid("party %q: %d parties have that name", name, len(ids))
			}
			party = ids[0]
		case "amount":
			d, err := wireDecimal(v)
			if err != nil {
				return nil, invalid("amount: %v", err)
			}
			amount = d
		case "reference", "description", "comment", "invoice_date":
			w, err := invoiceWrite(map[string]any{}, map[string]any{k: v})
			if err != nil {
				return nil, err
			}
			for wk, wv := range w {
				vals[wk] = wv
			}
		default:
			return nil, refuse(invoiceModel, k)
		}
	}
	if party <= 0 {
		return nil, invalid("an invoice needs party_id (or party, a name)")
	}
	vals["party"] = party
	var ps []map[string]any
	if err := c.rpc.call(ctx, "model.party.party.read", []any{[]int64{party}, []string{"account_receivable", "customer_payment_term", "addresses"}, c.ctx()}, &ps); err != nil {
		return nil, err
	}
	var conf []map[string]any
	if err := c.rpc.call(ctx, "model.account.configuration.read", []any{[]int64{1}, []string{"default_account_receivable", "default_customer_payment_term"}, c.ctx()}, &conf); err != nil {
		return nil, err
	}
	if len(ps) != 1 || len(conf) != 1 {
		return nil, invalid("party %d or the account configuration is missing", party)
	}
	pick := func(a, b any) any {
		if intOf(a) > 0 {
			return intOf(a)
		}
		if intOf(b) > 0 {
			return intOf(b)
		}
		return nil
	}
	vals["account"] = pick(ps[0]["account_receivable"], conf[0]["default_account_receivable"])
	if t := pick(ps[0]["customer_payment_term"], conf[0]["default_customer_payment_term"]); t != nil {
		vals["payment_term"] = t
	}
	if addrs, _ := ps[0]["addresses"].([]any); len(addrs) > 0 {
		vals["invoice_address"] = intOf(addrs[0])
	}
	var journals []int64
	if err := c.rpc.call(ctx, "model.account.journal.search", []any{[]any{[]any{"type", "=", "revenue"}}, 0, 1, nil, c.ctx()}, &journals); err != nil {
		return nil, err
	}
	if len(journals) == 1 {
		vals["journal"] = journals[0]
	}
	if amount != nil {
		acc, err := c.revenueAccount(ctx)
		if err != nil {
			return nil, err
		}
		vals["lines"] = []any{[]any{"create", []any{map[string]any{"type": "line", "quantity": 1, "unit_price": amount,
			"account": acc, "description": firstNonEmpty(str(vals["description"]), "Duplex")}}}}
	}
	return vals, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (c *conn) revenueAccount(ctx context.Context) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.revenue > 0 {
		return c.revenue, nil
	}
	var ids []int64
	if err := c.rpc.call(ctx, "model.account.account.search", []any{[]any{[]any{"type.revenue", "=", true}}, 0, 1, [][]string{{"id", "ASC"}}, c.ctx()}, &ids); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, invalid("no revenue account in the chart of accounts")
	}
	c.revenue = ids[0]
	return c.revenue, nil
}
