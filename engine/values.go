package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/duplexsync/duplex/connectors"
)

// Keys of the script-visible entity object that are not fields. Scripts see a
// flat object (entity.subject, entity.comments) because that is how people
// think of a ticket; the engine splits it back into fields and comments.
var reservedKeys = map[string]bool{
	"id": true, "key": true, "url": true, "type": true,
	"comments": true, "updated_at": true, "updated_by": true, "attachments": true,
}

// scriptEntity flattens an entity into the object scripts read.
func scriptEntity(e connectors.Entity) map[string]any {
	m := make(map[string]any, len(e.Fields)+7)
	for k, v := range e.Fields {
		if !reservedKeys[k] {
			m[k] = v
		}
	}
	m["id"] = e.ID
	m["key"] = e.Key
	m["url"] = e.URL
	m["type"] = e.Type
	m["updated_by"] = e.UpdatedBy
	if !e.UpdatedAt.IsZero() {
		m["updated_at"] = e.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	cs := make([]any, len(e.Comments))
	for i, c := range e.Comments {
		cm := map[string]any{
			"id": c.ID, "author": c.Author, "body": c.Body,
			"created_at": c.CreatedAt.UTC().Format(time.RFC3339Nano),
		}
		if c.Private {
			cm["private"] = true
		}
		cs[i] = cm
	}
	m["comments"] = cs
	m["attachments"] = scriptAttachments(e.Attachments)
	return m
}

// triggerVars is what a trigger sees: the fields plus id and key.
func triggerVars(e connectors.Entity) map[string]any {
	m := make(map[string]any, len(e.Fields)+2)
	for k, v := range e.Fields {
		m[k] = v
	}
	m["id"] = e.ID
	m["key"] = e.Key
	return m
}

// triggerEnv types a trigger's variables from a system's schema.
func triggerEnv(s connectors.Schema) map[string]any {
	env := map[string]any{"id": "", "key": ""}
	for _, f := range s.Fields {
		switch f.Type {
		case connectors.TypeNumber:
			env[f.Name] = 0.0
		case connectors.TypeBool:
			env[f.Name] = false
		case connectors.TypeList:
			env[f.Name] = []any{}
		default: // string, time (RFC 3339 text)
			env[f.Name] = ""
		}
	}
	return env
}

// splitEntity turns what an incoming script left in `entity` back into
// fields and comments.
func splitEntity(m map[string]any) (map[string]any, []connectors.Comment, error) {
	fields := make(map[string]any, len(m))
	for k, v := range m {
		if !reservedKeys[k] {
			fields[k] = v
		}
	}
	var comments []connectors.Comment
	if raw, ok := m["comments"]; ok && raw != nil {
		list, ok := raw.([]any)
		if !ok {
			return nil, nil, fmt.Errorf("entity.comments must be an array, got %T", raw)
		}
		for i, item := range list {
			cm, ok := item.(map[string]any)
			if !ok {
				return nil, nil, fmt.Errorf("entity.comments[%d] must be an object, got %T", i, item)
			}
			c := connectors.Comment{ID: str(cm["id"]), Author: str(cm["author"]), Body: str(cm["body"])}
			c.Private, _ = cm["private"].(bool)
			if c.Body == "" {
				continue
			}
			comments = append(comments, c)
		}
	}
	return fields, comments, nil
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// sameValue compares two field values by their canonical JSON, so 1 and 1.0
// or a []string and an equal []any are the same.
func sameValue(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	switch x := a.(type) { // the common values, without encoding them (see sameCanonical)
	case string:
		if y, ok := b.(string); ok && (x == y || utf8.ValidString(x) && utf8.ValidString(y)) {
			return x == y // (invalid UTF-8 encodes lossily: compared encoded below)
		}
	case bool:
		if y, ok := b.(bool); ok {
			return x == y
		}
	}
	ca, err1 := canonical(a)
	cb, err2 := canonical(b)
	return err1 == nil && err2 == nil && ca == cb
}

// patch returns the fields of want that differ from have.
func patch(have, want map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range want {
		old, ok := have[k]
		if !ok && v == nil {
			continue
		}
		if !ok || !sameValue(old, v) {
			out[k] = v
		}
	}
	return out
}

// snapshot is a side's state as Duplex has accounted for it: fields, the
// ids of comments and of attachments. Twins keep one per side (the base);
// its hash is the echo reference. An entity without attachments encodes as
// it did before attachments existed (A is left out), so older hashes hold.
type snapshot struct {
	F map[string]any `json:"f"`
	C []string       `json:"c"`
	A []string       `json:"a,omitempty"`
}

func snapshotOf(e connectors.Entity) snapshot {
	ids := make([]string, len(e.Comments))
	for i, c := range e.Comments {
		ids[i] = c.ID
	}
	return snapshot{F: e.Fields, C: ids, A: attachmentIDs(e.Attachments)}
}

// encode gives the canonical JSON of s, comment ids sorted.
func (s snapshot) encode() (string, error) {
	bp := canonBufs.Get().(*[]byte)
	b, err := s.appendSorted((*bp)[:0])
	var enc string
	if err == nil {
		enc = string(b)
	}
	putCanonBuf(bp, b)
	return enc, err
}

// appendSorted appends the canonical JSON of s, its ids sorted (copied
// only when they are not sorted already) and no fields written {}.
func (s snapshot) appendSorted(b []byte) ([]byte, error) {
	ids := s.C
	if ids == nil {
		ids = []string{}
	} else if !sort.StringsAreSorted(ids) {
		ids = append([]string(nil), ids...)
		sort.Strings(ids)
	}
	f := s.F
	if f == nil {
		f = map[string]any{}
	}
	atts := s.A
	if len(atts) > 0 && !sort.StringsAreSorted(atts) {
		atts = append([]string(nil), atts...)
		sort.Strings(atts)
	}
	return snapshot{F: f, C: ids, A: atts}.appendJSON(b)
}

func (s snapshot) hash() string {
	bp := canonBufs.Get().(*[]byte)
	b, err := s.appendSorted((*bp)[:0])
	h := ""
	if err == nil {
		h = hashOf(b)
	}
	putCanonBuf(bp, b)
	return h
}

// hashOf is the echo hash of a snapshot's encoding.
func hashOf(enc []byte) string {
	sum := sha256.Sum256(enc)
	return hex.EncodeToString(sum[:])
}

// with returns s changed by a write: fields overlaid, comments added.
func (s snapshot) with(fields map[string]any, added []connectors.Comment) snapshot {
	out := snapshot{F: make(map[string]any, len(s.F)+len(fields)), C: append([]string(nil), s.C...), A: append([]string(nil), s.A...)}
	for k, v := range s.F {
		out.F[k] = v
	}
	for k, v := range fields {
		out.F[k] = v
	}
	for _, c := range added {
		out.C = append(out.C, c.ID)
	}
	return out
}

func decodeSnapshot(s *string) (*snapshot, error) {
	if s == nil || *s == "" {
		return nil, nil
	}
	if snap, ok := fastSnapshot(*s); ok {
		return snap, nil
	}
	var snap snapshot
	dec := json.NewDecoder(bytes.NewReader([]byte(*s)))
	dec.UseNumber()
	if err := dec.Decode(&snap); err != nil {
		return nil, err
	}
	if snap.F == nil {
		snap.F = map[string]any{}
	}
	normalizeNumbers(snap.F)
	return &snap, nil
}

// contentHash identifies what an entity holds (fields and comment ids), not
// when it changed: echo suppression compares it with the hash of what
// Duplex wrote.
func contentHash(e connectors.Entity) string { return snapshotOf(e).hash() }

// decodeObject parses a stored JSON object; "" and "null" give nil.
func decodeObject(s *string) (map[string]any, error) {
	if s == nil || *s == "" || *s == "null" {
		return nil, nil
	}
	if m, ok := fastObject(*s); ok {
		return m, nil
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(*s)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return normalizeNumbers(m).(map[string]any), nil
}

// normalizeNumbers turns json.Number into int64 or float64, the same shapes
// scripts export.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, vv := range x {
			x[k] = normalizeNumbers(vv)
		}
		return x
	case []any:
		for i, vv := range x {
			x[i] = normalizeNumbers(vv)
		}
		return x
	default:
		return v
	}
}
