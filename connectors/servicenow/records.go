package servicenow

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// snTime is the format of ServiceNow's date-time values (UTC with
// sysparm_display_value=all's "value").
const snTime = "2006-01-02 15:04:05"

// cell is one column of a record read with sysparm_display_value=all.
type cell struct {
	Value        any    `json:"value"`
	DisplayValue string `json:"display_value"`
}

type record map[string]cell

func (r record) value(k string) string { return connectors.Text(r[k].Value) }

func (r record) time(k string) time.Time {
	t, _ := time.ParseInLocation(snTime, r.value(k), time.UTC)
	return t
}

// readQuery is what every read asks for: both forms of each column, only
// the columns synced and those the connector needs.
func (c *conn) readQuery() url.Values {
	cols := append(c.fields(), "sys_id", "sys_updated_on", "sys_updated_by")
	return url.Values{"sysparm_display_value": {"all"}, "sysparm_exclude_reference_link": {"true"}, "sysparm_fields": {strings.Join(cols, ",")}}
}

func (c *conn) entity(r record, journal []journalEntry) connectors.Entity {
	f := map[string]any{}
	for _, k := range c.fields() {
		switch k {
		case "sys_created_on":
			if t := r.time(k); !t.IsZero() {
				f[k] = t.Format(time.RFC3339)
			} else {
				f[k] = nil
			}
		case "correlation_id":
			f[k] = r.value(k)
		default:
			// Choice labels and reference names, as people read them.
			f[k] = r[k].DisplayValue
		}
	}
	id := r.value("sys_id")
	e := connectors.Entity{ID: id, Key: r.value("number"), Type: c.s.Table, Fields: f,
		URL:       c.s.URL + "/nav_to.do?uri=" + url.QueryEscape(c.s.Table+".do?sys_id="+id),
		UpdatedAt: r.time("sys_updated_on"), UpdatedBy: r.value("sys_updated_by")}
	for _, j := range journal {
		e.Comments = append(e.Comments, j.comment())
	}
	return e
}

// Get reads one record (by sys_id) with its journal.
func (c *conn) Get(ctx context.Context, id string) (connectors.Entity, error) {
	if !validID(id) {
		return connectors.Entity{}, fmt.Errorf("%w: servicenow: %q is not a sys_id", connectors.ErrNotFound, id)
	}
	var a struct {
		Result record `json:"result"`
	}
	if err := c.do(ctx, "GET", c.tablePath(id)+"?"+c.readQuery().Encode(), nil, &a); err != nil {
		return connectors.Entity{}, fmt.Errorf("servicenow get %s %s: %w", c.s.Table, id, err)
	}
	return c.withJournal(ctx, a.Result)
}

// validID: a sys_id is 32 hex digits.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// Create inserts a record.
func (c *conn) Create(ctx context.Context, fields map[string]any) (connectors.Entity, error) {
	return c.create(ctx, "", fields)
}

// CreateCorrelated is Create with key in correlation_id.
func (c *conn) CreateCorrelated(ctx context.Context, key string, fields map[string]any) (connectors.Entity, error) {
	if key == "" || strings.ContainsAny(key, "^=\r\n") || len(key) > 100 {
		return connectors.Entity{}, fmt.Errorf("%w: servicenow: correlation key %q cannot be stored in correlation_id", connectors.ErrInvalid, key)
	}
	return c.create(ctx, key, fields)
}

