// Package rt is the connector for Request Tracker 5 tickets in one queue,
// over RT's REST2 API. Correspondence (what the requestor sees) and comments
// (internal, Private) are the comments; the ticket's first message is its
// description. RT has no webhooks: changes are found by polling LastUpdated.
//
// RT changes tickets by itself: a reply moves "new" to "open", autoreplies
// add EmailRecord transactions stamped by RT_System. Those bump LastUpdated,
// so such tickets are read again, but the engine compares content: an
// autoreply is no comment here and so changes nothing, and a status RT moved
// on its own is a real field change that the connection's scripts decide
// whether to send.
package rt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
)

// Settings is an RT system's non-secret configuration. Credentials are the
// secret "token" (an RT auth token) or the secrets "user" and "password".
type Settings struct {
	// URL is RT's web address, for example https://rt.example.com (REST2
	// lives under /REST/2.0).
	URL string `json:"url" spec:"required"`
	// Queue names the queue whose tickets sync; new tickets go there.
	Queue string `json:"queue" spec:"required"`
	// CorrelationField names a ticket custom field where Duplex stores its
	// key on tickets it creates, so a create interrupted by a crash is found
	// again instead of repeated. Optional.
	CorrelationField string `json:"correlation_field,omitempty"`
	// TimeoutMS bounds one request; default 30000.
	TimeoutMS int `json:"timeout_ms,omitempty" spec:"default=30000"`
}

// New opens an RT connector and checks the credentials and the queue.
func New(ctx context.Context, cfg connectors.Config) (connectors.Connector, error) {
	s, err := ParseSettings(cfg.Settings)
	if err != nil {
		return nil, err
	}
	timeout := time.Duration(s.TimeoutMS) * time.Millisecond
	c := &conn{s: s, http: &httpx.Client{HTTP: cfg.HTTPClient(), Base: s.URL + "/REST/2.0", Header: http.Header{}, Timeout: timeout}}
	switch {
	case cfg.Secrets["token"] != "":
		c.http.Header.Set("Authorization", "token "+cfg.Secrets["token"])
	case cfg.Secrets["user"] != "" && cfg.Secrets["password"] != "":
		sess, err := newSession(s.URL, cfg.Secrets["user"], cfg.Secrets["password"], timeout, cfg.RoundTripper())
		if err != nil {
			return nil, err
		}
		if err := sess.login(ctx); err != nil {
			return nil, fmt.Errorf("rt %s: %w", cfg.Name, err)
		}
		c.sess, c.http.HTTP = sess, sess.client
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(cfg.Secrets["user"], cfg.Secrets["password"])
		c.writer = &httpx.Client{HTTP: cfg.HTTPClient(), Base: c.http.Base, Timeout: timeout, Header: http.Header{"Authorization": {req.Header.Get("Authorization")}}}
	default:
		return nil, fmt.Errorf("%w: rt: the secret token (or user and password) is required", connectors.ErrBadConfig)
	}
	var q struct {
		ID                 json.Number `json:"id"`
		Name               string      `json:"Name"`
		TicketCustomFields []ref       `json:"TicketCustomFields"`
	}
	if err := c.do(ctx, "GET", "/queue/"+url.PathEscape(s.Queue), nil, &q); err != nil {
		if errors.Is(err, connectors.ErrNotFound) {
			return nil, fmt.Errorf("%w: rt %s: queue %q not found (or not visible to this user)", connectors.ErrBadConfig, cfg.Name, s.Queue)
		}
		return nil, fmt.Errorf("rt %s: check credentials and queue: %w", cfg.Name, err)
	}
	c.queueID, c.queueName = q.ID.String(), q.Name
	c.customFieldIDs = map[string]string{}
	for _, f := range q.TicketCustomFields {
		c.customFields = append(c.customFields, f.Name)
		c.customFieldIDs[f.Name] = f.ID.String()
	}
	return c, nil
}

type conn struct {
	s            Settings
	http         *httpx.Client
	sess         *session      // nil with a token
	writer       *httpx.Client // session mode: writes, with basic auth
	queueID      string
	queueName    string
	customFields []string
	// customFieldIDs maps a custom field's name to its id, which FindBy
	// names it by in TicketSQL ('CF.{7}'): no name quoting to get wrong.
	customFieldIDs map[string]string
}

