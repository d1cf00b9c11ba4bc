package rt_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeToken is the auth token the fake accepts; anything else is 401.
const fakeToken = "1-14-fakefakefakefakefakefakefakefake"

// fake is an offline RT REST2 for the General queue, answering in the shape
// of the payloads in testdata/ (recorded from a real RT by
// testdata/record.sh): the queue as recorded, tickets built from the
// recorded ticket, their transactions and MIME parts kept in memory. It is
// strict: an unknown route, a wrong token or a TicketSQL it does not know
// fails the test.
type fake struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	now     time.Time
	queue   map[string]any
	tpl     map[string]any
	tickets map[int]*fakeTicket
	nextID  int
	nextTx  int
}

type fakeTicket struct {
	fields map[string]any // the REST2 ticket object
	txs    []fakeTx
	parts  []fakePart
}

type fakeTx struct {
	id      int
	typ     string
	created time.Time
}

type fakePart struct {
	id, tx            int
	ctype, name, body string
}

func loadJSON(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func newFake(t *testing.T) *fake {
	f := &fake{t: t, now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), queue: loadJSON(t, "queue.json"),
		tpl: loadJSON(t, "ticket.json"), tickets: map[int]*fakeTicket{}, nextID: 1, nextTx: 100}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) tick(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// stampAll gives every transaction the same time, as writes within one
// second do on RT (whole-second stamps).
func (f *fake) stampAll(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tk := range f.tickets {
		for i := range tk.txs {
			tk.txs[i].created = at
		}
	}
}

func (f *fake) reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

var (
	ticketPath = regexp.MustCompile(`^/REST/2\.0/ticket/(\d+)(/(history|attachments|comment|correspond))?$`)
	attachPath = regexp.MustCompile(`^/REST/2\.0/attachment/(\d+)$`)
)

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "token "+fakeToken {
		f.reply(w, 401, map[string]any{"message": "Unauthorized"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// A second past the stamps: pollwindow leaves the current second open.
	w.Header().Set("Date", f.now.Add(time.Second).Format(http.TimeFormat))
	p := r.URL.Path
	switch {
	case r.Method == "GET" && (p == "/REST/2.0/queue/General" || p == "/REST/2.0/queue/"+fmt.Sprint(f.queue["id"])):
		f.reply(w, 200, f.queue)
	case r.Method == "GET" && strings.HasPrefix(p, "/REST/2.0/queue/"):
		f.reply(w, 404, map[string]any{"message": "Resource does not exist"})
	case r.Method == "POST" && p == "/REST/2.0/ticket":
		f.create(w, r)
	case r.Method == "GET" && p == "/REST/2.0/transactions":
		f.transactions(w, r)
	case r.Method == "GET" && p == "/REST/2.0/tickets":
		f.search(w, r)
	case ticketPath.MatchString(p):
		m := ticketPath.FindStringSubmatch(p)
		n, _ := strconv.Atoi(m[1])
		tk, ok := f.tickets[n]
		if !ok {
			f.reply(w, 404, loadJSON(f.t, "not-found.json"))
			return
		}
		f.ticketRoute(w, r, n, tk, m[3])
	case r.Method == "GET" && attachPath.MatchString(p):
		n, _ := strconv.Atoi(attachPath.FindStringSubmatch(p)[1])
		for _, tk := range f.tickets {
			for _, pt := range tk.parts {
				if pt.id == n {
					f.reply(w, 200, map[string]any{"id": strconv.Itoa(n), "Filename": pt.name, "ContentType": pt.ctype,
						"Content": base64.StdEncoding.EncodeToString([]byte(pt.body))})
					return
				}
			}
		}
		f.reply(w, 404, loadJSON(f.t, "not-found.json"))
	default:
		f.t.Errorf("fake rt: unexpected %s %s", r.Method, r.URL)
		w.WriteHeader(404)
	}
}

func (f *fake) ticketRoute(w http.ResponseWriter, r *http.Request, n int, tk *fakeTicket, sub string) {
	switch {
	case sub == "" && r.Method == "GET":
		f.reply(w, 200, tk.fields)
	case sub == "" && r.Method == "PUT":
		var in map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			f.t.Errorf("fake rt: PUT body: %v", err)
		}
		f.apply(tk, in)
		f.addTx(tk, "Set")
		f.reply(w, 200, []string{fmt.Sprintf("Ticket %d: updated", n)})
	case sub == "" && r.Method == "DELETE":
		tk.fields["Status"] = "deleted"
		f.addTx(tk, "Status")
		w.WriteHeader(204)
	case sub == "history" && r.Method == "GET":
		var items []any
		for _, tx := range tk.txs {
			items = append(items, map[string]any{"type": "transaction", "id": strconv.Itoa(tx.id), "Type": tx.typ,
				"Created": tx.created.Format(time.RFC3339), "Creator": map[string]any{"type": "user", "id": "root"}})
		}
		f.page(w, r, items)
	case sub == "attachments" && r.Method == "GET":
		withContent := strings.Contains(r.URL.Query().Get("fields"), "Content,")
		var items []any
		for _, pt := range tk.parts {
			it := map[string]any{"type": "attachment", "id": strconv.Itoa(pt.id), "TransactionId": strconv.Itoa(pt.tx),
				"ContentType": pt.ctype, "Filename": pt.name, "ContentLength": strconv.Itoa(len(pt.body))}
			if withContent {
				it["Content"] = pt.body
			}
			items = append(items, it)
		}
		f.page(w, r, items)
	case (sub == "comment" || sub == "correspond") && r.Method == "POST":
		f.message(w, r, tk, map[string]string{"comment": "Comment", "correspond": "Correspond"}[sub])
	default:
		f.t.Errorf("fake rt: unexpected %s %s", r.Method, r.URL)
		w.WriteHeader(405)
	}
}

// page answers a REST2 collection page.
func (f *fake) page(w http.ResponseWriter, r *http.Request, items []any) {
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	pg, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if per <= 0 {
		per = 20
	}
	if pg <= 0 {
		pg = 1
	}
	total := len(items)
	pages := max(1, (total+per-1)/per)
	from := min((pg-1)*per, total)
	out := items[from:min(from+per, total)]
	if out == nil {
		out = []any{}
	}
	f.reply(w, 200, map[string]any{"items": out, "count": len(out), "total": total, "page": pg, "pages": pages, "per_page": per})
}

func (f *fake) addTx(tk *fakeTicket, typ string) int {
	f.nextTx++
	tk.txs = append(tk.txs, fakeTx{id: f.nextTx, typ: typ, created: f.now})
	tk.fields["LastUpdated"] = f.now.Format(time.RFC3339)
	return f.nextTx
}

func (f *fake) addPart(tk *fakeTicket, tx int, ctype, name, body string) {
	f.nextTx++
	tk.parts = append(tk.parts, fakePart{id: f.nextTx, tx: tx, ctype: ctype, name: name, body: body})
}

func (f *fake) create(w http.ResponseWriter, r *http.Request) {
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		f.t.Errorf("fake rt: create body: %v", err)
	}
	if fmt.Sprint(in["Queue"]) != fmt.Sprint(f.queue["id"]) {
		f.t.Errorf("fake rt: create in queue %v", in["Queue"])
	}
	b, _ := json.Marshal(f.tpl)
	tk := &fakeTicket{}
	_ = json.Unmarshal(b, &tk.fields)
	for _, cf := range tk.fields["CustomFields"].([]any) {
		cf.(map[string]any)["values"] = []any{}
	}
	id := f.nextID
	f.nextID++
	tk.fields["id"] = float64(id)
	tk.fields["Status"], tk.fields["Subject"] = "new", ""
	tk.fields["Created"] = f.now.Format(time.RFC3339)
	tk.fields["Queue"] = map[string]any{"type": "queue", "id": fmt.Sprint(f.queue["id"])}
	content, _ := in["Content"].(string)
	delete(in, "Content")
	delete(in, "ContentType")
	delete(in, "Queue")
	f.apply(tk, in)
	tx := f.addTx(tk, "Create")
	if content != "" {
		f.addPart(tk, tx, "text/plain", "", content)
	}
	f.tickets[id] = tk
	f.reply(w, 201, map[string]any{"id": strconv.Itoa(id), "type": "ticket"})
}

// apply copies the keys the connector writes onto a ticket.
func (f *fake) apply(tk *fakeTicket, in map[string]any) {
	for k, v := range in {
		switch k {
		case "Subject", "Status", "Priority":
			tk.fields[k] = v
		case "Owner":
			tk.fields[k] = map[string]any{"type": "user", "id": v}
		case "CustomFields":
			for name, val := range v.(map[string]any) {
				for _, cf := range tk.fields["CustomFields"].([]any) {
					if m := cf.(map[string]any); m["name"] == name {
						m["values"] = []any{val}
					}
				}
			}
		default:
			f.t.Errorf("fake rt: the fake does not take %q", k)
		}
	}
}

// message adds a comment or a reply: JSON, or multipart with files. A body
// cut off is not processed, as RT does.
func (f *fake) message(w http.ResponseWriter, r *http.Request, tk *fakeTicket, typ string) {
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	type file struct{ name, ctype, body string }
	var text string
	var files []file
	if mt == "multipart/form-data" {
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return // cut off: nothing is added
			}
			b, err := io.ReadAll(p)
			if err != nil {
				return
			}
			if p.FileName() != "" {
				files = append(files, file{p.FileName(), p.Header.Get("Content-Type"), string(b)})
			}
		}
	} else {
		var in map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			f.t.Errorf("fake rt: message body: %v", err)
		}
		text, _ = in["Content"].(string)
	}
	tx := f.addTx(tk, typ)
	if text != "" {
		f.addPart(tk, tx, "text/plain", "", text)
	}
	for _, fl := range files {
		f.addPart(tk, tx, fl.ctype, fl.name, fl.body)
	}
	f.reply(w, 201, []string{typ + " added"})
}