func (c *conn) create(ctx context.Context, key string, fields map[string]any) (connectors.Entity, error) {
	body, err := c.body(ctx, fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	if key != "" {
		body["correlation_id"], body["correlation_display"] = key, "Duplex"
	}
	q := c.readQuery()
	q.Set("sysparm_input_display_value", "true")
	var a struct {
		Result record `json:"result"`
	}
	if err := c.do(ctx, "POST", c.tablePath("")+"?"+q.Encode(), body, &a); err != nil {
		return connectors.Entity{}, fmt.Errorf("servicenow create %s: %w", c.s.Table, err)
	}
	return c.entity(a.Result, nil), nil
}

// FindCorrelated lists the record whose correlation_id is key.
func (c *conn) FindCorrelated(ctx context.Context, key string) (connectors.Entity, bool, error) {
	if strings.ContainsAny(key, "^=\r\n") {
		return connectors.Entity{}, false, nil // CreateCorrelated refuses such keys
	}
	q := c.readQuery()
	q.Set("sysparm_query", "correlation_id="+key+"^ORDERBYsys_created_on")
	q.Set("sysparm_limit", "1")
	var a struct {
		Result []record `json:"result"`
	}
	if err := c.do(ctx, "GET", c.tablePath("")+"?"+q.Encode(), nil, &a); err != nil {
		return connectors.Entity{}, false, fmt.Errorf("servicenow find correlated: %w", err)
	}
	if len(a.Result) == 0 || a.Result[0].value("correlation_id") != key {
		return connectors.Entity{}, false, nil
	}
	e, err := c.withJournal(ctx, a.Result[0])
	return e, err == nil, err
}

// Update changes the given fields with one PATCH.
func (c *conn) Update(ctx context.Context, id string, fields map[string]any) (connectors.Entity, error) {
	if !validID(id) {
		return connectors.Entity{}, fmt.Errorf("%w: servicenow: %q is not a sys_id", connectors.ErrNotFound, id)
	}
	body, err := c.body(ctx, fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	if len(body) == 0 {
		return c.Get(ctx, id)
	}
	q := c.readQuery()
	q.Set("sysparm_input_display_value", "true")
	var a struct {
		Result record `json:"result"`
	}
	if err := c.do(ctx, "PATCH", c.tablePath(id)+"?"+q.Encode(), body, &a); err != nil {
		return connectors.Entity{}, fmt.Errorf("servicenow update %s %s: %w", c.s.Table, id, err)
	}
	return c.withJournal(ctx, a.Result)
}

// body turns entity fields into a record body; read-only, unknown and
// unknown choice values are refused by name.
func (c *conn) body(ctx context.Context, fields map[string]any) (map[string]any, error) {
	known := map[string]bool{}
	for _, k := range c.fields() {
		known[k] = true
	}
	body := map[string]any{}
	for k, v := range fields {
		switch {
		case readOnlyFields[k]:
			return nil, fmt.Errorf("%w: servicenow: field %q is read-only", connectors.ErrInvalid, k)
		case !known[k]:
			return nil, fmt.Errorf("%w: servicenow: field %q is not synced (add it to the setting fields)", connectors.ErrInvalid, k)
		}
		s := connectors.Text(v)
		if s != "" {
			label, err := c.choiceLabel(k, s)
			if err != nil {
				return nil, err
			}
			s = label
		}
		body[k] = s
	}
	return body, nil
}

// Describe lists the synced columns; choice columns name their labels.
func (c *conn) Describe(ctx context.Context) (connectors.Schema, error) {
	var out []connectors.FieldSpec
	for _, k := range c.fields() {
		fs := connectors.FieldSpec{Name: k, Type: connectors.TypeString, ReadOnly: readOnlyFields[k]}
		if k == "sys_created_on" {
			fs.Type = connectors.TypeTime
		}
		if labels := c.labels(k); len(labels) > 0 {
			fs.Description = "one of: " + strings.Join(labels, ", ")
		}
		out = append(out, fs)
	}
	return connectors.Schema{EntityType: c.s.Table, Fields: out, Comments: true}, nil
}

// loadChoices reads the active choices of the table's synced columns from
// sys_choice.
func (c *conn) loadChoices(ctx context.Context) error {
	q := url.Values{
		"sysparm_query":  {"name=" + c.s.Table + "^elementIN" + strings.Join(c.fields(), ",") + "^inactive=false^ORDERBYelement^ORDERBYsequence"},
		"sysparm_fields": {"element,value,label,sequence"},
		"sysparm_limit":  {"10000"},
	}
	var a struct {
		Result []choice `json:"result"`
	}
	if err := c.do(ctx, "GET", "/api/now/table/sys_choice?"+q.Encode(), nil, &a); err != nil {
		return fmt.Errorf("servicenow choices of %s: %w", c.s.Table, err)
	}
	m := map[string][]choice{}
	for _, ch := range a.Result {
		m[ch.Element] = append(m[ch.Element], ch)
	}
	c.mu.Lock()
	c.choices = m
	c.mu.Unlock()
	return nil
}

func (c *conn) labels(col string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, ch := range c.choices[col] {
		out = append(out, ch.Label)
	}
	return out
}

// choiceLabel checks v against a choice column's labels and values and
// returns the label (what sysparm_input_display_value takes); other
// columns pass as they are.
func (c *conn) choiceLabel(col, v string) (string, error) {
	c.mu.Lock()
	chs := c.choices[col]
	c.mu.Unlock()
	if len(chs) == 0 {
		return v, nil
	}
	for _, ch := range chs {
		if ch.Label == v || ch.Value == v {
			return ch.Label, nil
		}
	}
	labels := make([]string, len(chs))
	for i, ch := range chs {
		labels[i] = ch.Label
	}
	return "", fmt.Errorf("%w: servicenow: %q is not a choice of %s.%s (its choices: %s)", connectors.ErrInvalid, v, c.s.Table, col, strings.Join(labels, ", "))
}

// journalEntry is a sys_journal_field row: a work note or a comment.
type journalEntry struct {
	SysID        string `json:"sys_id"`
	Element      string `json:"element"`
	Value        string `json:"value"`
	SysCreatedOn string `json:"sys_created_on"`
	SysCreatedBy string `json:"sys_created_by"`
}

func (j journalEntry) comment() connectors.Comment {
	t, _ := time.ParseInLocation(snTime, j.SysCreatedOn, time.UTC)
	return connectors.Comment{ID: j.SysID, Author: j.SysCreatedBy, Body: j.Value, CreatedAt: t, Private: j.Element == "work_notes"}
}

// journal reads a record's work notes and comments, oldest first (limit
// newest when limit > 0, element "" for both kinds).
func (c *conn) journal(ctx context.Context, id, element string, limit int) ([]journalEntry, error) {
	query := "element_id=" + id + "^name=" + c.s.Table + "^elementINcomments,work_notes^ORDERBYsys_created_on"
	if element != "" {
		query = "element_id=" + id + "^name=" + c.s.Table + "^element=" + element + "^ORDERBYDESCsys_created_on"
	}
	q := url.Values{"sysparm_query": {query}, "sysparm_fields": {"sys_id,element,value,sys_created_on,sys_created_by"}}
	if limit > 0 {
		q.Set("sysparm_limit", fmt.Sprint(limit))
	} else {
		q.Set("sysparm_limit", "10000")
	}
	var a struct {
		Result []journalEntry `json:"result"`
	}
	if err := c.do(ctx, "GET", "/api/now/table/sys_journal_field?"+q.Encode(), nil, &a); err != nil {
		return nil, fmt.Errorf("servicenow journal of %s: %w", id, err)
	}
	sort.SliceStable(a.Result, func(i, j int) bool { return a.Result[i].SysCreatedOn < a.Result[j].SysCreatedOn })
	return a.Result, nil
}

// withJournal reads a record's journal and attachments and builds the entity.
func (c *conn) withJournal(ctx context.Context, r record) (connectors.Entity, error) {
	js, err := c.journal(ctx, r.value("sys_id"), "", 0)
	if err != nil {
		return connectors.Entity{}, err
	}
	atts, err := c.attachments(ctx, r.value("sys_id"))
	if err != nil {
		return connectors.Entity{}, err
	}
	e := c.entity(r, js)
	e.Attachments = atts
	return e, nil
}

// AddComment writes a work note (private) or an additional comment
// (public) through the record's journal field, then finds the journal
// entry it made among the newest of that kind.
func (c *conn) AddComment(ctx context.Context, id string, cm connectors.Comment) (connectors.Comment, error) {
	if !validID(id) {
		return connectors.Comment{}, fmt.Errorf("%w: servicenow: %q is not a sys_id", connectors.ErrNotFound, id)
	}
	if strings.TrimSpace(cm.Body) == "" {
		return connectors.Comment{}, fmt.Errorf("%w: servicenow: empty comment", connectors.ErrInvalid)
	}
	element := "comments"
	if cm.Private {
		element = "work_notes"
	}
	q := url.Values{"sysparm_fields": {"sys_id"}}
	if err := c.do(ctx, "PATCH", c.tablePath(id)+"?"+q.Encode(), map[string]any{element: cm.Body}, nil); err != nil {
		return connectors.Comment{}, fmt.Errorf("servicenow %s on %s: %w", element, id, err)
	}
	js, err := c.journal(ctx, id, element, 5)
	if err != nil {
		return connectors.Comment{}, err
	}
	for i := len(js) - 1; i >= 0; i-- {
		if strings.TrimSpace(js[i].Value) == strings.TrimSpace(cm.Body) {
			return js[i].comment(), nil
		}
	}
	return connectors.Comment{}, fmt.Errorf("%w: servicenow: the %s written on %s is not in its journal", connectors.ErrUnavailable, element, id)
}
