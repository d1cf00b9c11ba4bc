// Package httpconn is the generic HTTP connector, for systems without a
// built-in one: a JSON API described by settings (where to list changes,
// read, create, update and comment; where in the JSON the id, the update
// time, the fields and the comments are), with auth by header or basic, and
// webhooks signed with a shared-secret HMAC.
package httpconn

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpx"
)

// Settings describe the remote API. Paths are relative to URL; "{id}" is
// replaced by the entity id and "{since}" by the poll position (RFC 3339).
type Settings struct {
	// URL is the API's base address; the paths below are relative to it.
	URL string `json:"url" spec:"required"`
	// ListPath answers the items changed at or after {since} (all items
	// when since is empty), as an array or under ItemsPath.
	ListPath string `json:"list_path" spec:"required"`
	// ItemsPath is where the list answer holds the items (dot path);
	// default: the answer is the array.
	ItemsPath string `json:"items_path,omitempty"`
	// GetPath reads one item.
	GetPath string `json:"get_path" spec:"required"`
	// CreatePath takes a POST of the fields. Optional.
	CreatePath string `json:"create_path,omitempty"`
	// UpdatePath takes UpdateMethod with the changed fields. Optional.
	UpdatePath string `json:"update_path,omitempty"`
	// UpdateMethod is the update's HTTP method.
	UpdateMethod string `json:"update_method,omitempty" spec:"default=PATCH"`
	// CommentPath takes a POST of {"body", "author", "private"} and answers
	// the comment with its id. Optional.
	CommentPath string `json:"comment_path,omitempty"`
	// IDPath is where an item holds its id (dot path).
	IDPath string `json:"id_path,omitempty" spec:"default=id"`
	// UpdatedPath is where an item holds its update time (RFC 3339).
	UpdatedPath string `json:"updated_path,omitempty" spec:"default=updated_at"`
	// FieldsPath is where an item holds its fields; default: the item's
	// other keys.
	FieldsPath string `json:"fields_path,omitempty"`
	// CommentsPath is where an item holds its comments (objects with id,
	// author, body, created_at, private).
	CommentsPath string `json:"comments_path,omitempty" spec:"default=comments"`
	// AuthHeader names the header that carries the secret "token" (the
	// value is sent as is). With the secrets "user" and "password", basic
	// auth is used instead.
	AuthHeader string `json:"auth_header,omitempty" spec:"default=Authorization"`
	// SignatureHeader carries a webhook's "sha256=" + hex HMAC-SHA256 of
	// the body with the secret "webhook_secret".
	SignatureHeader string `json:"signature_header,omitempty" spec:"default=X-Signature-256"`
	// DeliveryHeader carries a webhook's delivery id.
	DeliveryHeader string `json:"delivery_header,omitempty" spec:"default=X-Delivery-Id"`
	// WebhookIDPath is where a webhook body names the changed item's id (a
	// list is several items).
	WebhookIDPath string `json:"webhook_id_path,omitempty" spec:"default=id"`
	// SignDeliveryID says the sender signs "<delivery id>.<body>" rather
	// than the body alone: the delivery id is then required and trusted
	// (a replay cannot pass with a fresh id). Without it the delivery is
	// known by its body's hash (engine.ReplayWindow).
	SignDeliveryID bool `json:"sign_delivery_id,omitempty"`
	// WebhookItemPath, when set, names where the body carries the changed
	// item itself, as get_path answers it ("." for the body itself; a list
	// is several items): Duplex then takes the item as of the event instead
	// of reading it back. A body without it names ids (WebhookIDPath) as
	// before.
	WebhookItemPath string `json:"webhook_item_path,omitempty"`
	// Fields lists the writable fields and their types ({name, type,
	// description, read_only}), for triggers and the editor. Optional.
	Fields []connectors.FieldSpec `json:"fields,omitempty"`
	// TimeoutMS bounds one request; default 30000.
	TimeoutMS int `json:"timeout_ms,omitempty" spec:"default=30000"`
}

type conn struct {
	s      Settings
	http   *httpx.Client
	secret []byte
}

