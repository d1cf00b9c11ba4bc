// Package connectors declares what Duplex needs from a system: the Entity it
// reads and writes, the Connector interface one package per system kind
// implements, and an explicit Registry that main builds and hands to the
// engine. Connectors import neither the engine, the server nor scripting.
package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"
)

// Entity is one record of a system as the engine sees it: a ticket, an issue,
// a row. Fields hold plain JSON-compatible values (string, float64/int64,
// bool, nil, []any, map[string]any).
type Entity struct {
	ID       string         `json:"id"`
	Key      string         `json:"key,omitempty"`
	URL      string         `json:"url,omitempty"`
	Type     string         `json:"type,omitempty"`
	Fields   map[string]any `json:"fields"`
	Comments []Comment      `json:"comments,omitempty"`
	// Attachments are the files on the entity (metadata only; the bytes
	// are read with Attacher.OpenAttachment). Only connectors that
	// implement Attacher fill it.
	Attachments []Attachment `json:"attachments,omitempty"`
	UpdatedAt   time.Time    `json:"updated_at"`
	UpdatedBy   string       `json:"updated_by,omitempty"`
	// Deleted is set by Changes for an entity deleted at the source (for
	// example a soft-delete column); its fields may be empty.
	Deleted bool `json:"deleted,omitempty"`
}

