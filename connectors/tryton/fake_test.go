package tryton_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	fakeDB       = "fakedb"
	fakeUser     = "admin"
	fakePassword = "fake-password"
	fakeSession  = "fake-session-key"
)

// fake is an offline trytond JSON-RPC server for one database, with the
// answers' shapes as trytond 6.0 gives them (checked against the real server
// of test/e2e/peers/tryton.sh): sessions, search_read with dotted fields,
// x2many write operations, "__class__" datetimes and Decimals, UserError
// answers. It keeps parties, customer invoices and notes in memory and is
// strict: an unknown method or a domain it does not know fails the test.
type fake struct {
	t     *testing.T
	srv   *http.Server
	url   string
	mu    sync.Mutex
	now   time.Time // every write stamps it, then it moves 1 ms
	next  int64
	recs  map[string]map[int64]map[string]any // model → id → record
	calls int
	// denyWrite makes every write answer Tryton's access error.
	denyWrite bool
	// codeClashes refuses that many party creates as trytond on SQLite
	// does when another process's create took the same party code.
	codeClashes int
	logins      int
	session     string // the key the server knows
}

func newFake(t *testing.T) *fake {
	f := &fake{t: t, now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), next: 1,
		recs: map[string]map[int64]map[string]any{"party.party": {}, "account.invoice": {}, "ir.note": {}}, session: fakeSession}
	ts := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(ts.Close)
	f.url = ts.URL
	return f
}

func wireT(t time.Time) map[string]any {
	return map[string]any{"__class__": "datetime", "year": t.Year(), "month": int(t.Month()), "day": t.Day(),
		"hour": t.Hour(), "minute": t.Minute(), "second": t.Second(), "microsecond": t.Nanosecond() / 1000}
}

func fromWire(v any) (time.Time, bool) {
	m, ok := v.(map[string]any)
	if !ok || m["__class__"] != "datetime" {
		return time.Time{}, false
	}
	n := func(k string) int { return int(m[k].(float64)) }
	return time.Date(n("year"), time.Month(n("month")), n("day"), n("hour"), n("minute"), n("second"), n("microsecond")*1000, time.UTC), true
}

func (f *fake) tick() time.Time {
	t := f.now
	f.now = f.now.Add(time.Millisecond)
	return t
}

// stampAll gives every record of a model the same write_date.
func (f *fake) stampAll(model string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.recs[model] {
		r["write_date"] = at
	}
}

// addInvoice stores a posted customer invoice as Tryton would have it.
func (f *fake) addInvoice(party int64, number string, total, toPay string, due string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.next
	f.next++
	f.recs["account.invoice"][id] = map[string]any{"id": id, "type": "out", "number": number, "reference": "", "description": "",
		"comment": "", "state": "posted", "invoice_date": "2026-03-01", "party": party, "total_amount": total, "untaxed_amount": total,
		"tax_amount": "0", "amount_to_pay": toPay, "due": due, "create_date": f.tick()}
	return id
}

func (f *fake) setInvoice(id int64, k string, v any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recs["account.invoice"][id][k] = v
	f.recs["account.invoice"][id]["write_date"] = f.tick()
}

func (f *fake) reply(w http.ResponseWriter, result any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id": 1, "result": result})
}