// New checks the settings; it does not call the remote API (a list from the
// start could be large).
func New(ctx context.Context, cfg connectors.Config) (connectors.Connector, error) {
	s, err := ParseSettings(cfg.Settings)
	if err != nil {
		return nil, err
	}
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&s.IDPath, "id")
	def(&s.UpdatedPath, "updated_at")
	def(&s.CommentsPath, "comments")
	def(&s.UpdateMethod, "PATCH")
	def(&s.AuthHeader, "Authorization")
	def(&s.SignatureHeader, "X-Signature-256")
	def(&s.DeliveryHeader, "X-Delivery-Id")
	def(&s.WebhookIDPath, "id")
	h := http.Header{}
	switch {
	case cfg.Secrets["user"] != "":
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(cfg.Secrets["user"], cfg.Secrets["password"])
		h.Set("Authorization", req.Header.Get("Authorization"))
	case cfg.Secrets["token"] != "":
		h.Set(s.AuthHeader, cfg.Secrets["token"])
	}
	return &conn{s: s, secret: []byte(cfg.Secrets["webhook_secret"]),
		http: &httpx.Client{HTTP: cfg.HTTPClient(), Base: s.URL, Header: h, Timeout: time.Duration(s.TimeoutMS) * time.Millisecond}}, nil
}