var createdSince = regexp.MustCompile(`AND Created >= '([0-9T:-]+)\+00:00'`)

// transactions answers the connector's one TicketSQL search of
// transactions: the queue's tickets, created at or after a time.
func (f *fake) transactions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("query")
	if !strings.HasPrefix(q, "ObjectType = 'RT::Ticket' AND TicketQueue = 'General'") {
		f.t.Errorf("fake rt: transactions query %q", q)
	}
	var since time.Time
	if m := createdSince.FindStringSubmatch(q); m != nil {
		since, _ = time.Parse("2006-01-02T15:04:05", m[1])
	}
	type row struct {
		tx     fakeTx
		ticket int
	}
	var rows []row
	for n, tk := range f.tickets {
		for _, tx := range tk.txs {
			if !tx.created.Before(since) {
				rows = append(rows, row{tx, n})
			}
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].tx.id < rows[j].tx.id })
	var items []any
	for _, x := range rows {
		items = append(items, map[string]any{"type": "transaction", "id": strconv.Itoa(x.tx.id),
			"ObjectId": strconv.Itoa(x.ticket), "Created": x.tx.created.Format(time.RFC3339)})
	}
	f.page(w, r, items)
}

var clause = regexp.MustCompile(`^Queue = 'General' AND (Subject|'CF\.\{([^}]*)\}') = '((?:[^'\\]|\\.)*)'$`)

// search answers TicketSQL of the form the connector sends: the queue and
// one column or custom field equal to a value (without case, as RT).
func (f *fake) search(w http.ResponseWriter, r *http.Request) {
	m := clause.FindStringSubmatch(r.URL.Query().Get("query"))
	if m == nil {
		f.t.Errorf("fake rt: tickets query %q", r.URL.Query().Get("query"))
		f.reply(w, 400, map[string]any{"message": "bad query"})
		return
	}
	want := strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(m[3])
	var ids []int
	for n, tk := range f.tickets {
		var have string
		if m[1] == "Subject" {
			have, _ = tk.fields["Subject"].(string)
		} else {
			for _, cf := range tk.fields["CustomFields"].([]any) {
				if c := cf.(map[string]any); (c["name"] == m[2] || c["id"] == m[2]) && len(c["values"].([]any)) > 0 {
					have = fmt.Sprint(c["values"].([]any)[0])
				}
			}
		}
		if strings.EqualFold(have, want) {
			ids = append(ids, n)
		}
	}
	sort.Ints(ids)
	var items []any
	for _, n := range ids {
		items = append(items, map[string]any{"type": "ticket", "id": strconv.Itoa(n)})
	}
	f.page(w, r, items)
}