func (f *fake) userError(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id": 1, "error": []any{"UserError", []any{msg, "", nil}}})
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/"+fakeDB+"/" {
		http.NotFound(w, r)
		return
	}
	var req struct {
		Method string `json:"method"`
		Params []any  `json:"params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.t.Errorf("fake tryton: bad request: %v", err)
		http.Error(w, "bad", 400)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if req.Method == "common.db.login" {
		f.logins++
		p, _ := req.Params[1].(map[string]any)
		if req.Params[0] != fakeUser || p["password"] != fakePassword {
			http.Error(w, "Unauthorized", 401)
			return
		}
		f.reply(w, []any{1, f.session})
		return
	}
	want := "Session " + base64.StdEncoding.EncodeToString([]byte(fakeUser+":1:"+f.session))
	if r.Header.Get("Authorization") != want {
		http.Error(w, "Unauthorized", 401)
		return
	}
	rest, ok := strings.CutPrefix(req.Method, "model.")
	i := strings.LastIndex(rest, ".")
	if !ok || i < 0 {
		f.t.Errorf("fake tryton: method %s", req.Method)
		http.Error(w, "Forbidden", 403)
		return
	}
	model, method := rest[:i], rest[i+1:]
	if model == "res.user" && method == "get_preferences" {
		f.reply(w, map[string]any{"company": 1, "language": "en", "company_filter": "one", "groups": []int{1}})
		return
	}
	recs, known := f.recs[model]
	if !known {
		f.t.Errorf("fake tryton: model %s", model)
		http.Error(w, "Forbidden", 403)
		return
	}
	switch method {
	case "search_count":
		f.reply(w, len(f.search(model, req.Params[0])))
	case "search":
		found := f.search(model, req.Params[0])
		if lim, ok := req.Params[2].(float64); ok && int(lim) < len(found) {
			found = found[:int(lim)]
		}
		ids := []int64{}
		for _, rec := range found {
			ids = append(ids, rec["id"].(int64))
		}
		f.reply(w, ids)
	case "search_read":
		found := f.search(model, req.Params[0])
		if lim, ok := req.Params[2].(float64); ok && int(lim) < len(found) {
			found = found[:int(lim)]
		}
		fields := req.Params[4].([]any)
		out := []any{}
		for _, rec := range found {
			out = append(out, f.read(model, rec, fields))
		}
		f.reply(w, out)
	case "create":
		if model == "party.party" && f.codeClashes > 0 {
			f.codeClashes--
			f.userError(w, "The code on party must be unique.")
			return
		}
		if f.denyWrite {
			f.userError(w, `You are not allowed to create records of "Party" because they fail on at least one of these rules`)
			return
		}
		var ids []int64
		for _, v := range req.Params[0].([]any) {
			vals := v.(map[string]any)
			if model == "party.party" {
				for _, m := range f.mechCreates(vals) {
					if m["type"] == "email" && !strings.Contains(fmt.Sprint(m["value"]), "@") {
						f.userError(w, fmt.Sprintf("The E-Mail %q for party is not valid.", m["value"]))
						return
					}
				}
			}
			id := f.next
			f.next++
			rec := map[string]any{"id": id, "create_date": f.tick(), "active": true}
			if model == "party.party" {
				rec["code"] = fmt.Sprint(id)
				rec["addresses"], rec["contact_mechanisms"], rec["identifiers"] = []map[string]any{}, []map[string]any{}, []map[string]any{}
			}
			if model == "ir.note" {
				rec["create_uid"] = "Administrator"
			}
			f.apply(rec, vals)
			recs[id] = rec
			ids = append(ids, id)
		}
		f.reply(w, ids)
	case "write":
		if f.denyWrite {
			f.userError(w, `You are not allowed to write to records "1" of "Party" because of at least one of these rules`)
			return
		}
		for _, x := range req.Params[0].([]any) {
			rec, ok := recs[int64(x.(float64))]
			if !ok {
				f.userError(w, fmt.Sprintf(`You are trying to write to records "%v" of "Party" that don't exist anymore.`, x))
				return
			}
			f.apply(rec, req.Params[1].(map[string]any))
			rec["write_date"] = f.tick()
		}
		f.reply(w, nil)
	default:
		f.t.Errorf("fake tryton: %s", req.Method)
		http.Error(w, "Forbidden", 403)
	}
}

func (f *fake) mechCreates(vals map[string]any) []map[string]any {
	var out []map[string]any
	ops, _ := vals["contact_mechanisms"].([]any)
	for _, op := range ops {
		o := op.([]any)
		if o[0] == "create" {
			for _, v := range o[1].([]any) {
				out = append(out, v.(map[string]any))
			}
		}
	}
	return out
}

// apply writes vals, with Tryton's x2many operations.
func (f *fake) apply(rec map[string]any, vals map[string]any) {
	for k, v := range vals {
		switch k {
		case "addresses", "contact_mechanisms", "identifiers":
			cur := rec[k].([]map[string]any)
			for _, op := range v.([]any) {
				o := op.([]any)
				switch o[0] {
				case "create":
					for _, x := range o[1].([]any) {
						sub := map[string]any{"id": f.next}
						f.next++
						for sk, sv := range x.(map[string]any) {
							sub[sk] = sv
						}
						cur = append(cur, sub)
					}
				case "write":
					for _, id := range o[1].([]any) {
						for _, sub := range cur {
							if sub["id"] == int64(id.(float64)) {
								for sk, sv := range o[2].(map[string]any) {
									sub[sk] = sv
								}
							}
						}
					}
				case "delete":
					for _, id := range o[1].([]any) {
						kept := cur[:0]
						for _, sub := range cur {
							if sub["id"] != int64(id.(float64)) {
								kept = append(kept, sub)
							}
						}
						cur = kept
					}
				default:
					f.t.Errorf("fake tryton: x2many op %v", o[0])
				}
			}
			rec[k] = cur
		default:
			rec[k] = v
		}
	}
}

func stampOf(rec map[string]any, field string) (time.Time, bool) {
	t, ok := rec[field].(time.Time)
	return t, ok
}