// at follows a dot path ("data.items") into decoded JSON.
func at(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func idString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmt.Sprint(int64(x))
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func (c *conn) path(tpl, id string) string {
	return strings.ReplaceAll(tpl, "{id}", url.PathEscape(id))
}

// entity maps one item; an item without id or update time is an error.
func (c *conn) entity(item any) (connectors.Entity, error) {
	obj, ok := item.(map[string]any)
	if !ok {
		return connectors.Entity{}, fmt.Errorf("%w: http: an item must be an object, got %T", connectors.ErrUnavailable, item)
	}
	rawID, _ := at(obj, c.s.IDPath)
	id := idString(rawID)
	if id == "" {
		return connectors.Entity{}, fmt.Errorf("%w: http: item without %q", connectors.ErrUnavailable, c.s.IDPath)
	}
	rawT, _ := at(obj, c.s.UpdatedPath)
	t, err := time.Parse(time.RFC3339Nano, fmt.Sprint(rawT))
	if err != nil {
		return connectors.Entity{}, fmt.Errorf("%w: http: item %s: %q is not an RFC 3339 time", connectors.ErrUnavailable, id, c.s.UpdatedPath)
	}
	e := connectors.Entity{ID: id, Key: id, UpdatedAt: t.UTC(), Fields: map[string]any{}}
	fields := obj
	if c.s.FieldsPath != "" {
		f, _ := at(obj, c.s.FieldsPath)
		if fields, ok = f.(map[string]any); !ok {
			fields = map[string]any{}
		}
	}
	skip := map[string]bool{c.s.IDPath: true, c.s.UpdatedPath: true, c.s.CommentsPath: true}
	for k, v := range fields {
		if c.s.FieldsPath != "" || !skip[k] {
			e.Fields[k] = v
		}
	}
	if cs, ok := at(obj, c.s.CommentsPath); ok {
		list, _ := cs.([]any)
		for _, raw := range list {
			e.Comments = append(e.Comments, comment(raw))
		}
	}
	return e, nil
}

func comment(raw any) connectors.Comment {
	m, _ := raw.(map[string]any)
	cm := connectors.Comment{ID: idString(m["id"]), Author: idString(m["author"]), Body: idString(m["body"])}
	cm.Private, _ = m["private"].(bool)
	if t, err := time.Parse(time.RFC3339Nano, idString(m["created_at"])); err == nil {
		cm.CreatedAt = t.UTC()
	}
	return cm
}

// cursor is the keyset position (updated, id) of the last item taken.
type cursor struct {
	T  time.Time `json:"t"`
	ID string    `json:"id"`
}

// Changes lists items changed at or after the cursor's time and keeps those
// after (time, id), oldest first, so items sharing a time are never skipped.
func (c *conn) Changes(ctx context.Context, cur string, limit int) (connectors.Page, error) {
	var from cursor
	if cur != "" {
		if err := json.Unmarshal([]byte(cur), &from); err != nil {
			return connectors.Page{}, fmt.Errorf("%w: http cursor: %w", connectors.ErrBadConfig, err)
		}
	}
	since := ""
	if !from.T.IsZero() {
		since = from.T.Format(time.RFC3339Nano)
	}
	var out any
	if err := c.http.Do(ctx, "GET", strings.ReplaceAll(c.s.ListPath, "{since}", url.QueryEscape(since)), nil, &out); err != nil {
		return connectors.Page{}, fmt.Errorf("http list: %w", err)
	}
	raw, _ := at(out, c.s.ItemsPath)
	list, ok := raw.([]any)
	if !ok && raw != nil {
		return connectors.Page{}, fmt.Errorf("%w: http list: %q is not an array", connectors.ErrUnavailable, c.s.ItemsPath)
	}
	var ents []connectors.Entity
	for _, it := range list {
		e, err := c.entity(it)
		if err != nil {
			return connectors.Page{}, err
		}
		if e.UpdatedAt.Before(from.T) || (e.UpdatedAt.Equal(from.T) && e.ID <= from.ID) {
			continue
		}
		ents = append(ents, e)
	}
	sort.Slice(ents, func(i, j int) bool {
		if !ents[i].UpdatedAt.Equal(ents[j].UpdatedAt) {
			return ents[i].UpdatedAt.Before(ents[j].UpdatedAt)
		}
		return ents[i].ID < ents[j].ID
	})
	p := connectors.Page{}
	if limit > 0 && len(ents) > limit {
		ents, p.More = ents[:limit], true
	}
	p.Entities = ents
	if n := len(ents); n > 0 {
		b, _ := json.Marshal(cursor{T: ents[n-1].UpdatedAt, ID: ents[n-1].ID})
		p.Cursor = string(b)
	}
	return p, nil
}

// Get reads one item.
func (c *conn) Get(ctx context.Context, id string) (connectors.Entity, error) {
	var out any
	if err := c.http.Do(ctx, "GET", c.path(c.s.GetPath, id), nil, &out); err != nil {
		return connectors.Entity{}, fmt.Errorf("http get %s: %w", id, err)
	}
	return c.entity(out)
}

// body wraps fields as the API expects them (under FieldsPath when set).
func (c *conn) body(fields map[string]any) any {
	if c.s.FieldsPath == "" {
		return fields
	}
	var b any = fields
	parts := strings.Split(c.s.FieldsPath, ".")
	for i := len(parts) - 1; i >= 0; i-- {
		b = map[string]any{parts[i]: b}
	}
	return b
}

// Create posts the fields; the answer is the created item.
func (c *conn) Create(ctx context.Context, fields map[string]any) (connectors.Entity, error) {
	if c.s.CreatePath == "" {
		return connectors.Entity{}, fmt.Errorf("%w: http: no create_path configured", connectors.ErrInvalid)
	}
	var out any
	if err := c.http.Do(ctx, "POST", c.s.CreatePath, c.body(fields), &out); err != nil {
		return connectors.Entity{}, fmt.Errorf("http create: %w", err)
	}
	return c.entity(out)
}

// Update sends the changed fields, then reads the item back (an API may
// answer with less than the whole item).
func (c *conn) Update(ctx context.Context, id string, fields map[string]any) (connectors.Entity, error) {
	if c.s.UpdatePath == "" {
		return connectors.Entity{}, fmt.Errorf("%w: http: no update_path configured", connectors.ErrInvalid)
	}
	if err := c.http.Do(ctx, c.s.UpdateMethod, c.path(c.s.UpdatePath, id), c.body(fields), nil); err != nil {
		return connectors.Entity{}, fmt.Errorf("http update %s: %w", id, err)
	}
	return c.Get(ctx, id)
}

// AddComment posts a comment; the answer is the comment with its id.
func (c *conn) AddComment(ctx context.Context, id string, cm connectors.Comment) (connectors.Comment, error) {
	if c.s.CommentPath == "" {
		return connectors.Comment{}, fmt.Errorf("%w: http: no comment_path configured", connectors.ErrInvalid)
	}
	var out any
	in := map[string]any{"body": cm.Body, "author": cm.Author, "private": cm.Private}
	if err := c.http.Do(ctx, "POST", c.path(c.s.CommentPath, id), in, &out); err != nil {
		return connectors.Comment{}, fmt.Errorf("http comment on %s: %w", id, err)
	}
	got := comment(out)
	if got.ID == "" {
		return connectors.Comment{}, fmt.Errorf("%w: http: the comment answer has no id", connectors.ErrUnavailable)
	}
	return got, nil
}

// Describe reports the configured fields.
func (c *conn) Describe(ctx context.Context) (connectors.Schema, error) {
	return connectors.Schema{EntityType: "item", Fields: c.s.Fields, Comments: c.s.CommentPath != ""}, nil
}

// Close has nothing to release.
func (c *conn) Close() error { return nil }

// Webhook checks "sha256=<hex HMAC-SHA256 of the body>" in constant time
// and reads the changed item's id (or ids) from the body.
func (c *conn) Webhook(header http.Header, body []byte) (connectors.Delivery, error) {
	if len(c.secret) == 0 {
		return connectors.Delivery{}, fmt.Errorf("%w: no webhook_secret configured for this system", connectors.ErrSignature)
	}
	delivery := header.Get(c.s.DeliveryHeader)
	if c.s.SignDeliveryID && delivery == "" {
		return connectors.Delivery{}, fmt.Errorf("%w: missing %s header (sign_delivery_id)", connectors.ErrSignature, c.s.DeliveryHeader)
	}
	got := header.Get(c.s.SignatureHeader)
	sig, ok := strings.CutPrefix(got, "sha256=")
	want := hmac.New(sha256.New, c.secret)
	if c.s.SignDeliveryID {
		want.Write([]byte(delivery + "."))
	}
	want.Write(body)
	dec, err := hex.DecodeString(sig)
	if !ok || err != nil || !hmac.Equal(dec, want.Sum(nil)) {
		if got == "" {
			return connectors.Delivery{}, fmt.Errorf("%w: missing %s header", connectors.ErrSignature, c.s.SignatureHeader)
		}
		return connectors.Delivery{}, fmt.Errorf("%w: %s does not match the body", connectors.ErrSignature, c.s.SignatureHeader)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return connectors.Delivery{}, fmt.Errorf("%w: webhook body is not JSON: %w", connectors.ErrInvalid, err)
	}
	d := connectors.Delivery{ID: delivery, IDSigned: c.s.SignDeliveryID}
	if c.s.WebhookItemPath != "" {
		if err := c.webhookItems(v, &d); err != nil {
			return connectors.Delivery{}, err
		}
		if len(d.Entities) > 0 || len(d.EntityIDs) > 0 {
			return d, nil
		}
	}
	raw, ok := at(v, c.s.WebhookIDPath)
	if !ok {
		return connectors.Delivery{}, fmt.Errorf("%w: webhook body has no %q", connectors.ErrInvalid, c.s.WebhookIDPath)
	}
	list, isList := raw.([]any)
	if !isList {
		list = []any{raw}
	}
	for _, id := range list {
		s, err := hookID(id)
		if err != nil {
			return connectors.Delivery{}, fmt.Errorf("%w: webhook body's %q: %w", connectors.ErrInvalid, c.s.WebhookIDPath, err)
		}
		if s != "" {
			d.EntityIDs = append(d.EntityIDs, s)
		}
	}
	if len(d.EntityIDs) == 0 {
		return connectors.Delivery{}, fmt.Errorf("%w: webhook body's %q is empty", connectors.ErrInvalid, c.s.WebhookIDPath)
	}
	return d, nil
}

// webhookItems maps the items at WebhookItemPath (an object or a list of
// them) with the same mapping as Get. An item whose update time is missing
// is named by id only (read back); an item without id is refused.
func (c *conn) webhookItems(body any, d *connectors.Delivery) error {
	path := c.s.WebhookItemPath
	if path == "." {
		path = ""
	}
	raw, ok := at(body, path)
	if !ok || raw == nil {
		return nil
	}
	items, isList := raw.([]any)
	if !isList {
		items = []any{raw}
	}
	for _, it := range items {
		obj, _ := it.(map[string]any)
		rawID, _ := at(obj, c.s.IDPath)
		id, err := hookID(rawID)
		if err != nil {
			return fmt.Errorf("%w: webhook item's %q: %w", connectors.ErrInvalid, c.s.IDPath, err)
		}
		if id == "" {
			return fmt.Errorf("%w: webhook item without %q at %q", connectors.ErrInvalid, c.s.IDPath, c.s.WebhookItemPath)
		}
		if e, err := c.entity(it); err == nil {
			d.Entities = append(d.Entities, e)
			continue
		}
		d.EntityIDs = append(d.EntityIDs, id)
	}
	return nil
}

// hookID reads an id a webhook names: a string or an integral number; null
// is "" (none). An object, a list, a boolean or a fraction is refused rather
// than printed into an id no system has.
func hookID(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return "", fmt.Errorf("the id %v is not an integer", x)
		}
		return strconv.FormatInt(int64(x), 10), nil
	}
	return "", fmt.Errorf("an id must be a string or a number, not %s", jsonKind(v))
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// SignDelivery returns the signature header value of a delivery whose
// sender signs its id (sign_delivery_id), for senders and tests.
func SignDelivery(secret []byte, delivery string, body []byte) string {
	return Sign(secret, append([]byte(delivery+"."), body...))
}

// Sign returns the signature header value for body, for senders and tests.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

var _ connectors.Hooked = (*conn)(nil)