// ref is REST2's reference to another object ({"id", "type", "_url"}).
type ref struct {
	ID   json.Number `json:"id"`
	Type string      `json:"type"`
	Name string      `json:"name"`
}

// userRef reads a user reference, whose id is a name ("root", an email).
type userRef struct {
	ID string `json:"id"`
}

type ticket struct {
	ID            json.Number `json:"id"`
	Subject       string      `json:"Subject"`
	Status        string      `json:"Status"`
	Queue         ref         `json:"Queue"`
	Owner         userRef     `json:"Owner"`
	Requestor     []userRef   `json:"Requestor"`
	Cc            []userRef   `json:"Cc"`
	Priority      json.Number `json:"Priority"`
	Created       time.Time   `json:"Created"`
	LastUpdated   time.Time   `json:"LastUpdated"`
	LastUpdatedBy userRef     `json:"LastUpdatedBy"`
	Resolved      time.Time   `json:"Resolved"`
	Due           time.Time   `json:"Due"`
	CustomFields  []struct {
		Name   string `json:"name"`
		Values []any  `json:"values"`
	} `json:"CustomFields"`
}

type transaction struct {
	ID      json.Number `json:"id"`
	Type    string      `json:"Type"`
	Creator userRef     `json:"Creator"`
	Created time.Time   `json:"Created"`
}

type attachment struct {
	ID            json.Number `json:"id"`
	TransactionID json.Number `json:"TransactionId"`
	ContentType   string      `json:"ContentType"`
	Content       string      `json:"Content"`
	Filename      string      `json:"Filename"`
	ContentLength json.Number `json:"ContentLength"`
}

var standard = []connectors.FieldSpec{
	{Name: "subject", Type: connectors.TypeString},
	{Name: "status", Type: connectors.TypeString, Description: "new, open, stalled, resolved, rejected, deleted (the queue's lifecycle)"},
	{Name: "owner", Type: connectors.TypeString, Description: "owner's user name, \"\" for nobody"},
	{Name: "requestors", Type: connectors.TypeList, Description: "requestor email addresses"},
	{Name: "cc", Type: connectors.TypeList},
	{Name: "priority", Type: connectors.TypeNumber},
	{Name: "description", Type: connectors.TypeString, Description: "the ticket's first message; set on create only"},
	{Name: "queue", Type: connectors.TypeString, ReadOnly: true},
	{Name: "created", Type: connectors.TypeTime, ReadOnly: true},
	{Name: "resolved", Type: connectors.TypeTime, ReadOnly: true},
	{Name: "due", Type: connectors.TypeTime},
}

// readOnlyOnUpdate are fields a script may copy back that RT cannot change.
var readOnlyOnUpdate = map[string]bool{"queue": true, "created": true, "resolved": true, "description": true}

func (c *conn) do(ctx context.Context, method, path string, body, out any) error {
	_, err := c.call(ctx, method, path, body, out)
	return err
}

func (c *conn) ticketURL(id string) string { return c.s.URL + "/Ticket/Display.html?id=" + id }

func cfKey(name string) string {
	for _, s := range standard {
		if s.Name == name {
			return "cf_" + name
		}
	}
	return name
}