// search filters by the domains the connector sends, ordered by the stamp
// the domain is about (or id), as its search_read asks.
func (f *fake) search(model string, domain any) []map[string]any {
	var out []map[string]any
	order := "id"
	// Tryton's active test: inactive records are left out unless the
	// domain names active.
	activeTest := true
	for _, c := range domain.([]any) {
		if cl, ok := c.([]any); ok && cl[0] == "active" {
			activeTest = false
		}
	}
	for _, rec := range f.recs[model] {
		match := !activeTest || rec["active"] != false
		for _, c := range domain.([]any) {
			cl := c.([]any)
			field, op, val := cl[0].(string), cl[1].(string), cl[2]
			switch {
			case field == "resource" && op == "like":
				match = match && strings.HasPrefix(fmt.Sprint(rec["resource"]), strings.TrimSuffix(val.(string), "%"))
			case field == "type" && op == "=":
				match = match && rec["type"] == val
			case field == "id" && op == "=":
				match = match && rec["id"] == int64(val.(float64))
			case (field == "write_date" || field == "create_date") && val == nil:
				_, has := stampOf(rec, field)
				match = match && (has == (op == "!="))
				if op == "!=" {
					order = "write_date"
				} else {
					order = "create_date"
				}
			case (field == "write_date" || field == "create_date") && op == ">=":
				t, _ := fromWire(val)
				at, has := stampOf(rec, field)
				match = match && has && !at.Before(t)
			case (field == "name" || field == "code" || field == "number" || field == "reference") && op == "=":
				match = match && fmt.Sprint(rec[field]) == val
			case field == "identifiers.code" && op == "=":
				has := false
				for _, x := range rec["identifiers"].([]map[string]any) {
					has = has || x["code"] == val
				}
				match = match && has
			case (field == "resource" || field == "id" || field == "party" || field == "state" || field == "active") && op == "in":
				in := false
				for _, x := range val.([]any) {
					if n, ok := x.(float64); ok {
						x = int64(n)
					}
					in = in || rec[field] == x
				}
				match = match && in
			default:
				f.t.Errorf("fake tryton: domain %v on %s", cl, model)
				return nil
			}
		}
		if match {
			out = append(out, rec)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if order != "id" {
			ti, _ := stampOf(out[i], order)
			tj, _ := stampOf(out[j], order)
			if !ti.Equal(tj) {
				return ti.Before(tj)
			}
		}
		return out[i]["id"].(int64) < out[j]["id"].(int64)
	})
	return out
}

func dec(v any) any { return map[string]any{"__class__": "Decimal", "decimal": v} }

func date(s string) any {
	t, _ := time.Parse("2006-01-02", s)
	return map[string]any{"__class__": "date", "year": t.Year(), "month": int(t.Month()), "day": t.Day()}
}

// read answers fields as trytond does, dotted ones under "rel.".
func (f *fake) read(model string, rec map[string]any, fields []any) map[string]any {
	out := map[string]any{}
	for _, x := range fields {
		name := x.(string)
		rel, sub, dotted := strings.Cut(name, ".")
		if !dotted {
			switch v := rec[name].(type) {
			case time.Time:
				out[name] = wireT(v)
			case nil:
				switch name {
				case "write_date", "party":
					out[name] = nil
				case "rec_name":
					out[name] = fmt.Sprint(rec["name"])
					if model == "account.invoice" {
						out[name] = fmt.Sprint(rec["number"])
					}
				default:
					out[name] = ""
				}
			default:
				switch name {
				case "total_amount", "untaxed_amount", "tax_amount", "amount_to_pay":
					out[name] = dec(v)
				case "invoice_date":
					out[name] = date(v.(string))
				default:
					out[name] = v
				}
			}
			continue
		}
		switch rel {
		case "addresses", "contact_mechanisms", "identifiers":
			subs, _ := out[rel+"."].([]any)
			if subs == nil {
				for _, s := range rec[rel].([]map[string]any) {
					subs = append(subs, map[string]any{"id": s["id"]})
				}
			}
			for i, s := range rec[rel].([]map[string]any) {
				m := subs[i].(map[string]any)
				if sub == "full_address" {
					m[sub] = strings.TrimSpace(fmt.Sprint(s["street"], "\n", s["postal_code"], " ", s["city"]))
				} else {
					m[sub] = s[sub]
					if m[sub] == nil {
						m[sub] = nil
					}
				}
			}
			if subs == nil {
				subs = []any{}
			}
			out[rel+"."] = subs
		case "create_uid", "write_uid":
			if rel == "write_uid" && rec["write_date"] == nil {
				out[rel+"."] = nil
			} else {
				out[rel+"."] = map[string]any{"id": 1, "rec_name": "Administrator"}
			}
		case "party":
			p := f.recs["party.party"][rec["party"].(int64)]
			out["party."] = map[string]any{"id": rec["party"], "rec_name": p["name"]}
		case "currency":
			out["currency."] = map[string]any{"id": 1, "code": "USD"}
		case "lines_to_pay":
			out["lines_to_pay."] = []any{map[string]any{"id": 1, "maturity_date": date(rec["due"].(string))}}
		default:
			f.t.Errorf("fake tryton: field %s of %s", name, model)
		}
	}
	return out
}