// Comment is a note on an entity. Comments are append-only for the engine:
// it adds the ones the other side has not seen and never edits old ones.
type Comment struct {
	ID        string    `json:"id"`
	Author    string    `json:"author,omitempty"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
	// Private marks an internal note: a Redmine private note, a Request
	// Tracker comment (as opposed to correspondence the requestor sees).
	// A connector whose system has no internal notes refuses to add a
	// private comment (ErrInvalid) rather than publish it.
	Private bool `json:"private,omitempty"`
}

// FieldType names the value kind of a field, used to type-check triggers and
// to offer completion in the editor.
type FieldType string

// The field types a connector can declare.
const (
	TypeString FieldType = "string"
	TypeNumber FieldType = "number"
	TypeBool   FieldType = "bool"
	TypeTime   FieldType = "time"
	TypeList   FieldType = "list" // a list of strings, such as labels
)

// FieldSpec describes one entity field.
type FieldSpec struct {
	Name        string    `json:"name"`
	Type        FieldType `json:"type"`
	Description string    `json:"description,omitempty"`
	ReadOnly    bool      `json:"read_only,omitempty"`
}

// Schema is what a connector says about its entities.
type Schema struct {
	EntityType string      `json:"entity_type"`
	Fields     []FieldSpec `json:"fields"`
	Comments   bool        `json:"comments"`
}

// Page is one batch of changed entities, oldest first, and the cursor to
// resume after the last one. An empty Cursor means "no progress".
type Page struct {
	Entities []Entity
	Cursor   string
	More     bool // another page is ready now
}

// Connector talks to one configured system. Every method that waits takes a
// context and must return promptly when it is cancelled. Implementations are
// used from several goroutines at once.
//
// Lifecycle: a Factory builds it from a Config (opening pools, checking
// settings), the engine calls the methods below for as long as the system is
// configured, then Close once.
type Connector interface {
	// Changes returns entities changed after cursor ("" = from the start),
	// ordered by change time, at most limit of them. Entities with the same
	// change time must never be skipped across pages: the cursor has to
	// break ties (for example by id).
	Changes(ctx context.Context, cursor string, limit int) (Page, error)
	// Get reads one entity with its comments. Missing: an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (Entity, error)
	// Create makes a new entity from fields and returns it as stored.
	Create(ctx context.Context, fields map[string]any) (Entity, error)
	// Update changes only the given fields and returns the entity as stored.
	Update(ctx context.Context, id string, fields map[string]any) (Entity, error)
	// AddComment appends a comment and returns it with its new id.
	AddComment(ctx context.Context, id string, c Comment) (Comment, error)
	// Describe reports the entity fields, for triggers and the editor.
	Describe(ctx context.Context) (Schema, error)
	// Close releases connections; it is called once.
	Close() error
}

// Correlating is implemented by connectors that can tag a created entity with
// a key and find it again by that key. The engine records its intent (the
// twin) before creating and, on a retry after a crash between the create and
// the record, finds the entity instead of creating a second one.
type Correlating interface {
	// CreateCorrelated is Create that also stores key with the entity.
	CreateCorrelated(ctx context.Context, key string, fields map[string]any) (Entity, error)
	// FindCorrelated returns the entity created with key, if any.
	FindCorrelated(ctx context.Context, key string) (Entity, bool, error)
}

// BatchReader is implemented by connectors that read many entities in
// fewer round trips than one Get each (the sql connector: one query for the
// rows and one for their comments). The engine reads the targets of the
// events it is about to apply with it, grouped by target system. GetMany
// returns the entities found, keyed by the ids as asked, each exactly as Get
// returns it (with its comments); an id that does not exist is left out,
// not an error (the engine's Get of it then says what is missing). An error
// fails the whole read; the engine then reads each entity with Get.
type BatchReader interface {
	GetMany(ctx context.Context, ids []string) (map[string]Entity, error)
}

// BatchWriter is implemented by connectors that write many entities in
// fewer round trips or commits than one Create or Update each (the sql
// connector: one transaction, so one commit and one fsync, for a batch).
// The engine hands it the writes of the events that reach a target system
// together. WriteMany returns one result per write, in order; each is its
// own: a write that fails reports its error and changes nothing, the others
// land (the engine retries only the failed one's event). A create with a
// Key behaves as Correlating's: the entity an earlier attempt created with
// that key is returned (Found) instead of a second one.
type BatchWriter interface {
	WriteMany(ctx context.Context, ws []Write) []WriteResult
}

// Write is one write of a batch: an update of the given fields of entity ID
// (like Update), or with ID "" a create (like Create, or CreateCorrelated
// with Key).
type Write struct {
	ID     string
	Key    string
	Fields map[string]any
}

// WriteResult is one write's outcome: the entity as stored after it, or
// its error. Found: a create whose key found the entity already there.
type WriteResult struct {
	Entity Entity
	Found  bool
	Err    error
}

// Finder is implemented by connectors that can look entities up by the value
// of one field, for `unique` validation rules (duplicate detection against
// the target). FindBy returns at most limit entities (comments may be left
// out) whose field equals value exactly, deleted ones excluded, in a stable
// order. value is the text form of the value (a number as its decimal text);
// the connector converts it to the field's type. A field it cannot search
// wraps ErrInvalid. The query must be parameterised or properly quoted: value
// comes from the other system's data.
type Finder interface {
	FindBy(ctx context.Context, field, value string, limit int) ([]Entity, error)
}

// Deleter is implemented by connectors that can delete an entity, for
// connections that propagate deletes.
type Deleter interface {
	Delete(ctx context.Context, id string) error
}

// Attachment is a file on an entity: what the system says about it. The
// bytes are fetched with Attacher.OpenAttachment.
type Attachment struct {
	// ID is the system's id of the file (unique within the system, or at
	// least within the entity); OpenAttachment takes it.
	ID          string `json:"id"`
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type,omitempty"`
	// SHA256 is the hex SHA-256 of the bytes when the system gives one
	// (Redmine and RT do not): the engine then
	// knows a file the other side has by its content, otherwise by name
	// and size.
	SHA256    string    `json:"sha256,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Attacher is implemented by connectors whose entities carry files. The
// engine streams a file from one side's OpenAttachment into the other
// side's AddAttachment and never holds it whole in memory; implementations
// must not either (stream the request body, spool to disk if the system
// needs the length first).
type Attacher interface {
	// OpenAttachment streams the bytes of one attachment of entity
	// entityID (att as listed in Entity.Attachments; only ID is required).
	// Missing: an error wrapping ErrNotFound.
	OpenAttachment(ctx context.Context, entityID string, att Attachment) (io.ReadCloser, error)
	// AddAttachment stores a new file on entity entityID from r (meta
	// gives name, content type and the size r will yield) and returns the
	// attachment as listed afterwards. If reading r fails or ctx ends
	// before r is read to its end, no attachment may become visible on the
	// entity (stage the upload, attach it only once it is complete): the
	// engine retries the event, and a half file must not stay as a
	// duplicate.
	AddAttachment(ctx context.Context, entityID string, meta Attachment, r io.Reader) (Attachment, error)
}

// Hooked is implemented by connectors whose system pushes webhooks. The
// server hands it each request to POST /hooks/:system; the engine records
// the delivery durably (once per delivery id) and reads the named entities
// with Get, as a poll would, or takes the entities the payload carries
// (Delivery.Entities). Polling stays on as a safety net.
type Hooked interface {
	// Webhook verifies the request's signature with the system's secret,
	// in constant time (a bad or missing one wraps ErrSignature), and
	// parses the body (malformed wraps ErrInvalid). A delivery about
	// something this connection does not sync returns no entity ids.
	Webhook(header http.Header, body []byte) (Delivery, error)
}

// Delivery is what one webhook request says changed.
type Delivery struct {
	// ID identifies the delivery (GitHub's X-GitHub-Delivery, for example);
	// the same id twice is processed once. Empty, or not IDSigned: the
	// body's hash is used (engine.ReplayWindow).
	ID string
	// IDSigned says the signature covers ID (not just the body), so a
	// replayed body cannot pass with a fresh id.
	IDSigned bool
	// EntityIDs are the entities the delivery says changed (as Get takes them).
	EntityIDs []string
	// Entities, when the payload carries them, are changed entities as of
	// the event, mapped exactly as Get maps them (same ids, fields,
	// comments; UpdatedAt is required, the system's own stamp of that
	// state): the engine then takes them instead of reading them back.
	// Their ids count as named even if EntityIDs leaves them out. The
	// engine still reads an entity back when it cannot tell this state is
	// newer than one it has taken already (a redelivered or late webhook,
	// an UpdatedAt not after the last one seen, Duplex's own write since),
	// and refuses a delivery whose entity is over MaxWebhookEntityBytes of
	// JSON. Leave it empty for payloads that do not carry the whole entity
	// (a partial object would read as fields removed); Deleted entities
	// are read back.
	Entities []Entity
}

// MaxWebhookEntityBytes bounds one entity carried by a webhook (its JSON),
// as it is stored with the delivery.
const MaxWebhookEntityBytes = 256 << 10

// Sentinel errors connectors wrap with %w so the engine can decide what to do.
var (
	ErrNotFound    = errors.New("entity not found")
	ErrInvalid     = errors.New("invalid data for this system")   // do not retry
	ErrUnavailable = errors.New("system temporarily unavailable") // retry later
	ErrBadConfig   = errors.New("invalid system configuration")
	ErrSignature   = errors.New("webhook signature invalid") // the request is refused, nothing recorded
)

// RetryAfterError is returned (wrapped) by a connector whose system asked to
// be left alone for a while (HTTP 429 or 503 with Retry-After): the engine
// waits at least After before the next attempt.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// Config is a system's stored configuration: non-secret settings as JSON and
// secrets (passwords, tokens) already decrypted by the caller.
type Config struct {
	Name     string
	Settings json.RawMessage
	Secrets  map[string]string
	// Transport carries a connector's HTTP requests; nil is
	// http.DefaultTransport. The engine passes one that measures requests
	// (latency, status codes, 429s) per system.
	Transport http.RoundTripper
	// Guard is the outbound policy of the system's team; nil: none. The
	// engine passes a Transport whose dials already go through it.
	Guard Guard
}

// HTTPClient is the client an HTTP connector uses: Config.Transport, or the
// default client.
func (c Config) HTTPClient() *http.Client {
	if c.Transport == nil && c.Guard == nil {
		return http.DefaultClient
	}
	return &http.Client{Transport: c.RoundTripper()}
}

// RoundTripper is Config.Transport or http.DefaultTransport, for connectors
// that build their own client (cookies, redirects).
func (c Config) RoundTripper() http.RoundTripper {
	switch {
	case c.Transport != nil:
		return c.Transport
	case c.Guard != nil:
		return guardedTransport(c.Guard.DialContext)
	}
	return http.DefaultTransport
}

// Factory builds a connector of one kind.
type Factory func(ctx context.Context, cfg Config) (Connector, error)

// Registry maps a connector kind ("sql", "redmine", ...) to its spec,
// factory and settings parse: the one list of kinds. Build one in main or in
// a test; there is no global registry.
type Registry struct {
	factories map[string]Factory
	checkers  map[string]Checker
	kinds     map[string]Kind
}

// Kind is one connector kind as it is registered.
type Kind struct {
	Spec Spec
	Open Factory
	// Parse is the kind's pure settings parse: Spec.DecodeSettings into its
	// Settings struct plus the checks that need no network (an address's
	// form, a driver's name). Refusals are *SettingError. nil: the spec's
	// generic check alone.
	Parse func(settings json.RawMessage) error
}

// KindError is an unknown connector kind; it wraps ErrBadConfig.
type KindError struct {
	Kind  string
	Known []string
}

func (e *KindError) Error() string {
	return fmt.Sprintf("unknown connector kind %q (known: %s)", e.Kind, orNone(e.Known))
}

func (e *KindError) Unwrap() error { return ErrBadConfig }

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]Factory{}, checkers: map[string]Checker{}, kinds: map[string]Kind{}}
}

// RegisterChecker sets the settings check of a kind (its outbound targets);
// a kind without one is checked by CheckURLSetting.
func (r *Registry) RegisterChecker(kind string, c Checker) { r.checkers[kind] = c }

// Check checks a configuration's outbound targets against cfg.Guard
// without connecting.
func (r *Registry) Check(ctx context.Context, kind string, cfg Config) error {
	if c, ok := r.checkers[kind]; ok {
		return c(ctx, cfg)
	}
	return CheckURLSetting(ctx, cfg)
}

// Register adds a kind known only by its factory (tests' fake kinds): its
// settings are not checked. Registering a kind twice is an error.
func (r *Registry) Register(kind string, f Factory) error {
	if _, ok := r.factories[kind]; ok {
		return fmt.Errorf("connector kind %q registered twice", kind)
	}
	r.factories[kind] = f
	return nil
}

// Add registers a kind with its spec; k.Spec.Kind names it.
func (r *Registry) Add(k Kind) error {
	if k.Spec.Kind == "" || k.Open == nil {
		return errors.New("connector kind without a name or a factory")
	}
	if err := r.Register(k.Spec.Kind, k.Open); err != nil {
		return err
	}
	r.kinds[k.Spec.Kind] = k
	return nil
}

// Spec returns a kind's spec; false for an unknown kind or one registered
// without a spec.
func (r *Registry) Spec(kind string) (Spec, bool) {
	k, ok := r.kinds[kind]
	return k.Spec, ok
}

// Specs lists the specs of the kinds registered with one, sorted by kind.
func (r *Registry) Specs() []Spec {
	out := make([]Spec, 0, len(r.kinds))
	for _, k := range r.Kinds() {
		if s, ok := r.kinds[k]; ok {
			out = append(out, s.Spec)
		}
	}
	return out
}

// Validate is the pure check of a system's configuration before it is
// stored: the kind is registered, the settings parse strictly, and every
// secret name is one the kind takes. It opens nothing and reaches no
// network. Refusals are *KindError, *SettingError or *SecretError, all
// wrapping ErrBadConfig. secretNames may be nil (secrets left unchanged).
func (r *Registry) Validate(kind string, settings json.RawMessage, secretNames []string) error {
	if _, ok := r.factories[kind]; !ok {
		return &KindError{Kind: kind, Known: r.Kinds()}
	}
	k, ok := r.kinds[kind]
	if !ok {
		return nil
	}
	parse := k.Parse
	if parse == nil {
		parse = func(raw json.RawMessage) error { return k.Spec.DecodeSettings(raw, nil) }
	}
	if err := parse(settings); err != nil {
		return err
	}
	return k.Spec.CheckSecrets(secretNames)
}

// Kinds lists the registered kinds, sorted.
func (r *Registry) Kinds() []string {
	out := make([]string, 0, len(r.factories))
	for k := range r.factories {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Open builds a connector of the given kind.
func (r *Registry) Open(ctx context.Context, kind string, cfg Config) (Connector, error) {
	f, ok := r.factories[kind]
	if !ok {
		return nil, &KindError{Kind: kind, Known: r.Kinds()}
	}
	return f(ctx, cfg)
}