// rtTime formats RT's "unset" date (1970) as "".
func rtTime(t time.Time) any {
	if t.IsZero() || t.Unix() <= 0 {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func users(us []userRef) []any {
	out := make([]any, 0, len(us))
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

// entity builds the flat view from a ticket and its history.
func (c *conn) entity(tk ticket, txs []transaction, text map[string]string) connectors.Entity {
	owner := tk.Owner.ID
	if owner == "Nobody" {
		owner = ""
	}
	prio, _ := tk.Priority.Float64()
	f := map[string]any{
		"subject":    tk.Subject,
		"status":     tk.Status,
		"queue":      c.queueName,
		"owner":      owner,
		"requestors": users(tk.Requestor),
		"cc":         users(tk.Cc),
		"priority":   prio,
		"created":    rtTime(tk.Created),
		"resolved":   rtTime(tk.Resolved),
		"due":        rtTime(tk.Due),
	}
	for _, name := range c.customFields {
		f[cfKey(name)] = "" // every field of the queue, set or not
	}
	for _, cf := range tk.CustomFields {
		switch len(cf.Values) {
		case 0:
			f[cfKey(cf.Name)] = ""
		case 1:
			f[cfKey(cf.Name)] = fmt.Sprint(cf.Values[0])
		default:
			vs := make([]any, len(cf.Values))
			for i, v := range cf.Values {
				vs[i] = fmt.Sprint(v)
			}
			f[cfKey(cf.Name)] = vs
		}
	}
	id := tk.ID.String()
	e := connectors.Entity{
		ID: id, Key: "#" + id, URL: c.ticketURL(id), Type: "ticket", Fields: f,
		UpdatedAt: tk.LastUpdated.UTC(), UpdatedBy: tk.LastUpdatedBy.ID,
	}
	f["description"] = ""
	for _, tx := range txs {
		body := text[tx.ID.String()]
		switch tx.Type {
		case "Create":
			f["description"] = body
		case "Correspond", "Comment":
			if strings.TrimSpace(body) == "" {
				continue
			}
			e.Comments = append(e.Comments, connectors.Comment{
				ID: tx.ID.String(), Author: tx.Creator.ID, Body: body,
				CreatedAt: tx.Created.UTC(), Private: tx.Type == "Comment",
			})
		}
	}
	return e
}

func parseID(id string) (string, error) {
	id = strings.TrimPrefix(id, "#")
	if n, err := strconv.ParseInt(id, 10, 64); err != nil || n <= 0 {
		return "", fmt.Errorf("%w: rt ticket id must be a positive number, got %q", connectors.ErrNotFound, id)
	}
	return id, nil
}

// Get reads a ticket with its history: three requests (ticket, transactions,
// attachments), whatever the number of comments.
func (c *conn) Get(ctx context.Context, id string) (connectors.Entity, error) {
	id, err := parseID(id)
	if err != nil {
		return connectors.Entity{}, err
	}
	tk, err := c.getTicket(ctx, id)
	if err != nil {
		return connectors.Entity{}, err
	}
	txs, text, files, err := c.history(ctx, id)
	if err != nil {
		return connectors.Entity{}, err
	}
	e := c.entity(tk, txs, text)
	e.Attachments = files
	return e, nil
}

func (c *conn) getTicket(ctx context.Context, id string) (ticket, error) {
	var tk ticket
	if err := c.do(ctx, "GET", "/ticket/"+id, nil, &tk); err != nil {
		return tk, fmt.Errorf("rt get ticket %s: %w", id, err)
	}
	if tk.Queue.ID.String() != c.queueID {
		// Moved to another queue: for this connection it is gone.
		return tk, fmt.Errorf("%w: rt ticket %s is in another queue now", connectors.ErrNotFound, id)
	}
	return tk, nil
}

// pages reads every page of a REST2 collection.
func (c *conn) pages(ctx context.Context, path string, each func(raw json.RawMessage) error) error {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for page := 1; page <= 1000; page++ {
		var out struct {
			Items []json.RawMessage `json:"items"`
			Pages float64           `json:"pages"`
		}
		if err := c.do(ctx, "GET", fmt.Sprintf("%s%sper_page=100&page=%d", path, sep, page), nil, &out); err != nil {
			return err
		}
		for _, it := range out.Items {
			if err := each(it); err != nil {
				return err
			}
		}
		if float64(page) >= out.Pages {
			return nil
		}
	}
	return fmt.Errorf("%w: rt: more than 1000 pages at %s", connectors.ErrInvalid, path)
}

// history returns the ticket's transactions, the text of each by
// transaction id (its text/plain part, else its HTML made plain; files
// attached are not text), and the files on the ticket.
func (c *conn) history(ctx context.Context, id string) ([]transaction, map[string]string, []connectors.Attachment, error) {
	var txs []transaction
	err := c.pages(ctx, "/ticket/"+id+"/history?fields=Type,Creator,Created", func(raw json.RawMessage) error {
		var tx transaction
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(raw, &tx); err != nil {
			return fmt.Errorf("%w: rt transaction: %w", connectors.ErrUnavailable, err)
		}
		// REST2 items carry both "Type" (Correspond, Comment, ...) and
		// "type" ("transaction"); encoding/json matches keys without case,
		// so the field is read by its exact key.
		if err := json.Unmarshal(raw, &keys); err != nil {
			return fmt.Errorf("%w: rt transaction: %w", connectors.ErrUnavailable, err)
		}
		tx.Type = ""
		if err := json.Unmarshal(keys["Type"], &tx.Type); err != nil {
			return fmt.Errorf("%w: rt transaction without Type: %w", connectors.ErrUnavailable, err)
		}
		txs = append(txs, tx)
		return nil
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("rt history of ticket %s: %w", id, err)
	}
	parts, files, err := c.parts(ctx, id)
	if err != nil {
		return nil, nil, nil, err
	}
	plain, html := map[string]string{}, map[string]string{}
	for _, a := range parts {
		tx := a.TransactionID.String()
		switch strings.ToLower(strings.TrimSpace(strings.SplitN(a.ContentType, ";", 2)[0])) {
		case "text/plain":
			if _, ok := plain[tx]; !ok {
				plain[tx] = strings.TrimRight(a.Content, "\n")
			}
		case "text/html":
			if _, ok := html[tx]; !ok {
				html[tx] = htmlText(a.Content)
			}
		}
	}
	for tx, s := range html {
		if _, ok := plain[tx]; !ok {
			plain[tx] = s
		}
	}
	return txs, plain, files, nil
}

// Create opens a ticket in the queue. "description" is its first message.
func (c *conn) Create(ctx context.Context, fields map[string]any) (connectors.Entity, error) {
	return c.create(ctx, "", fields)
}

// CreateCorrelated stores key in the correlation custom field.
func (c *conn) CreateCorrelated(ctx context.Context, key string, fields map[string]any) (connectors.Entity, error) {
	if c.s.CorrelationField == "" {
		return c.create(ctx, "", fields)
	}
	return c.create(ctx, key, fields)
}

// FindCorrelated searches the queue for the key in the correlation field.
func (c *conn) FindCorrelated(ctx context.Context, key string) (connectors.Entity, bool, error) {
	if c.s.CorrelationField == "" {
		return connectors.Entity{}, false, nil
	}
	q := fmt.Sprintf("Queue = %s AND 'CF.{%s}' = %s", quote(c.queueName), strings.ReplaceAll(c.s.CorrelationField, "}", ""), quote(key))
	var out struct {
		Items []ref `json:"items"`
	}
	if err := c.do(ctx, "GET", "/tickets?"+url.Values{"query": {q}, "per_page": {"2"}}.Encode(), nil, &out); err != nil {
		return connectors.Entity{}, false, fmt.Errorf("rt find correlated: %w", err)
	}
	if len(out.Items) == 0 {
		return connectors.Entity{}, false, nil
	}
	e, err := c.Get(ctx, out.Items[0].ID.String())
	return e, err == nil, err
}

// quote makes a TicketSQL string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func (c *conn) create(ctx context.Context, corrKey string, fields map[string]any) (connectors.Entity, error) {
	body, err := c.ticketBody(fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	body["Queue"] = c.queueID
	if corrKey != "" {
		cfs, _ := body["CustomFields"].(map[string]any)
		if cfs == nil {
			cfs = map[string]any{}
		}
		cfs[c.s.CorrelationField] = corrKey
		body["CustomFields"] = cfs
	}
	if desc, ok := fields["description"]; ok {
		body["Content"] = connectors.Text(desc)
		body["ContentType"] = "text/plain"
	}
	var out ref
	if err := c.do(ctx, "POST", "/ticket", body, &out); err != nil {
		return connectors.Entity{}, fmt.Errorf("rt create ticket: %w", err)
	}
	if out.ID.String() == "" {
		return connectors.Entity{}, fmt.Errorf("%w: rt create ticket: no id in the answer", connectors.ErrUnavailable)
	}
	e, err := c.Get(ctx, out.ID.String())
	if err != nil {
		return e, err
	}
	if err := checkApplied(e, body); err != nil {
		return e, partial(fields, err, err)
	}
	return e, nil
}

// Update changes the given fields with one PUT and reads the ticket back.
// RT answers 200 with a list of messages even when it refused a part (an
// unknown status, a transition the lifecycle forbids), so what was asked is
// compared with what is stored.
func (c *conn) Update(ctx context.Context, id string, fields map[string]any) (connectors.Entity, error) {
	id, err := parseID(id)
	if err != nil {
		return connectors.Entity{}, err
	}
	body, err := c.ticketBody(fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	var msgs []string
	if len(body) > 0 {
		if err := c.do(ctx, "PUT", "/ticket/"+id, body, &msgs); err != nil {
			return connectors.Entity{}, fmt.Errorf("rt update ticket %s: %w", id, err)
		}
	}
	e, err := c.Get(ctx, id)
	if err != nil {
		return e, err
	}
	if err := checkApplied(e, body); err != nil {
		return e, partial(fields, err, fmt.Errorf("%w (RT said: %s)", err, strings.Join(msgs, " | ")))
	}
	return e, nil
}

// refusedError names the asked-for values RT did not store.
type refusedError struct {
	fields []string // engine field names, sorted
	msg    string
}

func (e *refusedError) Error() string { return e.msg }

func (e *refusedError) Unwrap() error { return connectors.ErrInvalid }

// checkApplied reports the asked-for values RT did not store (*refusedError).
func checkApplied(e connectors.Entity, body map[string]any) error {
	var refused, why []string
	for _, f := range []struct{ api, field string }{{"Owner", "owner"}, {"Status", "status"}, {"Subject", "subject"}} {
		want, ok := body[f.api].(string)
		if !ok {
			continue
		}
		got := fmt.Sprint(e.Fields[f.field])
		if f.api == "Owner" && want == "Nobody" {
			want = ""
		}
		if !strings.EqualFold(got, want) {
			refused = append(refused, f.field)
			why = append(why, fmt.Sprintf("%s at %q instead of %q", f.field, got, want))
		}
	}
	if len(refused) == 0 {
		return nil
	}
	return &refusedError{fields: refused, msg: fmt.Sprintf("%v: rt kept ticket %s's %s (the queue's lifecycle or the user's rights refused it; other fields were saved)",
		connectors.ErrInvalid, e.ID, strings.Join(why, ", "))}
}

// partial makes a refusal of some fields of an update a
// connectors.PartialError naming the fields RT saved (the others asked for).
func partial(fields map[string]any, refusal, err error) error {
	var re *refusedError
	if !errors.As(refusal, &re) {
		return err
	}
	var applied []string
	for k := range fields {
		if !slices.Contains(re.fields, k) {
			applied = append(applied, k)
		}
	}
	slices.Sort(applied)
	return &connectors.PartialError{Applied: applied, Refused: re.fields, Err: err}
}

// ticketBody maps engine fields to REST2's ticket JSON.
func (c *conn) ticketBody(fields map[string]any) (map[string]any, error) {
	body := map[string]any{}
	cfs := map[string]any{}
	var unknown []string
	for k, v := range fields {
		switch k {
		case "subject":
			s := connectors.Text(v)
			if strings.TrimSpace(s) == "" {
				return nil, fmt.Errorf("%w: rt: subject cannot be empty", connectors.ErrInvalid)
			}
			body["Subject"] = s
		case "status":
			s := strings.ToLower(strings.TrimSpace(connectors.Text(v)))
			if s == "" {
				return nil, fmt.Errorf("%w: rt: status cannot be empty", connectors.ErrInvalid)
			}
			body["Status"] = s
		case "owner":
			s := strings.TrimSpace(connectors.Text(v))
			if s == "" {
				s = "Nobody"
			}
			body["Owner"] = s
		case "priority":
			n, err := connectors.Number(v)
			if err != nil {
				return nil, fmt.Errorf("%w: rt: priority must be a number, got %v", connectors.ErrInvalid, v)
			}
			body["Priority"] = n
		case "requestors", "cc":
			list, err := strList(v)
			if err != nil {
				return nil, fmt.Errorf("%w: rt: %s: %w", connectors.ErrInvalid, k, err)
			}
			body[map[string]string{"requestors": "Requestor", "cc": "Cc"}[k]] = list
		case "due":
			s := connectors.Text(v)
			if s == "" {
				body["Due"] = "1970-01-01 00:00:00"
				continue
			}
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				if t, err = time.Parse("2006-01-02", s); err != nil {
					return nil, fmt.Errorf("%w: rt: due must be RFC 3339 or YYYY-MM-DD, got %q", connectors.ErrInvalid, s)
				}
			}
			body["Due"] = t.UTC().Format("2006-01-02 15:04:05")
		default:
			if readOnlyOnUpdate[k] {
				continue // "description" is read on create; the rest are RT's own
			}
			name := strings.TrimPrefix(k, "cf_")
			if !c.hasCustomField(name) {
				unknown = append(unknown, k)
				continue
			}
			if list, ok := v.([]any); ok {
				l, err := strList(list)
				if err != nil {
					return nil, fmt.Errorf("%w: rt: %s: %w", connectors.ErrInvalid, k, err)
				}
				cfs[name] = l
			} else {
				cfs[name] = connectors.Text(v)
			}
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%w: rt: unknown ticket field(s) %s (not a standard field nor a custom field of queue %s)", connectors.ErrInvalid, strings.Join(unknown, ", "), c.queueName)
	}
	if len(cfs) > 0 {
		body["CustomFields"] = cfs
	}
	return body, nil
}

func (c *conn) hasCustomField(name string) bool {
	for _, n := range c.customFields {
		if n == name {
			return true
		}
	}
	return false
}

// AddComment adds correspondence, or an internal comment when c.Private.
// RT's answer carries no transaction id, so the new transaction is the
// last one of that type whose text is exactly this body.
func (c *conn) AddComment(ctx context.Context, id string, cm connectors.Comment) (connectors.Comment, error) {
	id, err := parseID(id)
	if err != nil {
		return connectors.Comment{}, err
	}
	if strings.TrimSpace(cm.Body) == "" {
		return connectors.Comment{}, fmt.Errorf("%w: rt: empty comment", connectors.ErrInvalid)
	}
	kind, typ := "correspond", "Correspond"
	if cm.Private {
		kind, typ = "comment", "Comment"
	}
	var msgs []string
	if err := c.do(ctx, "POST", "/ticket/"+id+"/"+kind, map[string]any{"Content": cm.Body, "ContentType": "text/plain"}, &msgs); err != nil {
		return connectors.Comment{}, fmt.Errorf("rt %s on ticket %s: %w", kind, id, err)
	}
	txs, text, _, err := c.history(ctx, id)
	if err != nil {
		return connectors.Comment{}, err
	}
	want := strings.TrimRight(cm.Body, "\n")
	for i := len(txs) - 1; i >= 0; i-- {
		tx := txs[i]
		if tx.Type == typ && text[tx.ID.String()] == want {
			return connectors.Comment{ID: tx.ID.String(), Author: tx.Creator.ID, Body: text[tx.ID.String()], CreatedAt: tx.Created.UTC(), Private: cm.Private}, nil
		}
	}
	return connectors.Comment{}, fmt.Errorf("%w: rt: the %s added to ticket %s is not in its history (RT said: %s)", connectors.ErrUnavailable, kind, id, strings.Join(msgs, " | "))
}

// Delete moves a ticket to RT's "deleted" status (RT does not erase tickets).
func (c *conn) Delete(ctx context.Context, id string) error {
	id, err := parseID(id)
	if err != nil {
		return err
	}
	err = c.do(ctx, "DELETE", "/ticket/"+id, nil, nil)
	if err != nil && !errors.Is(err, connectors.ErrNotFound) {
		return fmt.Errorf("rt delete ticket %s: %w", id, err)
	}
	return nil
}

// Describe lists the standard fields and the queue's ticket custom fields.
func (c *conn) Describe(ctx context.Context) (connectors.Schema, error) {
	fields := append([]connectors.FieldSpec(nil), standard...)
	for _, n := range c.customFields {
		fields = append(fields, connectors.FieldSpec{Name: cfKey(n), Type: connectors.TypeString, Description: "custom field"})
	}
	return connectors.Schema{EntityType: "ticket", Fields: fields, Comments: true}, nil
}

// Close has nothing to release.
func (c *conn) Close() error { return nil }

func strList(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return []string{}, nil
	case string:
		if strings.TrimSpace(x) == "" {
			return []string{}, nil
		}
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("list items must be text, got %T", e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("must be a list of text, got %T", v)
}
